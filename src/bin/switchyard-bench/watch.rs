//! What the `hostile` workload watches from outside the router: its resident memory,
//! sampled every 50 ms on a thread of its own (so a generator busy with thousands of
//! attacking connections still samples on time), and the kernel's table of TCP sockets
//! (`/proc/net/tcp`, `/proc/net/tcp6`), which tells when the router closed its end of a
//! connection even while the attacker does not read: a peer that never reads never sees
//! the FIN, which waits behind the data the router could not send.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::procstat::rss_kib;

/// How often VmRSS is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// How often a sample is kept in the trace (the JSON output's `router_rss_trace_kib`).
const TRACE_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Highest VmRSS since the last `take_peak`, in KiB.
    peak: AtomicU64,
    /// Set once VmRSS could not be read: the router process is gone.
    gone: Mutex<Option<String>>,
    /// (seconds since start, KiB), one per `TRACE_EVERY`.
    trace: Mutex<Vec<(f64, u64)>>,
}

/// Samples one process's VmRSS until dropped.
pub struct RssMonitor {
    pid: String,
    shared: Arc<Shared>,
    pub started: Instant,
}

impl RssMonitor {
    pub fn start(pid: u32) -> Result<RssMonitor, String> {
        let pid = pid.to_string();
        let first = rss_kib(&pid).map_err(|e| format!("--router-pid {pid}: {e}"))?;
        let shared = Arc::new(Shared { peak: AtomicU64::new(first), ..Shared::default() });
        let started = Instant::now();
        let (p, s) = (pid.clone(), shared.clone());
        std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || sample(&p, &s, started))
            .map_err(|e| format!("cannot start the RSS sampler: {e}"))?;
        Ok(RssMonitor { pid, shared, started })
    }

    /// VmRSS now (KiB); 0 once the process is gone.
    pub fn now(&self) -> u64 {
        let kib = rss_kib(&self.pid).unwrap_or(0);
        self.shared.peak.fetch_max(kib, Ordering::Relaxed);
        kib
    }

    /// Pages the allocator released with MADV_FREE that the kernel has not reclaimed yet
    /// (`LazyFree` of /proc/<pid>/smaps_rollup, KiB): still counted in VmRSS, but
    /// taken back at the first memory pressure. Read at settle points only, since the
    /// kernel walks every mapping to produce it.
    pub fn lazy_free(&self) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.pid)).ok()?;
        text.lines().find_map(|l| l.strip_prefix("LazyFree:"))?.split_whitespace().next()?.parse().ok()
    }

    /// The highest sample since the last call (or since the start), and starts over
    /// from the current value.
    pub fn take_peak(&self) -> u64 {
        let now = self.now();
        self.shared.peak.swap(now, Ordering::Relaxed).max(now)
    }

    /// Why the process could not be read, once it could not.
    pub fn gone(&self) -> Option<String> {
        self.shared.gone.lock().unwrap().clone()
    }

    pub fn trace(&self) -> Vec<(f64, u64)> {
        self.shared.trace.lock().unwrap().clone()
    }

    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl Drop for RssMonitor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn sample(pid: &str, s: &Shared, started: Instant) {
    let mut next_trace = started;
    while !s.stop.load(Ordering::Relaxed) {
        match rss_kib(pid) {
            Ok(kib) => {
                s.peak.fetch_max(kib, Ordering::Relaxed);
                if Instant::now() >= next_trace {
                    let t = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
                    s.trace.lock().unwrap().push((t, kib));
                    next_trace += TRACE_EVERY;
                }
            }
            Err(e) => {
                s.gone.lock().unwrap().get_or_insert(e);
                return;
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// One row of /proc/net/tcp: the socket's state and its send queue.
#[derive(Debug, Clone, Copy)]
pub struct TcpEntry {
    pub state: u8,
    /// Bytes sent but not yet acknowledged (the send queue).
    pub tx_queue: u64,
}

pub const TCP_ESTABLISHED: u8 = 0x01;

/// Every TCP socket of this network namespace, by (local, remote) address.
pub fn tcp_table() -> HashMap<(SocketAddr, SocketAddr), TcpEntry> {
    let mut table = HashMap::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            if let Some((key, entry)) = parse_line(line) {
                table.insert(key, entry);
            }
        }
    }
    table
}

/// `sl local rem st tx:rx …`: addresses are hex in the kernel's byte order.
fn parse_line(line: &str) -> Option<((SocketAddr, SocketAddr), TcpEntry)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (local, remote) = (parse_addr(f.get(1)?)?, parse_addr(f.get(2)?)?);
    let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
    let (tx, _rx) = f.get(4)?.split_once(':')?;
    let entry = TcpEntry { state, tx_queue: u64::from_str_radix(tx, 16).ok()? };
    Some(((local, remote), entry))
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // Each 32-bit word is printed as the host reads it from network-order memory.
    let word = |i: usize| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            // A v4 peer of a dual-stack socket is listed as ::ffff:a.b.c.d.
            v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The router's end of the connection from `client` to `router`: `None` once the socket
/// is gone (closed, or reset).
pub fn router_end(table: &HashMap<(SocketAddr, SocketAddr), TcpEntry>, router: SocketAddr, client: SocketAddr) -> Option<TcpEntry> {
    table.get(&(router, client)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp_lines() {
        let line = "   3: 0100007F:1F91 0100007F:D6A2 01 00400000:00000010 00:00000000 00000000     0        0 123 1 0000000000000000 20 4 30 10 -1";
        let ((local, remote), e) = parse_line(line).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(local, "127.0.0.1:8081".parse().unwrap());
            assert_eq!(remote, "127.0.0.1:54946".parse().unwrap());
        }
        assert_eq!((e.state, e.tx_queue), (TCP_ESTABLISHED, 0x400000));
    }

    #[test]
    fn finds_its_own_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        let t = tcp_table();
        let e = router_end(&t, l.local_addr().unwrap(), peer).expect("server end listed");
        assert_eq!(e.state, TCP_ESTABLISHED);
        assert_eq!(peer, c.local_addr().unwrap());
    }
}
