//! The router process at the edges of its resources, run as the real binary: a lowered
//! descriptor limit held by idle connections, and a shutdown with peers that do not
//! read or do not answer.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

struct Router {
    child: Child,
    ws_url: String,
    http: String,
    rawsocket: String,
}

/// Starts the binary under `sh -c "<prefix> exec switchyard serve ..."`.
fn spawn(prefix: &str) -> Router {
    let cmd = format!("{prefix} exec {BIN} serve --listen 127.0.0.1:0 --rawsocket 127.0.0.1:0");
    let mut child = Command::new("sh").args(["-c", &cmd]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let ws_url = ready["websocket"].as_str().unwrap().to_owned();
    let http = ws_url.trim_start_matches("ws://").trim_end_matches("/ws").to_owned();
    Router { child, ws_url, http, rawsocket: ready["rawsocket"].as_str().unwrap().to_owned() }
}

impl Router {
    /// SIGTERM; waits for the exit and returns (how long it took, stderr).
    async fn stop(mut self) -> (Duration, String) {
        let started = Instant::now();
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        let mut stderr = self.child.stderr.take().unwrap();
        let (status, took) = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, started.elapsed())
        })
        .await
        .unwrap();
        assert!(status.success(), "{status:?}");
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        (took, text)
    }

    async fn http_get(&self, path: &str) -> String {
        let mut tcp = TcpStream::connect(&self.http).await.unwrap();
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.unwrap();
        out
    }

    /// A WebSocket session joined to realm1 anonymously, or the HTTP status that refused it.
    async fn join_ws(&self) -> Result<WsSession, u16> {
        let mut req = self.ws_url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
        let (mut ws, _) = match tokio_tungstenite::connect_async(req).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => return Err(resp.status().as_u16()),
            Err(e) => panic!("{e}"),
        };
        ws.send(WsMessage::Text(r#"[1, "realm1", {}]"#.into())).await.unwrap();
        let welcome = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        assert!(welcome.to_text().unwrap().starts_with("[2,"), "{welcome:?}");
        Ok(ws)
    }

    /// The reply to a RawSocket handshake (JSON, 16 MiB), and the connection.
    async fn raw_handshake(&self) -> ([u8; 4], TcpStream) {
        let mut tcp = TcpStream::connect(&self.rawsocket).await.unwrap();
        tcp.write_all(&[0x7F, 0xF1, 0, 0]).await.unwrap();
        let mut reply = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut reply)).await.unwrap().unwrap();
        (reply, tcp)
    }
}

type WsSession = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Sends one RawSocket frame.
async fn raw_send(tcp: &mut TcpStream, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    tcp.write_all(&[0, len[1], len[2], len[3]]).await.unwrap();
    tcp.write_all(payload).await.unwrap();
}

#[tokio::test]
async fn idle_connections_cannot_lock_clients_out_under_a_low_descriptor_limit() {
    let router = spawn("ulimit -n 256 &&");
    // 256 descriptors, 64 kept back: 192 connections.
    let health = router.http_get("/health").await;
    assert!(health.ends_with(r#"{"status":"ok","connections":1,"max_connections":192}"#), "{health}");
    // 400 idle connections on the HTTP port and 100 on RawSocket, more than the
    // process has descriptors.
    let mut idle = Vec::new();
    for i in 0..500 {
        let addr = if i < 400 { &router.http } else { &router.rawsocket };
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // New clients still get in on both ports.
    let _ws = router.join_ws().await.expect("a WebSocket session");
    let (reply, mut raw) = router.raw_handshake().await;
    assert_eq!(reply, [0x7F, 0xF1, 0, 0]);
    raw_send(&mut raw, br#"[1, "realm1", {}]"#).await;
    let mut head = [0u8; 4];
    raw.read_exact(&mut head).await.unwrap();
    let mut welcome = vec![0u8; u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize];
    raw.read_exact(&mut welcome).await.unwrap();
    assert!(welcome.starts_with(b"[2,"), "{}", String::from_utf8_lossy(&welcome));
    // Once established sessions hold every place, the documented refusals appear.
    let mut sessions = Vec::new();
    for _ in 0..190 {
        sessions.push(router.join_ws().await.expect("a place"));
    }
    assert_eq!(router.join_ws().await.err(), Some(503));
    assert_eq!(router.raw_handshake().await.0, [0x7F, 0x40, 0, 0], "maximum connection count reached");
    drop(idle);
    let (_, stderr) = router.stop().await;
    assert!(!stderr.contains("Too many open files") && !stderr.contains("accept failed"), "{stderr}");
}

#[tokio::test]
async fn shutdown_ends_within_five_seconds_whatever_the_peers_do() {
    let router = spawn("");
    // A subscriber that stops reading, with a small receive buffer, flooded until the
    // router's writer to it is stuck.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(router.rawsocket.parse().unwrap()).await.unwrap();
    stuck.write_all(&[0x7F, 0xF1, 0, 0]).await.unwrap();
    let mut reply = [0u8; 4];
    stuck.read_exact(&mut reply).await.unwrap();
    raw_send(&mut stuck, br#"[1, "realm1", {}]"#).await;
    raw_send(&mut stuck, br#"[32, 1, {}, "com.flood"]"#).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A session that will not answer GOODBYE, and the publisher.
    let _mute = router.join_ws().await.unwrap();
    let mut publisher = router.join_ws().await.unwrap();
    let big = format!(r#"[16, 1, {{}}, "com.flood", ["{}"]]"#, "x".repeat(256 * 1024));
    for _ in 0..40 {
        publisher.send(WsMessage::Text(big.clone().into())).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (took, _) = router.stop().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    drop(stuck);
}
