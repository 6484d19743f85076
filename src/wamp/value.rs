//! The dynamic value model shared by the three serializers.
//!
//! Message headers (options, details, URIs, ids) and payloads that must be transcoded
//! between serializers pass through `Value`. Payloads that stay in their serializer are
//! never decoded into it (see `payload.rs`).
//!
//! Binary data follows the spec's conversion for JSON: a byte string travels in JSON as
//! a string whose first character is `\u0000` followed by the standard base64 encoding.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum nesting of lists and dicts accepted from a peer. Deeper input is a protocol
/// violation; it protects the recursive decoders' stack.
pub const MAX_DEPTH: usize = 64;

pub type Dict = BTreeMap<String, Value>;

/// A WAMP value. Non-negative integers are always `UInt`, negative ones `Int`, so equal
/// numbers compare equal whatever serializer they came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Dict),
}

impl Value {
    pub fn int(i: i64) -> Value {
        if i >= 0 {
            Value::UInt(i as u64)
        } else {
            Value::Int(i)
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::UInt(u) => Some(*u),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Name of the value's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            // `Int` only ever holds negative numbers (see the type's doc).
            Value::Int(_) => "negative integer",
            Value::UInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "binary",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<u64> for Value {
    fn from(u: u64) -> Value {
        Value::UInt(u)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<Dict> for Value {
    fn from(d: Dict) -> Value {
        Value::Dict(d)
    }
}
impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

/// Builds a `Dict` from key/value pairs: `dict([("a", 1u64.into())])`.
pub fn dict<const N: usize>(pairs: [(&str, Value); N]) -> Dict {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

// ---- JSON (serde) ----------------------------------------------------------------------

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(st) => s.serialize_str(st),
            Value::Bytes(b) => s.serialize_str(&json_binary_string(b)),
            Value::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Dict(d) => {
                let mut map = s.serialize_map(Some(d.len()))?;
                for (k, v) in d {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// The JSON form of binary data: `"\u0000" + base64`.
pub fn json_binary_string(b: &[u8]) -> String {
    let mut out = String::with_capacity(1 + b.len().div_ceil(3) * 4);
    out.push('\0');
    base64::engine::general_purpose::STANDARD.encode_string(b, &mut out);
    out
}

/// A JSON string starting with NUL is binary; its tail must be valid base64.
fn json_string_value<E: de::Error>(s: &str) -> Result<Value, E> {
    match s.strip_prefix('\0') {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Value::Bytes)
            .map_err(|e| E::custom(format!("invalid base64 in binary string: {e}"))),
        None => Ok(Value::Str(s.to_owned())),
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a WAMP value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::UInt(u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        json_string_value(s)
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        if s.starts_with('\0') {
            json_string_value(&s)
        } else {
            Ok(Value::Str(s))
        }
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(b.to_vec()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Dict::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            out.insert(k, v);
        }
        Ok(Value::Dict(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_binary_conversion_round_trips() {
        let v = Value::Bytes(vec![0, 1, 2, 255]);
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, "\"\\u0000AAEC/w==\"");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn json_bad_base64_is_an_error() {
        assert!(serde_json::from_str::<Value>("\"\\u0000!!\"").is_err());
    }

    #[test]
    fn integers_normalise() {
        let v: Value = serde_json::from_str("[1, -1, 18446744073709551615, 1.5]").unwrap();
        assert_eq!(
            v,
            Value::List(vec![Value::UInt(1), Value::Int(-1), Value::UInt(u64::MAX), Value::Float(1.5)])
        );
    }
}
