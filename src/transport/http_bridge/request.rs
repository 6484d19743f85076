//! Reading a bridge request: the `Authorization` header, the realm (body field or
//! query parameter), and the JSON body. Arguments and ArgumentsKw are not decoded: they
//! stay slices of the body, checked once as a WAMP JSON payload is (`wamp::json::check`),
//! and are copied byte for byte into every JSON subscriber's EVENT.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::router::bridge::{no_auth_method, CallRequest, Credential, PublishRequest};
use crate::router::broker::flag;
use crate::router::error::WampError;
use crate::wamp::{json, Args, Dict, Payload, Serializer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody<'a> {
    topic: String,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
    #[serde(default, borrow)]
    kwargs: Option<&'a RawValue>,
    #[serde(default)]
    options: Option<Dict>,
    #[serde(default)]
    realm: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallBody<'a> {
    procedure: String,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
    #[serde(default, borrow)]
    kwargs: Option<&'a RawValue>,
    #[serde(default)]
    options: Option<Dict>,
    #[serde(default)]
    realm: Option<String>,
}

/// A request's body, read: what to do, and the realm it names (if any).
#[derive(Debug)]
pub struct Parsed<T> {
    pub request: T,
    pub realm: Option<String>,
}

fn bad(what: impl std::fmt::Display) -> WampError {
    WampError::InvalidArgument(what.to_string())
}

/// `POST /publish`'s body.
pub fn publish(body: &Bytes) -> Result<Parsed<PublishRequest>, WampError> {
    let b: PublishBody<'_> = serde_json::from_slice(body).map_err(|e| bad(format!("the body is not a valid publish request: {e}")))?;
    let options = b.options.unwrap_or_default();
    // Held to their types here; a WAMP session's PUBLISH reads them leniently.
    for key in ["acknowledge", "disclose_me"] {
        flag(&options, key, false)?;
    }
    let payload = payload(body, b.args, b.kwargs)?;
    Ok(Parsed { request: PublishRequest { topic: b.topic, options, payload }, realm: b.realm })
}

/// `POST /call`'s body.
pub fn call(body: &Bytes) -> Result<Parsed<CallRequest>, WampError> {
    let b: CallBody<'_> = serde_json::from_slice(body).map_err(|e| bad(format!("the body is not a valid call request: {e}")))?;
    let options = b.options.unwrap_or_default();
    for key in ["disclose_me", "receive_progress"] {
        flag(&options, key, false)?;
    }
    let payload = payload(body, b.args, b.kwargs)?;
    Ok(Parsed { request: CallRequest { procedure: b.procedure, options, payload }, realm: b.realm })
}

/// Arguments (a list) and ArgumentsKw (a dict) as slices of the body.
fn payload(body: &Bytes, args: Option<&RawValue>, kwargs: Option<&RawValue>) -> Result<Args, WampError> {
    let part = |raw: Option<&RawValue>, name: &str, list: bool| -> Result<Option<Payload>, WampError> {
        let Some(raw) = raw else { return Ok(None) };
        let text = raw.get().as_bytes();
        let right_kind = if list { Serializer::Json.is_list(text) } else { Serializer::Json.is_dict(text) };
        if !right_kind {
            return Err(bad(format!("{name} must be {}", if list { "a list" } else { "an object" })));
        }
        json::check(text).map_err(|e| bad(format!("{name}: {e}")))?;
        Ok(Some(Payload::from_encoded(Serializer::Json, body.slice_ref(text))))
    };
    Ok(Args { args: part(args, "args", true)?, kwargs: part(kwargs, "kwargs", false)? })
}

/// The realm a request names: its body's `realm` field, else the `realm` query
/// parameter (the body wins when both are given); None: the router's default realm.
pub fn realm(in_body: Option<String>, query: Option<&str>) -> Option<String> {
    in_body.or_else(|| query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("realm=")).map(str::to_owned))
}

/// The credential of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    None,
    /// `Bearer <ticket or API token>`.
    Bearer(String),
    /// `Basic` with base64 of `authid:ticket`.
    Basic { authid: String, ticket: String },
}

impl Presented {
    pub fn credential(&self) -> Credential<'_> {
        match self {
            Presented::None => Credential::None,
            Presented::Bearer(ticket) => Credential::Ticket { authid: None, ticket },
            Presented::Basic { authid, ticket } => Credential::Ticket { authid: Some(authid), ticket },
        }
    }
}

/// Reads the `Authorization` header (none: anonymous).
pub fn credential(header: Option<&[u8]>) -> Result<Presented, WampError> {
    let Some(value) = header else { return Ok(Presented::None) };
    let value = std::str::from_utf8(value).map_err(|_| unsupported())?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(unsupported)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Presented::Bearer(rest.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).ok().and_then(|d| String::from_utf8(d).ok());
        if let Some((authid, ticket)) = decoded.as_deref().and_then(|d| d.split_once(':')).filter(|(a, _)| !a.is_empty()) {
            return Ok(Presented::Basic { authid: authid.to_owned(), ticket: ticket.to_owned() });
        }
    }
    Err(unsupported())
}

fn unsupported() -> WampError {
    no_auth_method("the Authorization header must be `Bearer <ticket or API token>`, or `Basic` with authid:ticket")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::Value;

    #[test]
    fn bodies_keep_their_payload_bytes_and_are_held_to_their_types() {
        let body = Bytes::from_static(br#"{"topic":"com.t","args":[1, "\u00e9"],"kwargs":{"k":null},"options":{"retain":true}}"#);
        let p = publish(&body).unwrap();
        assert_eq!(p.request.topic, "com.t");
        assert_eq!(p.request.payload.args.as_ref().unwrap().bytes().as_ref(), br#"[1, "\u00e9"]"#);
        assert_eq!(p.request.payload.kwargs.as_ref().unwrap().bytes().as_ref(), br#"{"k":null}"#);
        assert_eq!(p.request.options.get("retain"), Some(&Value::Bool(true)));
        assert_eq!(p.realm, None);
        let bare = publish(&Bytes::from_static(br#"{"topic":"t","args":null,"realm":"r"}"#)).unwrap();
        assert_eq!((bare.request.payload, bare.realm.as_deref()), (Args::default(), Some("r")));

        let refused = |b: &'static [u8]| publish(&Bytes::from_static(b)).unwrap_err().to_string();
        assert!(refused(b"{").starts_with("the body is not a valid publish request: EOF"), "{}", refused(b"{"));
        assert!(refused(br#"{"args":[]}"#).contains("missing field `topic`"));
        assert!(refused(br#"{"topic":"t","extra":1}"#).contains("unknown field `extra`"));
        assert_eq!(refused(br#"{"topic":"t","args":{}}"#), "args must be a list");
        assert_eq!(refused(br#"{"topic":"t","kwargs":[]}"#), "kwargs must be an object");
        assert_eq!(refused(br#"{"topic":"t","options":{"disclose_me":1}}"#), "disclose_me must be a bool");
        assert_eq!(refused(br#"{"topic":"t","args":["\ud800"]}"#), "args: a string holds a lone UTF-16 surrogate escape");
        assert!(refused(br#"{"topic":"t","options":[]}"#).contains("invalid type"));

        let c = call(&Bytes::from_static(br#"{"procedure":"p","options":{"timeout":5}}"#)).unwrap();
        assert_eq!((c.request.procedure.as_str(), c.request.options.get("timeout")), ("p", Some(&Value::UInt(5))));
        assert!(call(&Bytes::from_static(br#"{"topic":"p"}"#)).is_err());
    }

    #[test]
    fn realms_and_credentials() {
        assert_eq!(realm(None, Some("a=1&realm=r2")), Some("r2".into()));
        assert_eq!(realm(Some("r1".into()), Some("realm=r2")), Some("r1".into()), "the body wins");
        assert_eq!(realm(None, Some("realms=x")), None);
        assert_eq!(realm(None, None), None);

        assert_eq!(credential(None), Ok(Presented::None));
        assert_eq!(credential(Some(b"Bearer sy_abc ")), Ok(Presented::Bearer("sy_abc".into())));
        assert_eq!(credential(Some(b"bearer t")), Ok(Presented::Bearer("t".into())));
        let basic = format!("Basic {}", STANDARD.encode("alice:se:cret"));
        assert_eq!(credential(Some(basic.as_bytes())), Ok(Presented::Basic { authid: "alice".into(), ticket: "se:cret".into() }));
        for bad in [&b"Bearer"[..], b"Bearer  ", b"Token x", b"Basic !!", b"Basic OnNlY3JldA=="] {
            assert_eq!(credential(Some(bad)).unwrap_err().uri(), "wamp.error.no_auth_method", "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Presented::Bearer("t".into()).credential(), Credential::Ticket { authid: None, ticket: "t" });
    }
}
