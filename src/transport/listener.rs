//! The accept loop every listener shares: each accepted connection goes through the
//! router's admission gate (served, refused with the transport's answer, or closed),
//! and a failing `accept` neither spins nor floods the log: when the process is out of
//! descriptors or memory the loop backs off (10 ms, doubling to 1 s) and logs one line
//! per interval with the number of failures since the last one.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::router::admission::{Admission, Admit, Refusal};
use crate::router::Router;

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Each connection's socket send buffer (the kernel doubles it). Without a bound the
/// kernel grows it to megabytes for a slow reader, and a writer blocked on a full buffer
/// is woken only once a third of it has drained: a browser reading 30 KB/s would wait
/// over a minute, meet the write timeout and be disconnected instead of being caught up
/// from the replay store. With this bound a peer that reads about 9 KB/s or more keeps
/// its writer moving within `write_timeout_ms` (10 s), and what it has not read waits in
/// the router's outbox and store, not in the kernel.
pub const SEND_BUFFER: usize = 128 * 1024;

/// Sets `SO_SNDBUF`; a failure costs only the bound above, so it is logged, not fatal.
fn bound_send_buffer(fd: std::os::fd::RawFd) {
    let size = SEND_BUFFER as libc::c_int;
    // SAFETY: `fd` is an open socket owned by the caller; the option value is a c_int
    // that outlives the call.
    let r = unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, (&size as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t)
    };
    if r != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "cannot set SO_SNDBUF");
    }
}

/// A listening socket.
pub trait Acceptor: Send + 'static {
    type Stream: Send + 'static;
    /// The next connection and its peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, String)>> + Send;
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;
    async fn accept(&self) -> io::Result<(TcpStream, String)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // WAMP messages are small and latency-bound: without TCP_NODELAY, Nagle's
        // algorithm and delayed ACKs hold frames back for tens of milliseconds.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        bound_send_buffer(std::os::fd::AsRawFd::as_raw_fd(&stream));
        Ok((stream, peer.to_string()))
    }
}

impl Acceptor for UnixListener {
    type Stream = UnixStream;
    async fn accept(&self) -> io::Result<(UnixStream, String)> {
        let (stream, _) = UnixListener::accept(self).await?;
        bound_send_buffer(std::os::fd::AsRawFd::as_raw_fd(&stream));
        Ok((stream, "unix".to_owned()))
    }
}

/// Accepts until the router shuts down. `serve` and `refuse` run as tracked tasks, so a
/// shutdown waits for them.
pub async fn run<A, S, SF, R, RF>(acceptor: A, router: Arc<Router>, name: &'static str, serve: S, refuse: R)
where
    A: Acceptor,
    S: Fn(A::Stream, String, Admission) -> SF,
    SF: Future<Output = ()> + Send + 'static,
    R: Fn(A::Stream, Refusal) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u64;
    let mut last_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = async {
                router.wait_for_room().await;
                acceptor.accept().await
            } => accepted,
            _ = router.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = BACKOFF_MIN;
                match router.admit() {
                    Admit::Admitted(admission) => drop(router.connections.spawn(serve(stream, peer, admission))),
                    Admit::Refused(refusal) => drop(router.connections.spawn(refuse(stream, refusal))),
                    Admit::Dropped => drop(stream),
                }
            }
            Err(e) => {
                router.metrics.accept_errors.inc();
                failures += 1;
                if last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    tracing::warn!(listener = name, error = %e, failures, "accept failed");
                    last_log = Some(Instant::now());
                    failures = 0;
                }
                if is_exhaustion(&e) {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = router.shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// Out of descriptors or memory: accepting again at once would fail again.
fn is_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::Config;
    use crate::router::ConnectionLimit;

    /// A listener out of descriptors: every accept fails with EMFILE.
    struct Exhausted(Arc<AtomicUsize>);

    impl Acceptor for Exhausted {
        type Stream = ();
        async fn accept(&self) -> io::Result<((), String)> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(io::Error::from_raw_os_error(libc::EMFILE))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_descriptors_the_loop_backs_off_instead_of_spinning() {
        let router = Router::new(&Config::default(), ConnectionLimit { max: 10, reserve: 64 });
        let attempts = Arc::new(AtomicUsize::new(0));
        let serve = |_: (), _: String, _: Admission| async {};
        let refuse = |_: (), _: Refusal| async {};
        let run = tokio::spawn(run(Exhausted(attempts.clone()), router.clone(), "test", serve, refuse));
        // Attempts at 0, 10, 30, 70, 150 and 310 ms: the pause doubles each time.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(attempts.load(Ordering::Relaxed), 5);
        // Then the pause stops growing at a second: ten attempts in any ten seconds.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let before = attempts.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(attempts.load(Ordering::Relaxed) - before, 10);
        assert_eq!(router.metrics.accept_errors.get(), attempts.load(Ordering::Relaxed) as u64);
        router.shutdown.cancel();
        run.await.unwrap();
    }
}
