//! What a connection may make the router hold while it reads, the same for both
//! transports: the size of one message (small until the session is established, so a
//! stranger gets no big buffers), the time a message may take to arrive once its first
//! byte has (so a half-sent frame cannot pin memory), and, for large messages, a charge
//! on the process's memory budget taken before the payload is buffered.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::TransportError;
use crate::router::budget::{MemoryBudget, INBOUND_FREE};
use crate::router::metrics::Metrics;
use crate::router::Router;

#[derive(Debug)]
pub struct InboundLimits {
    established: Arc<AtomicBool>,
    hello_size: usize,
    max_size: usize,
    pub frame_timeout: Duration,
    budget: Arc<MemoryBudget>,
    metrics: Arc<Metrics>,
    /// Bytes charged for the message being read (or just delivered).
    charged: usize,
}

impl InboundLimits {
    pub fn new(router: &Router, established: Arc<AtomicBool>, max_size: usize) -> InboundLimits {
        InboundLimits {
            established,
            hello_size: router.limits.max_hello_size.min(max_size),
            max_size,
            frame_timeout: router.limits.frame_timeout,
            budget: router.budget.clone(),
            metrics: router.metrics.clone(),
            charged: 0,
        }
    }

    /// The largest message accepted now.
    pub fn limit(&self) -> usize {
        if self.established.load(Ordering::Acquire) {
            self.max_size
        } else {
            self.hello_size
        }
    }

    pub fn check_size(&self, size: usize) -> Result<(), TransportError> {
        let limit = self.limit();
        if size > limit {
            return Err(TransportError::TooLarge { size, limit });
        }
        Ok(())
    }

    /// The budget a message of `size` bytes still needs before it may be buffered: 0 for
    /// small messages and for one already charged.
    pub fn needs(&self, size: usize) -> usize {
        if size <= INBOUND_FREE || self.charged >= size {
            0
        } else {
            size - self.charged
        }
    }

    /// A future that charges `n` bytes, waiting for budget; `'static`, so a poll-based
    /// reader can keep it. Call `charged(n)` once it completes.
    pub fn charge(&self, n: usize) -> impl Future<Output = ()> + Send + 'static {
        let (budget, metrics) = (self.budget.clone(), self.metrics.clone());
        async move {
            if !budget.try_charge(n) {
                metrics.inbound_budget_waits.inc();
                budget.charge(n).await;
            }
        }
    }

    pub fn charged(&mut self, n: usize) {
        self.charged += n;
    }

    /// The message that was charged for has been handed to the router, which now owns
    /// (and accounts for) whatever it keeps of it.
    pub fn release(&mut self) {
        self.budget.release(std::mem::take(&mut self.charged));
    }

    pub fn clock(&self) -> FrameClock {
        FrameClock::new(self.frame_timeout)
    }
}

/// The frame deadline, kept cheap: one timer per connection, armed when a message is in
/// progress and moved only when it fires, instead of a timer set per message (a timer
/// per read cost a few percent of fan-out throughput on the publisher's connection).
#[derive(Debug)]
pub struct FrameClock {
    timeout: Duration,
    /// When the message in progress began; None between messages.
    started: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl FrameClock {
    fn new(timeout: Duration) -> FrameClock {
        FrameClock { timeout, started: None, sleep: Box::pin(tokio::time::sleep(timeout)), armed: false }
    }

    /// A message has begun (if none was in progress).
    pub fn begin(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    /// One message ended and the next began in the same bytes.
    pub fn restart(&mut self) {
        self.started = Some(Instant::now());
    }

    /// The message ended; nothing is in progress.
    pub fn end(&mut self) {
        self.started = None;
    }

    /// Ready when the message in progress began longer than the frame timeout ago.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(started) = self.started else { return Poll::Pending };
        let deadline = started + self.timeout;
        if !self.armed {
            self.sleep.as_mut().reset(deadline);
            self.armed = true;
        }
        // The timer may have been set for an earlier message, which always ends sooner:
        // when it fires for that one, it moves on to this one's deadline.
        while self.sleep.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(deadline);
        }
        Poll::Pending
    }

    /// Completes when the message in progress has taken too long (never between messages).
    pub async fn expired(&mut self) {
        std::future::poll_fn(|cx| self.poll_expired(cx)).await
    }
}

impl Drop for InboundLimits {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn expires_within(clock: &mut FrameClock, d: Duration) -> bool {
        tokio::time::timeout(d, clock.expired()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_runs_from_a_messages_first_byte_and_moves_lazily() {
        let mut clock = FrameClock::new(Duration::from_secs(30));
        assert!(!expires_within(&mut clock, Duration::from_secs(60)).await, "nothing in progress");
        clock.begin();
        tokio::time::sleep(Duration::from_secs(20)).await;
        clock.begin(); // still the same message
        assert!(expires_within(&mut clock, Duration::from_secs(11)).await);
        // Messages that each end in time, back to back for longer than the timeout.
        clock.restart();
        for _ in 0..5 {
            assert!(!expires_within(&mut clock, Duration::from_secs(20)).await);
            clock.restart();
        }
        assert!(!expires_within(&mut clock, Duration::from_secs(29)).await);
        assert!(expires_within(&mut clock, Duration::from_secs(2)).await);
        clock.end();
        assert!(!expires_within(&mut clock, Duration::from_secs(120)).await);
    }
}
