//! Busy polling: a client's reader that expects replies polls its socket for a while before its
//! worker thread parks.
//!
//! When a read finds nothing, the reader's task waits for the socket, and a worker with nothing
//! else to do parks its thread (in `epoll_wait`, or on a condition variable while another worker
//! polls the I/O driver); the reply that comes a few microseconds later wakes it again, often
//! through another thread. With many calls in flight, a reply is usually that close: the reader
//! instead yields (`tokio::task::yield_now`: every other ready task runs first, and the worker
//! then polls the I/O driver without blocking if no other worker is blocked in it, in which case
//! that one finds the reply) and reads again, for up to
//! [`ClientConfig::busy_poll`](crate::ClientConfig::busy_poll). Measured on the benchmark
//! machine (one process, 64 calls in flight): about 1.3x the calls per second, at less CPU per
//! call, since the parks and wake-ups it saves cost more than the polls (BENCHMARKS.md, the
//! tenth round).
//!
//! Polling costs CPU when the worker has nothing else to run: a whole window that ends without
//! a reply (the server is slow, or far away) makes the next reads skip polling, 1, 2, 4, ... up
//! to [`MAX_SKIP`] of them after as many such windows in a row, so that a connection whose
//! replies take long spends one window every [`MAX_SKIP`] + 1 reads. Replies that come steadily
//! later than a few microseconds but within the window are polled for each time: latency over
//! CPU, which is what the setting chooses.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// The most reads that skip polling after windows that found nothing.
pub(crate) const MAX_SKIP: u32 = 64;

/// A reader's busy polling: how long it polls, and how many reads skip it after misses.
#[derive(Debug)]
pub(crate) struct Spin {
    /// How long one wait polls; zero: never.
    limit: Duration,
    /// Reads still to go without polling.
    skip: u32,
    /// Reads that skip polling after the next miss: doubled by every miss, halved by every hit.
    penalty: u32,
}

impl Spin {
    /// Polls for up to `limit` per wait.
    pub(crate) fn new(limit: Duration) -> Spin {
        Spin { limit, skip: 0, penalty: 0 }
    }

    /// Awaits `read`. If it is not ready at once and `expecting()` (replies are due; asked only
    /// then), polls it again after each yield until it is, or `limit` has passed; then waits for
    /// it as usual.
    pub(crate) async fn read<F: Future<Output = io::Result<usize>>>(
        &mut self,
        read: F,
        expecting: impl FnOnce() -> bool,
    ) -> io::Result<usize> {
        let mut read = pin!(read);
        if self.limit.is_zero() {
            return read.await;
        }
        let mut expecting = Some(expecting);
        let mut since: Option<Instant> = None;
        loop {
            if let Poll::Ready(result) = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
                if since.is_some() {
                    self.hit();
                }
                return result;
            }
            // Pending, with the task's waker registered: park now, or poll again after a yield.
            let park = match since {
                None if expecting.take().is_some_and(|expecting| !expecting()) => true,
                None if self.skip > 0 => {
                    self.skip -= 1;
                    true
                }
                None => {
                    since = Some(Instant::now());
                    false
                }
                Some(since) if since.elapsed() >= self.limit => {
                    self.miss();
                    true
                }
                Some(_) => false,
            };
            if park {
                // The poll above registered the waker: the first poll of the wait is not needed.
                let mut polled = true;
                return std::future::poll_fn(|cx| {
                    if std::mem::take(&mut polled) {
                        return Poll::Pending;
                    }
                    read.as_mut().poll(cx)
                })
                .await;
            }
            tokio::task::yield_now().await;
        }
    }

    fn hit(&mut self) {
        self.penalty /= 2;
    }

    fn miss(&mut self) {
        self.penalty = (self.penalty * 2).clamp(1, MAX_SKIP);
        self.skip = self.penalty;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::Waker;

    /// A read that the test makes ready, counting its polls and keeping the last waker.
    #[derive(Default)]
    struct Gate {
        polls: AtomicUsize,
        /// Ready from this poll on (0: never, unless opened).
        ready_at: AtomicUsize,
        open: AtomicBool,
        last_poll: Mutex<Option<Instant>>,
        waker: Mutex<Option<Waker>>,
    }

    impl Gate {
        fn ready_at(poll: usize) -> Arc<Gate> {
            let gate = Arc::new(Gate::default());
            gate.ready_at.store(poll, Ordering::Relaxed);
            gate
        }

        fn read(self: &Arc<Gate>) -> impl Future<Output = io::Result<usize>> + use<> {
            let gate = self.clone();
            std::future::poll_fn(move |cx| {
                let poll = gate.polls.fetch_add(1, Ordering::Relaxed) + 1;
                *gate.last_poll.lock().expect("lock") = Some(Instant::now());
                let ready_at = gate.ready_at.load(Ordering::Relaxed);
                if gate.open.load(Ordering::Relaxed) || (ready_at > 0 && poll >= ready_at) {
                    return Poll::Ready(Ok(7));
                }
                *gate.waker.lock().expect("lock") = Some(cx.waker().clone());
                Poll::Pending
            })
        }

        /// Makes the read ready and wakes whoever waits for it.
        fn open(&self) {
            self.open.store(true, Ordering::Relaxed);
            if let Some(waker) = self.waker.lock().expect("lock").take() {
                waker.wake();
            }
        }

        fn polls(&self) -> usize {
            self.polls.load(Ordering::Relaxed)
        }
    }

    /// Polls `fut` until `idle` has passed (the reader parked), and returns its output if it
    /// completed first. The timer going off does not poll `fut` again.
    async fn run_until_parked<T>(fut: impl Future<Output = T>, idle: Duration) -> Option<T> {
        tokio::select! {
            biased;
            () = tokio::time::sleep(idle) => None,
            output = fut => Some(output),
        }
    }

    #[tokio::test]
    async fn with_replies_due_a_pending_read_is_polled_again_until_it_is_ready() {
        let gate = Gate::ready_at(50);
        let mut spin = Spin::new(Duration::from_secs(5));
        let read = run_until_parked(spin.read(gate.read(), || true), Duration::from_secs(2)).await;
        assert_eq!(read.expect("polled until ready, not parked").expect("the read"), 7);
        assert_eq!(gate.polls(), 50, "polled until ready, with nothing waking it");
    }

    #[tokio::test]
    async fn without_replies_due_or_with_no_limit_a_pending_read_is_polled_once() {
        for (limit, expecting) in [(Duration::from_secs(5), false), (Duration::ZERO, true)] {
            let gate = Gate::ready_at(50);
            let mut spin = Spin::new(limit);
            let done = run_until_parked(spin.read(gate.read(), || expecting), Duration::from_millis(50)).await;
            assert!(done.is_none(), "nothing woke the read: it waits");
            assert_eq!(gate.polls(), 1, "limit {limit:?}, expecting {expecting}");
        }
    }

    #[tokio::test]
    async fn polling_stops_when_the_limit_has_passed_and_the_wait_is_woken_by_the_socket() {
        let mut spin = Spin::new(Duration::from_millis(2));
        let gate = Gate::ready_at(0);
        let opener = tokio::spawn({
            let gate = gate.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let polls_meanwhile = gate.polls();
                tokio::time::sleep(Duration::from_millis(150)).await;
                gate.open();
                polls_meanwhile
            }
        });
        let read = run_until_parked(spin.read(gate.read(), || true), Duration::from_secs(5)).await;
        assert_eq!(read.expect("the last poll's waker ends the wait").expect("the read"), 7);
        let polls_meanwhile = opener.await.expect("the opener");
        assert!(polls_meanwhile > 2, "polled more than once within the limit ({polls_meanwhile} polls)");
        assert_eq!(gate.polls(), polls_meanwhile + 1, "parked after the limit: one poll more, on the wake-up");
        assert_eq!(spin.penalty, 1, "a window that found nothing is a miss");
    }

    #[tokio::test]
    async fn misses_make_later_reads_skip_polling_and_hits_shorten_the_skip() {
        let mut spin = Spin::new(Duration::from_millis(1));
        // A miss: the next read polls once and parks.
        assert!(
            run_until_parked(spin.read(Gate::ready_at(0).read(), || true), Duration::from_millis(50)).await.is_none()
        );
        let gate = Gate::ready_at(0);
        assert!(run_until_parked(spin.read(gate.read(), || true), Duration::from_millis(50)).await.is_none());
        assert_eq!(gate.polls(), 1, "the read after a miss does not poll");
        // The penalty doubles with each miss in a row, up to MAX_SKIP.
        for _ in 0..10 {
            spin.skip = 0;
            spin.miss();
        }
        assert_eq!(spin.skip, MAX_SKIP);
        // A read that a poll finds ready halves it.
        spin.skip = 0;
        let read = run_until_parked(spin.read(Gate::ready_at(3).read(), || true), Duration::from_secs(2)).await;
        assert!(read.is_some());
        assert_eq!(spin.penalty, MAX_SKIP / 2, "a hit halves the penalty");
    }
}
