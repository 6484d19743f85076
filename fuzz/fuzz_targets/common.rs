//! The property every decoder target checks.

use bytes::Bytes;
use switchyard::wamp::{Message, Serializer};

/// `Message::decode` never panics on arbitrary bytes. A message that decodes encodes into
/// every serializer or returns an error (a payload that cannot be transcoded), never
/// panics; its encoding in its own serializer cannot fail (payloads are copied) and
/// decodes to an equal message, which encodes to the same bytes again.
pub fn check(ser: Serializer, data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let Ok(m) = Message::decode(ser, &frame) else { return };
    for to in Serializer::ALL {
        if to == ser {
            continue;
        }
        if let Ok(other) = m.encode(to) {
            // What another serializer receives is not required to decode (a string that
            // starts with NUL reads as binary in JSON, for one), only not to panic.
            let _ = Message::decode(to, &other);
        }
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
