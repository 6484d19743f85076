//! The codec (`switchyard::wamp`) against the WAMP specification's test vectors, and
//! against malformed input in each of its three serializers.
//!
//! `tests/vectors/<type>.json` hold the single-message samples of the conformance suite in
//! the spec repository (wamp-proto/wamp-proto, `testsuite/singlemessage/{basic,advanced}`),
//! transcribed into a format of our own: for each sample the bytes (hex) of every json,
//! msgpack and cbor variant, and the expected fields under the names of `Message`'s fields.
//! `_rejected.json` holds the samples the codec must refuse, with the exact error, and
//! `_validation.json` the wire messages of the suite's options/details validation samples.
//!
//! `cargo test --test wamp_vectors -- --ignored write_fuzz_seeds` writes every sample's
//! bytes into `fuzz/corpus/<target>/` as seeds for the cargo-fuzz targets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value as Json;
use switchyard::wamp::error::{PayloadError, RefusedHeader};
use switchyard::wamp::{Args, DecodeError, Dict, Message, Payload, Serializer, Value};

const ALL: [Serializer; 3] = Serializer::ALL;
const MAX_ID: u64 = 1 << 53;

// ---- fixtures --------------------------------------------------------------------------

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2) && s.is_ascii(), "bad hex {s:?}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

fn serializer_named(name: &str) -> Serializer {
    ALL.into_iter().find(|s| s.name() == name).unwrap_or_else(|| panic!("unknown serializer {name}"))
}

/// One sample: its byte variants per serializer, and either the expected fields or the
/// expected error.
struct Sample {
    /// `<file>: <description>`, for assertion messages.
    label: String,
    /// Message type name (`EVENT`) and code of the file.
    kind: String,
    code: u64,
    variants: Vec<(Serializer, Bytes)>,
    expect: Option<BTreeMap<String, Value>>,
    error: Option<DecodeError>,
}

impl Sample {
    fn variants_in(&self, ser: Serializer) -> impl Iterator<Item = &Bytes> {
        self.variants.iter().filter(move |(s, _)| *s == ser).map(|(_, b)| b)
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_samples(file: &str, doc: &Json, kind: &str, code: u64) -> Vec<Sample> {
    doc["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let mut variants = Vec::new();
            for (ser, hexes) in s["bytes"].as_object().expect("bytes") {
                for h in hexes.as_array().expect("variant list") {
                    variants.push((serializer_named(ser), Bytes::from(unhex(h.as_str().expect("hex")))));
                }
            }
            let expect = s.get("expect").map(|e| {
                e.as_object().expect("expect is an object").iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect()
            });
            let error = s.get("error").map(expected_error);
            Sample {
                label: format!("{file}: {}", s["name"].as_str().expect("name")),
                kind: kind.to_owned(),
                code,
                variants,
                expect,
                error,
            }
        })
        .collect()
}

/// The samples every message type file holds (`tests/vectors/<type>.json`).
fn message_samples() -> Vec<Sample> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.file_name().unwrap().to_str().unwrap().starts_with('_'))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let doc = read_json(&path);
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let kind = doc["type"].as_str().expect("type").to_owned();
        let code = doc["code"].as_u64().expect("code");
        out.extend(parse_samples(&file, &doc, &kind, code));
    }
    assert!(!out.is_empty());
    out
}

fn rejected_samples() -> Vec<Sample> {
    let doc = read_json(&vectors_dir().join("_rejected.json"));
    parse_samples("_rejected.json", &doc, "", 0)
}

/// `{"UnknownType": 337}` or `{"Field": {"message": .., "field": .., "expected": .., "got": ..}}`.
fn expected_error(j: &Json) -> DecodeError {
    fn leak(j: &Json) -> &'static str {
        Box::leak(j.as_str().expect("string").to_owned().into_boxed_str())
    }
    if let Some(t) = j.get("UnknownType") {
        return DecodeError::UnknownType(t.as_u64().expect("type code"));
    }
    if let Some(f) = j.get("Field") {
        return DecodeError::Field {
            message: leak(&f["message"]),
            field: leak(&f["field"]),
            expected: leak(&f["expected"]),
            got: f["got"].as_str().expect("got").to_owned(),
        };
    }
    panic!("unknown expected error {j}")
}

/// The expected JSON of a fixture as a `Value`, written independently of the codec: JSON
/// numbers become `UInt`/`Int`/`Float` as the codec's normalisation says.
fn json_to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::UInt(u),
            (None, Some(i), _) => Value::Int(i),
            (None, None, Some(f)) => Value::Float(f),
            _ => unreachable!("a JSON number is one of the three"),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(json_to_value).collect()),
        Json::Object(o) => Value::Dict(o.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect()),
    }
}

/// Every field of a message by name, payloads decoded. Absent Arguments, ArgumentsKw and
/// optional Details are absent from the map.
fn fields(m: &Message) -> BTreeMap<String, Value> {
    let mut f: BTreeMap<String, Value> = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        f.insert(k.to_owned(), v);
    };
    let id = |u: &u64| Value::UInt(*u);
    let s = |s: &String| Value::Str(s.clone());
    let d = |d: &Dict| Value::Dict(d.clone());
    let mut payload: Option<&Args> = None;
    match m {
        Message::Hello { realm, details } => {
            put("realm", s(realm));
            put("details", d(details));
        }
        Message::Welcome { session, details } => {
            put("session", id(session));
            put("details", d(details));
        }
        Message::Abort { details, reason } | Message::Goodbye { details, reason } => {
            put("details", d(details));
            put("reason", s(reason));
        }
        Message::Challenge { authmethod, extra } => {
            put("authmethod", s(authmethod));
            put("extra", d(extra));
        }
        Message::Authenticate { signature, extra } => {
            put("signature", s(signature));
            put("extra", d(extra));
        }
        Message::Error { request_type, request, details, error, payload: p } => {
            put("request_type", id(request_type));
            put("request", id(request));
            put("details", d(details));
            put("error", s(error));
            payload = Some(p);
        }
        Message::Publish { request, options, topic, payload: p } => {
            put("request", id(request));
            put("options", d(options));
            put("topic", s(topic));
            payload = Some(p);
        }
        Message::Published { request, publication } => {
            put("request", id(request));
            put("publication", id(publication));
        }
        Message::Subscribe { request, options, topic } => {
            put("request", id(request));
            put("options", d(options));
            put("topic", s(topic));
        }
        Message::Subscribed { request, subscription } | Message::Unsubscribe { request, subscription } => {
            put("request", id(request));
            put("subscription", id(subscription));
        }
        Message::Unsubscribed { request, details } | Message::Unregistered { request, details } => {
            put("request", id(request));
            if let Some(details) = details {
                put("details", d(details));
            }
        }
        Message::Event { subscription, publication, details, payload: p } => {
            put("subscription", id(subscription));
            put("publication", id(publication));
            put("details", d(details));
            payload = Some(p);
        }
        Message::Call { request, options, procedure, payload: p } => {
            put("request", id(request));
            put("options", d(options));
            put("procedure", s(procedure));
            payload = Some(p);
        }
        Message::Cancel { request, options } | Message::Interrupt { request, options } => {
            put("request", id(request));
            put("options", d(options));
        }
        Message::Result { request, details, payload: p } => {
            put("request", id(request));
            put("details", d(details));
            payload = Some(p);
        }
        Message::Register { request, options, procedure } => {
            put("request", id(request));
            put("options", d(options));
            put("procedure", s(procedure));
        }
        Message::Registered { request, registration } | Message::Unregister { request, registration } => {
            put("request", id(request));
            put("registration", id(registration));
        }
        Message::Invocation { request, registration, details, payload: p } => {
            put("request", id(request));
            put("registration", id(registration));
            put("details", d(details));
            payload = Some(p);
        }
        Message::Yield { request, options, payload: p } => {
            put("request", id(request));
            put("options", d(options));
            payload = Some(p);
        }
    }
    if let Some(p) = payload {
        if let Some(args) = &p.args {
            put("args", args.to_value().expect("Arguments decode"));
        }
        if let Some(kwargs) = &p.kwargs {
            put("kwargs", kwargs.to_value().expect("ArgumentsKw decode"));
        }
    }
    f
}

fn decode(ser: Serializer, bytes: &[u8]) -> Result<Message, DecodeError> {
    Message::decode(ser, &Bytes::copy_from_slice(bytes))
}

/// Encodes a whole message array with the codec's value encoder (used to build inputs).
fn frame(ser: Serializer, items: Vec<Value>) -> Bytes {
    let mut out = Vec::new();
    ser.encode_value(&Value::List(items), &mut out);
    Bytes::from(out)
}

fn s(x: &str) -> Value {
    Value::Str(x.to_owned())
}
fn u(x: u64) -> Value {
    Value::UInt(x)
}
fn empty_dict() -> Value {
    Value::Dict(Dict::new())
}
fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

/// Asserts a `Malformed` error of the given serializer whose detail contains `needle`
/// (the details of errors raised by serde_json, rmpv and minicbor are theirs).
#[track_caller]
fn assert_malformed<T: std::fmt::Debug>(r: Result<T, DecodeError>, ser: Serializer, needle: &str) {
    match r {
        Err(DecodeError::Malformed { serializer, detail }) => {
            assert_eq!(serializer, ser.name(), "{detail}");
            assert!(detail.contains(needle), "{ser:?}: detail {detail:?} lacks {needle:?}");
        }
        other => panic!("{ser:?}: expected Malformed({needle:?}), got {other:?}"),
    }
}

// ---- the vectors ---------------------------------------------------------------------

/// The 22 message types of the Basic Profile and the two the vectors hold of the Advanced.
const COVERED: [&str; 24] = [
    "HELLO",
    "WELCOME",
    "ABORT",
    "CHALLENGE",
    "AUTHENTICATE",
    "GOODBYE",
    "ERROR",
    "PUBLISH",
    "PUBLISHED",
    "SUBSCRIBE",
    "SUBSCRIBED",
    "UNSUBSCRIBE",
    "UNSUBSCRIBED",
    "EVENT",
    "CALL",
    "RESULT",
    "REGISTER",
    "REGISTERED",
    "UNREGISTER",
    "UNREGISTERED",
    "INVOCATION",
    "YIELD",
    "CANCEL",
    "INTERRUPT",
];

#[test]
fn vectors_cover_every_message_type_in_every_serializer() {
    let samples = message_samples();
    let kinds: BTreeSet<&str> = samples.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, COVERED.into_iter().collect::<BTreeSet<_>>());
    for s in &samples {
        for ser in ALL {
            assert!(s.variants_in(ser).next().is_some(), "{}: no {ser:?} bytes", s.label);
        }
        assert!(s.expect.is_some() && s.error.is_none(), "{}", s.label);
    }
    assert_eq!(samples.len(), 30);
    assert_eq!(samples.iter().map(|s| s.variants.len()).sum::<usize>(), 113);
}

#[test]
fn vectors_decode_to_the_expected_fields() {
    for sample in message_samples() {
        let expect = sample.expect.as_ref().unwrap();
        for (ser, bytes) in &sample.variants {
            let m = Message::decode(*ser, bytes).unwrap_or_else(|e| panic!("{} ({ser:?}): {e}", sample.label));
            assert_eq!(m.code(), sample.code, "{}", sample.label);
            assert_eq!(m.name(), sample.kind, "{}", sample.label);
            assert_eq!(&fields(&m), expect, "{} ({ser:?})", sample.label);
            // Payloads stay in the serializer they arrived in.
            if let Some(p) = payload_of(&m) {
                for part in [&p.args, &p.kwargs].into_iter().flatten() {
                    assert_eq!(part.serializer(), *ser);
                }
            }
        }
    }
}

fn payload_of(m: &Message) -> Option<&Args> {
    match m {
        Message::Error { payload, .. }
        | Message::Publish { payload, .. }
        | Message::Event { payload, .. }
        | Message::Call { payload, .. }
        | Message::Result { payload, .. }
        | Message::Invocation { payload, .. }
        | Message::Yield { payload, .. } => Some(payload),
        _ => None,
    }
}

#[test]
fn vectors_round_trip_through_every_serializer() {
    for sample in message_samples() {
        for (from, bytes) in &sample.variants {
            let m = Message::decode(*from, bytes).unwrap();
            let want = fields(&m);
            for to in ALL {
                let encoded = m.encode(to).unwrap_or_else(|e| panic!("{} {from:?}->{to:?}: {e}", sample.label));
                let back = Message::decode(to, &encoded)
                    .unwrap_or_else(|e| panic!("{} {from:?}->{to:?}: {e} in {encoded:?}", sample.label));
                assert_eq!(fields(&back), want, "{} {from:?}->{to:?}", sample.label);
                if to == *from {
                    // Same serializer: payload bytes are copied, so the messages are equal.
                    assert_eq!(back, m, "{} {from:?}", sample.label);
                    assert_eq!(back.encode(to).unwrap(), encoded, "{} {from:?}: encoding is stable", sample.label);
                }
            }
        }
    }
}

/// Decoding a vector in one serializer and encoding it in another gives the message the
/// other serializer's vector holds (compared as values: key order may differ).
#[test]
fn vectors_transcode_to_the_other_serializers_vectors() {
    for sample in message_samples() {
        for (from, bytes) in &sample.variants {
            let m = Message::decode(*from, bytes).unwrap();
            for to in ALL {
                let transcoded = Message::decode(to, &m.encode(to).unwrap()).unwrap();
                for theirs in sample.variants_in(to) {
                    let theirs = Message::decode(to, theirs).unwrap();
                    assert_eq!(fields(&transcoded), fields(&theirs), "{} {from:?}->{to:?}", sample.label);
                }
            }
        }
    }
}

/// Where the sample has no dict of two or more keys (whose order is the encoder's choice),
/// our encoding is byte for byte one of the vector's variants, from any source serializer.
#[test]
fn vectors_encode_to_one_of_the_listed_variants() {
    fn multi_key_dict(v: &Value) -> bool {
        match v {
            Value::Dict(d) => d.len() > 1 || d.values().any(multi_key_dict),
            Value::List(l) => l.iter().any(multi_key_dict),
            _ => false,
        }
    }
    let mut exact = 0;
    for sample in message_samples() {
        if sample.expect.as_ref().unwrap().values().any(multi_key_dict) {
            continue;
        }
        for (from, bytes) in &sample.variants {
            let m = Message::decode(*from, bytes).unwrap();
            for to in ALL {
                let ours = m.encode(to).unwrap();
                assert!(
                    sample.variants_in(to).any(|v| *v == ours),
                    "{} {from:?}->{to:?}: {:?} is none of the vector's variants",
                    sample.label,
                    String::from_utf8_lossy(&ours)
                );
                exact += 1;
            }
        }
    }
    assert_eq!(exact, 279, "byte-exact encodings checked (24 samples)");
}

#[test]
fn json_to_msgpack_to_cbor_and_back_keeps_every_value() {
    for sample in message_samples() {
        let json = sample.variants_in(Serializer::Json).next().unwrap();
        let m = Message::decode(Serializer::Json, json).unwrap();
        let mp = Message::decode(Serializer::MsgPack, &m.encode(Serializer::MsgPack).unwrap()).unwrap();
        let cb = Message::decode(Serializer::Cbor, &mp.encode(Serializer::Cbor).unwrap()).unwrap();
        let js = Message::decode(Serializer::Json, &cb.encode(Serializer::Json).unwrap()).unwrap();
        for hop in [&mp, &cb, &js] {
            assert_eq!(fields(hop), *sample.expect.as_ref().unwrap(), "{}", sample.label);
        }
        // The msgpack hop holds msgpack payloads, transcoded from the JSON text.
        if let Some(p) = payload_of(&mp).and_then(|p| p.args.as_ref()) {
            assert_eq!(p.serializer(), Serializer::MsgPack);
        }
    }
}

/// E2EE samples carry a binary transparent payload where Arguments goes; the router
/// requires Arguments to be a list. EVENT_RECEIVED (337) is a provisional type it does not
/// speak.
#[test]
fn rejected_vectors_fail_with_the_exact_error() {
    let samples = rejected_samples();
    assert_eq!(samples.len(), 5);
    for sample in samples {
        let want = sample.error.clone().unwrap();
        for (ser, bytes) in &sample.variants {
            assert_eq!(Message::decode(*ser, bytes), Err(want.clone()), "{} ({ser:?})", sample.label);
        }
    }
}

#[test]
fn transparent_payload_in_place_of_arguments_is_rejected() {
    let want = DecodeError::Field { message: "EVENT", field: "Arguments", expected: "a list", got: "binary".into() };
    assert_eq!(want.to_string(), "EVENT.Arguments: expected a list, got binary");
    for ser in ALL {
        let f = frame(ser, vec![u(36), u(1), u(2), empty_dict(), Value::Bytes(vec![0x83, 0xa5])]);
        assert_eq!(Message::decode(ser, &f), Err(want.clone()), "{ser:?}");
    }
}

/// The suite's options/details validation samples are structurally valid WAMP (except the
/// ones with a transparent payload): the codec accepts them and leaves option semantics to
/// the router, which must reject the ones marked `router_rejects`.
#[test]
fn validation_samples_are_structurally_decoded() {
    let doc = read_json(&vectors_dir().join("_validation.json"));
    let samples = doc["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 67);
    let (mut accepted, mut refused) = (0, 0);
    for sample in samples {
        let wmsg = &sample["wmsg"];
        let items = wmsg.as_array().unwrap();
        let name = sample["message"].as_str().unwrap();
        for ser in ALL {
            let bytes = match ser {
                Serializer::Json => Bytes::from(serde_json::to_vec(wmsg).unwrap()),
                _ => frame(ser, items.iter().map(json_to_value).collect()),
            };
            let got = Message::decode(ser, &bytes);
            // A transparent payload, given as a plain string, where Arguments goes (index 4
            // in both EVENT and PUBLISH).
            if items.len() > 4 && items[4].is_string() {
                let want = DecodeError::Field {
                    message: if name == "EVENT" { "EVENT" } else { "PUBLISH" },
                    field: "Arguments",
                    expected: "a list",
                    got: "string".into(),
                };
                assert_eq!(got, Err(want), "{wmsg} ({ser:?})");
                refused += 1;
                continue;
            }
            let m = got.unwrap_or_else(|e| panic!("{wmsg} ({ser:?}): {e}"));
            assert_eq!(m.name(), name);
            let dict_field = if name == "EVENT" { "details" } else { "options" };
            let idx = if name == "EVENT" { 3 } else { 2 };
            assert_eq!(fields(&m)[dict_field], json_to_value(&items[idx]), "{wmsg}");
            accepted += 1;
        }
    }
    assert_eq!((accepted, refused), (3 * 61, 3 * 6));
}

// ---- malformed input -----------------------------------------------------------------

#[test]
fn input_that_is_not_a_message_array() {
    let cases: [(Serializer, &[u8]); 16] = [
        (Serializer::Json, b""),
        (Serializer::Json, b"   "),
        (Serializer::Json, b"{}"),
        (Serializer::Json, b"16"),
        (Serializer::Json, b"\"HELLO\""),
        (Serializer::Json, b"[]"),
        (Serializer::Json, b" [ ] "),
        (Serializer::MsgPack, b""),
        (Serializer::MsgPack, &[0x80]),
        (Serializer::MsgPack, &[0x10]),
        (Serializer::MsgPack, &[0x90]),
        (Serializer::MsgPack, &[0xa1, b'x']),
        (Serializer::Cbor, b""),
        (Serializer::Cbor, &[0xa0]),
        (Serializer::Cbor, &[0x10]),
        (Serializer::Cbor, &[0x80]),
    ];
    for (ser, bytes) in cases {
        assert_eq!(decode(ser, bytes), Err(DecodeError::NotAnArray), "{ser:?} {bytes:?}");
    }
    // An empty indefinite-length CBOR array too.
    assert_eq!(decode(Serializer::Cbor, &[0x9f, 0xff]), Err(DecodeError::NotAnArray));
    assert_eq!(DecodeError::NotAnArray.to_string(), "message is not a non-empty array");
}

#[test]
fn unknown_message_types() {
    for ser in ALL {
        for code in [999, 0, 7, 337, u64::MAX] {
            let f = frame(ser, vec![u(code), u(1), empty_dict()]);
            assert_eq!(Message::decode(ser, &f), Err(DecodeError::UnknownType(code)), "{ser:?}");
        }
        assert_eq!(DecodeError::UnknownType(999).to_string(), "unknown message type 999");
    }
}

#[test]
fn message_type_that_is_not_an_unsigned_integer() {
    for ser in ALL {
        for (code, kind) in
            [(s("1"), "string"), (Value::Float(1.0), "float"), (Value::Int(-1), "negative integer"), (Value::Null, "null")]
        {
            let f = frame(ser, vec![code, s("realm"), empty_dict()]);
            let want =
                DecodeError::Field { message: "message", field: "type", expected: "a non-negative integer", got: kind.into() };
            assert_eq!(Message::decode(ser, &f), Err(want), "{ser:?}");
        }
    }
}

/// The kind of one field of a message, for building valid and invalid instances.
#[derive(Clone, Copy, Debug)]
enum K {
    Id,
    /// The request id of UNSUBSCRIBED/UNREGISTERED: 0 is allowed (router-initiated).
    Id0,
    Str,
    Dict,
    Args,
    Kwargs,
}

struct Shape {
    name: &'static str,
    code: u64,
    /// The fields after the type code, in order, named as the decoder names them.
    fields: &'static [(&'static str, K)],
    min: usize,
    expected: &'static str,
}

/// Every message type: its fields and its arity (with the type code) as the spec has it.
const SHAPES: [Shape; 24] = [
    Shape { name: "HELLO", code: 1, fields: &[("Realm", K::Str), ("Details", K::Dict)], min: 3, expected: "3" },
    Shape { name: "WELCOME", code: 2, fields: &[("Session", K::Id), ("Details", K::Dict)], min: 3, expected: "3" },
    Shape { name: "ABORT", code: 3, fields: &[("Details", K::Dict), ("Reason", K::Str)], min: 3, expected: "3" },
    Shape { name: "CHALLENGE", code: 4, fields: &[("AuthMethod", K::Str), ("Extra", K::Dict)], min: 3, expected: "3" },
    Shape {
        name: "AUTHENTICATE",
        code: 5,
        fields: &[("Signature", K::Str), ("Extra", K::Dict)],
        min: 3,
        expected: "3",
    },
    Shape { name: "GOODBYE", code: 6, fields: &[("Details", K::Dict), ("Reason", K::Str)], min: 3, expected: "3" },
    Shape {
        name: "ERROR",
        code: 8,
        fields: &[
            ("REQUEST.Type", K::Id),
            ("REQUEST.Request", K::Id),
            ("Details", K::Dict),
            ("Error", K::Str),
            ("Arguments", K::Args),
            ("ArgumentsKw", K::Kwargs),
        ],
        min: 5,
        expected: "5 to 7",
    },
    Shape {
        name: "PUBLISH",
        code: 16,
        fields: &[
            ("Request", K::Id),
            ("Options", K::Dict),
            ("Topic", K::Str),
            ("Arguments", K::Args),
            ("ArgumentsKw", K::Kwargs),
        ],
        min: 4,
        expected: "4 to 6",
    },
    Shape { name: "PUBLISHED", code: 17, fields: &[("Request", K::Id), ("Publication", K::Id)], min: 3, expected: "3" },
    Shape {
        name: "SUBSCRIBE",
        code: 32,
        fields: &[("Request", K::Id), ("Options", K::Dict), ("Topic", K::Str)],
        min: 4,
        expected: "4",
    },
    Shape {
        name: "SUBSCRIBED",
        code: 33,
        fields: &[("Request", K::Id), ("Subscription", K::Id)],
        min: 3,
        expected: "3",
    },
    Shape {
        name: "UNSUBSCRIBE",
        code: 34,
        fields: &[("Request", K::Id), ("Subscription", K::Id)],
        min: 3,
        expected: "3",
    },
    Shape {
        name: "UNSUBSCRIBED",
        code: 35,
        fields: &[("Request", K::Id0), ("Details", K::Dict)],
        min: 2,
        expected: "2 or 3",
    },
    Shape {
        name: "EVENT",
        code: 36,
        fields: &[
            ("Subscription", K::Id),
            ("Publication", K::Id),
            ("Details", K::Dict),
            ("Arguments", K::Args),
            ("ArgumentsKw", K::Kwargs),
        ],
        min: 4,
        expected: "4 to 6",
    },
    Shape {
        name: "CALL",
        code: 48,
        fields: &[
            ("Request", K::Id),
            ("Options", K::Dict),
            ("Procedure", K::Str),
            ("Arguments", K::Args),
            ("ArgumentsKw", K::Kwargs),
        ],
        min: 4,
        expected: "4 to 6",
    },
    Shape { name: "CANCEL", code: 49, fields: &[("Request", K::Id), ("Options", K::Dict)], min: 3, expected: "3" },
    Shape {
        name: "RESULT",
        code: 50,
        fields: &[("Request", K::Id), ("Details", K::Dict), ("Arguments", K::Args), ("ArgumentsKw", K::Kwargs)],
        min: 3,
        expected: "3 to 5",
    },
    Shape {
        name: "REGISTER",
        code: 64,
        fields: &[("Request", K::Id), ("Options", K::Dict), ("Procedure", K::Str)],
        min: 4,
        expected: "4",
    },
    Shape {
        name: "REGISTERED",
        code: 65,
        fields: &[("Request", K::Id), ("Registration", K::Id)],
        min: 3,
        expected: "3",
    },
    Shape {
        name: "UNREGISTER",
        code: 66,
        fields: &[("Request", K::Id), ("Registration", K::Id)],
        min: 3,
        expected: "3",
    },
    Shape {
        name: "UNREGISTERED",
        code: 67,
        fields: &[("Request", K::Id0), ("Details", K::Dict)],
        min: 2,
        expected: "2 or 3",
    },
    Shape {
        name: "INVOCATION",
        code: 68,
        fields: &[
            ("Request", K::Id),
            ("Registration", K::Id),
            ("Details", K::Dict),
            ("Arguments", K::Args),
            ("ArgumentsKw", K::Kwargs),
        ],
        min: 4,
        expected: "4 to 6",
    },
    Shape { name: "INTERRUPT", code: 69, fields: &[("Request", K::Id), ("Options", K::Dict)], min: 3, expected: "3" },
    Shape {
        name: "YIELD",
        code: 70,
        fields: &[("Request", K::Id), ("Options", K::Dict), ("Arguments", K::Args), ("ArgumentsKw", K::Kwargs)],
        min: 3,
        expected: "3 to 5",
    },
];

fn valid(kind: K) -> Value {
    match kind {
        K::Id | K::Id0 => u(7),
        K::Str => s("com.example.x"),
        K::Dict | K::Kwargs => Value::Dict([("k".to_owned(), u(1))].into_iter().collect()),
        K::Args => list(vec![u(1), s("a")]),
    }
}

/// A valid instance of `shape` with every optional field present.
fn full(shape: &Shape) -> Vec<Value> {
    std::iter::once(u(shape.code)).chain(shape.fields.iter().map(|(_, k)| valid(*k))).collect()
}

#[test]
fn shapes_cover_every_message_and_full_instances_decode() {
    assert_eq!(SHAPES.iter().map(|s| s.name).collect::<BTreeSet<_>>(), COVERED.into_iter().collect());
    for ser in ALL {
        for shape in &SHAPES {
            let items = full(shape);
            for len in shape.min..=items.len() {
                let m = Message::decode(ser, &frame(ser, items[..len].to_vec()))
                    .unwrap_or_else(|e| panic!("{} with {len} elements ({ser:?}): {e}", shape.name));
                assert_eq!((m.name(), m.code()), (shape.name, shape.code));
                // What was decoded re-encodes to the same elements.
                let back = Message::decode(ser, &m.encode(ser).unwrap()).unwrap();
                assert_eq!(back, m);
            }
        }
    }
}

#[test]
fn wrong_arity_for_every_message_type() {
    for ser in ALL {
        for shape in &SHAPES {
            let mut items = full(shape);
            let max = items.len();
            let too_few = shape.min - 1;
            let want = |got| DecodeError::Arity { message: shape.name, expected: shape.expected, got };
            assert_eq!(Message::decode(ser, &frame(ser, items[..too_few].to_vec())), Err(want(too_few)), "{ser:?}");
            items.push(empty_dict());
            assert_eq!(Message::decode(ser, &frame(ser, items)), Err(want(max + 1)), "{ser:?}");
        }
        // The example of the brief, with its message text.
        let f = frame(ser, vec![u(32), u(1), empty_dict()]);
        let e = Message::decode(ser, &f).unwrap_err();
        assert_eq!(e, DecodeError::Arity { message: "SUBSCRIBE", expected: "4", got: 3 });
        assert_eq!(e.to_string(), "SUBSCRIBE: expected 4 elements, got 3");
    }
}

#[test]
fn wrong_field_type_for_every_field_of_every_message() {
    let mut checked = 0;
    for ser in ALL {
        for shape in &SHAPES {
            for (i, (field, kind)) in shape.fields.iter().enumerate() {
                let (bad, expected, got) = match kind {
                    K::Id | K::Id0 => (s("7"), "an integer id", "string"),
                    K::Str => (u(7), "a string", "integer"),
                    K::Dict => (list(vec![]), "a dict", "list"),
                    K::Args => (empty_dict(), "a list", "dict"),
                    K::Kwargs => (list(vec![]), "a dict", "list"),
                };
                let mut items = full(shape);
                items[i + 1] = bad;
                let want = DecodeError::Field { message: shape.name, field, expected, got: got.into() };
                assert_eq!(Message::decode(ser, &frame(ser, items)), Err(want), "{ser:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * SHAPES.iter().map(|s| s.fields.len()).sum::<usize>());
    let e =
        DecodeError::Field { message: "SUBSCRIBE", field: "Request", expected: "an integer id", got: "string".into() };
    assert_eq!(e.to_string(), "SUBSCRIBE.Request: expected an integer id, got string");
}

#[test]
fn ids_are_limited_to_2_pow_53() {
    for ser in ALL {
        for shape in &SHAPES {
            for (i, (field, kind)) in shape.fields.iter().enumerate() {
                let (min, expected) = match kind {
                    K::Id => (1, "an id in [1, 2^53]"),
                    K::Id0 => (0, "an id in [0, 2^53]"),
                    _ => continue,
                };
                let with = |id: Value| {
                    let mut items = full(shape);
                    items[i + 1] = id;
                    Message::decode(ser, &frame(ser, items))
                };
                assert!(with(u(MAX_ID)).is_ok(), "{} {field} = 2^53 ({ser:?})", shape.name);
                assert!(with(u(1)).is_ok(), "{} {field} = 1 ({ser:?})", shape.name);
                let outside = if min == 0 { vec![MAX_ID + 1, u64::MAX] } else { vec![0, MAX_ID + 1, u64::MAX] };
                if min == 0 {
                    assert!(with(u(0)).is_ok(), "{} {field} = 0 ({ser:?})", shape.name);
                }
                for big in outside {
                    let want = DecodeError::Field { message: shape.name, field, expected, got: big.to_string() };
                    assert_eq!(with(u(big)), Err(want), "{ser:?}");
                }
                let want =
                    DecodeError::Field { message: shape.name, field, expected: "an integer id", got: "negative integer".into() };
                assert_eq!(with(Value::Int(-1)), Err(want), "{ser:?}");
                let want =
                    DecodeError::Field { message: shape.name, field, expected: "an integer id", got: "float".into() };
                assert_eq!(with(Value::Float(7.0)), Err(want), "{ser:?}");
            }
        }
    }
    // The same over the wire as a JSON text with the number written out.
    let e = decode(Serializer::Json, b"[33, 9007199254740993, 1]").unwrap_err();
    assert_eq!(e.to_string(), "SUBSCRIBED.Request: expected an id in [1, 2^53], got 9007199254740993");
    let e = decode(Serializer::Json, b"[32, 0, {}, \"com.x\"]").unwrap_err();
    assert_eq!(e.to_string(), "SUBSCRIBE.Request: expected an id in [1, 2^53], got 0");
    assert!(decode(Serializer::Json, b"[33, 9007199254740992, 1]").is_ok());
}

fn published(ser: Serializer) -> Vec<u8> {
    frame(ser, vec![u(17), u(1), u(2)]).to_vec()
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut json = published(Serializer::Json);
    json.extend_from_slice(b" x");
    assert_malformed(decode(Serializer::Json, &json), Serializer::Json, "trailing characters");
    // Whitespace after the array is no trailing garbage.
    assert!(decode(Serializer::Json, b" [17,1,2] \n").is_ok());

    for ser in [Serializer::MsgPack, Serializer::Cbor] {
        for extra in [&[0x00u8][..], &[0xc0], &published(ser)] {
            let mut bytes = published(ser);
            bytes.extend_from_slice(extra);
            let want =
                DecodeError::Malformed { serializer: ser.name(), detail: "trailing bytes after the message".into() };
            assert_eq!(decode(ser, &bytes), Err(want), "{ser:?}");
        }
    }
    // Two JSON messages in one frame.
    let two = [published(Serializer::Json), published(Serializer::Json)].concat();
    assert_malformed(decode(Serializer::Json, &two), Serializer::Json, "trailing characters");
}

/// Every strict prefix of every vector is an error: MessagePack and CBOR items are
/// self-delimiting and a JSON array needs its closing bracket.
#[test]
fn truncated_input_is_rejected() {
    let mut checked = 0;
    for sample in message_samples().iter().chain(rejected_samples().iter()) {
        for (ser, bytes) in &sample.variants {
            for cut in 0..bytes.len() {
                let got = decode(*ser, &bytes[..cut]);
                if cut == 0 {
                    assert_eq!(got, Err(DecodeError::NotAnArray));
                } else {
                    match got {
                        Err(DecodeError::Malformed { serializer, .. }) => assert_eq!(serializer, ser.name()),
                        other => panic!("{} ({ser:?}) cut at {cut}: {other:?}", sample.label),
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 5000, "{checked}");
    // Lengths that promise more than the frame holds.
    let want = |ser: Serializer| DecodeError::Malformed {
        serializer: ser.name(),
        detail: "array length exceeds the message".into(),
    };
    assert_eq!(decode(Serializer::MsgPack, &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x11]), Err(want(Serializer::MsgPack)));
    assert_eq!(
        decode(Serializer::Cbor, &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x11]),
        Err(want(Serializer::Cbor))
    );
}

fn nested(depth: usize) -> Value {
    let mut v = s("leaf");
    for _ in 0..depth {
        v = list(vec![v]);
    }
    v
}

/// `[16, 1, {"x": <depth lists>}, "t"]`: deep nesting in a header dict.
fn deep_header(ser: Serializer, depth: usize) -> Bytes {
    let details = Value::Dict([("x".to_owned(), nested(depth))].into_iter().collect());
    frame(ser, vec![u(16), u(1), details, s("t")])
}

/// `[16, 1, {}, "t", <depth lists>]`: deep nesting in Arguments.
fn deep_args(ser: Serializer, depth: usize) -> Bytes {
    frame(ser, vec![u(16), u(1), empty_dict(), s("t"), nested(depth)])
}

fn args_of(m: &Message) -> &Payload {
    payload_of(m).unwrap().args.as_ref().unwrap()
}

/// The header of PUBLISH `[16, 1, {}, "t"]`: what the deep and invalid payloads below ride on.
const BARE_PUBLISH: RefusedHeader = RefusedHeader { code: 16, request: 1, request_type: 0, acknowledge: false };

fn header_error(message: &'static str, element: usize, problem: PayloadError) -> DecodeError {
    DecodeError::Header { message, element, problem }
}

fn payload_error(field: &'static str, problem: PayloadError) -> DecodeError {
    DecodeError::Payload { message: "PUBLISH", header: BARE_PUBLISH, field, problem }
}

const TOO_DEEP: PayloadError = PayloadError::TooDeep(64);

#[test]
fn deeply_nested_input_is_refused_by_every_serializer() {
    assert_eq!(TOO_DEEP.to_string(), "nesting deeper than 64 levels");
    for ser in ALL {
        // 1000 levels in a header dict: the message is malformed.
        let e = Message::decode(ser, &deep_header(ser, 1000)).unwrap_err();
        assert_eq!(e, header_error("PUBLISH", 2, TOO_DEEP), "{ser:?}");
        assert_eq!(e.to_string(), "PUBLISH element 2: nesting deeper than 64 levels");
        // 1000 levels in Arguments: the message is well-formed, its payload refused,
        // and the rest of it decoded so the router can answer.
        let e = Message::decode(ser, &deep_args(ser, 1000)).unwrap_err();
        assert_eq!(e, payload_error("Arguments", TOO_DEEP), "{ser:?}");
        assert_eq!(e.to_string(), "PUBLISH.Arguments: nesting deeper than 64 levels");
    }
    // Raw bytes, not built by our encoder: 10,000 nested one-element arrays, as sent by
    // the hostile client of issue 6 (20 KB of JSON).
    let mut mp = vec![0x95, 0x10, 0x01, 0x80, 0xa1, b't'];
    mp.extend(std::iter::repeat_n(0x91, 10_000));
    mp.push(0x01);
    let mut cb = vec![0x85, 0x10, 0x01, 0xa0, 0x61, b't'];
    cb.extend(std::iter::repeat_n(0x81, 10_000));
    cb.push(0x01);
    let js = format!("[16,1,{{}},\"t\",{}1{}]", "[".repeat(10_000), "]".repeat(10_000));
    for (ser, bytes) in [(Serializer::MsgPack, &mp[..]), (Serializer::Cbor, &cb[..]), (Serializer::Json, js.as_bytes())] {
        assert_eq!(decode(ser, bytes), Err(payload_error("Arguments", TOO_DEEP)), "{ser:?}");
    }
    // Deep ArgumentsKw after valid Arguments.
    let js = format!("[16,1,{{}},\"t\",[1],{}1{}]", "{\"k\":".repeat(100), "}".repeat(100));
    assert_eq!(decode(Serializer::Json, js.as_bytes()), Err(payload_error("ArgumentsKw", TOO_DEEP)));
    // An acknowledged one says so, for the router to answer it.
    let js = format!("[16,9,{{\"acknowledge\":true}},\"t\",{}]", "[".repeat(100) + &"]".repeat(100));
    let header = RefusedHeader { code: 16, request: 9, request_type: 0, acknowledge: true };
    assert_eq!(
        decode(Serializer::Json, js.as_bytes()),
        Err(DecodeError::Payload { message: "PUBLISH", header, field: "Arguments", problem: TOO_DEEP })
    );
}

/// `MAX_DEPTH` (64) levels of lists and dicts are accepted by every serializer, in a header
/// and in Arguments, and survive transcoding to every other serializer; one more is not.
#[test]
fn nesting_up_to_the_limit_is_accepted_by_every_serializer() {
    for ser in ALL {
        // The details dict is a level itself.
        let m = Message::decode(ser, &deep_header(ser, 63)).unwrap_or_else(|e| panic!("{ser:?}: {e}"));
        let m2 = Message::decode(ser, &deep_args(ser, 64)).unwrap_or_else(|e| panic!("{ser:?}: {e}"));
        assert_eq!(args_of(&m2).to_value(), Ok(nested(64)));
        for to in ALL {
            for m in [&m, &m2] {
                let back =
                    Message::decode(to, &m.encode(to).unwrap()).unwrap_or_else(|e| panic!("{ser:?}->{to:?}: {e}"));
                assert_eq!(fields(&back), fields(m));
            }
        }
        assert_eq!(Message::decode(ser, &deep_header(ser, 64)), Err(header_error("PUBLISH", 2, TOO_DEEP)), "{ser:?}");
        assert_eq!(
            Message::decode(ser, &deep_args(ser, 65)),
            Err(payload_error("Arguments", TOO_DEEP)),
            "{ser:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_refused_where_it_stands() {
    let ser = Serializer::MsgPack;
    let not_utf8 = PayloadError::Unrepresentable("a string is not valid UTF-8");
    // PUBLISH with topic = str8 of bytes ff fe.
    let topic = [0x94, 0x10, 0x01, 0x80, 0xa2, 0xff, 0xfe];
    assert_eq!(decode(ser, &topic), Err(header_error("PUBLISH", 3, not_utf8.clone())));
    // In a dict value of Options, and as a dict key.
    let option = [0x94, 0x10, 0x01, 0x81, 0xa1, b'k', 0xa1, 0xff, 0xa1, b't'];
    assert_eq!(decode(ser, &option), Err(header_error("PUBLISH", 2, not_utf8.clone())));
    let key = [0x94, 0x10, 0x01, 0x81, 0xa1, 0xff, 0xc3, 0xa1, b't'];
    assert_eq!(decode(ser, &key), Err(header_error("PUBLISH", 2, not_utf8.clone())));
    // In Arguments: refused at the door, before anyone must transcode it.
    let args = [0x95, 0x10, 0x01, 0x80, 0xa1, b't', 0x91, 0xa1, 0xff];
    assert_eq!(decode(ser, &args), Err(payload_error("Arguments", not_utf8.clone())));
    // CBOR the same way; JSON text must be UTF-8 as a whole.
    let cbor = [0x84, 0x10, 0x01, 0xa0, 0x62, 0xff, 0xfe];
    assert_eq!(decode(Serializer::Cbor, &cbor), Err(header_error("PUBLISH", 3, not_utf8.clone())));
    let cbor_args = [0x85, 0x10, 0x01, 0xa0, 0x61, b't', 0x81, 0x61, 0xff];
    assert_eq!(decode(Serializer::Cbor, &cbor_args), Err(payload_error("Arguments", not_utf8)));
    assert_malformed(decode(Serializer::Json, b"[16,1,{},\"\xff\xfe\"]"), Serializer::Json, "invalid utf-8");
    assert_malformed(decode(Serializer::Json, b"[16,1,{},\"t\",[\"\xff\"]]"), Serializer::Json, "invalid utf-8");
}

#[test]
fn dict_keys_must_be_strings() {
    let not_a_string = PayloadError::Unrepresentable("a dict key is not a string");
    // SUBSCRIBE with Options {1: true}.
    let mp = [0x94, 0x20, 0x01, 0x81, 0x01, 0xc3, 0xa1, b't'];
    assert_eq!(decode(Serializer::MsgPack, &mp), Err(header_error("SUBSCRIBE", 2, not_a_string.clone())));
    let cb = [0x84, 0x18, 0x20, 0x01, 0xa1, 0x01, 0xf5, 0x61, b't'];
    assert_eq!(decode(Serializer::Cbor, &cb), Err(header_error("SUBSCRIBE", 2, not_a_string.clone())));
    // A binary key is no string either, nor a tagged one.
    let mp = [0x94, 0x20, 0x01, 0x81, 0xc4, 0x01, b'k', 0xc3, 0xa1, b't'];
    assert_eq!(decode(Serializer::MsgPack, &mp), Err(header_error("SUBSCRIBE", 2, not_a_string.clone())));
    let cb = [0x84, 0x18, 0x20, 0x01, 0xa1, 0x41, b'k', 0xf5, 0x61, b't'];
    assert_eq!(decode(Serializer::Cbor, &cb), Err(header_error("SUBSCRIBE", 2, not_a_string.clone())));
    let cb = [0x84, 0x18, 0x20, 0x01, 0xa1, 0xc0, 0x61, b'k', 0xf5, 0x61, b't'];
    assert_eq!(decode(Serializer::Cbor, &cb), Err(header_error("SUBSCRIBE", 2, not_a_string.clone())));
    // In JSON an unquoted key is a syntax error.
    assert_malformed(decode(Serializer::Json, b"[32,1,{1:true},\"t\"]"), Serializer::Json, "key must be a string");
    // In Arguments: refused at the door.
    let mp = [0x95, 0x10, 0x01, 0x80, 0xa1, b't', 0x91, 0x81, 0x01, 0x02];
    assert_eq!(decode(Serializer::MsgPack, &mp), Err(payload_error("Arguments", not_a_string)));
}

#[test]
fn json_binary_strings_need_valid_base64() {
    let json = Serializer::Json;
    let bad = PayloadError::Unrepresentable("a binary string (\\u0000 + base64) holds invalid base64");
    // In a header dict.
    assert_eq!(decode(json, br#"[1,"realm",{"k":"\u0000!!not base64"}]"#), Err(header_error("HELLO", 2, bad.clone())));
    // Where a string is expected: bad base64 is refused, good base64 is binary, not a string.
    assert_eq!(decode(json, br#"[1,"\u0000%%",{}]"#), Err(header_error("HELLO", 1, bad.clone())));
    let want = DecodeError::Field { message: "HELLO", field: "Realm", expected: "a string", got: "binary".into() };
    assert_eq!(decode(json, br#"[1,"\u0000AAEC/w==",{}]"#), Err(want));
    // Non-canonical padding is refused as well; an escaped slash is fine.
    assert_eq!(decode(json, br#"[1,"r",{"k":"\u0000AAEC/w"}]"#), Err(header_error("HELLO", 2, bad.clone())));
    assert!(decode(json, br#"[1,"r",{"k":"\u0000AAEC\/w=="}]"#).is_ok());
    // A key is never binary.
    assert!(decode(json, br#"[1,"r",{"\u0000!!":1}]"#).is_ok());
    // In Arguments: refused at the door, before a MessagePack peer must receive it.
    assert_eq!(decode(json, br#"[16,1,{},"t",["\u0000***"]]"#), Err(payload_error("Arguments", bad)));
}

#[test]
fn lone_surrogates_and_nul_leading_strings_are_not_representable() {
    let lone = PayloadError::Unrepresentable("a string holds a lone UTF-16 surrogate escape");
    for text in [r#"["\ud800"]"#, r#"["\udc00"]"#, r#"["\ud800\u0041"]"#, r#"["x\ud800"]"#] {
        let frame = format!(r#"[16,1,{{}},"t",{text}]"#);
        assert_eq!(
            decode(Serializer::Json, frame.as_bytes()),
            Err(payload_error("Arguments", lone.clone())),
            "{text}"
        );
    }
    assert!(decode(Serializer::Json, br#"[16,1,{},"t",["\ud83d\ude00"]]"#).is_ok(), "a surrogate pair is one character");
    // A MessagePack or CBOR string starting with U+0000 would read as binary in JSON.
    let nul = PayloadError::Unrepresentable("a string starts with U+0000, which JSON reads as binary");
    let mp = [0x95, 0x10, 0x01, 0x80, 0xa1, b't', 0x91, 0xa2, 0x00, b'x'];
    assert_eq!(decode(Serializer::MsgPack, &mp), Err(payload_error("Arguments", nul.clone())));
    let cb = [0x85, 0x10, 0x01, 0xa0, 0x61, b't', 0x81, 0x62, 0x00, b'x'];
    assert_eq!(decode(Serializer::Cbor, &cb), Err(payload_error("Arguments", nul)));
    // U+0000 later in a string is an ordinary character.
    let mp = [0x95, 0x10, 0x01, 0x80, 0xa1, b't', 0x91, 0xa2, b'x', 0x00];
    assert!(decode(Serializer::MsgPack, &mp).is_ok());
}

#[test]
fn msgpack_extensions_and_cbor_simple_values_are_not_representable() {
    let mp = [0x95, 0x10, 0x01, 0x80, 0xa1, b't', 0x91, 0xd4, 0x01, 0x00];
    let ext = PayloadError::Unrepresentable("extension types are not supported");
    assert_eq!(decode(Serializer::MsgPack, &mp), Err(payload_error("Arguments", ext)));
    let cb = [0x85, 0x10, 0x01, 0xa0, 0x61, b't', 0x81, 0xf8, 0x20];
    let simple = PayloadError::Unrepresentable("CBOR simple values are not supported");
    assert_eq!(decode(Serializer::Cbor, &cb), Err(payload_error("Arguments", simple)));
    // Below -2^63 is no integer every serializer has.
    let cb = [0x85, 0x10, 0x01, 0xa0, 0x61, b't', 0x81, 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0];
    let range = PayloadError::Unrepresentable("an integer is below -2^63");
    assert_eq!(decode(Serializer::Cbor, &cb), Err(payload_error("Arguments", range)));
    // Half floats, undefined and tags are fine: 1.5 (f16), undefined, tag 1 (epoch) 0.
    let cb = [0x85, 0x10, 0x01, 0xa0, 0x61, b't', 0x83, 0xf9, 0x3e, 0x00, 0xf7, 0xc1, 0x00];
    let m = decode(Serializer::Cbor, &cb).unwrap();
    assert_eq!(args_of(&m).to_value(), Ok(list(vec![Value::Float(1.5), Value::Null, u(0)])));
}

/// The spec's binary conversion: JSON "\u0000"+base64 is a byte string in MessagePack and
/// CBOR, and comes back as the same JSON text.
#[test]
fn binary_values_transcode_between_json_and_binary_serializers() {
    let text = br#"[16,1,{"b":"\u0000AAEC/w=="},"t",["\u0000AAEC/w=="],{"k":"\u0000"}]"#;
    let m = decode(Serializer::Json, text).unwrap();
    let bin = Value::Bytes(vec![0, 1, 2, 255]);
    assert_eq!(fields(&m)["options"], Value::Dict([("b".to_owned(), bin.clone())].into_iter().collect()));
    assert_eq!(fields(&m)["args"], list(vec![bin.clone()]));
    assert_eq!(fields(&m)["kwargs"], Value::Dict([("k".to_owned(), Value::Bytes(vec![]))].into_iter().collect()));
    for ser in [Serializer::MsgPack, Serializer::Cbor] {
        let other = Message::decode(ser, &m.encode(ser).unwrap()).unwrap();
        assert_eq!(fields(&other), fields(&m));
        let back = other.encode(Serializer::Json).unwrap();
        assert_eq!(&back[..], &text[..], "{ser:?}");
    }
}

/// Found by the decode_json fuzz target: serde_json's default float parser can be one ULP
/// off ("7e62" read as 7.000000000000001e62), so a float changed every time a JSON message
/// was decoded. The crate enables serde_json's `float_roundtrip` for exact parsing.
#[test]
fn json_floats_are_read_exactly_and_round_trip() {
    for text in ["7e62", "70e61", "0.1", "2.2250738585072014e-308", "1.7976931348623157e308", "-5e-324", "123456.789e3"]
    {
        let want: f64 = text.parse().unwrap();
        let frame = format!("[2,7,{{\"k\":{text}}}]");
        let m = decode(Serializer::Json, frame.as_bytes()).unwrap();
        let k = Value::Dict([("k".to_owned(), Value::Float(want))].into_iter().collect());
        assert_eq!(fields(&m)["details"], k, "{text}");
        for to in ALL {
            let back = Message::decode(to, &m.encode(to).unwrap()).unwrap();
            assert_eq!(back, m, "{text} via {to:?}");
        }
        // In a payload transcoded to MessagePack.
        let frame = format!("[50,1,{{}},[{text}]]");
        let m = decode(Serializer::Json, frame.as_bytes()).unwrap();
        let mp = Message::decode(Serializer::MsgPack, &m.encode(Serializer::MsgPack).unwrap()).unwrap();
        assert_eq!(args_of(&mp).to_value(), Ok(list(vec![Value::Float(want)])), "{text}");
    }
}

// ---- fuzz seeds ----------------------------------------------------------------------

/// Writes every vector's bytes (accepted and rejected samples, and the validation samples
/// encoded in each serializer) into `fuzz/corpus/<target>/`, and the same messages framed
/// for RawSocket into `fuzz/corpus/rawsocket_codec/`.
#[test]
#[ignore = "writes files; run explicitly to seed the fuzz corpus"]
fn write_fuzz_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut seeds: Vec<(Serializer, Bytes)> = Vec::new();
    for sample in message_samples().into_iter().chain(rejected_samples()) {
        seeds.extend(sample.variants);
    }
    let doc = read_json(&vectors_dir().join("_validation.json"));
    for sample in doc["samples"].as_array().unwrap() {
        for ser in ALL {
            let items = sample["wmsg"].as_array().unwrap().iter().map(json_to_value).collect();
            seeds.push((ser, frame(ser, items)));
        }
    }
    for ser in ALL {
        for shape in &SHAPES {
            seeds.push((ser, frame(ser, full(shape))));
        }
    }
    let mut written = BTreeMap::<&str, usize>::new();
    let mut put = |target: &'static str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        // Content-addressed names (FNV-1a), like libFuzzer's, so reruns add nothing twice.
        let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
        std::fs::write(dir.join(format!("seed-{h:016x}")), bytes).unwrap();
        *written.entry(target).or_default() += 1;
    };
    let mut stream = Vec::new();
    for (ser, bytes) in &seeds {
        let target = match ser {
            Serializer::Json => "decode_json",
            Serializer::MsgPack => "decode_msgpack",
            Serializer::Cbor => "decode_cbor",
        };
        put(target, bytes);
        // rawsocket_codec input: one control byte (serializer = byte % 3, read chunk size =
        // byte / 3, 0 for all at once), then the stream of frames.
        let header = [0u8, (bytes.len() >> 16) as u8, (bytes.len() >> 8) as u8, bytes.len() as u8];
        let one = [&[ser.index() as u8][..], &header, bytes].concat();
        put("rawsocket_codec", &one);
        stream.extend_from_slice(&header);
        stream.extend_from_slice(bytes);
    }
    // Many messages, a PING and a PONG in one stream, read 7 bytes at a time.
    stream.extend_from_slice(&[1, 0, 0, 2, b'h', b'i', 2, 0, 0, 0]);
    put("rawsocket_codec", &[&[7u8 * 3][..], &stream].concat());
    eprintln!("fuzz seeds written under {}: {written:?}", root.display());
}
