//! The expiry (`notAfter`) of a DER certificate, for the certificate-expiry metric.
//! rustls parses certificates but does not expose their validity, and a full X.509
//! parser crate is a lot of code for one date: this walks the DER structure down to
//! `tbsCertificate.validity.notAfter` (RFC 5280 §4.1) and nothing else. Anything it
//! does not understand gives `None`; the certificate is still served, only its expiry
//! goes unreported.

/// `notAfter` of the certificate `der`, in seconds since the Unix epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    let (_, cert) = expect(der, SEQUENCE)?;
    let (_, mut tbs) = expect(cert, SEQUENCE)?;
    // version [0] EXPLICIT, absent in v1 certificates.
    if tbs.first() == Some(&0xA0) {
        tbs = tlv(tbs)?.2;
    }
    tbs = tlv(tbs)?.2; // serialNumber
    tbs = tlv(tbs)?.2; // signature AlgorithmIdentifier
    tbs = tlv(tbs)?.2; // issuer
    let (_, validity) = expect(tbs, SEQUENCE)?;
    let (_, _, rest) = tlv(validity)?; // notBefore
    let (tag, value, _) = tlv(rest)?;
    match tag {
        0x17 => utc_time(value),
        0x18 => generalized_time(value),
        _ => None,
    }
}

/// The value of the element at the front of `der` if its tag is `tag`, and the bytes after it.
fn expect(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, value, rest) = tlv(der)?;
    (t == tag).then_some((rest, value))
}

/// (tag, value, the bytes after the element) of the element at the front of `der`.
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, der) = der.split_first()?;
    let (&first, der) = der.split_first()?;
    let (len, der) = if first < 0x80 {
        (usize::from(first), der)
    } else {
        // Long form: the low bits say how many length octets follow; certificates
        // never need more than four.
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || der.len() < n {
            return None;
        }
        let len = der[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &der[n..])
    };
    if der.len() < len {
        return None;
    }
    Some((tag, &der[..len], &der[len..]))
}

/// `YYMMDDHHMMSSZ`; years 50–99 are 19xx (RFC 5280 §4.1.2.5.1).
fn utc_time(v: &[u8]) -> Option<i64> {
    if v.len() != 13 || v[12] != b'Z' {
        return None;
    }
    let yy = digits(&v[0..2])?;
    let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
    unix_seconds(year, &v[2..12])
}

/// `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2).
fn generalized_time(v: &[u8]) -> Option<i64> {
    if v.len() != 15 || v[14] != b'Z' {
        return None;
    }
    unix_seconds(digits(&v[0..4])?, &v[4..14])
}

fn digits(v: &[u8]) -> Option<i64> {
    v.iter().try_fold(0i64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
}

/// `MMDDHHMMSS` of `year`, as Unix seconds.
fn unix_seconds(year: i64, v: &[u8]) -> Option<i64> {
    let (month, day) = (digits(&v[0..2])?, digits(&v[2..4])?);
    let (h, m, s) = (digits(&v[4..6])?, digits(&v[6..8])?, digits(&v[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_expiring(year: i32, month: u8, day: u8) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_not_after_in_both_time_forms() {
        // Before 2050 certificates carry UTCTime, from 2050 on GeneralizedTime.
        assert_eq!(not_after(&cert_expiring(2031, 5, 17)), Some(1_936_742_400));
        assert_eq!(not_after(&cert_expiring(2051, 1, 1)), Some(2_556_144_000));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(utc_time(b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(utc_time(b"700101000000Z"), Some(0));
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        let good = cert_expiring(2031, 5, 17);
        for cut in 0..good.len() {
            let _ = not_after(&good[..cut]);
        }
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(utc_time(b"491331235959Z"), None);
    }
}
