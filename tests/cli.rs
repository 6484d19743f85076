//! The `switchyard` binary: `check-config` on the shipped and on broken files, and
//! `serve` printing its ready line and shutting down gracefully on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

#[test]
fn check_config_accepts_the_shipped_files() {
    let out = Command::new(BIN).args(["check-config", "switchyard.toml"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "switchyard.toml: ok (2 realms)\n");
}

#[test]
fn check_config_reports_every_error_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[transport]\nlisten = \"nowhere\"\n\n[[realms]]\nname = \"realm1\"\nanonymous = \"ghost\"\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["check-config", file.to_str().unwrap()]).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with(&format!("{}:2:10: ", file.display())), "{stderr}");
    assert!(lines[1].starts_with(&format!("{}:6:13: ", file.display())), "{stderr}");
    assert!(lines[1].contains("ghost"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--rawsocket", "off", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: Vec<serde_json::Value> = stderr.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert_eq!(logs[0]["fields"]["message"], "switchyard listening");
    assert_eq!(logs[0]["level"], "INFO");
    assert!(logs.iter().any(|l| l["fields"]["message"] == "shutting down: GOODBYE wamp.close.system_shutdown to every session"));
}

/// Starts `switchyard serve` with `cmd`'s extra arguments and environment; returns the
/// process and its ready line.
fn serve(mut cmd: Command) -> (std::process::Child, serde_json::Value) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

#[tokio::test]
async fn serve_prints_the_ready_line_and_says_goodbye_on_sigterm() {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--rawsocket", "off"]);
    let (mut child, ready) = serve(cmd);
    assert_eq!(ready["event"], "listening");
    assert_eq!(ready["rawsocket"], serde_json::Value::Null);
    let url = ready["websocket"].as_str().unwrap();
    assert!(url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"), "{url}");

    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(WsMessage::Text(r#"[1, "realm1", {}]"#.into())).await.unwrap();
    let welcome = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(welcome.starts_with("[2,"), "{welcome}");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let goodbye = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert_eq!(goodbye.as_str(), r#"[6,{"message":"the router is shutting down"},"wamp.close.system_shutdown"]"#);
    ws.send(WsMessage::Text(r#"[6, {}, "wamp.close.goodbye_and_out"]"#.into())).await.unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The shipped configuration with a database that cannot be reached: the router starts,
/// realm1 serves as usual, and the workbench realm refuses token logins (fail closed)
/// and says so on /metrics.
#[tokio::test]
async fn the_shipped_config_starts_without_a_database_and_the_workbench_realm_fails_closed() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config", "switchyard.toml", "--listen", "127.0.0.1:0", "--rawsocket", "off"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHYARD_DATABASE_URL", format!("postgres://postgres@{dead}/platform"));
    let (mut child, ready) = serve(cmd);
    let url = ready["websocket"].as_str().unwrap().to_owned();
    let connect = || async {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
        tokio_tungstenite::connect_async(req).await.unwrap().0
    };

    let mut ws = connect().await;
    ws.send(WsMessage::Text(r#"[1, "realm1", {}]"#.into())).await.unwrap();
    assert!(ws.next().await.unwrap().unwrap().into_text().unwrap().starts_with("[2,"));

    let mut ws = connect().await;
    ws.send(WsMessage::Text(r#"[1, "workbench", {"authmethods": ["ticket"]}]"#.into())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), r#"[4,"ticket",{}]"#);
    ws.send(WsMessage::Text(r#"[5, "sy_sometoken", {}]"#.into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(),
        r#"[3,{"message":"cannot check the token: the permission database is unavailable"},"wamp.error.authentication_failed"]"#
    );

    let metrics_url = url.replace("ws://", "http://").replace("/ws", "/metrics");
    let metrics = tokio::task::spawn_blocking(move || {
        let addr = metrics_url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    })
    .await
    .unwrap();
    assert!(metrics.contains("switchyard_graph_online{realm=\"workbench\"} 0"), "{metrics}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

/// `GET path` on the router's HTTP port, with `Connection: close`: the whole response.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

/// The workbench page is served at / by default; `--no-workbench` (and its variable)
/// turns it off and leaves /health alone.
#[test]
fn the_workbench_page_is_served_unless_turned_off() {
    let start = |extra: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--rawsocket", "off"]).args(extra);
        if let Some(v) = env {
            cmd.env("SWITCHYARD_NO_WORKBENCH", v);
        }
        let (child, ready) = serve(cmd);
        let addr = ready["websocket"].as_str().unwrap().trim_start_matches("ws://").trim_end_matches("/ws").to_owned();
        (child, addr)
    };
    let stop = |mut child: std::process::Child| {
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(child.wait().unwrap().success());
    };

    let (child, addr) = start(&[], None);
    let page = http_get(&addr, "/");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("\r\ncontent-type: text/html; charset=utf-8\r\n"), "{page}");
    assert!(page.contains("<title>Switchyard workbench</title>"), "{page}");
    stop(child);

    for (flag, env) in [(&["--no-workbench"][..], None), (&[][..], Some("true"))] {
        let (child, addr) = start(flag, env);
        let page = http_get(&addr, "/");
        assert!(page.starts_with("HTTP/1.1 404 Not Found\r\n"), "{flag:?} {env:?}: {page}");
        assert!(http_get(&addr, "/health").starts_with("HTTP/1.1 200 OK\r\n"));
        stop(child);
    }
}
