//! What a connection may make the router hold while it reads, the same for both
//! transports: the size of one message (small until the session is established, so a
//! stranger gets no big buffers), the time a message may take to arrive once its first
//! byte has (so a half-sent frame cannot pin memory), and, for large messages, a charge
//! on the process's memory budget taken before the payload is buffered.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

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

    /// When a message that starts now must be complete.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.frame_timeout
    }
}

impl Drop for InboundLimits {
    fn drop(&mut self) {
        self.release();
    }
}
