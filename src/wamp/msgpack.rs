//! MessagePack: header split and payload validation in one allocation-free pass
//! (`scan`), decode into `Value` (rmpv's borrowed reader), and compact encoding with rmp.

use std::ops::Range;

use rmpv::ValueRef;

use super::elements::Elements;
use super::error::{DecodeError, PayloadError};
use super::value::{Dict, Value, MAX_DEPTH};

const NAME: &str = "msgpack";

fn malformed(detail: &str) -> DecodeError {
    DecodeError::malformed(NAME, detail)
}

fn unrepresentable(what: &'static str) -> DecodeError {
    DecodeError::Invalid(PayloadError::Unrepresentable(what))
}

/// Byte ranges of the top-level elements. Stops at the first element that is well-formed
/// but invalid (too deep, not representable): its error comes with the ranges before it,
/// so the message's header can still be read and the message answered.
pub fn split(frame: &[u8]) -> Result<(Vec<Range<usize>>, Option<PayloadError>), DecodeError> {
    let mut cur = frame;
    let len = rmp::decode::read_array_len(&mut cur).map_err(|_| DecodeError::NotAnArray)? as usize;
    // Each element takes at least one byte: a length beyond the frame is a lie.
    if len > cur.len() {
        return Err(malformed("array length exceeds the message"));
    }
    let mut elements = Elements::starting_at(frame.len() - cur.len(), len);
    for _ in 0..len {
        if let Some(problem) = elements.scan_next(frame, scan)? {
            return Ok((elements.ranges, Some(problem)));
        }
    }
    elements.finish(frame, NAME)
}

/// One open array or map while scanning. Small, because a scan sets up a stack of
/// `MAX_DEPTH` of them.
#[derive(Clone, Copy, Default)]
struct Open {
    /// Items still to read (a map's keys and values both count); never more than the
    /// input's length, which is checked.
    remaining: u32,
    is_map: bool,
}

/// Reads one element at the start of `bytes` without decoding it and returns its length.
/// Refuses what `decode_value` would refuse or another serializer could not carry:
/// nesting deeper than `MAX_DEPTH`, strings that are not UTF-8, dict keys that are not
/// strings, extension types, and strings starting with U+0000 (JSON's binary marker).
/// Iterative, with a fixed stack: no allocation and no recursion, whatever the input.
pub fn scan(bytes: &[u8]) -> Result<usize, DecodeError> {
    // Most elements of a header are scalars: they need no stack.
    let first = item(bytes, 0)?;
    match open(&first, bytes, false)? {
        Some(outer) => scan_nested(bytes, first.end, outer),
        None => Ok(first.end),
    }
}

/// Checks `item` where it stands (a dict key or not) and returns the container it opens,
/// if it opens one with items.
fn open(item: &Item, bytes: &[u8], is_key: bool) -> Result<Option<Open>, DecodeError> {
    match item.kind {
        Kind::Str { start } => {
            let s = std::str::from_utf8(&bytes[start..item.end]).map_err(|_| unrepresentable("a string is not valid UTF-8"))?;
            if !is_key && s.starts_with('\0') {
                return Err(unrepresentable("a string starts with U+0000, which JSON reads as binary"));
            }
            Ok(None)
        }
        _ if is_key => Err(unrepresentable("a dict key is not a string")),
        Kind::Ext => Err(unrepresentable("extension types are not supported")),
        Kind::Container { items, is_map } => {
            // Each item takes at least one byte: a count beyond the input is a lie.
            if items > (bytes.len() - item.end) as u64 {
                return Err(malformed("container length exceeds the message"));
            }
            Ok((items > 0).then_some(Open { remaining: items as u32, is_map }))
        }
        Kind::Scalar => Ok(None),
    }
}

/// The rest of an element whose outermost container `outer` has its items from `pos`.
fn scan_nested(bytes: &[u8], mut pos: usize, outer: Open) -> Result<usize, DecodeError> {
    let mut stack = [Open::default(); MAX_DEPTH];
    stack[0] = outer;
    let mut depth = 1;
    loop {
        let top = &mut stack[depth - 1];
        let is_key = top.is_map && top.remaining.is_multiple_of(2);
        top.remaining -= 1;
        let item = item(bytes, pos)?;
        pos = item.end;
        if let Some(inner) = open(&item, bytes, is_key)? {
            if depth == MAX_DEPTH {
                return Err(DecodeError::Invalid(PayloadError::TooDeep(MAX_DEPTH)));
            }
            stack[depth] = inner;
            depth += 1;
        } else if matches!(item.kind, Kind::Container { .. }) && depth == MAX_DEPTH {
            // An empty container is a level too.
            return Err(DecodeError::Invalid(PayloadError::TooDeep(MAX_DEPTH)));
        }
        while depth > 0 && stack[depth - 1].remaining == 0 {
            depth -= 1;
        }
        if depth == 0 {
            return Ok(pos);
        }
    }
}

enum Kind {
    Scalar,
    Str { start: usize },
    Ext,
    Container { items: u64, is_map: bool },
}

struct Item {
    kind: Kind,
    end: usize,
}

/// The item whose marker is at `pos`: its kind and where it ends (for a container, where
/// its header ends).
fn item(b: &[u8], pos: usize) -> Result<Item, DecodeError> {
    let truncated = || malformed("message ends inside a value");
    let marker = *b.get(pos).ok_or_else(truncated)?;
    let p = pos + 1;
    // Reads a big-endian length of `n` bytes at `p`.
    let len = |n: usize| -> Result<usize, DecodeError> {
        let field = b.get(p..p + n).ok_or_else(truncated)?;
        Ok(field.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
    };
    let data = |start: usize, n: usize, kind: Kind| -> Result<Item, DecodeError> {
        let end = start.checked_add(n).filter(|&e| e <= b.len()).ok_or_else(truncated)?;
        Ok(Item { kind, end })
    };
    let container = |items: usize, is_map: bool, end: usize| Ok(Item { kind: Kind::Container { items: items as u64 * (1 + u64::from(is_map)), is_map }, end });
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Ok(Item { kind: Kind::Scalar, end: p }),
        0x80..=0x8f => container(usize::from(marker & 0x0f), true, p),
        0x90..=0x9f => container(usize::from(marker & 0x0f), false, p),
        0xa0..=0xbf => data(p, usize::from(marker & 0x1f), Kind::Str { start: p }),
        0xc1 => Err(malformed("reserved marker 0xc1")),
        0xc4..=0xc6 => {
            let n = 1 << (marker - 0xc4);
            data(p + n, len(n)?, Kind::Scalar)
        }
        0xc7..=0xc9 => {
            let n = 1 << (marker - 0xc7);
            data(p + n + 1, len(n)?, Kind::Ext)
        }
        0xca => data(p, 4, Kind::Scalar),
        0xcb => data(p, 8, Kind::Scalar),
        0xcc..=0xcf => data(p, 1 << (marker - 0xcc), Kind::Scalar),
        0xd0..=0xd3 => data(p, 1 << (marker - 0xd0), Kind::Scalar),
        0xd4..=0xd8 => data(p, 1 + (1 << (marker - 0xd4)), Kind::Ext),
        0xd9..=0xdb => {
            let n = 1 << (marker - 0xd9);
            data(p + n, len(n)?, Kind::Str { start: p + n })
        }
        0xdc | 0xdd => {
            let n = 2 << (marker - 0xdc);
            container(len(n)?, false, p + n)
        }
        0xde | 0xdf => {
            let n = 2 << (marker - 0xde);
            container(len(n)?, true, p + n)
        }
    }
}

/// Decodes exactly one element, after `scan` has accepted it.
pub fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    if scan(bytes)? != bytes.len() {
        return Err(malformed("trailing bytes after value"));
    }
    decode_checked(bytes)
}

/// Decodes an element `scan` has accepted already.
pub fn decode_checked(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut cur = bytes;
    let v = rmpv::decode::read_value_ref_with_max_depth(&mut cur, RMPV_DEPTH_BUDGET).map_err(|e| match e {
        rmpv::decode::Error::DepthLimitExceeded => DecodeError::Invalid(PayloadError::TooDeep(MAX_DEPTH)),
        e => DecodeError::malformed(NAME, e),
    })?;
    from_ref(&v)
}

/// rmpv's depth budget is not a nesting level: it charges a list or dict twice (the value,
/// then its elements) and a string three times. `scan` has already held the element to
/// `MAX_DEPTH` levels; this budget admits that much whatever the innermost value.
const RMPV_DEPTH_BUDGET: usize = 2 * MAX_DEPTH + 3;

fn from_ref(v: &ValueRef<'_>) -> Result<Value, DecodeError> {
    Ok(match v {
        ValueRef::Nil => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(*b),
        ValueRef::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::UInt(u),
            (None, Some(i)) => Value::Int(i),
            _ => return Err(DecodeError::malformed(NAME, "integer out of range")),
        },
        ValueRef::F32(f) => Value::Float(f64::from(*f)),
        ValueRef::F64(f) => Value::Float(*f),
        ValueRef::String(s) => match s.as_str() {
            Some(s) => Value::Str(s.to_owned()),
            None => return Err(DecodeError::malformed(NAME, "string is not valid UTF-8")),
        },
        ValueRef::Binary(b) => Value::Bytes(b.to_vec()),
        ValueRef::Array(items) => Value::List(items.iter().map(from_ref).collect::<Result<_, _>>()?),
        ValueRef::Map(entries) => {
            let mut d = Dict::new();
            for (k, v) in entries {
                let key = match k {
                    ValueRef::String(s) => s.as_str().map(str::to_owned),
                    _ => None,
                };
                let key = key.ok_or_else(|| DecodeError::malformed(NAME, "dict key is not a string"))?;
                d.insert(key, from_ref(v)?);
            }
            Value::Dict(d)
        }
        ValueRef::Ext(..) => return Err(DecodeError::malformed(NAME, "extension types are not supported")),
    })
}

pub fn write_array_len(len: usize, out: &mut Vec<u8>) {
    // Writes into a Vec cannot fail.
    let _ = rmp::encode::write_array_len(out, len as u32);
}

pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    // rmp's writers only fail on I/O errors, and a Vec never fails.
    match v {
        Value::Null => {
            let _ = rmp::encode::write_nil(out);
        }
        Value::Bool(b) => {
            let _ = rmp::encode::write_bool(out, *b);
        }
        Value::Int(i) => {
            let _ = rmp::encode::write_sint(out, *i);
        }
        Value::UInt(u) => {
            let _ = rmp::encode::write_uint(out, *u);
        }
        Value::Float(f) => {
            let _ = rmp::encode::write_f64(out, *f);
        }
        Value::Str(s) => {
            let _ = rmp::encode::write_str(out, s);
        }
        Value::Bytes(b) => {
            let _ = rmp::encode::write_bin(out, b);
        }
        Value::List(l) => {
            write_array_len(l.len(), out);
            for item in l {
                encode_value(item, out);
            }
        }
        Value::Dict(d) => {
            let _ = rmp::encode::write_map_len(out, d.len() as u32);
            for (k, item) in d {
                let _ = rmp::encode::write_str(out, k);
                encode_value(item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_kind() {
        let v = Value::List(vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-300),
            Value::UInt(u64::MAX),
            Value::Float(0.25),
            Value::Str("héllo".into()),
            Value::Bytes(vec![0, 255]),
            Value::Dict(super::super::value::dict([("k", Value::UInt(1))])),
        ]);
        let mut out = Vec::new();
        encode_value(&v, &mut out);
        assert_eq!(decode_value(&out).unwrap(), v);
    }

    #[test]
    fn split_rejects_lying_lengths_and_trailing_bytes() {
        assert!(split(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(split(&[0x91, 0x01, 0x02]).is_err());
        assert_eq!(split(&[0x01]), Err(DecodeError::NotAnArray));
    }

    #[test]
    fn deep_nesting_ends_the_split_at_that_element() {
        // [1, [[[...1000 levels...]]]]: the first element is read, the second is too deep.
        let mut frame = vec![0x92, 0x01];
        frame.extend(std::iter::repeat_n(0x91, 1000));
        frame.push(0x01);
        let first = 1..2;
        assert_eq!(split(&frame), Ok((vec![first], Some(PayloadError::TooDeep(MAX_DEPTH)))));
    }

    #[test]
    fn scan_finds_the_end_of_every_kind_of_item() {
        // bin8, ext8 inside an array is refused, str8, uint64, float32, map16.
        assert_eq!(scan(&[0xc4, 0x02, 0xaa, 0xbb, 0xff]), Ok(4));
        assert_eq!(scan(&[0xd9, 0x01, b'x']), Ok(3));
        assert_eq!(scan(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 1]), Ok(9));
        assert_eq!(scan(&[0xca, 0, 0, 0, 0]), Ok(5));
        assert_eq!(scan(&[0xde, 0x00, 0x01, 0xa1, b'k', 0xc0]), Ok(6));
        assert_eq!(
            scan(&[0x91, 0xc7, 0x01, 0x05, 0x00]),
            Err(DecodeError::Invalid(PayloadError::Unrepresentable("extension types are not supported")))
        );
        assert_eq!(scan(&[0x81, 0x01, 0x02]), Err(DecodeError::Invalid(PayloadError::Unrepresentable("a dict key is not a string"))));
        assert_eq!(scan(&[0xd9, 0x05, b'x']), Err(DecodeError::malformed(NAME, "message ends inside a value")));
        assert_eq!(scan(&[0xc1]), Err(DecodeError::malformed(NAME, "reserved marker 0xc1")));
        // A NUL-leading string is fine as a key, not as a value.
        assert_eq!(scan(&[0x81, 0xa1, 0x00, 0x01]), Ok(4));
        assert_eq!(
            scan(&[0x91, 0xa1, 0x00]),
            Err(DecodeError::Invalid(PayloadError::Unrepresentable("a string starts with U+0000, which JSON reads as binary")))
        );
    }
}
