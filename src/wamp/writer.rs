//! Writing one element (lists, dicts, scalars) straight into a serializer's bytes, with
//! received payloads spliced in as they are. For long results the router builds itself
//! (`wamp.subscription.get_events` returns up to thousands of events): building them as
//! a `Value` tree first costs a map and a few strings per event, and decoding each
//! stored payload only to encode it again in the same serializer.
//!
//! The writer trusts its caller for the shape: a dict's length is the number of
//! `key`-value pairs that follow, a list's the number of values. Lengths are needed up
//! front because MessagePack and CBOR write them before the contents.

use super::error::DecodeError;
use super::payload::Payload;
use super::serializer::Serializer;
use super::value::Value;

/// What a JSON writer must know of each open container to place its commas.
#[derive(Clone, Copy)]
struct Open {
    dict: bool,
    first: bool,
}

pub struct Writer {
    ser: Serializer,
    out: Vec<u8>,
    /// Open containers; used by JSON only (the others carry lengths, not separators).
    open: Vec<Open>,
}

impl Writer {
    pub fn new(ser: Serializer, capacity: usize) -> Writer {
        Writer { ser, out: Vec::with_capacity(capacity), open: Vec::new() }
    }

    /// Before a value: a comma between list elements (JSON). A dict's values follow
    /// their key, which placed the comma.
    fn value_slot(&mut self) {
        if self.ser != Serializer::Json {
            return;
        }
        if let Some(top) = self.open.last_mut() {
            if !top.dict {
                if !top.first {
                    self.out.push(b',');
                }
                top.first = false;
            }
        }
    }

    /// Opens a list of `len` elements.
    pub fn list(&mut self, len: usize) {
        self.value_slot();
        match self.ser {
            Serializer::Json => self.out.push(b'['),
            Serializer::MsgPack => super::msgpack::write_array_len(len, &mut self.out),
            Serializer::Cbor => super::cbor::write_array_len(len, &mut self.out),
        }
        self.open.push(Open { dict: false, first: true });
    }

    /// Opens a dict of `len` entries.
    pub fn dict(&mut self, len: usize) {
        self.value_slot();
        match self.ser {
            Serializer::Json => self.out.push(b'{'),
            // Writes into a Vec cannot fail; no dict here comes near 2^32 entries.
            Serializer::MsgPack => {
                let _ = rmp::encode::write_map_len(&mut self.out, len as u32);
            }
            Serializer::Cbor => {
                let _ = minicbor::Encoder::new(&mut self.out).map(len as u64);
            }
        }
        self.open.push(Open { dict: true, first: true });
    }

    /// Closes the innermost list or dict.
    pub fn end(&mut self) {
        if let Some(top) = self.open.pop() {
            if self.ser == Serializer::Json {
                self.out.push(if top.dict { b'}' } else { b']' });
            }
        }
    }

    /// A dict's key; its value comes next.
    pub fn key(&mut self, k: &str) {
        if let Some(top) = self.open.last_mut() {
            if top.dict && !top.first && self.ser == Serializer::Json {
                self.out.push(b',');
            }
            top.first = false;
        }
        self.raw_str(k);
        if self.ser == Serializer::Json {
            self.out.push(b':');
        }
    }

    pub fn uint(&mut self, v: u64) {
        self.value_slot();
        match self.ser {
            Serializer::Json => {
                let _ = serde_json::to_writer(&mut self.out, &v);
            }
            Serializer::MsgPack => {
                let _ = rmp::encode::write_uint(&mut self.out, v);
            }
            Serializer::Cbor => {
                let _ = minicbor::Encoder::new(&mut self.out).u64(v);
            }
        }
    }

    pub fn str(&mut self, s: &str) {
        self.value_slot();
        self.raw_str(s);
    }

    fn raw_str(&mut self, s: &str) {
        match self.ser {
            // Serializing a str into a Vec cannot fail.
            Serializer::Json => {
                let _ = serde_json::to_writer(&mut self.out, s);
            }
            Serializer::MsgPack => {
                let _ = rmp::encode::write_str(&mut self.out, s);
            }
            Serializer::Cbor => {
                let _ = minicbor::Encoder::new(&mut self.out).str(s);
            }
        }
    }

    pub fn value(&mut self, v: &Value) {
        self.value_slot();
        self.ser.encode_value(v, &mut self.out);
    }

    /// A received payload: its bytes when it is in this serializer, else transcoded.
    pub fn payload(&mut self, p: &Payload) -> Result<(), DecodeError> {
        self.value_slot();
        p.write_to(self.ser, &mut self.out)
    }

    /// The bytes written, once every container is closed.
    pub fn finish(self) -> Vec<u8> {
        debug_assert!(self.open.is_empty(), "a list or dict left open");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::dict;
    use bytes::Bytes;

    /// What the writer writes must decode to the `Value` that describes it, in every
    /// serializer, with payloads from every serializer spliced or transcoded.
    #[test]
    fn writes_what_a_value_tree_would_decode_to() {
        let args = Value::List(vec![Value::Str("line \"1\"\n".into()), Value::Int(-3), Value::Float(0.5), Value::Null]);
        let kwargs = Value::Dict(dict([("ok", Value::Bool(true)), ("b", Value::Bytes(vec![0, 255]))]));
        for from in [Serializer::Json, Serializer::MsgPack, Serializer::Cbor] {
            let p_args = Payload::from_value(from, &args);
            let p_kwargs = Payload::from_value(from, &kwargs);
            for to in [Serializer::Json, Serializer::MsgPack, Serializer::Cbor] {
                let mut w = Writer::new(to, 64);
                w.list(3);
                for i in 0..2u64 {
                    w.dict(4);
                    w.key("publication");
                    w.uint(u64::MAX - i);
                    w.key("topic");
                    w.str("containers.c1.logs");
                    w.key("args");
                    w.payload(&p_args).unwrap();
                    w.key("kwargs");
                    w.payload(&p_kwargs).unwrap();
                    w.end();
                }
                w.list(2);
                w.value(&Value::Dict(dict([("x", Value::UInt(1))])));
                w.list(0);
                w.end();
                w.end();
                w.end();
                let bytes = w.finish();
                let event = |i: u64| {
                    Value::Dict(dict([
                        ("publication", Value::UInt(u64::MAX - i)),
                        ("topic", Value::Str("containers.c1.logs".into())),
                        ("args", args.clone()),
                        ("kwargs", kwargs.clone()),
                    ]))
                };
                let tail = Value::List(vec![Value::Dict(dict([("x", Value::UInt(1))])), Value::List(Vec::new())]);
                let want = Value::List(vec![event(0), event(1), tail]);
                assert_eq!(to.decode_value(&bytes).unwrap(), want, "{from:?} payloads written as {to:?}");
                // The bytes pass the same checks as a received element.
                let _ = Payload::from_encoded(to, Bytes::from(bytes)).to_value().unwrap();
            }
        }
    }

    #[test]
    fn json_is_compact_and_payloads_are_copied_as_received() {
        let received = Payload::from_encoded(Serializer::Json, Bytes::from_static(b"[1, 2.50, \"\\u0041\"]"));
        let mut w = Writer::new(Serializer::Json, 16);
        w.dict(2);
        w.key("a");
        w.list(0);
        w.end();
        w.key("args");
        w.payload(&received).unwrap();
        w.end();
        assert_eq!(w.finish(), b"{\"a\":[],\"args\":[1, 2.50, \"\\u0041\"]}");
    }
}
