//! The seed scenario's `Example` service, implemented on code generated from `services.tidl`.
//!
//! `finite_loop` sleeps in a loop until it is cancelled; `echo` returns its argument. The loop
//! publishes what it does (iterations, starts, stops) through [`Example::subscribe`], so the
//! demo can print a timeline and the tests can see a cancelled handler really stop.

use std::sync::Arc;
use std::time::Duration;
use tidl_runtime::Context;
use tokio::sync::watch;
use tokio::time::Instant;

/// The code generated from `services.tidl`.
pub mod services {
    tidl_runtime::include_tidl!("services");
}

pub use services::{ExampleClient, ExampleClientExt, ExampleServer};

pub mod lab;
pub mod shop;

/// What `finite_loop` handlers have done so far, across all calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Loop iterations completed.
    pub iterations: u64,
    /// Handlers started.
    pub started: u64,
    /// Handlers dropped before finishing their loop: cancelled.
    pub stopped: u64,
    /// Handlers that ran their whole loop.
    pub completed: u64,
    /// When the last handler was dropped before finishing.
    pub last_stop: Option<Instant>,
}

/// The seed's `Example` service.
#[derive(Clone, Debug)]
pub struct Example {
    period: Duration,
    rounds: u32,
    stats: Arc<watch::Sender<LoopStats>>,
}

impl Example {
    /// As in the seed: `finite_loop` sleeps 500 ms, 500 times.
    pub fn new() -> Example {
        Example::with_period(Duration::from_millis(500))
    }

    /// `finite_loop` sleeps `period`, 500 times.
    pub fn with_period(period: Duration) -> Example {
        Example { period, rounds: 500, stats: Arc::new(watch::Sender::new(LoopStats::default())) }
    }

    /// What the loop handlers have done so far.
    pub fn stats(&self) -> LoopStats {
        self.stats.borrow().clone()
    }

    /// A receiver that sees every change of [`stats`](Example::stats).
    pub fn subscribe(&self) -> watch::Receiver<LoopStats> {
        self.stats.subscribe()
    }
}

impl Default for Example {
    fn default() -> Example {
        Example::new()
    }
}

/// Counts a `finite_loop` handler as stopped if it is dropped before it finishes.
struct LoopGuard<'a> {
    stats: &'a watch::Sender<LoopStats>,
    finished: bool,
}

impl Drop for LoopGuard<'_> {
    fn drop(&mut self) {
        let finished = self.finished;
        self.stats.send_modify(|s| {
            if finished {
                s.completed += 1;
            } else {
                s.stopped += 1;
                s.last_stop = Some(Instant::now());
            }
        });
    }
}

impl services::Example for Example {
    async fn finite_loop(&self, _ctx: Context, (): ()) -> Result<(), tidl_runtime::Error> {
        self.stats.send_modify(|s| s.started += 1);
        let mut guard = LoopGuard { stats: &self.stats, finished: false };
        for _ in 0..self.rounds {
            tokio::time::sleep(self.period).await;
            self.stats.send_modify(|s| s.iterations += 1);
        }
        guard.finished = true;
        Ok(())
    }

    async fn echo(&self, _ctx: Context, arg: String) -> Result<String, tidl_runtime::Error> {
        Ok(arg)
    }
}
