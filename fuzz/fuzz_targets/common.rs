//! The property every decoder target checks.

use bytes::Bytes;
use switchyard::wamp::{Message, Serializer};

/// `Message::decode` never panics on arbitrary bytes. A message that decodes is one the
/// router can carry anywhere: it encodes into every serializer, and every peer can decode
/// what it receives. Its encoding in its own serializer decodes to an equal message,
/// which encodes to the same bytes again.
pub fn check(ser: Serializer, data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let m = match Message::decode(ser, &frame) {
        Ok(m) => m,
        Err(_) => return,
    };
    for to in Serializer::ALL {
        let other = m.encode(to).unwrap_or_else(|e| panic!("{ser:?} -> {to:?}: encoding {m:?}: {e}"));
        Message::decode(to, &other).unwrap_or_else(|e| panic!("{ser:?} -> {to:?}: {e} decoding {other:?} of {m:?}"));
    }
    let encoded = m.encode(ser).unwrap_or_else(|e| panic!("{ser:?}: re-encoding {m:?}: {e}"));
    let back = Message::decode(ser, &encoded)
        .unwrap_or_else(|e| panic!("{ser:?}: {e} decoding our encoding {encoded:?} of {m:?}"));
    assert!(same(&back, &m), "{ser:?}: round trip changed the message:\n  {m:?}\n  {back:?}");
    assert_eq!(back.encode(ser).ok(), Some(encoded), "{ser:?}: encoding is not stable");
}

/// Equality, except that a NaN equals a NaN (a float in a header may be one).
fn same(a: &Message, b: &Message) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}
