//! The WAMP protocol itself: messages, the JSON/MessagePack/CBOR codecs, URIs and ids.
//! Pure: no I/O, no router state, so every part can be unit-tested and fuzzed alone.

pub mod cbor;
pub mod decode;
mod elements;
pub mod encode;
pub mod error;
pub mod ids;
pub mod json;
pub mod message;
pub mod msgpack;
pub mod payload;
pub mod ppt;
pub mod serializer;
pub mod uri;
pub mod value;
pub mod writer;

pub use error::DecodeError;
pub use message::{Args, Message};
pub use payload::Payload;
pub use serializer::Serializer;
pub use value::{dict, Dict, Value};
