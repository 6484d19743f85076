//! Application payloads (Arguments and ArgumentsKw) kept as the encoded bytes they
//! arrived in. They are only decoded when a peer with another serializer must receive
//! them, and then once per serializer, not once per recipient.

use bytes::Bytes;

use super::error::DecodeError;
use super::serializer::Serializer;
use super::value::Value;

/// One encoded element (a list or a dict) and the serializer it is encoded in.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    serializer: Serializer,
    bytes: Bytes,
}

impl Payload {
    /// Wraps bytes already known to hold exactly one element that `split` accepts.
    pub fn from_encoded(serializer: Serializer, bytes: Bytes) -> Payload {
        Payload { serializer, bytes }
    }

    pub fn from_value(serializer: Serializer, value: &Value) -> Payload {
        let mut out = Vec::new();
        serializer.encode_value(value, &mut out);
        Payload { serializer, bytes: Bytes::from(out) }
    }

    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The payload decoded. Payloads of received messages were checked by the split
    /// that found them, so they are not checked again.
    pub fn to_value(&self) -> Result<Value, DecodeError> {
        self.serializer.decode_checked(&self.bytes)
    }

    /// Appends the payload encoded in `target`: a byte copy when the serializers agree,
    /// a transcode through `Value` otherwise.
    pub fn write_to(&self, target: Serializer, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        if target == self.serializer {
            out.extend_from_slice(&self.bytes);
        } else {
            target.encode_value(&self.to_value()?, out);
        }
        Ok(())
    }
}
