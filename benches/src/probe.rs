//! The cancel-latency probe: the `spin` handler of every implementation holds a [`SpinGuard`]
//! that records when the handler's future is dropped. The endless streaming handlers hold one
//! too, and count the items they have sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;

/// Shared between a server's `spin` handlers and the client timing them (both in one process).
#[derive(Debug, Default)]
pub struct Probe {
    started: Notify,
    dropped: Notify,
    dropped_at: Mutex<Option<Instant>>,
    /// Items the endless streaming handlers have handed to their implementation so far.
    items: AtomicU64,
}

impl Probe {
    fn slot(&self) -> MutexGuard<'_, Option<Instant>> {
        self.dropped_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called first thing by a `spin` handler: returns the guard it holds until its future is
    /// dropped, and signals that the handler is running.
    pub fn enter(self: &Arc<Self>) -> SpinGuard {
        let guard = SpinGuard { probe: self.clone() };
        self.started.notify_one();
        guard
    }

    /// Forgets the drop time of an earlier trial.
    pub fn reset(&self) {
        *self.slot() = None;
    }

    /// Counts one item sent by an endless streaming handler.
    pub fn count_item(&self) {
        self.items.fetch_add(1, Ordering::Relaxed);
    }

    /// Items the endless streaming handlers have sent so far.
    pub fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }

    /// Completes once a `spin` handler has started (at once if one started since the last call).
    pub async fn wait_started(&self) {
        self.started.notified().await;
    }

    /// Waits for a `spin` handler's guard to be dropped and returns when that happened.
    pub async fn wait_dropped(&self) -> Instant {
        loop {
            let notified = self.dropped.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(at) = self.slot().take() {
                return at;
            }
            notified.await;
        }
    }
}

/// Records `Instant::now()` in its [`Probe`] when dropped, that is when the handler's future is.
#[derive(Debug)]
pub struct SpinGuard {
    probe: Arc<Probe>,
}

impl Drop for SpinGuard {
    fn drop(&mut self) {
        let now = Instant::now();
        *self.probe.slot() = Some(now);
        self.probe.dropped.notify_one();
    }
}

/// Computes for about `ms` milliseconds without awaiting anything, as a CPU-bound handler does.
pub fn compute(ms: u64) -> u64 {
    let until = Instant::now() + std::time::Duration::from_millis(ms);
    let mut x = 0u64;
    while Instant::now() < until {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}
