//! CBOR: header split with minicbor's iterative `skip` and byte positions (zero-copy
//! ranges, safe against deep nesting), decode into `Value` with a depth limit, and
//! definite-length encoding.

use std::ops::Range;

use minicbor::data::Type;
use minicbor::decode::Decoder;
use minicbor::encode::Encoder;

use super::error::DecodeError;
use super::value::{Dict, Value, MAX_DEPTH};

const NAME: &str = "cbor";

fn malformed(e: impl ToString) -> DecodeError {
    DecodeError::malformed(NAME, e)
}

pub fn split(frame: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    let mut d = Decoder::new(frame);
    let len = match d.datatype().map_err(|_| DecodeError::NotAnArray)? {
        Type::Array | Type::ArrayIndef => d.array().map_err(malformed)?,
        _ => return Err(DecodeError::NotAnArray),
    };
    let mut ranges = Vec::new();
    match len {
        Some(n) => {
            if n as usize > frame.len() {
                return Err(malformed("array length exceeds the message"));
            }
            for _ in 0..n {
                let start = d.position();
                d.skip().map_err(malformed)?;
                ranges.push(start..d.position());
            }
        }
        None => loop {
            if d.datatype().map_err(malformed)? == Type::Break {
                d.skip().map_err(malformed)?;
                break;
            }
            let start = d.position();
            d.skip().map_err(malformed)?;
            ranges.push(start..d.position());
        },
    }
    if d.position() != frame.len() {
        return Err(malformed("trailing bytes after the message"));
    }
    Ok(ranges)
}

pub fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder::new(bytes);
    let v = read(&mut d, 0)?;
    if d.position() != bytes.len() {
        return Err(malformed("trailing bytes after value"));
    }
    Ok(v)
}

fn read(d: &mut Decoder<'_>, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep(MAX_DEPTH));
    }
    let ty = d.datatype().map_err(malformed)?;
    Ok(match ty {
        Type::Null | Type::Undefined => {
            d.skip().map_err(malformed)?;
            Value::Null
        }
        Type::Bool => Value::Bool(d.bool().map_err(malformed)?),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Value::UInt(d.u64().map_err(malformed)?),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
            let i = d.int().map_err(malformed)?;
            match (u64::try_from(i), i64::try_from(i)) {
                (Ok(u), _) => Value::UInt(u),
                (_, Ok(i)) => Value::Int(i),
                _ => return Err(malformed("integer out of range")),
            }
        }
        Type::F16 | Type::F32 | Type::F64 => Value::Float(d.f64().map_err(malformed)?),
        Type::Bytes | Type::BytesIndef => {
            let mut out = Vec::new();
            for chunk in d.bytes_iter().map_err(malformed)? {
                out.extend_from_slice(chunk.map_err(malformed)?);
            }
            Value::Bytes(out)
        }
        Type::String | Type::StringIndef => {
            let mut out = String::new();
            for chunk in d.str_iter().map_err(malformed)? {
                out.push_str(chunk.map_err(malformed)?);
            }
            Value::Str(out)
        }
        Type::Array | Type::ArrayIndef => {
            let len = d.array().map_err(malformed)?;
            let mut items = Vec::new();
            for_each_item(d, len, |d| {
                items.push(read(d, depth + 1)?);
                Ok(())
            })?;
            Value::List(items)
        }
        Type::Map | Type::MapIndef => {
            let len = d.map().map_err(malformed)?;
            let mut map = Dict::new();
            for_each_item(d, len, |d| {
                let key = match read(d, depth + 1)? {
                    Value::Str(s) => s,
                    _ => return Err(malformed("dict key is not a string")),
                };
                map.insert(key, read(d, depth + 1)?);
                Ok(())
            })?;
            Value::Dict(map)
        }
        Type::Tag => {
            // Tags (dates, bignums, ...) carry no meaning in WAMP: keep the tagged value.
            d.tag().map_err(malformed)?;
            read(d, depth + 1)?
        }
        other => return Err(malformed(format!("unsupported data item {other}"))),
    })
}

/// Calls `f` once per element of a definite (`Some(n)`) or indefinite (`None`) container.
fn for_each_item<'b>(
    d: &mut Decoder<'b>,
    len: Option<u64>,
    mut f: impl FnMut(&mut Decoder<'b>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    match len {
        Some(n) => {
            if n as usize > d.input().len() {
                return Err(malformed("container length exceeds the message"));
            }
            for _ in 0..n {
                f(d)?;
            }
        }
        None => loop {
            if d.datatype().map_err(malformed)? == Type::Break {
                d.skip().map_err(malformed)?;
                break;
            }
            f(d)?;
        },
    }
    Ok(())
}

pub fn write_array_len(len: usize, out: &mut Vec<u8>) {
    // Encoding into a Vec cannot fail.
    let _ = Encoder::new(out).array(len as u64);
}

pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    let mut e = Encoder::new(&mut *out);
    let _ = match v {
        Value::Null => e.null().map(drop),
        Value::Bool(b) => e.bool(*b).map(drop),
        Value::Int(i) => e.i64(*i).map(drop),
        Value::UInt(u) => e.u64(*u).map(drop),
        Value::Float(f) => e.f64(*f).map(drop),
        Value::Str(s) => e.str(s).map(drop),
        Value::Bytes(b) => e.bytes(b).map(drop),
        Value::List(l) => {
            let _ = e.array(l.len() as u64);
            for item in l {
                encode_value(item, out);
            }
            Ok(())
        }
        Value::Dict(m) => {
            let _ = e.map(m.len() as u64);
            for (k, item) in m {
                let _ = Encoder::new(&mut *out).str(k);
                encode_value(item, out);
            }
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_kind() {
        let v = Value::List(vec![
            Value::Null,
            Value::Bool(false),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(-2.5),
            Value::Str("ü".into()),
            Value::Bytes(vec![1, 2, 3]),
            Value::Dict(super::super::value::dict([("x", Value::List(vec![]))])),
        ]);
        let mut out = Vec::new();
        encode_value(&v, &mut out);
        assert_eq!(decode_value(&out).unwrap(), v);
    }

    #[test]
    fn indefinite_lengths_are_read() {
        // [_ 1, {_ "a": 2}]
        let frame = [0x9f, 0x01, 0xbf, 0x61, b'a', 0x02, 0xff, 0xff];
        assert_eq!(split(&frame).unwrap(), vec![1..2, 2..7]);
        assert_eq!(
            decode_value(&frame).unwrap(),
            Value::List(vec![Value::UInt(1), Value::Dict(super::super::value::dict([("a", Value::UInt(2))]))])
        );
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut frame = vec![0x81; 200];
        frame.push(0x01);
        assert_eq!(decode_value(&frame), Err(DecodeError::TooDeep(MAX_DEPTH)));
    }
}
