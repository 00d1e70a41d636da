//! How tidl's tasks share tokio's scheduler.
//!
//! On the multi-thread runtime, a task spawned or woken from a worker goes to that worker's
//! "LIFO slot" and runs next on the same worker, and tokio wakes no idle worker for it. When a
//! connection's reader spawns a handler that then computes without awaiting, the reader's worker
//! is taken, and no other worker is awake to poll the I/O driver: no frame (a cancel included)
//! and no new connection is read until the handler awaits. Waking another worker on every call
//! would fix that at a price on every call (measured: 15 to 24-33 µs of sequential latency on
//! the benchmark machine). Instead, [`watchdog`] notices a handler poll that runs for long and
//! only then wakes an idle worker, which takes over the I/O.
//!
//! The handlers one read of a connection starts are first polled together by one task
//! ([`batch`]): spawned one by one, the second would push the first out of the LIFO slot and
//! wake a parked worker to steal it, and half of a read's replies would be sent from another
//! thread.
//!
//! A handler that computes makes room itself with
//! [`Context::checkpoint`](crate::Context::checkpoint), which returns `Pending` once after waking
//! itself ([`YieldOnce`]): tokio puts such a task at the back of the run queue, where other
//! workers can steal it, and wakes an idle worker. `tokio::task::yield_now` is not used: it
//! defers the task until the worker next polls the I/O driver, which costs a system call on
//! every yield.

pub(crate) mod batch;
pub(crate) mod watchdog;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Returns `Pending` once after waking itself: every task that was ready runs before the task
/// continues, and an idle worker is woken to share the work.
#[derive(Debug, Default)]
pub(crate) struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
