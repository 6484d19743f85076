//! JSON: header split through serde_json's borrowed `RawValue`, so arguments stay as the
//! original text and are copied into outgoing JSON frames byte for byte; `check` holds
//! each element to what every serializer can carry, without decoding it.

use std::ops::Range;

use base64::Engine as _;
use serde_json::value::RawValue;

use super::error::{DecodeError, PayloadError};
use super::value::{Value, MAX_DEPTH};

const NAME: &str = "json";

/// Byte ranges of the top-level elements. Stops at the first element that is well-formed
/// but invalid (too deep, not representable): its error comes with the ranges before it,
/// so the message's header can still be read and the message answered.
pub fn split(frame: &[u8]) -> Result<(Vec<Range<usize>>, Option<PayloadError>), DecodeError> {
    let first = frame.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Err(DecodeError::NotAnArray);
    }
    // JSON text is UTF-8. A WebSocket text frame was checked already, a RawSocket frame
    // was not, and text that is not UTF-8 must never reach a browser.
    std::str::from_utf8(frame).map_err(|e| DecodeError::malformed(NAME, e))?;
    let elements: Vec<&RawValue> = serde_json::from_slice(frame).map_err(|e| DecodeError::malformed(NAME, e))?;
    let base = frame.as_ptr() as usize;
    let mut ranges = Vec::with_capacity(elements.len());
    for raw in elements {
        if let Err(problem) = check(raw.get().as_bytes()) {
            return Ok((ranges, Some(problem)));
        }
        let start = raw.get().as_ptr() as usize - base;
        ranges.push(start..start + raw.get().len());
    }
    Ok((ranges, None))
}

/// Holds one well-formed JSON element to what every serializer can carry: at most
/// `MAX_DEPTH` levels of arrays and objects, no lone UTF-16 surrogate escapes, and
/// binary strings (`"\u0000"` + base64, the spec's binary conversion) with valid base64.
/// One pass over the bytes, no allocation unless a binary string must be checked.
pub fn check(element: &[u8]) -> Result<(), PayloadError> {
    // Bit d is set while the container at depth d is an object, so a string can be
    // told to be a key (never binary) or a value.
    let mut objects: u64 = 0;
    let mut depth = 0usize;
    let mut expect_key = false;
    let mut i = 0;
    while i < element.len() {
        match element[i] {
            b'[' | b'{' => {
                if depth == MAX_DEPTH {
                    return Err(PayloadError::TooDeep(MAX_DEPTH));
                }
                let is_object = element[i] == b'{';
                objects = (objects & !(1 << depth)) | (u64::from(is_object) << depth);
                depth += 1;
                expect_key = is_object;
            }
            // Saturating: `decode_value` may be handed bytes that are not JSON at all.
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => expect_key = depth > 0 && objects & (1 << (depth - 1)) != 0,
            b'"' => {
                let (end, escaped) = string_end(element, i + 1);
                // Surrogates and binary strings are written with escapes: a string
                // without any needs no second look.
                if escaped {
                    let body = &element[i + 1..end];
                    check_escapes(body)?;
                    if !expect_key && body.starts_with(b"\\u0000") {
                        check_binary(&body[6..])?;
                    }
                }
                expect_key = false;
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let end = element[i..].iter().position(|b| matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace());
                let end = end.map_or(element.len(), |n| i + n);
                check_number(&element[i..end])?;
                i = end - 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// A number beyond the range of a double (`1e309`) is valid JSON text but no value any
/// serializer can carry. Only a number with an exponent or hundreds of digits can be one,
/// so most numbers are not parsed here.
fn check_number(token: &[u8]) -> Result<(), PayloadError> {
    if token.len() < 300 && !token.iter().any(|b| matches!(b, b'e' | b'E')) {
        return Ok(());
    }
    match std::str::from_utf8(token).ok().and_then(|t| t.parse::<f64>().ok()) {
        Some(f) if f.is_finite() => Ok(()),
        _ => Err(PayloadError::Unrepresentable("a number is beyond the range of a double")),
    }
}

/// Index of the closing quote of the string whose body starts at `start`, and whether
/// the body holds an escape. The element is valid JSON, so there is a closing quote.
fn string_end(b: &[u8], start: usize) -> (usize, bool) {
    let mut i = start;
    let mut escaped = false;
    while let Some(n) = memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
        i += n;
        if b[i] == b'"' {
            return (i, escaped);
        }
        escaped = true;
        i += 2;
    }
    (b.len(), escaped)
}

fn hex4(b: &[u8]) -> Option<u16> {
    std::str::from_utf8(b.get(..4)?).ok().and_then(|h| u16::from_str_radix(h, 16).ok())
}

/// A `\uD800`-`\uDBFF` escape must be followed by a `\uDC00`-`\uDFFF` one, and a low
/// surrogate must not stand alone: a lone surrogate is no character, and decoding it to
/// re-encode for another serializer fails.
fn check_escapes(body: &[u8]) -> Result<(), PayloadError> {
    let lone = PayloadError::Unrepresentable("a string holds a lone UTF-16 surrogate escape");
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        if body.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let unit = hex4(&body[i + 2..]).unwrap_or(0);
        i += 6;
        match unit {
            0xD800..=0xDBFF => match (body.get(i..i + 2), hex4(body.get(i + 2..).unwrap_or(&[]))) {
                (Some(b"\\u"), Some(0xDC00..=0xDFFF)) => i += 6,
                _ => return Err(lone),
            },
            0xDC00..=0xDFFF => return Err(lone),
            _ => {}
        }
    }
    Ok(())
}

/// The base64 after a string's `\u0000`. Base64 needs no escapes but `\/` may be written
/// for `/`.
fn check_binary(b64: &[u8]) -> Result<(), PayloadError> {
    let invalid = PayloadError::Unrepresentable("a binary string (\\u0000 + base64) holds invalid base64");
    let mut text = Vec::with_capacity(b64.len());
    let mut i = 0;
    while i < b64.len() {
        match (b64[i], b64.get(i + 1)) {
            (b'\\', Some(b'/')) => {
                text.push(b'/');
                i += 2;
            }
            (b'\\', _) => return Err(invalid),
            (c, _) => {
                text.push(c);
                i += 1;
            }
        }
    }
    base64::engine::general_purpose::STANDARD.decode(&text).map(drop).map_err(|_| invalid)
}

/// Decodes exactly one complete element.
pub fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    check(bytes)?;
    decode_checked(bytes)
}

/// Decodes an element `check` has accepted already.
pub fn decode_checked(bytes: &[u8]) -> Result<Value, DecodeError> {
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
        assert_eq!(r.1, None);
        let parts: Vec<&str> = r.0.iter().map(|r| std::str::from_utf8(&frame[r.clone()]).unwrap()).collect();
        assert_eq!(parts, vec!["16", "1", r#"{"a": 1}"#, r#""com.x""#, r#"[1, "\u0041"]"#, r#"{"k": null}"#]);
    }

    #[test]
    fn split_rejects_garbage() {
        assert_eq!(split(b"{}"), Err(DecodeError::NotAnArray));
        assert!(matches!(split(b"[1, 2"), Err(DecodeError::Malformed { .. })));
        assert!(matches!(split(b"[1] x"), Err(DecodeError::Malformed { .. })));
    }
}
