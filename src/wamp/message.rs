//! Every WAMP message of the Basic and Advanced Profiles as a typed value. Options and
//! details are decoded dicts; Arguments and ArgumentsKw stay encoded (`Payload`).

use super::payload::Payload;
use super::value::Dict;

pub mod code {
    pub const HELLO: u64 = 1;
    pub const WELCOME: u64 = 2;
    pub const ABORT: u64 = 3;
    pub const CHALLENGE: u64 = 4;
    pub const AUTHENTICATE: u64 = 5;
    pub const GOODBYE: u64 = 6;
    pub const ERROR: u64 = 8;
    pub const PUBLISH: u64 = 16;
    pub const PUBLISHED: u64 = 17;
    pub const SUBSCRIBE: u64 = 32;
    pub const SUBSCRIBED: u64 = 33;
    pub const UNSUBSCRIBE: u64 = 34;
    pub const UNSUBSCRIBED: u64 = 35;
    pub const EVENT: u64 = 36;
    pub const CALL: u64 = 48;
    pub const CANCEL: u64 = 49;
    pub const RESULT: u64 = 50;
    pub const REGISTER: u64 = 64;
    pub const REGISTERED: u64 = 65;
    pub const UNREGISTER: u64 = 66;
    pub const UNREGISTERED: u64 = 67;
    pub const INVOCATION: u64 = 68;
    pub const INTERRUPT: u64 = 69;
    pub const YIELD: u64 = 70;
}

/// Arguments and ArgumentsKw of a message that carries application data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Args {
    pub args: Option<Payload>,
    pub kwargs: Option<Payload>,
}

impl Args {
    pub const NONE: Args = Args { args: None, kwargs: None };

    pub fn len(&self) -> usize {
        self.args.as_ref().map_or(0, Payload::len) + self.kwargs.as_ref().map_or(0, Payload::len)
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_none() && self.kwargs.is_none()
    }

    /// The same payloads in one allocation of their own. A received payload is a slice
    /// of the buffer its frame was read into (shared with the frames around it); what
    /// is kept for long (the replay store) must not keep that whole buffer alive.
    pub fn detached(&self) -> Args {
        let (a, k) = (self.args.as_ref(), self.kwargs.as_ref());
        let mut both = Vec::with_capacity(self.len());
        both.extend_from_slice(a.map_or(&[][..], |p| p.bytes()));
        both.extend_from_slice(k.map_or(&[][..], |p| p.bytes()));
        let both = bytes::Bytes::from(both);
        let split = a.map_or(0, Payload::len);
        Args {
            args: a.map(|p| Payload::from_encoded(p.serializer(), both.slice(..split))),
            kwargs: k.map(|p| Payload::from_encoded(p.serializer(), both.slice(split..))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello { realm: String, details: Dict },
    Welcome { session: u64, details: Dict },
    Abort { details: Dict, reason: String },
    Challenge { authmethod: String, extra: Dict },
    Authenticate { signature: String, extra: Dict },
    Goodbye { details: Dict, reason: String },
    Error { request_type: u64, request: u64, details: Dict, error: String, payload: Args },
    Publish { request: u64, options: Dict, topic: String, payload: Args },
    Published { request: u64, publication: u64 },
    Subscribe { request: u64, options: Dict, topic: String },
    Subscribed { request: u64, subscription: u64 },
    Unsubscribe { request: u64, subscription: u64 },
    /// `details` is present only on a router-initiated revocation (request 0).
    Unsubscribed { request: u64, details: Option<Dict> },
    Event { subscription: u64, publication: u64, details: Dict, payload: Args },
    Call { request: u64, options: Dict, procedure: String, payload: Args },
    Cancel { request: u64, options: Dict },
    Result { request: u64, details: Dict, payload: Args },
    Register { request: u64, options: Dict, procedure: String },
    Registered { request: u64, registration: u64 },
    Unregister { request: u64, registration: u64 },
    Unregistered { request: u64, details: Option<Dict> },
    Invocation { request: u64, registration: u64, details: Dict, payload: Args },
    Interrupt { request: u64, options: Dict },
    Yield { request: u64, options: Dict, payload: Args },
}

impl Message {
    pub fn code(&self) -> u64 {
        use code::*;
        match self {
            Message::Hello { .. } => HELLO,
            Message::Welcome { .. } => WELCOME,
            Message::Abort { .. } => ABORT,
            Message::Challenge { .. } => CHALLENGE,
            Message::Authenticate { .. } => AUTHENTICATE,
            Message::Goodbye { .. } => GOODBYE,
            Message::Error { .. } => ERROR,
            Message::Publish { .. } => PUBLISH,
            Message::Published { .. } => PUBLISHED,
            Message::Subscribe { .. } => SUBSCRIBE,
            Message::Subscribed { .. } => SUBSCRIBED,
            Message::Unsubscribe { .. } => UNSUBSCRIBE,
            Message::Unsubscribed { .. } => UNSUBSCRIBED,
            Message::Event { .. } => EVENT,
            Message::Call { .. } => CALL,
            Message::Cancel { .. } => CANCEL,
            Message::Result { .. } => RESULT,
            Message::Register { .. } => REGISTER,
            Message::Registered { .. } => REGISTERED,
            Message::Unregister { .. } => UNREGISTER,
            Message::Unregistered { .. } => UNREGISTERED,
            Message::Invocation { .. } => INVOCATION,
            Message::Interrupt { .. } => INTERRUPT,
            Message::Yield { .. } => YIELD,
        }
    }

    /// The spec's name of a message type, for errors and logs.
    pub fn name_of(code: u64) -> &'static str {
        use code::*;
        match code {
            HELLO => "HELLO",
            WELCOME => "WELCOME",
            ABORT => "ABORT",
            CHALLENGE => "CHALLENGE",
            AUTHENTICATE => "AUTHENTICATE",
            GOODBYE => "GOODBYE",
            ERROR => "ERROR",
            PUBLISH => "PUBLISH",
            PUBLISHED => "PUBLISHED",
            SUBSCRIBE => "SUBSCRIBE",
            SUBSCRIBED => "SUBSCRIBED",
            UNSUBSCRIBE => "UNSUBSCRIBE",
            UNSUBSCRIBED => "UNSUBSCRIBED",
            EVENT => "EVENT",
            CALL => "CALL",
            CANCEL => "CANCEL",
            RESULT => "RESULT",
            REGISTER => "REGISTER",
            REGISTERED => "REGISTERED",
            UNREGISTER => "UNREGISTER",
            UNREGISTERED => "UNREGISTERED",
            INVOCATION => "INVOCATION",
            INTERRUPT => "INTERRUPT",
            YIELD => "YIELD",
            _ => "UNKNOWN",
        }
    }

    pub fn name(&self) -> &'static str {
        Message::name_of(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::Serializer;
    use bytes::Bytes;

    #[test]
    fn detached_payloads_are_equal_and_no_longer_share_the_frame() {
        let frame = Bytes::from_static(b"[16,1,{},\"t\",[1,2],{\"a\":3}] and more frames");
        let args = Args {
            args: Some(Payload::from_encoded(Serializer::Json, frame.slice(13..18))),
            kwargs: Some(Payload::from_encoded(Serializer::Json, frame.slice(19..26))),
        };
        let d = args.detached();
        assert_eq!(d, args);
        assert_eq!((d.args.as_ref().unwrap().bytes().as_ref(), d.kwargs.as_ref().unwrap().bytes().as_ref()), (&b"[1,2]"[..], &b"{\"a\":3}"[..]));
        let inside = |b: &Bytes| frame.as_ptr_range().contains(&b.as_ptr());
        assert!(!inside(d.args.as_ref().unwrap().bytes()) && !inside(d.kwargs.as_ref().unwrap().bytes()));
        let only_kwargs = Args { args: None, kwargs: args.kwargs.clone() }.detached();
        assert_eq!((only_kwargs.args, only_kwargs.kwargs.unwrap().bytes().as_ref()), (None, &b"{\"a\":3}"[..]));
    }
}
