//! Header-only decoding: split the frame into elements, decode the header fields into
//! typed values, and keep Arguments/ArgumentsKw as byte ranges of the original frame.

use std::ops::Range;

use bytes::Bytes;

use super::error::{DecodeError, RefusedHeader};
use super::ids::MAX_ID;
use super::message::{code, Args, Message};
use super::payload::Payload;
use super::serializer::Serializer;
use super::value::{Dict, Value};

impl Message {
    /// Decodes one message. `frame` is shared, not copied: payloads are slices of it.
    ///
    /// A message whose Arguments or ArgumentsKw cannot be accepted (too deep, not
    /// representable in every serializer) is `DecodeError::Payload`, which carries the
    /// rest of the message so that the router can answer it with an ERROR; any other
    /// problem is a malformed message.
    pub fn decode(serializer: Serializer, frame: &Bytes) -> Result<Message, DecodeError> {
        let (ranges, invalid) = serializer.split(frame)?;
        let f = Fields { serializer, frame, ranges, message: "message" };
        if f.ranges.is_empty() {
            return Err(match invalid {
                Some(problem) => DecodeError::Header { message: "message", element: 0, problem },
                None => DecodeError::NotAnArray,
            });
        }
        let kind = match f.value(0)? {
            Value::UInt(k) => k,
            other => {
                return Err(DecodeError::Field {
                    message: "message",
                    field: "type",
                    expected: "a non-negative integer",
                    got: other.kind().to_owned(),
                })
            }
        };
        let f = Fields { message: Message::name_of(kind), ..f };
        let Some(problem) = invalid else { return f.message(kind) };
        // The split stopped at the invalid element: the ones before it are all there is.
        let element = f.ranges.len();
        let Some(first) = payload_start(kind).filter(|&first| element >= first) else {
            return Err(DecodeError::Header { message: f.message, element, problem });
        };
        let header = refused_header(&f.message(kind)?);
        let field = if element == first { "Arguments" } else { "ArgumentsKw" };
        Err(DecodeError::Payload { message: f.message, header, field, problem })
    }
}

fn refused_header(m: &Message) -> RefusedHeader {
    let (request, request_type, acknowledge) = match m {
        Message::Publish { request, options, .. } => {
            (*request, 0, options.get("acknowledge").and_then(Value::as_bool).unwrap_or(false))
        }
        Message::Error { request_type, request, .. } => (*request, *request_type, false),
        Message::Call { request, .. }
        | Message::Result { request, .. }
        | Message::Invocation { request, .. }
        | Message::Yield { request, .. } => (*request, 0, false),
        _ => (0, 0, false),
    };
    RefusedHeader { code: m.code(), request, request_type, acknowledge }
}

/// Index of Arguments in messages that carry a payload.
fn payload_start(kind: u64) -> Option<usize> {
    use code::*;
    match kind {
        PUBLISH | EVENT | CALL | INVOCATION => Some(4),
        RESULT | YIELD => Some(3),
        ERROR => Some(5),
        _ => None,
    }
}

impl Fields<'_> {
    /// The message of type `kind` made of these elements.
    fn message(&self, kind: u64) -> Result<Message, DecodeError> {
        let f = self;
        use code::*;
        Ok(match kind {
            HELLO => {
                f.arity(3, 3, "3")?;
                Message::Hello { realm: f.string(1, "Realm")?, details: f.dict(2, "Details")? }
            }
            WELCOME => {
                f.arity(3, 3, "3")?;
                Message::Welcome { session: f.id(1, "Session")?, details: f.dict(2, "Details")? }
            }
            ABORT => {
                f.arity(3, 3, "3")?;
                Message::Abort { details: f.dict(1, "Details")?, reason: f.string(2, "Reason")? }
            }
            CHALLENGE => {
                f.arity(3, 3, "3")?;
                Message::Challenge { authmethod: f.string(1, "AuthMethod")?, extra: f.dict(2, "Extra")? }
            }
            AUTHENTICATE => {
                f.arity(3, 3, "3")?;
                Message::Authenticate { signature: f.string(1, "Signature")?, extra: f.dict(2, "Extra")? }
            }
            GOODBYE => {
                f.arity(3, 3, "3")?;
                Message::Goodbye { details: f.dict(1, "Details")?, reason: f.string(2, "Reason")? }
            }
            ERROR => {
                f.arity(5, 7, "5 to 7")?;
                Message::Error {
                    request_type: f.id(1, "REQUEST.Type")?,
                    request: f.id(2, "REQUEST.Request")?,
                    details: f.dict(3, "Details")?,
                    error: f.string(4, "Error")?,
                    payload: f.payload(5)?,
                }
            }
            PUBLISH => {
                f.arity(4, 6, "4 to 6")?;
                Message::Publish {
                    request: f.id(1, "Request")?,
                    options: f.dict(2, "Options")?,
                    topic: f.string(3, "Topic")?,
                    payload: f.payload(4)?,
                }
            }
            PUBLISHED => {
                f.arity(3, 3, "3")?;
                Message::Published { request: f.id(1, "Request")?, publication: f.id(2, "Publication")? }
            }
            SUBSCRIBE => {
                f.arity(4, 4, "4")?;
                Message::Subscribe {
                    request: f.id(1, "Request")?,
                    options: f.dict(2, "Options")?,
                    topic: f.string(3, "Topic")?,
                }
            }
            SUBSCRIBED => {
                f.arity(3, 3, "3")?;
                Message::Subscribed { request: f.id(1, "Request")?, subscription: f.id(2, "Subscription")? }
            }
            UNSUBSCRIBE => {
                f.arity(3, 3, "3")?;
                Message::Unsubscribe { request: f.id(1, "Request")?, subscription: f.id(2, "Subscription")? }
            }
            UNSUBSCRIBED => {
                f.arity(2, 3, "2 or 3")?;
                // Request 0: the router revoked the subscription (no request to answer).
                Message::Unsubscribed { request: f.id_or_zero(1, "Request")?, details: f.optional_dict(2, "Details")? }
            }
            EVENT => {
                f.arity(4, 6, "4 to 6")?;
                Message::Event {
                    subscription: f.id(1, "Subscription")?,
                    publication: f.id(2, "Publication")?,
                    details: f.dict(3, "Details")?,
                    payload: f.payload(4)?,
                }
            }
            CALL => {
                f.arity(4, 6, "4 to 6")?;
                Message::Call {
                    request: f.id(1, "Request")?,
                    options: f.dict(2, "Options")?,
                    procedure: f.string(3, "Procedure")?,
                    payload: f.payload(4)?,
                }
            }
            CANCEL => {
                f.arity(3, 3, "3")?;
                Message::Cancel { request: f.id(1, "Request")?, options: f.dict(2, "Options")? }
            }
            RESULT => {
                f.arity(3, 5, "3 to 5")?;
                Message::Result { request: f.id(1, "Request")?, details: f.dict(2, "Details")?, payload: f.payload(3)? }
            }
            REGISTER => {
                f.arity(4, 4, "4")?;
                Message::Register {
                    request: f.id(1, "Request")?,
                    options: f.dict(2, "Options")?,
                    procedure: f.string(3, "Procedure")?,
                }
            }
            REGISTERED => {
                f.arity(3, 3, "3")?;
                Message::Registered { request: f.id(1, "Request")?, registration: f.id(2, "Registration")? }
            }
            UNREGISTER => {
                f.arity(3, 3, "3")?;
                Message::Unregister { request: f.id(1, "Request")?, registration: f.id(2, "Registration")? }
            }
            UNREGISTERED => {
                f.arity(2, 3, "2 or 3")?;
                Message::Unregistered { request: f.id_or_zero(1, "Request")?, details: f.optional_dict(2, "Details")? }
            }
            INVOCATION => {
                f.arity(4, 6, "4 to 6")?;
                Message::Invocation {
                    request: f.id(1, "Request")?,
                    registration: f.id(2, "Registration")?,
                    details: f.dict(3, "Details")?,
                    payload: f.payload(4)?,
                }
            }
            INTERRUPT => {
                f.arity(3, 3, "3")?;
                Message::Interrupt { request: f.id(1, "Request")?, options: f.dict(2, "Options")? }
            }
            YIELD => {
                f.arity(3, 5, "3 to 5")?;
                Message::Yield { request: f.id(1, "Request")?, options: f.dict(2, "Options")?, payload: f.payload(3)? }
            }
            other => return Err(DecodeError::UnknownType(other)),
        })
    }
}

/// The elements of one message being decoded.
struct Fields<'a> {
    serializer: Serializer,
    frame: &'a Bytes,
    ranges: Vec<Range<usize>>,
    message: &'static str,
}

impl Fields<'_> {
    fn arity(&self, min: usize, max: usize, expected: &'static str) -> Result<(), DecodeError> {
        let got = self.ranges.len();
        if got < min || got > max {
            return Err(DecodeError::Arity { message: self.message, expected, got });
        }
        Ok(())
    }

    fn raw(&self, i: usize) -> &[u8] {
        &self.frame[self.ranges[i].clone()]
    }

    fn value(&self, i: usize) -> Result<Value, DecodeError> {
        // `split` checked every element it returned.
        self.serializer.decode_checked(self.raw(i))
    }

    fn wrong(&self, field: &'static str, expected: &'static str, got: &Value) -> DecodeError {
        DecodeError::Field { message: self.message, field, expected, got: got.kind().to_owned() }
    }

    /// An id in [1, 2^53] (spec: "Identifiers").
    fn id(&self, i: usize, field: &'static str) -> Result<u64, DecodeError> {
        self.ranged_id(i, field, 1, "an id in [1, 2^53]")
    }

    /// The request id of UNSUBSCRIBED/UNREGISTERED, where 0 means the router revoked it.
    fn id_or_zero(&self, i: usize, field: &'static str) -> Result<u64, DecodeError> {
        self.ranged_id(i, field, 0, "an id in [0, 2^53]")
    }

    fn ranged_id(&self, i: usize, field: &'static str, min: u64, expected: &'static str) -> Result<u64, DecodeError> {
        match self.value(i)? {
            Value::UInt(u) if (min..=MAX_ID).contains(&u) => Ok(u),
            Value::UInt(u) => Err(DecodeError::Field { message: self.message, field, expected, got: u.to_string() }),
            other => Err(self.wrong(field, "an integer id", &other)),
        }
    }

    fn string(&self, i: usize, field: &'static str) -> Result<String, DecodeError> {
        match self.value(i)? {
            Value::Str(s) => Ok(s),
            other => Err(self.wrong(field, "a string", &other)),
        }
    }

    fn dict(&self, i: usize, field: &'static str) -> Result<Dict, DecodeError> {
        match self.value(i)? {
            Value::Dict(d) => Ok(d),
            other => Err(self.wrong(field, "a dict", &other)),
        }
    }

    fn optional_dict(&self, i: usize, field: &'static str) -> Result<Option<Dict>, DecodeError> {
        if i < self.ranges.len() {
            self.dict(i, field).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Arguments at `i` and ArgumentsKw at `i + 1`, each optional, kept encoded.
    fn payload(&self, i: usize) -> Result<Args, DecodeError> {
        let mut out = Args::NONE;
        if i < self.ranges.len() {
            if !self.serializer.is_list(self.raw(i)) {
                let got = self.value(i)?;
                return Err(self.wrong("Arguments", "a list", &got));
            }
            out.args = Some(self.slice(i));
        }
        if i + 1 < self.ranges.len() {
            if !self.serializer.is_dict(self.raw(i + 1)) {
                let got = self.value(i + 1)?;
                return Err(self.wrong("ArgumentsKw", "a dict", &got));
            }
            out.kwargs = Some(self.slice(i + 1));
        }
        Ok(out)
    }

    fn slice(&self, i: usize) -> Payload {
        Payload::from_encoded(self.serializer, self.frame.slice(self.ranges[i].clone()))
    }
}
