//! What the HTTP server knows of a connection (`Connection`: its peer, its place among
//! the connections, which a WebSocket upgrade takes over), and how long an HTTP
//! connection that serves bridge requests stays open (`Activity`).
//!
//! A connection gets the handshake deadline to send its request and upgrade or be done with HTTP
//! (`http.rs`); a service posting to the bridge over a keep-alive connection is neither,
//! so once one of its requests has been authenticated the connection is treated like an
//! established session: it can no longer be evicted at the connection limit, and it
//! stays open while a request is in flight and for `IDLE` after the last one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::router::admission::Admission;

/// What the HTTP server knows of the connection a request came on: the peer, whether
/// it is TLS, its place among the connections, which the upgrade takes over, and its
/// HTTP bridge requests, which keep it open (`Activity`).
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: String,
    pub secure: bool,
    pub admission: Arc<Mutex<Option<Admission>>>,
    pub activity: Arc<Activity>,
}

/// An idle keep-alive connection of the bridge is closed after this long.
pub const IDLE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Activity {
    /// Set once a request on this connection was authenticated.
    api: AtomicBool,
    in_flight: AtomicUsize,
    /// When the last request ended, in ms since `epoch`.
    last_done_ms: AtomicU64,
    epoch: Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Activity { api: AtomicBool::new(false), in_flight: AtomicUsize::new(0), last_done_ms: AtomicU64::new(0), epoch: Instant::now() }
    }
}

/// A bridge request being served; its end is noted when it is dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Activity);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let a = self.0;
        a.last_done_ms.store(a.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    pub fn begin(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
    }

    /// Marks the connection as a bridge client's; true the first time.
    pub fn mark_api(&self) -> bool {
        !self.api.load(Ordering::Relaxed) && !self.api.swap(true, Ordering::AcqRel)
    }

    /// Until when the connection is kept open, past its handshake deadline: None for a
    /// connection that never served an authenticated bridge request.
    pub fn keep_open_until(&self, now: Instant) -> Option<Instant> {
        if !self.api.load(Ordering::Acquire) {
            return None;
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(now + IDLE);
        }
        Some(self.epoch + Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed)) + IDLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn kept_open_while_busy_and_for_a_while_after() {
        let a = Activity::default();
        assert_eq!(a.keep_open_until(Instant::now()), None, "not a bridge connection yet");
        assert!(a.mark_api());
        assert!(!a.mark_api());
        let busy = a.begin();
        tokio::time::advance(Duration::from_secs(600)).await;
        let now = Instant::now();
        assert_eq!(a.keep_open_until(now), Some(now + IDLE), "a long call keeps it open");
        drop(busy);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(a.keep_open_until(Instant::now()), Some(now + IDLE));
    }
}
