//! Encoding a message into one frame. Payloads are copied byte for byte when the target
//! serializer is theirs and transcoded otherwise; a payload that cannot be transcoded
//! (e.g. msgpack extension types) is reported, never silently altered.

use bytes::Bytes;

use super::error::DecodeError;
use super::message::{Args, Message};
use super::serializer::Serializer;
use super::value::{Dict, Value};

/// One element of a message array.
enum Elem<'a> {
    Int(u64),
    Str(&'a str),
    Dict(&'a Dict),
    Payload(&'a Args),
}

impl Message {
    pub fn encode(&self, serializer: Serializer) -> Result<Bytes, DecodeError> {
        use Elem::*;
        let code = Int(self.code());
        let elems: Vec<Elem<'_>> = match self {
            Message::Hello { realm, details } => vec![code, Str(realm), Dict(details)],
            Message::Welcome { session, details } => vec![code, Int(*session), Dict(details)],
            Message::Abort { details, reason } => vec![code, Dict(details), Str(reason)],
            Message::Challenge { authmethod, extra } => vec![code, Str(authmethod), Dict(extra)],
            Message::Authenticate { signature, extra } => vec![code, Str(signature), Dict(extra)],
            Message::Goodbye { details, reason } => vec![code, Dict(details), Str(reason)],
            Message::Error { request_type, request, details, error, payload } => {
                vec![code, Int(*request_type), Int(*request), Dict(details), Str(error), Payload(payload)]
            }
            Message::Publish { request, options, topic, payload } => {
                vec![code, Int(*request), Dict(options), Str(topic), Payload(payload)]
            }
            Message::Published { request, publication } => vec![code, Int(*request), Int(*publication)],
            Message::Subscribe { request, options, topic } => vec![code, Int(*request), Dict(options), Str(topic)],
            Message::Subscribed { request, subscription } => vec![code, Int(*request), Int(*subscription)],
            Message::Unsubscribe { request, subscription } => vec![code, Int(*request), Int(*subscription)],
            Message::Unsubscribed { request, details } | Message::Unregistered { request, details } => {
                match details {
                    Some(d) => vec![code, Int(*request), Dict(d)],
                    None => vec![code, Int(*request)],
                }
            }
            Message::Event { subscription, publication, details, payload } => {
                vec![code, Int(*subscription), Int(*publication), Dict(details), Payload(payload)]
            }
            Message::Call { request, options, procedure, payload } => {
                vec![code, Int(*request), Dict(options), Str(procedure), Payload(payload)]
            }
            Message::Cancel { request, options } | Message::Interrupt { request, options } => {
                vec![code, Int(*request), Dict(options)]
            }
            Message::Result { request, details, payload } => vec![code, Int(*request), Dict(details), Payload(payload)],
            Message::Register { request, options, procedure } => {
                vec![code, Int(*request), Dict(options), Str(procedure)]
            }
            Message::Registered { request, registration } => vec![code, Int(*request), Int(*registration)],
            Message::Unregister { request, registration } => vec![code, Int(*request), Int(*registration)],
            Message::Invocation { request, registration, details, payload } => {
                vec![code, Int(*request), Int(*registration), Dict(details), Payload(payload)]
            }
            Message::Yield { request, options, payload } => vec![code, Int(*request), Dict(options), Payload(payload)],
        };
        write(serializer, &elems)
    }
}

fn write(ser: Serializer, elems: &[Elem<'_>]) -> Result<Bytes, DecodeError> {
    // Arguments may be omitted only when ArgumentsKw is too: an empty list stands in.
    let count: usize = elems
        .iter()
        .map(|e| match e {
            Elem::Payload(a) if a.kwargs.is_some() => 2,
            Elem::Payload(a) if a.args.is_some() => 1,
            Elem::Payload(_) => 0,
            _ => 1,
        })
        .sum();
    let size_hint = 32 + elems.iter().map(|e| if let Elem::Payload(a) = e { a.len() } else { 16 }).sum::<usize>();
    let mut out = Vec::with_capacity(size_hint);
    ser.begin_array(count, &mut out);
    let mut index = 0;
    let mut next = |out: &mut Vec<u8>| {
        ser.separator(index, out);
        index += 1;
    };
    for e in elems {
        match e {
            Elem::Int(i) => {
                next(&mut out);
                ser.encode_value(&Value::UInt(*i), &mut out);
            }
            Elem::Str(s) => {
                next(&mut out);
                encode_str(ser, s, &mut out);
            }
            Elem::Dict(d) => {
                next(&mut out);
                encode_dict(ser, d, &mut out);
            }
            Elem::Payload(a) => {
                if a.args.is_some() || a.kwargs.is_some() {
                    next(&mut out);
                    match &a.args {
                        Some(p) => p.write_to(ser, &mut out)?,
                        None => ser.encode_value(&Value::List(Vec::new()), &mut out),
                    }
                }
                if let Some(kw) = &a.kwargs {
                    next(&mut out);
                    kw.write_to(ser, &mut out)?;
                }
            }
        }
    }
    ser.end_array(&mut out);
    Ok(Bytes::from(out))
}

fn encode_str(ser: Serializer, s: &str, out: &mut Vec<u8>) {
    // Avoids building a `Value` (and copying the string) for URIs.
    match ser {
        Serializer::Json => {
            if let Err(e) = serde_json::to_writer(&mut *out, s) {
                tracing::error!(error = %e, "json string encoding failed");
            }
        }
        _ => ser.encode_value(&Value::Str(s.to_owned()), out),
    }
}

fn encode_dict(ser: Serializer, d: &Dict, out: &mut Vec<u8>) {
    match ser {
        Serializer::Json => {
            if let Err(e) = serde_json::to_writer(&mut *out, d) {
                tracing::error!(error = %e, "json dict encoding failed");
            }
        }
        _ => {
            // Borrowing encoder would avoid this clone; dicts in headers are small.
            ser.encode_value(&Value::Dict(d.clone()), out)
        }
    }
}
