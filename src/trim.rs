//! Giving memory back to the operating system. glibc's malloc keeps what the router
//! frees: after a burst of large messages it raises its mmap threshold and serves later
//! large buffers from heaps it never trims, and after a wave of connections closes (an
//! idle-connection flood, say) their small allocations stay resident. Measured with
//! `bench/hostile.sh` (docs/benchmarks.md): a fixed 1 MiB mmap threshold gives large
//! buffers back as they are freed, and `malloc_trim` after a wave of closes takes RSS
//! from 36 MiB back to 7 MiB. jemalloc and mimalloc did worse in the same runs, so the
//! allocator stays glibc's, tuned. Elsewhere (musl, other systems) these do nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::router::Router;

/// Connections that must have closed since the last trim for the next one.
const WAVE: u64 = 512;
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Fixes glibc's mmap threshold at 1 MiB (which also stops it from growing): buffers of
/// 1 MiB or more get mappings of their own, returned to the system when freed. Call at
/// start, before other threads allocate.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; it is called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Every 10 s, if at least `WAVE` connections have closed since the last time, hands the
/// memory malloc holds free back to the system. Runs until the router shuts down.
pub async fn after_waves_of_closes(router: Arc<Router>) {
    let mut last = router.closed_connections();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = router.shutdown.cancelled() => return,
        }
        let closed = router.closed_connections();
        if closed - last >= WAVE {
            last = closed;
            trim();
            router.metrics.memory_trims.inc();
        }
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe; it only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::router::admission::Admit;
    use crate::router::ConnectionLimit;

    fn open_and_close(router: &Router, n: usize) {
        for _ in 0..n {
            assert!(matches!(router.admit(), Admit::Admitted(_)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_handed_back_after_a_wave_of_closes_only() {
        let router = Router::new(&Config::default(), ConnectionLimit { max: 10, reserve: 64 });
        let task = tokio::spawn(after_waves_of_closes(router.clone()));
        tokio::time::sleep(Duration::from_millis(1)).await;
        open_and_close(&router, 500);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(router.metrics.memory_trims.get(), 0, "500 closes are no wave");
        open_and_close(&router, 12);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(router.metrics.memory_trims.get(), 1);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(router.metrics.memory_trims.get(), 1, "nothing closed since");
        router.shutdown.cancel();
        task.await.unwrap();
    }
}
