//! RFC 3339 timestamps for history queries (`since`, `after_time`, `before_time`) and
//! for the `timestamp` of history entries. Only what WAMP clients send: a date, `T`, a
//! time with optional fraction, and `Z` or a `±hh:mm` offset. (No crate in the
//! dependency set does this; it is the one calendar computation below.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Now, to the microsecond: what timestamps say, and what the durable store keeps, so
/// an event is never later than its own timestamp (`after_time` excludes it).
pub fn now_micros() -> SystemTime {
    let micros = super::event::micros(SystemTime::now()).max(0) as u64;
    UNIX_EPOCH + Duration::from_micros(micros)
}

/// `2026-12-03T06:01:02.345678Z` (microseconds, UTC).
pub fn format(t: SystemTime) -> String {
    let micros = super::event::micros(t);
    let (secs, us) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Parses an RFC 3339 timestamp; `None` if it is not one.
pub fn parse(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<9}", &digits[..digits.len().min(9)]);
        nanos = padded.parse().ok()?;
    }
    let offset = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(tz.as_bytes()[0], b'+' | b'-') && tz.as_bytes()[3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let total = Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos as u64);
    if secs >= 0 {
        UNIX_EPOCH.checked_add(total)
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs())).and_then(|t| t.checked_add(Duration::from_nanos(nanos as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc_with_microseconds() {
        let t = UNIX_EPOCH + Duration::from_micros(1_796_277_662_345_678);
        assert_eq!(format(t), "2026-12-03T06:01:02.345678Z");
        assert_eq!(parse("2026-12-03T06:01:02.345678Z"), Some(t));
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(parse("2000-02-29T00:00:00Z"), Some(UNIX_EPOCH + Duration::from_secs(951_782_400)));
    }

    #[test]
    fn offsets_are_applied_and_garbage_refused() {
        assert_eq!(parse("2026-12-03T08:01:02+02:00"), parse("2026-12-03T06:01:02Z"));
        assert_eq!(parse("2026-12-03T04:31:02-01:30"), parse("2026-12-03T06:01:02Z"));
        for bad in ["", "2026-12-03", "2026-13-03T00:00:00Z", "2026-12-03T06:01:02", "2026-12-03T06:01:02.Z", "2026-12-03T06:01:02+0200", "yesterday"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
