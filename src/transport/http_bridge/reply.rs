//! The bridge's answers: `{"publication": id}`, `{"args": [...], "kwargs": {...}}`, and
//! for every failure `{"error": "<wamp uri>", "message": "..."}` (with the ERROR's
//! `args`/`kwargs` when a call was answered with one), under the HTTP status its URI
//! maps to (docs/http-bridge.md keeps the table; `status` is its code).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::router::bridge::{BridgeError, CallResult};

/// The HTTP status of a failure.
pub fn status(e: &BridgeError) -> StatusCode {
    match e {
        // Over a rate, or throttled after failed authentications: try again later.
        _ if e.retry_after().is_some() => StatusCode::TOO_MANY_REQUESTS,
        // The credential could not be checked (the token database is unreachable).
        _ if e.credential_unchecked() => StatusCode::SERVICE_UNAVAILABLE,
        BridgeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => status_of(e.uri()),
    }
}

/// The HTTP status a WAMP error URI maps to. Any URI not named here is an application
/// error of the callee (or its `wamp.error.runtime_error`): 502, the upstream failed.
pub fn status_of(uri: &str) -> StatusCode {
    match uri {
        "wamp.error.invalid_argument" | "wamp.error.invalid_uri" | "wamp.error.protocol_violation" => StatusCode::BAD_REQUEST,
        "wamp.error.authentication_failed" | "wamp.error.no_auth_method" => StatusCode::UNAUTHORIZED,
        "wamp.error.not_authorized" => StatusCode::FORBIDDEN,
        "wamp.error.no_such_realm"
        | "wamp.error.no_such_procedure"
        | "wamp.error.no_such_registration"
        | "wamp.error.no_such_subscription"
        | "wamp.error.no_such_session" => StatusCode::NOT_FOUND,
        "wamp.error.payload_size_exceeded" => StatusCode::PAYLOAD_TOO_LARGE,
        "wamp.error.rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "wamp.error.feature_not_supported" => StatusCode::NOT_IMPLEMENTED,
        "wamp.error.authorization_failed" | "wamp.error.unavailable" | "wamp.error.limit_reached" => StatusCode::SERVICE_UNAVAILABLE,
        "wamp.error.timeout" | "wamp.error.canceled" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `200 {"publication": id}`.
pub fn published(publication: u64) -> Response {
    json(StatusCode::OK, format!(r#"{{"publication":{publication}}}"#).into_bytes())
}

/// `200 {"args": [...], "kwargs": {...}}`: the RESULT's payload as it came (JSON), an
/// empty list or object where it had none.
pub fn result(r: &CallResult) -> Response {
    let args = r.args.as_ref().map_or(&b"[]"[..], |p| p.bytes());
    let kwargs = r.kwargs.as_ref().map_or(&b"{}"[..], |p| p.bytes());
    let mut body = Vec::with_capacity(args.len() + kwargs.len() + 20);
    body.extend_from_slice(br#"{"args":"#);
    body.extend_from_slice(args);
    body.extend_from_slice(br#","kwargs":"#);
    body.extend_from_slice(kwargs);
    body.push(b'}');
    json(StatusCode::OK, body)
}

/// `408`: the body did not arrive within `frame_timeout_ms`.
pub fn body_timeout(limit: std::time::Duration) -> Response {
    let message = format!("the request body did not arrive within {} ms", limit.as_millis());
    json(StatusCode::REQUEST_TIMEOUT, serde_json::json!({ "error": "wamp.error.timeout", "message": message }).to_string().into_bytes())
}

/// The failure's JSON body, under its status, with `Retry-After` when a retry has a
/// time and `WWW-Authenticate` when credentials are wanted.
pub fn failed(e: &BridgeError) -> Response {
    let status = status(e);
    let mut body = serde_json::json!({ "error": e.uri(), "message": e.to_string() }).to_string().into_bytes();
    if let BridgeError::Answered { payload, .. } = e {
        // Appended as the raw JSON the ERROR carried: `"args":[...]`, `"kwargs":{...}`.
        body.pop();
        for (key, part) in [("args", &payload.args), ("kwargs", &payload.kwargs)] {
            if let Some(p) = part {
                body.extend_from_slice(format!(r#","{key}":"#).as_bytes());
                body.extend_from_slice(p.bytes());
            }
        }
        body.push(b'}');
    }
    let mut r = json(status, body);
    if let Some(wait) = e.retry_after() {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::AuthError;
    use crate::router::error::WampError;
    use crate::wamp::{Args, Payload, Serializer};

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn json_payload(text: &'static str) -> Option<Payload> {
        Some(Payload::from_encoded(Serializer::Json, bytes::Bytes::from_static(text.as_bytes())))
    }

    #[test]
    fn the_status_table() {
        let table = [
            ("wamp.error.invalid_argument", 400),
            ("wamp.error.invalid_uri", 400),
            ("wamp.error.authentication_failed", 401),
            ("wamp.error.no_auth_method", 401),
            ("wamp.error.not_authorized", 403),
            ("wamp.error.no_such_realm", 404),
            ("wamp.error.no_such_procedure", 404),
            ("wamp.error.payload_size_exceeded", 413),
            ("wamp.error.rate_limited", 429),
            ("wamp.error.feature_not_supported", 501),
            ("wamp.error.runtime_error", 502),
            ("com.example.error.not_found", 502),
            ("wamp.error.authorization_failed", 503),
            ("wamp.error.unavailable", 503),
            ("wamp.error.timeout", 504),
            ("wamp.error.canceled", 504),
        ];
        for (uri, code) in table {
            assert_eq!(status_of(uri).as_u16(), code, "{uri}");
        }
        let throttled = BridgeError::from(WampError::Auth(AuthError::Throttled { retry_after_s: 3 }));
        assert_eq!(status(&throttled), StatusCode::TOO_MANY_REQUESTS);
        let down = BridgeError::from(WampError::Auth(AuthError::Unavailable("db down".into())));
        assert_eq!((status(&down), down.uri()), (StatusCode::SERVICE_UNAVAILABLE, "wamp.error.authentication_failed"));
    }

    #[tokio::test]
    async fn bodies() {
        assert_eq!(body(published(42)).await, r#"{"publication":42}"#);
        let r = result(&Args { args: json_payload("[1,2]"), kwargs: None });
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body(r).await, r#"{"args":[1,2],"kwargs":{}}"#);
        assert_eq!(body(result(&Args::default())).await, r#"{"args":[],"kwargs":{}}"#);

        let answered = BridgeError::Answered { uri: "com.x.oops".into(), payload: Args { args: json_payload(r#"["no"]"#), kwargs: json_payload(r#"{"n":1}"#) } };
        let r = failed(&answered);
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(body(r).await, r#"{"error":"com.x.oops","message":"no","args":["no"],"kwargs":{"n":1}}"#);

        let limited = BridgeError::RateLimited { message: "slow down".into(), retry_after: Duration::from_millis(1500) };
        let r = failed(&limited);
        assert_eq!((r.status(), &r.headers()[header::RETRY_AFTER]), (StatusCode::TOO_MANY_REQUESTS, &HeaderValue::from(2u64)));
        assert_eq!(body(r).await, r#"{"error":"wamp.error.rate_limited","message":"slow down"}"#);

        let r = failed(&BridgeError::from(WampError::Auth(AuthError::Failed("invalid ticket".into()))));
        assert_eq!((r.status(), &r.headers()[header::WWW_AUTHENTICATE]), (StatusCode::UNAUTHORIZED, &HeaderValue::from_static("Bearer")));
    }
}
