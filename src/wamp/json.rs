//! JSON: header split through serde_json's borrowed `RawValue`, so arguments stay as the
//! original text and are copied into outgoing JSON frames byte for byte.

use std::ops::Range;

use serde_json::value::RawValue;

use super::error::DecodeError;
use super::value::Value;

const NAME: &str = "json";

pub fn split(frame: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    let first = frame.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Err(DecodeError::NotAnArray);
    }
    let elements: Vec<&RawValue> =
        serde_json::from_slice(frame).map_err(|e| DecodeError::malformed(NAME, e))?;
    let base = frame.as_ptr() as usize;
    Ok(elements
        .into_iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            start..start + raw.get().len()
        })
        .collect())
}

pub fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::malformed(NAME, e))
}

pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    // Writing a `Value` into a Vec cannot fail: every map key is a string and
    // non-finite floats are written as null.
    if let Err(e) = serde_json::to_writer(&mut *out, v) {
        tracing::error!(error = %e, "json encoding failed");
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_raw_text() {
        let frame = br#" [16, 1, {"a": 1}, "com.x", [1, "\u0041"], {"k": null}] "#;
        let r = split(frame).unwrap();
        let parts: Vec<&str> = r.iter().map(|r| std::str::from_utf8(&frame[r.clone()]).unwrap()).collect();
        assert_eq!(parts, vec!["16", "1", r#"{"a": 1}"#, r#""com.x""#, r#"[1, "\u0041"]"#, r#"{"k": null}"#]);
    }

    #[test]
    fn split_rejects_garbage() {
        assert_eq!(split(b"{}"), Err(DecodeError::NotAnArray));
        assert!(matches!(split(b"[1, 2"), Err(DecodeError::Malformed { .. })));
        assert!(matches!(split(b"[1] x"), Err(DecodeError::Malformed { .. })));
    }
}
