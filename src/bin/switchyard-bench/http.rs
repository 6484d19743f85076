//! The http-publish workload: HTTP POSTs of `{"topic": ..., "args": [...]}` on N
//! keep-alive connections, each a closed loop (the next request when the answer is in),
//! to any HTTP publisher that takes that body: Switchyard's `POST /publish`, or
//! Crossbar's HTTP Bridge publisher service (the same body, `bench/http.sh`). One WAMP
//! session per `--subscribers` counts the events, so what is measured was delivered.
//!
//! The HTTP/1.1 client is a few lines of our own (a request written whole, the answer
//! read by Content-Length or chunked encoding): no client library's overhead lands in
//! the generator's CPU, which shares the machine with the router. Figures: publications
//! per second and per router CPU-second, latency percentiles, answers that were not
//! 2xx, reconnections, and loss (answered publications × subscribers − events).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use switchyard::wamp::message::code;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::conn::peek_type;
use crate::procstat::CpuWindow;
use crate::report::{round, thousands, Run};
use crate::session::{open_subscribers, wait_for_drain, Session};
use crate::stats::Samples;
use crate::Ctx;

pub struct Params {
    /// Keep-alive connections, each with one request in flight.
    pub connections: usize,
    pub subscribers: usize,
    /// Bytes of the padding string in `args`.
    pub payload: usize,
    /// The publisher's URL (default: `/publish` on the host and port of `--url`).
    pub http_url: Option<String>,
}

/// Where to send the requests: the address to connect to and the request's head.
struct Endpoint {
    addr: std::net::SocketAddr,
    host: String,
    path: String,
}

fn endpoint(ctx: &Ctx, url: Option<&str>) -> Result<Endpoint, String> {
    let addr = ctx.target.addr();
    let url = match url {
        Some(u) => u.to_owned(),
        None => format!("http://{addr}/publish"),
    };
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("--http-url {url}: only http:// is supported"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let addr = host.parse().map_err(|e| format!("--http-url {url}: the host must be IP:port ({e})"))?;
    Ok(Endpoint { addr, host: host.to_owned(), path })
}

pub async fn run(ctx: &Ctx, p: Params) -> Run {
    let mut run = Run::new("http-publish");
    run.param("connections", p.connections);
    run.param("subscribers", p.subscribers);
    run.param("payload_bytes", p.payload);
    run.param("duration_s", ctx.duration.as_secs_f64());
    if let Err(e) = measure(ctx, &p, &mut run).await {
        run.failed = Some(e.clone());
        run.errors.push(e);
    }
    run
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
    reconnects: AtomicU64,
    events: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counts {
    fn error(&self, e: String) {
        self.first_error.lock().unwrap().get_or_insert(e);
    }
}

async fn measure(ctx: &Ctx, p: &Params, run: &mut Run) -> Result<(), String> {
    let ep = endpoint(ctx, p.http_url.as_deref())?;
    run.param("http_url", format!("http://{}{}", ep.host, ep.path));
    let topic = ctx.uri("http");
    let counts = Arc::new(Counts::default());
    let mut tasks = JoinSet::new();
    let mut keep = Vec::new();
    for s in open_subscribers(ctx, &topic, p.subscribers).await? {
        let Session { tx, mut rx, .. } = s;
        keep.push(tx);
        let (counts, ser) = (counts.clone(), ctx.serializer);
        tasks.spawn(async move {
            while let Ok(Some(frame)) = rx.next().await {
                if peek_type(ser, &frame) == Some(code::EVENT) {
                    counts.events.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    let body = format!(r#"{{"topic":"{topic}","args":["{}"]}}"#, "x".repeat(p.payload));
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        ep.path,
        ep.host,
        body.len()
    );
    let request: Arc<[u8]> = request.into_bytes().into();
    let cpu = CpuWindow::start(ctx.router_pid)?;
    let start = Instant::now();
    let deadline = start + ctx.duration;
    let mut clients = JoinSet::new();
    for _ in 0..p.connections.max(1) {
        let (counts, request, addr) = (counts.clone(), request.clone(), ep.addr);
        clients.spawn(async move { client(addr, &request, deadline, &counts).await });
    }
    let mut latency = Samples::default();
    while let Some(r) = clients.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok(mut s) => latency.append(&mut s),
            Err(e) => counts.error(e),
        }
    }
    let load_s = start.elapsed().as_secs_f64();
    let subscribers = p.subscribers as u64;
    let ok = counts.ok.load(Ordering::Relaxed);
    wait_for_drain(|| counts.events.load(Ordering::Relaxed), |&events| events >= ok * subscribers, ctx.drain).await;
    let cpu = cpu.finish(0.0);
    tasks.abort_all();
    drop(keep);

    let events = counts.events.load(Ordering::Relaxed);
    let expected = ok * subscribers;
    let loss = expected as i64 - events as i64;
    let per_s = ok as f64 / load_s;
    let per_cpu = cpu.per_router_cpu_s(ok);
    let lat = latency.summary();
    run.fig("publications", ok);
    run.fig("refused", counts.refused.load(Ordering::Relaxed));
    run.fig("reconnects", counts.reconnects.load(Ordering::Relaxed));
    run.fig("events", events);
    run.fig("expected_events", expected);
    run.fig("loss", loss);
    run.fig("load_s", round(load_s, 3));
    run.fig("publications_per_s", round(per_s, 1));
    run.fig("publications_per_router_cpu_s", per_cpu.map(|x| round(x, 1)));
    for (k, v) in lat.to_json("latency_") {
        run.fig(&k, v);
    }
    run.headline = format!(
        "{} HTTP publications/s, {} per router CPU-second, {}, loss {loss}",
        thousands(per_s),
        per_cpu.map(thousands).unwrap_or_else(|| "?".into()),
        lat.human()
    );
    run.cpu = Some(cpu);
    if let Some(e) = counts.first_error.lock().unwrap().take() {
        run.errors.push(e);
    }
    if ok == 0 {
        run.failed = Some("no publication was answered with 2xx".into());
    } else if loss != 0 {
        run.failed = Some(format!("{loss} of {expected} events not received"));
    }
    Ok(())
}

/// One keep-alive connection's closed loop until `deadline`; its latency samples.
async fn client(addr: std::net::SocketAddr, request: &[u8], deadline: Instant, counts: &Counts) -> Result<Samples, String> {
    let mut samples = Samples::default();
    let mut buf = Vec::with_capacity(4096);
    let mut tcp = connect(addr).await?;
    while Instant::now() < deadline {
        let sent = Instant::now();
        let answer = match tcp.write_all(request).await {
            Ok(()) => read_answer(&mut tcp, &mut buf).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok((status, close, body)) => {
                samples.push(sent.elapsed().as_nanos() as u64);
                if (200..300).contains(&status) {
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                    counts.error(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
                }
                if close {
                    counts.reconnects.fetch_add(1, Ordering::Relaxed);
                    buf.clear();
                    tcp = connect(addr).await?;
                }
            }
            // The server closed a keep-alive connection between requests: the request
            // may or may not have been served, so it is not counted either way.
            Err(_) => {
                counts.reconnects.fetch_add(1, Ordering::Relaxed);
                buf.clear();
                tcp = connect(addr).await?;
            }
        }
    }
    Ok(samples)
}

async fn connect(addr: std::net::SocketAddr) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(tcp)
}

/// Reads one answer: its status, whether the server will close the connection, and its
/// body (for an error message). `buf` carries what was read past the answer.
async fn read_answer(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u16, bool, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(tcp, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let header = |name: &str| head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()));
    let close = header("connection:").is_some_and(|v| v == "close");
    buf.drain(..head_end);
    let body_end = if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < len {
            fill(tcp, buf).await?;
        }
        len
    } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        // The last chunk is `0` and an empty line; no trailers are expected.
        loop {
            if buf.starts_with(b"0\r\n\r\n") {
                break 5;
            }
            if let Some(i) = find(buf, b"\r\n0\r\n\r\n") {
                break i + 7;
            }
            fill(tcp, buf).await?;
        }
    } else {
        0
    };
    Ok((status, close, buf.drain(..body_end).collect()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn fill(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = tcp.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_sized_and_chunked_answers() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await.unwrap();
            s.write_all(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            s.write_all(b"2\r\n:1\r\n0\r\n\r\nHTTP/1.1 429 Too Many\r\nconnection: close\r\ncontent-length: 2\r\n\r\nno").await.unwrap();
        });
        let mut tcp = connect(addr).await.unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_answer(&mut tcp, &mut buf).await.unwrap(), (200, false, b"hello".to_vec()));
        assert_eq!(read_answer(&mut tcp, &mut buf).await.unwrap(), (202, false, b"4\r\n{\"a\"\r\n2\r\n:1\r\n0\r\n\r\n".to_vec()));
        assert_eq!(read_answer(&mut tcp, &mut buf).await.unwrap(), (429, true, b"no".to_vec()));
        assert!(buf.is_empty());
        server.await.unwrap();
    }
}
