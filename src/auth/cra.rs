//! WAMP-CRA (challenge-response with a shared secret): the challenge the router sends and
//! the check of the client's answer. The secret never travels: the client returns
//! base64(HMAC-SHA256(key, challenge)), where the key is the secret's UTF-8 text, or,
//! for a salted secret, the base64 *text* of PBKDF2-HMAC-SHA256(password, salt,
//! iterations, keylen). That second rule is what autobahn-python and autobahn-js do, so
//! it is the one that interoperates; [`derive_key`] computes it for operators and tests.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::alphabet::STANDARD as STANDARD_ALPHABET;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Standard base64 whether or not the client kept the padding.
const LENIENT: GeneralPurpose =
    GeneralPurpose::new(&STANDARD_ALPHABET, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

/// What the challenge names: the identity the session gets if the answer is right.
pub struct ChallengeFields<'a> {
    pub authid: &'a str,
    pub authrole: &'a str,
    pub authprovider: &'a str,
    pub session: u64,
}

/// The challenge string: a JSON object with the spec's seven members. The nonce makes
/// every challenge unique (no replay), the session id binds it to this session.
pub fn challenge(fields: &ChallengeFields<'_>, now: SystemTime) -> String {
    let nonce: [u8; 12] = rand::random();
    serde_json::json!({
        "authid": fields.authid,
        "authrole": fields.authrole,
        "authmethod": "wampcra",
        "authprovider": fields.authprovider,
        "nonce": URL_SAFE_NO_PAD.encode(nonce),
        "timestamp": iso8601_utc(now),
        "session": fields.session,
    })
    .to_string()
}

/// The signature a client holding `key` sends for `challenge`.
pub fn sign(key: &[u8], challenge: &str) -> String {
    STANDARD.encode(mac(key, challenge).finalize().into_bytes())
}

/// Whether `signature` (base64) is the HMAC of `challenge` under `key`. The comparison
/// takes the same time wherever the bytes differ.
pub fn verify(key: &[u8], challenge: &str, signature: &str) -> bool {
    match LENIENT.decode(signature.trim()) {
        Ok(sig) => mac(key, challenge).verify_slice(&sig).is_ok(),
        Err(_) => false,
    }
}

fn mac(key: &[u8], challenge: &str) -> HmacSha256 {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(challenge.as_bytes());
    mac
}

/// The key a salted WAMP-CRA client derives from its password: base64 of
/// PBKDF2-HMAC-SHA256(password, salt, iterations, keylen). This text is what the realm
/// file stores as the principal's `secret`.
pub fn derive_key(password: &str, salt: &str, iterations: u32, keylen: usize) -> String {
    let mut key = vec![0u8; keylen];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut key);
    STANDARD.encode(key)
}

/// `2014-06-22T16:36:25.448Z`: the spec's timestamp format, UTC with milliseconds.
pub fn iso8601_utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Year, month, day of the `days`-th day after 1970-01-01 in the proleptic Gregorian
/// calendar, counting in 400-year eras of 146,097 days that start on March 1st, so
/// that the leap day ends its year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month counted from March
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?",
        // HMAC-SHA-256 = 5bdcc146...ec3843, here in base64 as WAMP-CRA sends it.
        let sig = sign(b"Jefe", "what do ya want for nothing?");
        assert_eq!(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
        assert!(verify(b"Jefe", "what do ya want for nothing?", &sig));
        assert!(verify(b"Jefe", "what do ya want for nothing?", sig.trim_end_matches('=')), "padding is optional");
        assert!(!verify(b"jefe", "what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", "what do ya want for nothing!", &sig));
        assert!(!verify(b"Jefe", "what do ya want for nothing?", "not base64!"));
        assert!(!verify(b"Jefe", "what do ya want for nothing?", ""));
    }

    #[test]
    fn pbkdf2_matches_rfc7914_and_autobahn() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64).
        let expected = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
                        49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783";
        let derived = STANDARD.decode(derive_key("passwd", "salt", 1, 64)).unwrap();
        let hex: String = derived.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        // What autobahn's derive_key("secret1", "salt123", 1000, 32) returns (computed
        // with Python's hashlib.pbkdf2_hmac, which autobahn uses).
        assert_eq!(derive_key("secret1", "salt123", 1000, 32), "64xfzBvZhGDT7PB0bQwDeI8/WR1M9x6Cw5dt0yP9koc=");
    }

    #[test]
    fn challenge_is_the_spec_json() {
        let at = UNIX_EPOCH + Duration::from_millis(1_403_455_001_643);
        let fields = ChallengeFields { authid: "peter", authrole: "user", authprovider: "static", session: 3_251_278_072_152_162 };
        let text = challenge(&fields, at);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["authid"], "peter");
        assert_eq!(v["authrole"], "user");
        assert_eq!(v["authmethod"], "wampcra");
        assert_eq!(v["authprovider"], "static");
        assert_eq!(v["timestamp"], "2014-06-22T16:36:41.643Z");
        assert_eq!(v["session"], 3_251_278_072_152_162u64);
        assert_eq!(v["nonce"].as_str().map(str::len), Some(16));
        assert_eq!(v.as_object().map(|o| o.len()), Some(7));
        assert_ne!(text, challenge(&fields, at), "a fresh nonce every time");
    }

    #[test]
    fn calendar() {
        assert_eq!(iso8601_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century year) and 2100-03-01 (after a non-leap February).
        assert_eq!(iso8601_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_utc(UNIX_EPOCH + Duration::from_secs(4_107_542_400)), "2100-03-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(UNIX_EPOCH + Duration::from_secs(1_703_980_799)), "2023-12-30T23:59:59.000Z");
    }
}
