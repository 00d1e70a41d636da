//! Busy polling: a client's reader that expects replies polls its socket for a while before its
//! worker thread parks.
//!
//! When a read finds nothing, the reader's task waits for the socket, and a worker with nothing
//! else to do parks its thread (in `epoll_wait`, or on a condition variable while another worker
//! polls the I/O driver); the reply that comes a few microseconds later wakes it again, often
//! through another thread. With many calls in flight, a reply is usually that close: the reader
//! instead yields (`tokio::task::yield_now`, which runs every other ready task first and then
//! polls the I/O driver without blocking) and reads again, for up to
//! [`ClientConfig::busy_poll`](crate::ClientConfig::busy_poll). Measured on the benchmark
//! machine (one process, 64 calls in flight): about 1.3x the calls per second, at less CPU
//! per call, since a park and its wake cost more than the polls they replace (BENCHMARKS.md,
//! the tenth round).
//!
//! A poll that ends without a reply (the server is slow, or far away) was CPU spent for
//! nothing: the next reads then skip polling, twice as many after each miss in a row (up to
//! [`MAX_SKIP`]), so that a connection whose replies take long spends at most one poll period
//! every [`MAX_SKIP`] reads.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// The most reads that skip polling after polls that found nothing.
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

    /// Awaits `read`. If it is not ready at once and `expecting` (replies are due), polls it
    /// again after each yield until it is, or `limit` has passed; then waits for it as usual.
    pub(crate) async fn read<F: Future<Output = io::Result<usize>>>(
        &mut self,
        read: F,
        expecting: bool,
    ) -> io::Result<usize> {
        let mut read = pin!(read);
        if self.limit.is_zero() || !expecting {
            return read.await;
        }
        let mut since: Option<Instant> = None;
        loop {
            // The last poll is the wait's own: its waker stays registered.
            if self.skip > 0 {
                self.skip -= 1;
                return read.await;
            }
            if since.is_some_and(|since| since.elapsed() >= self.limit) {
                self.miss();
                return read.await;
            }
            if let Poll::Ready(result) = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
                if since.is_some() {
                    self.hit();
                }
                return result;
            }
            since.get_or_insert_with(Instant::now);
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A read that is pending until it has been polled `ready_after` times, counting polls.
    fn read_after(polls: &Arc<AtomicUsize>, ready_after: usize) -> impl Future<Output = io::Result<usize>> + use<> {
        let polls = polls.clone();
        std::future::poll_fn(move |cx| {
            if polls.fetch_add(1, Ordering::Relaxed) + 1 >= ready_after {
                Poll::Ready(Ok(7))
            } else {
                // Whoever waits for it is woken only by the test.
                let _ = cx;
                Poll::Pending
            }
        })
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
        let polls = Arc::new(AtomicUsize::new(0));
        let mut spin = Spin::new(Duration::from_secs(5));
        let read = run_until_parked(spin.read(read_after(&polls, 50), true), Duration::from_secs(5)).await;
        assert_eq!(read.expect("polled until ready, not parked").expect("the read"), 7);
        assert_eq!(polls.load(Ordering::Relaxed), 50, "polled until ready, with nothing waking it");
    }

    #[tokio::test]
    async fn without_replies_due_or_with_no_limit_a_pending_read_is_polled_once() {
        for (limit, expecting) in [(Duration::from_secs(5), false), (Duration::ZERO, true)] {
            let polls = Arc::new(AtomicUsize::new(0));
            let mut spin = Spin::new(limit);
            let done = run_until_parked(spin.read(read_after(&polls, 50), expecting), Duration::from_millis(50)).await;
            assert!(done.is_none(), "nothing woke the read: it waits");
            assert_eq!(polls.load(Ordering::Relaxed), 1, "limit {limit:?}, expecting {expecting}");
        }
    }

    #[tokio::test]
    async fn polling_stops_after_the_limit_and_misses_make_later_waits_skip_it() {
        let mut spin = Spin::new(Duration::from_millis(2));
        let polls = Arc::new(AtomicUsize::new(0));
        let done = run_until_parked(spin.read(read_after(&polls, usize::MAX), true), Duration::from_millis(200)).await;
        assert!(done.is_none());
        let spun = polls.load(Ordering::Relaxed);
        assert!(spun > 1, "polled more than once within the limit");
        // A miss: the next read polls once and parks.
        let polls = Arc::new(AtomicUsize::new(0));
        let done = run_until_parked(spin.read(read_after(&polls, usize::MAX), true), Duration::from_millis(50)).await;
        assert!(done.is_none());
        assert_eq!(polls.load(Ordering::Relaxed), 1, "the read after a miss does not poll");
        // The penalty doubles with each miss in a row, up to MAX_SKIP.
        for _ in 0..10 {
            spin.skip = 0;
            spin.miss();
        }
        assert_eq!(spin.skip, MAX_SKIP);
        spin.hit();
        assert_eq!(spin.penalty, MAX_SKIP / 2, "a hit halves the penalty");
    }
}
