//! MessagePack: header split by walking each element with rmpv's borrowed reader (no
//! allocation for the payload), decode into `Value`, and compact encoding with rmp.

use std::ops::Range;

use rmpv::ValueRef;

use super::error::DecodeError;
use super::value::{Dict, Value, MAX_DEPTH};

const NAME: &str = "msgpack";

pub fn split(frame: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    let mut cur = frame;
    let len = rmp::decode::read_array_len(&mut cur).map_err(|_| DecodeError::NotAnArray)? as usize;
    // Each element takes at least one byte: a length beyond the frame is a lie.
    if len > cur.len() {
        return Err(DecodeError::malformed(NAME, "array length exceeds the message"));
    }
    let mut ranges = Vec::with_capacity(len);
    for _ in 0..len {
        let start = frame.len() - cur.len();
        read_value_ref(&mut cur)?;
        ranges.push(start..frame.len() - cur.len());
    }
    if !cur.is_empty() {
        return Err(DecodeError::malformed(NAME, "trailing bytes after the message"));
    }
    Ok(ranges)
}

pub fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut cur = bytes;
    let v = read_value_ref(&mut cur)?;
    if !cur.is_empty() {
        return Err(DecodeError::malformed(NAME, "trailing bytes after value"));
    }
    from_ref(&v)
}

/// rmpv's depth budget is not a nesting level: it charges a list or dict twice (the value,
/// then its elements) and a string three times. This budget admits `MAX_DEPTH` levels of
/// lists and dicts whatever the innermost value, as the CBOR decoder does (a 65th level
/// gets through only when it holds no string).
const RMPV_DEPTH_BUDGET: usize = 2 * MAX_DEPTH + 3;

fn read_value_ref<'a>(cur: &mut &'a [u8]) -> Result<ValueRef<'a>, DecodeError> {
    rmpv::decode::read_value_ref_with_max_depth(cur, RMPV_DEPTH_BUDGET).map_err(|e| match e {
        rmpv::decode::Error::DepthLimitExceeded => DecodeError::TooDeep(MAX_DEPTH),
        e => DecodeError::malformed(NAME, e),
    })
}

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
    fn deep_nesting_is_rejected() {
        let mut frame = vec![0x91; 1000];
        frame.push(0x01);
        assert!(split(&frame).is_err());
    }
}
