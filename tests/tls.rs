//! TLS on the WebSocket and RawSocket ports, driven by real clients (tokio-tungstenite
//! and a RawSocket client over tokio-rustls) that trust only a CA made in the test:
//! events cross both transports, a silent TLS peer meets the handshake deadline, a
//! plain client on a TLS port is refused without disturbing anyone, and SIGHUP on the
//! real binary swaps the certificate for new connections while an open session goes on;
//! refusals at the limit come over TLS, and the environment can turn TLS on.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use serde_json::{json, Value};
use switchyard::config::{Config, ReplayConfig, TlsConfig};
use switchyard::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const TIMEOUT: Duration = Duration::from_secs(5);

/// A test CA and the server certificates it issues.
struct Pki {
    ca: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A server certificate: its PEM files' contents and its DER, to recognise it.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Switchyard test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap().der().clone();
        Pki { ca, issuer: Issuer::new(params, key) }
    }

    /// A certificate for localhost and 127.0.0.1 with serial `serial`.
    fn leaf(&self, serial: u64) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }

    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

/// A temp folder with `cert.pem` and `key.pem`, removed at the end.
struct Files(PathBuf);

impl Files {
    fn new(test: &str, leaf: &Leaf) -> Files {
        let dir = std::env::temp_dir().join(format!("switchyard-tls-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let files = Files(dir);
        files.install(leaf);
        files
    }

    /// Replaces the files the way a certificate renewal does: write aside, rename over.
    fn install(&self, leaf: &Leaf) {
        self.replace("cert.pem", &leaf.cert_pem);
        self.replace("key.pem", &leaf.key_pem);
    }

    fn replace(&self, name: &str, text: &str) {
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.0.join(name)).unwrap();
    }

    fn tls(&self) -> TlsConfig {
        TlsConfig::both(self.0.join("cert.pem"), self.0.join("key.pem"))
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A router with TLS on both TCP ports and `files`' certificate, adjusted by `tweak`.
async fn start(files: &Files, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        rawsocket: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(files.tls()),
        ..Config::default()
    };
    // No history, so that EVENT details are exactly what the publisher asked for.
    cfg.realms[0].replay = ReplayConfig::none();
    tweak(&mut cfg);
    Server::start(&cfg).await.expect("router starts")
}

async fn tls_connect(addr: SocketAddr, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(TIMEOUT, connector.connect(name, tcp)).await.expect("TLS handshake in time").expect("TLS handshake")
}

fn peer_certificate(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec()
}

/// A WAMP session in JSON over either transport.
enum Wamp {
    Ws(Box<WebSocketStream<TlsStream<TcpStream>>>),
    Raw(Box<TlsStream<TcpStream>>),
}

impl Wamp {
    /// wss:// to `addr` (ALPN http/1.1); returns the session and the server's certificate.
    async fn ws(addr: SocketAddr, pki: &Pki) -> (Wamp, Vec<u8>) {
        let tls = tls_connect(addr, &pki.client(&[b"http/1.1"])).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let der = peer_certificate(&tls);
        let mut req = format!("wss://localhost:{}/ws", addr.port()).into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
        let (ws, resp) = tokio_tungstenite::client_async(req, tls).await.expect("WebSocket upgrade");
        assert_eq!(resp.headers()["sec-websocket-protocol"], "wamp.2.json");
        (Wamp::Ws(Box::new(ws)), der)
    }

    /// RawSocket over TLS to `addr`, JSON, 16 MiB.
    async fn raw(addr: SocketAddr, pki: &Pki) -> (Wamp, Vec<u8>) {
        let mut tls = tls_connect(addr, &pki.client(&[])).await;
        let der = peer_certificate(&tls);
        tls.write_all(&[0x7F, 0xF1, 0, 0]).await.unwrap();
        let mut reply = [0u8; 4];
        tokio::time::timeout(TIMEOUT, tls.read_exact(&mut reply)).await.unwrap().unwrap();
        assert_eq!(reply, [0x7F, 0xF1, 0, 0]);
        (Wamp::Raw(Box::new(tls)), der)
    }

    async fn send(&mut self, msg: Value) {
        let text = msg.to_string();
        match self {
            Wamp::Ws(ws) => ws.send(WsMessage::Text(text.into())).await.unwrap(),
            Wamp::Raw(tls) => {
                let len = (text.len() as u32).to_be_bytes();
                tls.write_all(&[0, len[1], len[2], len[3]]).await.unwrap();
                tls.write_all(text.as_bytes()).await.unwrap();
                tls.flush().await.unwrap();
            }
        }
    }

    async fn recv(&mut self) -> Value {
        let text = tokio::time::timeout(TIMEOUT, async {
            match self {
                Wamp::Ws(ws) => loop {
                    match ws.next().await.expect("open").expect("frame") {
                        WsMessage::Text(t) => return t.to_string(),
                        WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                        other => panic!("unexpected frame {other:?}"),
                    }
                },
                Wamp::Raw(tls) => loop {
                    let mut head = [0u8; 4];
                    tls.read_exact(&mut head).await.unwrap();
                    let mut body = vec![0u8; u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize];
                    tls.read_exact(&mut body).await.unwrap();
                    if head[0] == 0 {
                        return String::from_utf8(body).unwrap();
                    }
                },
            }
        })
        .await
        .expect("a message in time");
        serde_json::from_str(&text).unwrap()
    }

    /// Joins realm1; returns the session id.
    async fn join(&mut self) -> u64 {
        self.send(json!([1, "realm1", {"roles": {"publisher": {}, "subscriber": {}, "caller": {}}}])).await;
        let welcome = self.recv().await;
        assert_eq!(welcome[0], 2, "{welcome}");
        welcome[1].as_u64().unwrap()
    }

    /// `wamp.session.get(session)`'s `transport` details.
    async fn transport_of(&mut self, request: u64, session: u64) -> Value {
        self.send(json!([48, request, {}, "wamp.session.get", [session]])).await;
        let result = self.recv().await;
        assert_eq!((&result[0], &result[1]), (&json!(50), &json!(request)), "{result}");
        result[3][0]["transport"].clone()
    }

    async fn subscribe(&mut self, topic: &str) -> u64 {
        self.send(json!([32, 1, {}, topic])).await;
        let subscribed = self.recv().await;
        assert_eq!(subscribed[0], 33, "{subscribed}");
        subscribed[2].as_u64().unwrap()
    }

    /// Publishes with acknowledgement; returns the publication id.
    async fn publish(&mut self, request: u64, topic: &str, args: Value, kwargs: Value) -> u64 {
        self.send(json!([16, request, {"acknowledge": true}, topic, args, kwargs])).await;
        let published = self.recv().await;
        assert_eq!((&published[0], &published[1]), (&json!(17), &json!(request)), "{published}");
        published[2].as_u64().unwrap()
    }
}

/// A plain HTTP/1.1 GET over TLS; the whole response.
async fn https_get(addr: SocketAddr, pki: &Pki, path: &str) -> (String, Vec<u8>) {
    let mut tls = tls_connect(addr, &pki.client(&[b"http/1.1"])).await;
    let der = peer_certificate(&tls);
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // The router may close without close_notify after the response; what was read counts.
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut out)).await.expect("response in time");
    (String::from_utf8(out).unwrap(), der)
}

/// The value of the sample `line` (name and labels) in Prometheus text.
fn sample(metrics: &str, line: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
        .parse()
        .unwrap()
}

/// Reads what a peer sends until it closes; panics if it stays open.
async fn read_until_closed(tcp: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the router closes the connection");
    got
}

async fn event_crosses(publisher: &mut Wamp, subscriber: &mut Wamp, subscription: u64, request: u64, n: i64) {
    let publication = publisher.publish(request, "com.example.tls", json!([n, "über"]), json!({"seq": n})).await;
    let event = subscriber.recv().await;
    assert_eq!(event, json!([36, subscription, publication, {}, [n, "über"], {"seq": n}]));
}

#[tokio::test]
async fn an_event_crosses_from_wss_to_rawsocket_over_tls() {
    let pki = Pki::new();
    let leaf = pki.leaf(1);
    let files = Files::new("event", &leaf);
    let server = start(&files, |_| {}).await;
    assert_eq!(server.websocket_url(), format!("wss://{}/ws", server.websocket));
    assert!(server.rawsocket_tls());

    let (mut subscriber, der) = Wamp::raw(server.rawsocket.unwrap(), &pki).await;
    assert_eq!(der, leaf.der);
    let raw_session = subscriber.join().await;
    let subscription = subscriber.subscribe("com.example.tls").await;
    let (mut publisher, der) = Wamp::ws(server.websocket, &pki).await;
    assert_eq!(der, leaf.der);
    let ws_session = publisher.join().await;
    event_crosses(&mut publisher, &mut subscriber, subscription, 7, 42).await;

    // The meta API says both sessions came over TLS.
    let transport = publisher.transport_of(20, raw_session).await;
    assert_eq!((&transport["type"], &transport["is_secure"]), (&json!("rawsocket"), &json!(true)), "{transport}");
    let transport = subscriber.transport_of(21, ws_session).await;
    assert_eq!((&transport["type"], &transport["is_secure"]), (&json!("websocket"), &json!(true)), "{transport}");

    // And the other way round.
    let subscription = publisher.subscribe("com.example.back").await;
    let publication = subscriber.publish(8, "com.example.back", json!([1.5]), json!({})).await;
    assert_eq!(publisher.recv().await, json!([36, subscription, publication, {}, [1.5], {}]));

    let (health, _) = https_get(server.websocket, &pki, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    // The subscriber, the publisher and this request.
    assert!(health.contains(r#"{"status":"ok","connections":3,"max_connections":"#), "{health}");
    let metrics = server.router.render_metrics();
    assert_eq!(sample(&metrics, "switchyard_tls_handshakes_failed_total"), 0);
    // 2040-01-01T00:00:00Z
    assert_eq!(sample(&metrics, "switchyard_tls_certificate_expiry_seconds"), 2_208_988_800);
    assert_eq!(sample(&metrics, r#"switchyard_tls_certificate_reloads_total{result="ok"}"#), 0);
    server.shut_down(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_silent_tls_peer_is_closed_at_the_handshake_deadline() {
    let pki = Pki::new();
    let files = Files::new("silent", &pki.leaf(1));
    let server = start(&files, |c| c.limits.handshake_timeout = Duration::from_millis(300)).await;
    for addr in [server.websocket, server.rawsocket.unwrap()] {
        let started = Instant::now();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let got = read_until_closed(&mut tcp, Duration::from_secs(3)).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "closed after {took:?}");
        assert_eq!(got, b"", "nothing is sent to a peer that never said hello");
    }
    // A peer that starts the handshake and stalls halfway is closed the same way.
    let mut tcp = TcpStream::connect(server.websocket).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    read_until_closed(&mut tcp, Duration::from_secs(3)).await;
    assert_eq!(sample(&server.router.render_metrics(), "switchyard_tls_handshakes_failed_total"), 3);
    assert_eq!(server.router.open_connections(), 0);
    server.shut_down(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_plain_client_on_a_tls_port_is_refused_and_others_go_on() {
    let pki = Pki::new();
    let files = Files::new("plain", &pki.leaf(1));
    let server = start(&files, |_| {}).await;
    let (mut subscriber, _) = Wamp::ws(server.websocket, &pki).await;
    subscriber.join().await;
    let subscription = subscriber.subscribe("com.example.tls").await;

    // Plain HTTP on the HTTPS port: a TLS alert at most, never an HTTP response.
    let mut http = TcpStream::connect(server.websocket).await.unwrap();
    http.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let got = read_until_closed(&mut http, Duration::from_secs(2)).await;
    assert!(!got.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&got));
    assert!(got.is_empty() || got[0] == 0x15, "a TLS alert record: {got:?}");
    // A plain RawSocket handshake on the TLS RawSocket port: no RawSocket reply.
    let mut raw = TcpStream::connect(server.rawsocket.unwrap()).await.unwrap();
    raw.write_all(&[0x7F, 0xF1, 0, 0]).await.unwrap();
    let got = read_until_closed(&mut raw, Duration::from_secs(2)).await;
    assert!(got.is_empty() || got[0] == 0x15, "a TLS alert record: {got:?}");
    // A client that asks only for h2 on the WebSocket port is refused in the handshake.
    let tcp = TcpStream::connect(server.websocket).await.unwrap();
    let h2 = pki.client(&[b"h2"]).connect(ServerName::try_from("localhost").unwrap(), tcp).await;
    assert!(h2.is_err(), "h2 alone is not served");

    assert_eq!(sample(&server.router.render_metrics(), "switchyard_tls_handshakes_failed_total"), 3);
    let (mut publisher, _) = Wamp::raw(server.rawsocket.unwrap(), &pki).await;
    publisher.join().await;
    event_crosses(&mut publisher, &mut subscriber, subscription, 1, 5).await;
    server.shut_down(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn at_the_connection_limit_the_refusal_comes_over_tls() {
    let pki = Pki::new();
    let files = Files::new("limit", &pki.leaf(1));
    let server = start(&files, |c| c.limits.max_sessions = 1).await;
    let (mut only, _) = Wamp::ws(server.websocket, &pki).await;
    only.join().await;

    let (response, _) = https_get(server.websocket, &pki, "/health").await;
    assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nsession limit reached\n"), "{response}");
    let mut raw = tls_connect(server.rawsocket.unwrap(), &pki.client(&[])).await;
    raw.write_all(&[0x7F, 0xF1, 0, 0]).await.unwrap();
    let mut reply = [0u8; 4];
    tokio::time::timeout(TIMEOUT, raw.read_exact(&mut reply)).await.unwrap().unwrap();
    assert_eq!(reply, [0x7F, 0x40, 0, 0], "maximum connection count reached");

    let metrics = server.router.render_metrics();
    assert_eq!(sample(&metrics, "switchyard_sessions_refused_total"), 2);
    assert_eq!(sample(&metrics, "switchyard_tls_handshakes_failed_total"), 0);
    server.shut_down(Duration::from_secs(1)).await;
}

/// The real binary with a config file naming the certificate files.
struct Router {
    child: Child,
    websocket: SocketAddr,
    rawsocket: SocketAddr,
}

impl Router {
    /// With a config file whose [tls] names `files`, relative to the file.
    fn spawn(files: &Files) -> Router {
        let config = files.0.join("switchyard.toml");
        let realm = "[[realms]]\nname = \"realm1\"\nanonymous = \"anonymous\"\n[[realms.roles]]\nname = \"anonymous\"\n\
            [[realms.roles.permissions]]\nuri = \"\"\nmatch = \"prefix\"\n\
            allow = { call = true, register = true, publish = true, subscribe = true }\n";
        let text = format!(
            "[transport]\nlisten = \"127.0.0.1:0\"\nrawsocket = \"127.0.0.1:0\"\n\n[tls]\ncertificate = \"cert.pem\"\nkey = \"key.pem\"\n\n{realm}"
        );
        std::fs::write(&config, text).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"]).arg(&config);
        Router::start(cmd)
    }

    /// Starts `cmd` (a `switchyard serve`) and reads its ready line.
    fn start(mut cmd: Command) -> Router {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let url = ready["websocket"].as_str().unwrap();
        let websocket = url.strip_prefix("wss://").and_then(|u| u.strip_suffix("/ws")).expect(url).parse().unwrap();
        assert_eq!(ready["rawsocket_tls"], true);
        Router { child, websocket, rawsocket: ready["rawsocket"].as_str().unwrap().parse().unwrap() }
    }

    fn hangup(&self) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) }, 0);
    }

    /// Polls /metrics until `line` reads `value`; returns the last response.
    async fn wait_for_metric(&self, pki: &Pki, line: &str, value: i64) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (metrics, _) = https_get(self.websocket, pki, "/metrics").await;
            if sample(&metrics, line) == value {
                return metrics;
            }
            assert!(Instant::now() < deadline, "{line} never became {value}:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sighup_swaps_the_certificate_for_new_connections_and_keeps_sessions() {
    let pki = Pki::new();
    let (a, b) = (pki.leaf(0xA), pki.leaf(0xB));
    let files = Files::new("sighup", &a);
    let router = Router::spawn(&files);

    // Sessions opened with certificate A, on both transports.
    let (mut subscriber, der) = Wamp::raw(router.rawsocket, &pki).await;
    assert_eq!(der, a.der);
    subscriber.join().await;
    let subscription = subscriber.subscribe("com.example.tls").await;
    let (mut old_publisher, der) = Wamp::ws(router.websocket, &pki).await;
    assert_eq!(der, a.der);
    old_publisher.join().await;

    files.install(&b);
    router.hangup();
    let metrics = router.wait_for_metric(&pki, r#"switchyard_tls_certificate_reloads_total{result="ok"}"#, 1).await;
    assert_eq!(sample(&metrics, r#"switchyard_tls_certificate_reloads_total{result="failed"}"#), 0);

    // The sessions of A go on: an event crosses from the old publisher to the old subscriber.
    event_crosses(&mut old_publisher, &mut subscriber, subscription, 2, 1).await;
    // New connections see B, on both ports, and their events reach the old session.
    let (mut publisher, der) = Wamp::ws(router.websocket, &pki).await;
    assert_eq!(der, b.der);
    assert_ne!(der, a.der);
    publisher.join().await;
    event_crosses(&mut publisher, &mut subscriber, subscription, 3, 2).await;
    let (_, der) = Wamp::raw(router.rawsocket, &pki).await;
    assert_eq!(der, b.der);

    // A broken key file on the next reload: B stays, the failure is counted.
    files.replace("key.pem", "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n");
    router.hangup();
    let metrics = router.wait_for_metric(&pki, r#"switchyard_tls_certificate_reloads_total{result="failed"}"#, 1).await;
    assert_eq!(sample(&metrics, r#"switchyard_tls_certificate_reloads_total{result="ok"}"#), 1);
    assert_eq!(sample(&metrics, "switchyard_tls_certificate_expiry_seconds"), 2_208_988_800);
    let (_, der) = https_get(router.websocket, &pki, "/health").await;
    assert_eq!(der, b.der);
    event_crosses(&mut old_publisher, &mut subscriber, subscription, 4, 3).await;
}

#[tokio::test]
async fn the_environment_turns_tls_on_without_a_file() {
    let pki = Pki::new();
    let leaf = pki.leaf(0xE);
    let files = Files::new("env", &leaf);
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--rawsocket", "127.0.0.1:0"])
        .env("SWITCHYARD_TLS_CERTIFICATE", files.0.join("cert.pem"))
        .env("SWITCHYARD_TLS_KEY", files.0.join("key.pem"));
    let router = Router::start(cmd);
    let (mut session, der) = Wamp::raw(router.rawsocket, &pki).await;
    assert_eq!(der, leaf.der);
    session.join().await;
    let (health, der) = https_get(router.websocket, &pki, "/health").await;
    assert_eq!(der, leaf.der);
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");

    // One without the other is refused before anything starts.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SWITCHYARD_TLS_CERTIFICATE", files.0.join("cert.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--tls-key <TLS_KEY>"), "{stderr}");
}

#[test]
fn check_config_reports_a_mismatched_key_at_its_setting() {
    let pki = Pki::new();
    let files = Files::new("check", &pki.leaf(1));
    files.replace("key.pem", &pki.leaf(2).key_pem);
    let config = files.0.join("switchyard.toml");
    std::fs::write(&config, "[tls]\ncertificate = \"cert.pem\"\nkey = \"key.pem\"\n\n[[realms]]\nname = \"realm1\"\n").unwrap();
    let out = Command::new(BIN).arg("check-config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let key = files.0.join("key.pem");
    let cert = files.0.join("cert.pem");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "{}:3:7: the private key in `{}` does not match the certificate in `{}`\n",
            config.display(),
            key.display(),
            cert.display()
        )
    );
}
