//! CBOR: header split and payload validation in one allocation-free pass (`scan`),
//! decode into `Value` (minicbor) with a depth limit, and definite-length encoding.

use std::ops::Range;

use minicbor::data::Type;
use minicbor::decode::Decoder;
use minicbor::encode::Encoder;

use super::elements::Elements;
use super::error::{DecodeError, PayloadError};
use super::value::{Dict, Value, MAX_DEPTH};

const NAME: &str = "cbor";

fn malformed(e: impl ToString) -> DecodeError {
    DecodeError::malformed(NAME, e)
}

fn unrepresentable(what: &'static str) -> DecodeError {
    DecodeError::Invalid(PayloadError::Unrepresentable(what))
}

const BREAK: u8 = 0xff;

/// Byte ranges of the top-level elements. Stops at the first element that is well-formed
/// but invalid (too deep, not representable): its error comes with the ranges before it,
/// so the message's header can still be read and the message answered.
pub fn split(frame: &[u8]) -> Result<(Vec<Range<usize>>, Option<PayloadError>), DecodeError> {
    let (count, pos) = match frame.first() {
        Some(b) if b >> 5 == 4 => match head(frame, 0)? {
            (Arg::Len(n), end) => (Some(n), end),
            (Arg::Indefinite, end) => (None, end),
        },
        _ => return Err(DecodeError::NotAnArray),
    };
    if count.is_some_and(|n| n > frame.len() as u64) {
        return Err(malformed("array length exceeds the message"));
    }
    let mut elements = Elements::starting_at(pos, 8);
    loop {
        match count {
            Some(n) if elements.ranges.len() as u64 == n => break,
            None if frame.get(elements.pos) == Some(&BREAK) => {
                elements.pos += 1;
                break;
            }
            _ => {}
        }
        if let Some(problem) = elements.scan_next(frame, scan)? {
            return Ok((elements.ranges, Some(problem)));
        }
    }
    elements.finish(frame, NAME)
}

/// The argument of an initial byte: a number (length, value, tag) or indefinite length.
#[derive(Clone, Copy)]
enum Arg {
    Len(u64),
    Indefinite,
}

/// Decodes the initial byte at `pos` and its argument; returns the argument and where
/// the head ends.
fn head(b: &[u8], pos: usize) -> Result<(Arg, usize), DecodeError> {
    let truncated = || malformed("message ends inside a value");
    let first = *b.get(pos).ok_or_else(truncated)?;
    let info = first & 0x1f;
    let n = match info {
        0..=23 => return Ok((Arg::Len(u64::from(info)), pos + 1)),
        24..=27 => 1usize << (info - 24),
        31 => return Ok((Arg::Indefinite, pos + 1)),
        _ => return Err(malformed(format!("reserved additional information {info}"))),
    };
    let field = b.get(pos + 1..pos + 1 + n).ok_or_else(truncated)?;
    Ok((Arg::Len(field.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))), pos + 1 + n))
}

/// One open array, map or tag while scanning. Small, because a scan sets up a stack of
/// `MAX_DEPTH` of them.
#[derive(Clone, Copy, Default)]
struct Open {
    /// Items still to read (a map's keys and values both count), never more than the
    /// input's length, which is checked; `INDEFINITE`: until a break.
    remaining: u32,
    is_map: bool,
    /// An odd number of items was read, for the key/value parity of indefinite maps.
    odd: bool,
}

const INDEFINITE: u32 = u32::MAX;

impl Open {
    fn next_is_key(&self) -> bool {
        self.is_map && if self.remaining == INDEFINITE { !self.odd } else { self.remaining.is_multiple_of(2) }
    }
}

/// Reads one element at the start of `bytes` without decoding it and returns its length.
/// Refuses what `decode_value` would refuse or another serializer could not carry:
/// nesting deeper than `MAX_DEPTH` (a tag counts as a level), text that is not UTF-8,
/// dict keys that are not text, integers below -2^63, simple values, and strings
/// starting with U+0000 (JSON's binary marker). Iterative, with a fixed stack: no
/// allocation and no recursion, whatever the input.
pub fn scan(b: &[u8]) -> Result<usize, DecodeError> {
    // Most elements of a header are scalars: they need no stack.
    match item(b, 0, false)? {
        (end, Some(outer)) if outer.remaining != 0 => scan_nested(b, end, outer),
        (end, _) => Ok(end),
    }
}

/// The rest of an element whose outermost container `outer` has its items from `pos`.
fn scan_nested(b: &[u8], mut pos: usize, outer: Open) -> Result<usize, DecodeError> {
    let mut stack = [Open::default(); MAX_DEPTH];
    stack[0] = outer;
    let mut depth = 1;
    loop {
        let top = &mut stack[depth - 1];
        if top.remaining == INDEFINITE && b.get(pos) == Some(&BREAK) {
            if top.is_map && top.odd {
                return Err(malformed("a map key without a value"));
            }
            pos += 1;
            depth -= 1;
        } else {
            let is_key = top.next_is_key();
            top.odd = !top.odd;
            if top.remaining != INDEFINITE {
                top.remaining -= 1;
            }
            let (end, opened) = item(b, pos, is_key)?;
            pos = end;
            if let Some(inner) = opened {
                if depth == MAX_DEPTH {
                    return Err(DecodeError::Invalid(PayloadError::TooDeep(MAX_DEPTH)));
                }
                if inner.remaining != 0 {
                    stack[depth] = inner;
                    depth += 1;
                }
            }
        }
        while depth > 0 && stack[depth - 1].remaining == 0 {
            depth -= 1;
        }
        if depth == 0 {
            return Ok(pos);
        }
    }
}

/// Checks the item at `pos` where it stands (a dict key or not): returns where it ends
/// (for a container or tag, where its head ends) and the container it opens.
fn item(b: &[u8], pos: usize, is_key: bool) -> Result<(usize, Option<Open>), DecodeError> {
    let initial = *b.get(pos).ok_or_else(|| malformed("message ends inside a value"))?;
    let major = initial >> 5;
    if is_key && major != 3 {
        return Err(unrepresentable("a dict key is not a string"));
    }
    let (arg, end) = head(b, pos)?;
    let opened = match (major, arg) {
        (0 | 1 | 6, Arg::Indefinite) => return Err(malformed("indefinite length on a number or a tag")),
        (0, _) => None,
        (1, Arg::Len(n)) => {
            if n > i64::MAX as u64 {
                return Err(unrepresentable("an integer is below -2^63"));
            }
            None
        }
        (2 | 3, _) => return Ok((string(b, end, major, arg, !is_key)?, None)),
        (6, _) => Some(Open { remaining: 1, is_map: false, odd: false }),
        (4 | 5, Arg::Indefinite) => Some(Open { remaining: INDEFINITE, is_map: major == 5, odd: false }),
        (4 | 5, Arg::Len(n)) => {
            let items = if major == 5 { n.saturating_mul(2) } else { n };
            // Each item takes at least one byte: a count beyond the input is a lie.
            if items > (b.len() - end) as u64 {
                return Err(malformed("container length exceeds the message"));
            }
            Some(Open { remaining: items as u32, is_map: major == 5, odd: false })
        }
        (7, Arg::Len(_)) => {
            simple(initial)?;
            None
        }
        (7, Arg::Indefinite) => return Err(malformed("unexpected break")),
        _ => return Err(malformed("unknown major type")),
    };
    Ok((end, opened))
}

/// Checks a byte (major 2) or text (major 3) string whose head ended at `pos`; returns
/// where it ends. Text must be UTF-8 (each chunk of an indefinite string on its own);
/// a text value must not start with U+0000.
fn string(b: &[u8], pos: usize, major: u8, arg: Arg, is_value: bool) -> Result<usize, DecodeError> {
    let chunk = |start: usize, n: u64| -> Result<(usize, &[u8]), DecodeError> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| malformed("message ends inside a string"))?;
        Ok((end, &b[start..end]))
    };
    let mut first = true;
    let mut check = |bytes: &[u8]| -> Result<(), DecodeError> {
        if major == 3 {
            let s = std::str::from_utf8(bytes).map_err(|_| unrepresentable("a string is not valid UTF-8"))?;
            if is_value && first && s.starts_with('\0') {
                return Err(unrepresentable("a string starts with U+0000, which JSON reads as binary"));
            }
            first &= s.is_empty();
        }
        Ok(())
    };
    match arg {
        Arg::Len(n) => {
            let (end, bytes) = chunk(pos, n)?;
            check(bytes)?;
            Ok(end)
        }
        Arg::Indefinite => {
            let mut pos = pos;
            loop {
                if b.get(pos) == Some(&BREAK) {
                    return Ok(pos + 1);
                }
                if b.get(pos).map(|x| x >> 5) != Some(major) {
                    return Err(malformed("a chunk of an indefinite string has another type"));
                }
                let Arg::Len(n) = head(b, pos)?.0 else {
                    return Err(malformed("a chunk of an indefinite string is indefinite"));
                };
                let (end, bytes) = chunk(head(b, pos)?.1, n)?;
                check(bytes)?;
                pos = end;
            }
        }
    }
}

/// Checks a major-7 initial byte: false, true, null, undefined and floats are fine;
/// simple values are not.
fn simple(initial: u8) -> Result<(), DecodeError> {
    match initial & 0x1f {
        20..=23 | 25..=27 => Ok(()),
        _ => Err(unrepresentable("CBOR simple values are not supported")),
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
    let mut d = Decoder::new(bytes);
    let v = read(&mut d, 0)?;
    if d.position() != bytes.len() {
        return Err(malformed("trailing bytes after value"));
    }
    Ok(v)
}

fn read(d: &mut Decoder<'_>, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::Invalid(PayloadError::TooDeep(MAX_DEPTH)));
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
        Type::F16 => {
            // minicbor reads half floats only with its `half` feature; ten lines here
            // spare the dependency.
            let at = d.position();
            let bits = d.input().get(at + 1..at + 3).ok_or_else(|| malformed("message ends inside a float"))?;
            d.set_position(at + 3);
            Value::Float(f16_to_f64(u16::from_be_bytes([bits[0], bits[1]])))
        }
        Type::F32 | Type::F64 => Value::Float(d.f64().map_err(malformed)?),
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
                // Keys are plain text, not tagged text (`scan` refuses anything else).
                let key = match d.datatype().map_err(malformed)? {
                    Type::String | Type::StringIndef => match read(d, depth + 1)? {
                        Value::Str(s) => s,
                        _ => return Err(malformed("dict key is not a string")),
                    },
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

/// IEEE 754 half precision to double: sign, 5-bit exponent (bias 15), 10-bit fraction.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
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
        assert_eq!(split(&frame).unwrap(), (vec![1..2, 2..7], None));
        assert_eq!(
            decode_value(&frame).unwrap(),
            Value::List(vec![Value::UInt(1), Value::Dict(super::super::value::dict([("a", Value::UInt(2))]))])
        );
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut frame = vec![0x81; 200];
        frame.push(0x01);
        assert_eq!(decode_value(&frame), Err(DecodeError::Invalid(PayloadError::TooDeep(MAX_DEPTH))));
    }
}
