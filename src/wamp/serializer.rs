//! The three serializers and what the rest of the router needs from each: split a
//! message into its top-level elements without decoding them, decode one element into a
//! `Value`, encode a `Value`, and frame a message array.

use std::ops::Range;

use super::error::{DecodeError, PayloadError};
use super::value::Value;
use super::{cbor, json, msgpack};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    Json,
    MsgPack,
    Cbor,
}

impl Serializer {
    pub const ALL: [Serializer; 3] = [Serializer::Json, Serializer::MsgPack, Serializer::Cbor];

    /// WebSocket subprotocol name.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Serializer::Json => "wamp.2.json",
            Serializer::MsgPack => "wamp.2.msgpack",
            Serializer::Cbor => "wamp.2.cbor",
        }
    }

    pub fn from_subprotocol(p: &str) -> Option<Serializer> {
        Serializer::ALL.into_iter().find(|s| s.subprotocol() == p)
    }

    /// RawSocket handshake serializer id.
    pub fn rawsocket_id(self) -> u8 {
        match self {
            Serializer::Json => 1,
            Serializer::MsgPack => 2,
            Serializer::Cbor => 3,
        }
    }

    pub fn from_rawsocket_id(id: u8) -> Option<Serializer> {
        Serializer::ALL.into_iter().find(|s| s.rawsocket_id() == id)
    }

    /// JSON travels in WebSocket text frames, the others in binary frames.
    pub fn is_binary(self) -> bool {
        !matches!(self, Serializer::Json)
    }

    pub fn name(self) -> &'static str {
        match self {
            Serializer::Json => "json",
            Serializer::MsgPack => "msgpack",
            Serializer::Cbor => "cbor",
        }
    }

    /// Index in `[json, msgpack, cbor]`, for per-serializer caches.
    pub fn index(self) -> usize {
        match self {
            Serializer::Json => 0,
            Serializer::MsgPack => 1,
            Serializer::Cbor => 2,
        }
    }

    /// Byte ranges of the elements of the top-level array in `frame`. Each element is
    /// checked, not decoded: malformed bytes and trailing bytes are an error; a
    /// well-formed element that is too deep or that another serializer could not carry
    /// ends the split, and its problem is returned with the ranges of the elements
    /// before it (so the header of a message with a bad payload can still be read).
    pub fn split(self, frame: &[u8]) -> Result<(Vec<Range<usize>>, Option<PayloadError>), DecodeError> {
        match self {
            Serializer::Json => json::split(frame),
            Serializer::MsgPack => msgpack::split(frame),
            Serializer::Cbor => cbor::split(frame),
        }
    }

    /// Decodes exactly one complete element, checked as `split` checks elements.
    pub fn decode_value(self, bytes: &[u8]) -> Result<Value, DecodeError> {
        match self {
            Serializer::Json => json::decode_value(bytes),
            Serializer::MsgPack => msgpack::decode_value(bytes),
            Serializer::Cbor => cbor::decode_value(bytes),
        }
    }

    /// Decodes an element that `split` has checked already (a header field, a payload to
    /// transcode), without checking it again. On other bytes it still fails cleanly, as
    /// the decoders keep their own depth limits.
    pub(crate) fn decode_checked(self, bytes: &[u8]) -> Result<Value, DecodeError> {
        match self {
            Serializer::Json => json::decode_checked(bytes),
            Serializer::MsgPack => msgpack::decode_checked(bytes),
            Serializer::Cbor => cbor::decode_checked(bytes),
        }
    }

    pub fn encode_value(self, v: &Value, out: &mut Vec<u8>) {
        match self {
            Serializer::Json => json::encode_value(v, out),
            Serializer::MsgPack => msgpack::encode_value(v, out),
            Serializer::Cbor => cbor::encode_value(v, out),
        }
    }

    /// Opens an array of `len` elements.
    pub fn begin_array(self, len: usize, out: &mut Vec<u8>) {
        match self {
            Serializer::Json => out.push(b'['),
            Serializer::MsgPack => msgpack::write_array_len(len, out),
            Serializer::Cbor => cbor::write_array_len(len, out),
        }
    }

    /// Writes what separates element `index` from the one before it.
    pub fn separator(self, index: usize, out: &mut Vec<u8>) {
        if self == Serializer::Json && index > 0 {
            out.push(b',');
        }
    }

    pub fn end_array(self, out: &mut Vec<u8>) {
        if self == Serializer::Json {
            out.push(b']');
        }
    }

    /// True when the encoded element is a list (cheap: looks at the first byte).
    pub fn is_list(self, bytes: &[u8]) -> bool {
        match (self, bytes.first()) {
            (Serializer::Json, Some(b)) => *b == b'[',
            (Serializer::MsgPack, Some(b)) => matches!(b, 0x90..=0x9f | 0xdc | 0xdd),
            (Serializer::Cbor, Some(b)) => (0x80..=0x9f).contains(b),
            (_, None) => false,
        }
    }

    /// True when the encoded element is a dict (cheap: looks at the first byte).
    pub fn is_dict(self, bytes: &[u8]) -> bool {
        match (self, bytes.first()) {
            (Serializer::Json, Some(b)) => *b == b'{',
            (Serializer::MsgPack, Some(b)) => matches!(b, 0x80..=0x8f | 0xde | 0xdf),
            (Serializer::Cbor, Some(b)) => (0xa0..=0xbf).contains(b),
            (_, None) => false,
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::wamp::value::{Dict, MAX_DEPTH};
    use proptest::prelude::*;

    /// Any WAMP value. Strings never start with NUL (that is JSON's binary marker) and
    /// floats are finite (JSON has no NaN or infinity).
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (i64::MIN..0).prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
            "[^\u{0}][a-zé😀 ]{0,8}|".prop_map(Value::Str),
            prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                prop::collection::btree_map("[a-z_]{0,6}", inner, 0..6).prop_map(|m: Dict| Value::Dict(m)),
            ]
        })
    }

    /// `v` wrapped in `levels` one-element lists and dicts, alternately.
    fn nest(v: Value, levels: usize) -> Value {
        (0..levels).fold(v, |inner, i| {
            if i % 2 == 0 {
                Value::List(vec![inner])
            } else {
                Value::Dict([("k".to_owned(), inner)].into_iter().collect())
            }
        })
    }

    /// The plain model of nesting: a scalar is 0 levels, a list or dict one more than
    /// its deepest item.
    fn depth(v: &Value) -> usize {
        match v {
            Value::List(l) => 1 + l.iter().map(depth).max().unwrap_or(0),
            Value::Dict(d) => 1 + d.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    proptest! {
        /// Every serializer accepts exactly the values the model allows (at most
        /// `MAX_DEPTH` levels) and refuses the others with `TooDeep`.
        #[test]
        fn nesting_limit_matches_the_model(v in value(), levels in 0usize..72) {
            let v = nest(v, levels);
            for ser in Serializer::ALL {
                let mut out = Vec::new();
                ser.encode_value(&v, &mut out);
                let got = ser.decode_value(&out);
                if depth(&v) <= MAX_DEPTH {
                    prop_assert_eq!(got, Ok(v.clone()), "{:?}", ser);
                } else {
                    prop_assert_eq!(got, Err(DecodeError::Invalid(PayloadError::TooDeep(MAX_DEPTH))), "{:?}", ser);
                }
            }
        }

        /// What the scanners accept, the decoders decode: an encoding with one byte
        /// changed is refused by both or accepted by both, and never panics.
        #[test]
        fn scanners_and_decoders_agree_on_damaged_input(v in value(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            for ser in Serializer::ALL {
                let mut out = Vec::new();
                ser.encode_value(&v, &mut out);
                let i = at.index(out.len());
                out[i] = byte;
                let accepted = match ser {
                    Serializer::Json => serde_json::from_slice::<&serde_json::value::RawValue>(&out).is_ok()
                        && std::str::from_utf8(&out).is_ok()
                        && super::json::check(&out).is_ok(),
                    Serializer::MsgPack => super::msgpack::scan(&out) == Ok(out.len()),
                    Serializer::Cbor => super::cbor::scan(&out) == Ok(out.len()),
                };
                let decoded = ser.decode_value(&out);
                prop_assert_eq!(accepted, decoded.is_ok(), "{:?} {:?}: {:?}", ser, out, decoded);
            }
        }

        /// Every serializer round-trips every value, and transcoding through the other
        /// two gives the value back.
        #[test]
        fn every_serializer_round_trips(v in value()) {
            for ser in Serializer::ALL {
                let mut out = Vec::new();
                ser.encode_value(&v, &mut out);
                prop_assert_eq!(&ser.decode_value(&out).unwrap(), &v, "{:?}", ser);
            }
            let mut via = v.clone();
            for ser in [Serializer::Json, Serializer::MsgPack, Serializer::Cbor, Serializer::Json] {
                let mut out = Vec::new();
                ser.encode_value(&via, &mut out);
                via = ser.decode_value(&out).unwrap();
            }
            prop_assert_eq!(via, v);
        }
    }
}
