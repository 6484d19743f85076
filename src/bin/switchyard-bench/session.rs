//! A WAMP client session for the load generator: HELLO/WELCOME (anonymous, or
//! WAMP-Ticket with CHALLENGE/AUTHENTICATE), SUBSCRIBE, REGISTER, each waiting for its
//! reply, built on the crate's own codecs (`Message::encode`/`decode`). Once set up, a
//! workload takes the session's `Sender` and `Receiver` apart and drives them itself.

use std::time::{Duration, Instant};

use switchyard::wamp::{dict, Args, Dict, Message, Payload, Serializer, Value};

use crate::conn::{self, ConnectOptions, Receiver, Sender, Target};

/// How long setup steps (connect, join, subscribe) may take, even on a loaded router.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Session {
    pub tx: Sender,
    pub rx: Receiver,
    pub id: u64,
    /// HELLO sent → WELCOME received (CHALLENGE and AUTHENTICATE included).
    pub join_time: Duration,
    next_request: u64,
}

/// Who a session joins as.
#[derive(Clone, Debug, Default)]
pub enum Identity {
    /// No authentication: the realm's anonymous role.
    #[default]
    Anonymous,
    /// WAMP-Ticket: a static principal's secret (with its authid), or a user's API
    /// token (authid optional: the router takes it from the token). Such a session also
    /// announces `subscription_revocation` and `registration_revocation`, as a client of
    /// a realm whose permissions change must.
    Ticket { authid: Option<String>, ticket: String },
}

impl Identity {
    /// `AUTHID:TICKET` (a static principal) or a bare token.
    pub fn parse(s: &str) -> Identity {
        match s.split_once(':') {
            Some((authid, ticket)) if !authid.is_empty() => Identity::Ticket { authid: Some(authid.to_owned()), ticket: ticket.to_owned() },
            _ => Identity::Ticket { authid: None, ticket: s.to_owned() },
        }
    }

    pub fn token(token: &str) -> Identity {
        Identity::Ticket { authid: None, ticket: token.to_owned() }
    }
}

impl Session {
    /// Connects and joins `realm` anonymously, announcing the four client roles.
    pub async fn open(target: &Target, opts: &ConnectOptions, realm: &str) -> Result<Session, String> {
        Session::open_as(target, opts, realm, &Identity::Anonymous).await
    }

    /// Connects and joins `realm` as `who`.
    pub async fn open_as(target: &Target, opts: &ConnectOptions, realm: &str, who: &Identity) -> Result<Session, String> {
        tokio::time::timeout(SETUP_TIMEOUT, Session::open_inner(target, opts, realm, who))
            .await
            .map_err(|_| format!("no WELCOME within {} s", SETUP_TIMEOUT.as_secs()))?
    }

    async fn open_inner(target: &Target, opts: &ConnectOptions, realm: &str, who: &Identity) -> Result<Session, String> {
        let (tx, rx) = conn::connect(target, opts).await?;
        let mut s = Session { tx, rx, id: 0, join_time: Duration::ZERO, next_request: 0 };
        s.join(realm, who).await?;
        Ok(s)
    }

    /// HELLO (and for a ticket CHALLENGE/AUTHENTICATE) until WELCOME.
    async fn join(&mut self, realm: &str, who: &Identity) -> Result<(), String> {
        let feature = |name: &str, on: bool| {
            if on {
                Value::Dict(dict([("features", Value::Dict(dict([(name, true.into())])))]))
            } else {
                Value::Dict(Dict::new())
            }
        };
        let revocable = matches!(who, Identity::Ticket { .. });
        let roles = dict([
            ("publisher", Value::Dict(Dict::new())),
            ("subscriber", feature("subscription_revocation", revocable)),
            ("caller", Value::Dict(Dict::new())),
            ("callee", feature("registration_revocation", revocable)),
        ]);
        let mut details = dict([("roles", Value::Dict(roles))]);
        if let Identity::Ticket { authid, .. } = who {
            details.insert("authmethods".into(), Value::List(vec!["ticket".into()]));
            if let Some(a) = authid {
                details.insert("authid".into(), a.as_str().into());
            }
        }
        let start = Instant::now();
        self.tx.send(&Message::Hello { realm: realm.to_owned(), details })?;
        loop {
            match self.recv().await? {
                Message::Welcome { session, .. } => {
                    self.id = session;
                    self.join_time = start.elapsed();
                    return Ok(());
                }
                Message::Challenge { authmethod, .. } => match who {
                    Identity::Ticket { ticket, .. } if authmethod == "ticket" => {
                        self.tx.send(&Message::Authenticate { signature: ticket.clone(), extra: Dict::new() })?
                    }
                    _ => return Err(format!("unexpected CHALLENGE for {authmethod}")),
                },
                Message::Abort { reason, details } => return Err(format!("ABORT {reason} {details:?}")),
                other => return Err(format!("expected WELCOME, got {}", other.name())),
            }
        }
    }

    pub fn serializer(&self) -> Serializer {
        self.tx.serializer
    }

    pub fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// The next message, decoded.
    pub async fn recv(&mut self) -> Result<Message, String> {
        let frame = self.rx.next().await.map_err(|e| format!("read: {e}"))?.ok_or("the router closed the connection")?;
        Message::decode(self.serializer(), &frame).map_err(|e| format!("cannot decode a message from the router: {e}"))
    }

    pub async fn subscribe(&mut self, topic: &str) -> Result<u64, String> {
        let request = self.request();
        self.tx.send(&Message::Subscribe { request, options: Dict::new(), topic: topic.to_owned() })?;
        let reply = tokio::time::timeout(SETUP_TIMEOUT, self.recv()).await.map_err(|_| "no SUBSCRIBED in time".to_owned())??;
        match reply {
            Message::Subscribed { request: r, subscription } if r == request => Ok(subscription),
            Message::Error { error, .. } => Err(format!("SUBSCRIBE {topic}: {error}")),
            other => Err(format!("SUBSCRIBE {topic}: expected SUBSCRIBED, got {}", other.name())),
        }
    }

    pub async fn register(&mut self, procedure: &str) -> Result<u64, String> {
        self.register_with(procedure, Dict::new()).await
    }

    /// REGISTER with options (`invoke` for a shared registration, `match`).
    pub async fn register_with(&mut self, procedure: &str, options: Dict) -> Result<u64, String> {
        let request = self.request();
        self.tx.send(&Message::Register { request, options, procedure: procedure.to_owned() })?;
        let reply = tokio::time::timeout(SETUP_TIMEOUT, self.recv()).await.map_err(|_| "no REGISTERED in time".to_owned())??;
        match reply {
            Message::Registered { request: r, registration } if r == request => Ok(registration),
            Message::Error { error, .. } => Err(format!("REGISTER {procedure}: {error}")),
            other => Err(format!("REGISTER {procedure}: expected REGISTERED, got {}", other.name())),
        }
    }
}

/// Arguments `[ "xxx…" ]` whose encoding is `bytes` long (as near as the serializer allows).
pub fn padding_args(serializer: Serializer, bytes: usize) -> Args {
    let mut n = bytes.saturating_sub(4);
    loop {
        let p = Payload::from_value(serializer, &Value::List(vec![Value::Str("x".repeat(n))]));
        if p.len() <= bytes || n == 0 {
            return Args { args: Some(p), kwargs: None };
        }
        n -= 1;
    }
}

/// Reads the connection of a publisher that expects nothing back (it publishes without
/// acknowledgement): whatever arrives, and the router closing it, is an error.
pub async fn watch_silent_publisher(mut rx: Receiver, ser: Serializer, errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    loop {
        match rx.next().await {
            Ok(Some(frame)) => {
                let what = Message::decode(ser, &frame).map(|m| describe_error(&m)).unwrap_or_else(|e| e.to_string());
                errors.lock().unwrap().push(format!("publisher received {what}"));
            }
            Ok(None) | Err(_) => {
                errors.lock().unwrap().push("the router closed the publisher's connection".into());
                return;
            }
        }
    }
}

/// A short, human-readable form of an ERROR message.
pub fn describe_error(msg: &Message) -> String {
    match msg {
        Message::Error { request_type, error, payload, .. } => {
            let text = payload
                .args
                .as_ref()
                .and_then(|p| p.to_value().ok())
                .and_then(|v| v.as_list().and_then(|l| l.first().and_then(|x| x.as_str().map(str::to_owned))));
            match text {
                Some(t) => format!("ERROR for {}: {error} ({t})", Message::name_of(*request_type)),
                None => format!("ERROR for {}: {error}", Message::name_of(*request_type)),
            }
        }
        other => format!("unexpected {}", other.name()),
    }
}

/// Sessions connected at once while setting up subscribers.
const SETUP_CONCURRENCY: usize = 50;

/// Opens `n` sessions subscribed to `topic`, at most `SETUP_CONCURRENCY` connecting at
/// once (a burst of thousands of handshakes would measure the accept queue, not the
/// workload).
/// Each joins as the next of the `--tokens` users (anonymous without).
pub async fn open_subscribers(ctx: &crate::Ctx, topic: &str, n: usize) -> Result<Vec<Session>, String> {
    let mut setup = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
    for i in 0..n {
        let (target, opts, realm, topic, gate, who) =
            (ctx.target.clone(), ctx.opts(None, 16 * 1024), ctx.realm.clone(), topic.to_owned(), gate.clone(), ctx.user(i));
        setup.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut s = Session::open_as(&target, &opts, &realm, &who).await?;
            s.subscribe(&topic).await?;
            Ok::<Session, String>(s)
        });
    }
    let mut sessions = Vec::with_capacity(n);
    while let Some(r) = setup.join_next().await {
        sessions.push(r.map_err(|e| e.to_string())??);
    }
    Ok(sessions)
}

/// Waits until `done` holds for the current `progress`, or until `progress` has not
/// changed for `patience` (what is still missing then is reported as loss, not waited
/// for forever).
pub async fn wait_for_drain<T: PartialEq>(progress: impl Fn() -> T, done: impl Fn(&T) -> bool, patience: std::time::Duration) {
    let mut last = progress();
    let mut last_change = std::time::Instant::now();
    while !done(&last) {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let now = progress();
        if now != last {
            last = now;
            last_change = std::time::Instant::now();
        } else if last_change.elapsed() > patience {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_from_the_command_line() {
        let static_principal = Identity::parse("controller-1:secret:with:colons");
        assert!(matches!(static_principal, Identity::Ticket { authid: Some(a), ticket: t } if a == "controller-1" && t == "secret:with:colons"));
        assert!(matches!(Identity::parse("sy_token"), Identity::Ticket { authid: None, ticket: t } if t == "sy_token"));
        assert!(matches!(Identity::parse(":sy_token"), Identity::Ticket { authid: None, ticket: t } if t == ":sy_token"));
    }
}
