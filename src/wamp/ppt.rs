//! Payload passthru mode (spec: `ppt_scheme`, `ppt_serializer`, `ppt_cipher`,
//! `ppt_keyid`): a PUBLISH, CALL or YIELD whose options name a `ppt_scheme` carries a
//! payload the router must not look into (end-to-end encrypted, or another protocol's
//! message). The router passes the payload on as it came and copies the `ppt_*`
//! attributes into the EVENT, INVOCATION or RESULT details.

use super::{Dict, Value};

pub const KEYS: [&str; 4] = ["ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid"];

/// Why a message's `ppt_*` options are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be a string")]
pub struct NotAString(pub &'static str);

/// The `ppt_*` attributes of a message's options, when it uses payload passthru (a
/// non-empty `ppt_scheme`); `None` otherwise.
pub fn attributes(options: &Dict) -> Result<Option<Dict>, NotAString> {
    match options.get("ppt_scheme") {
        None => return Ok(None),
        Some(Value::Str(s)) if s.is_empty() => return Ok(None),
        Some(Value::Str(_)) => {}
        Some(_) => return Err(NotAString("ppt_scheme")),
    }
    let mut out = Dict::new();
    for key in KEYS {
        match options.get(key) {
            None => {}
            Some(v @ Value::Str(_)) => drop(out.insert(key.to_owned(), v.clone())),
            Some(_) => return Err(NotAString(key)),
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::dict;

    #[test]
    fn only_a_named_scheme_turns_passthru_on_and_every_attribute_is_copied() {
        assert_eq!(attributes(&Dict::new()), Ok(None));
        assert_eq!(attributes(&dict([("ppt_scheme", "".into()), ("ppt_cipher", "x".into())])), Ok(None));
        let options = dict([
            ("ppt_scheme", "wamp.eth".into()),
            ("ppt_serializer", "cbor".into()),
            ("ppt_cipher", "xsalsa20poly1305".into()),
            ("ppt_keyid", "0xabc".into()),
            ("acknowledge", Value::Bool(true)),
        ]);
        let got = attributes(&options).unwrap().unwrap();
        assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), vec!["ppt_cipher", "ppt_keyid", "ppt_scheme", "ppt_serializer"]);
        assert_eq!(got["ppt_keyid"], Value::from("0xabc"));
        assert_eq!(attributes(&dict([("ppt_scheme", "mqtt".into()), ("ppt_keyid", Value::UInt(7))])), Err(NotAString("ppt_keyid")));
        assert_eq!(attributes(&dict([("ppt_scheme", Value::UInt(1))])), Err(NotAString("ppt_scheme")));
    }
}
