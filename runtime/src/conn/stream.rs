//! One call's stream of items, as its connection sees it: the items received and not yet taken
//! by the application, and the credit for items to send.
//!
//! Flow control is per stream and counted in bytes of item payloads. Each direction of a stream
//! starts with [`INITIAL_WINDOW`] bytes of credit; a receiver whose window is larger grants the
//! difference when the stream opens. A sender may send while its credit is above zero and
//! subtracts each item's length, so its credit dips below zero by at most one item: an item
//! larger than the window still goes through. The receiver grants credit back as its
//! application *takes* items (not as they arrive), in batches of half a window, so a consumer
//! that stops taking bounds what is buffered for it to one window plus one item. A sender that
//! goes further breaks the protocol.

use crate::sync::lock;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// The credit each direction of a stream starts with, in bytes.
pub(crate) const INITIAL_WINDOW: u64 = 64 * 1024;

/// The shared state of one call's stream.
#[derive(Debug)]
pub(crate) struct Stream {
    inbox: Mutex<Inbox>,
    /// Bytes this side may still send; below zero by at most one item.
    credit: AtomicI64,
    /// Woken when credit is granted or the call ends.
    credit_changed: Notify,
    /// Set when the call has ended: nothing more is sent or received.
    finished: AtomicBool,
    /// This side's receive window, in bytes.
    window: u64,
    /// Bytes of credit this side has granted the sender so far, the initial window included.
    granted: AtomicU64,
}

#[derive(Debug, Default)]
struct Inbox {
    items: VecDeque<Bytes>,
    /// Bytes of the items held.
    buffered: u64,
    /// Bytes of items received so far.
    received_bytes: u64,
    /// Bytes taken since credit was last granted.
    ungranted: u64,
    /// Items received so far: the index of the next one.
    received: u64,
    /// Items taken so far.
    taken: u64,
    /// The sender said it sends no more.
    closed: bool,
    waker: Option<Waker>,
}

/// The sender sent an item when it had no credit left.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overrun {
    /// Bytes it had sent before the item.
    pub(crate) sent: u64,
    /// Bytes of credit it had been granted.
    pub(crate) granted: u64,
}

/// An item taken from the inbox.
#[derive(Debug)]
pub(crate) struct Taken {
    /// Its encoded bytes.
    pub(crate) bytes: Bytes,
    /// Its index in the stream, from 0.
    pub(crate) index: u64,
    /// Credit to grant the sender now, if a batch is due.
    pub(crate) grant: Option<u64>,
}

impl Stream {
    /// A stream whose receiving side has a window of `window` bytes.
    pub(crate) fn new(window: usize) -> Stream {
        Stream {
            inbox: Mutex::new(Inbox::default()),
            credit: AtomicI64::new(INITIAL_WINDOW as i64),
            credit_changed: Notify::new(),
            finished: AtomicBool::new(false),
            window: (window as u64).max(INITIAL_WINDOW),
            granted: AtomicU64::new(INITIAL_WINDOW),
        }
    }

    /// The credit to grant when the stream opens, beyond the initial window; counted as granted.
    pub(crate) fn opening_grant(&self) -> Option<u64> {
        let grant = (self.window > INITIAL_WINDOW).then(|| self.window - INITIAL_WINDOW)?;
        self.granted.fetch_add(grant, Ordering::AcqRel);
        Some(grant)
    }

    /// An item arrived. Fails if the sender sent it with no credit left: an item may take its
    /// credit below zero, but none may be sent once it is there.
    pub(crate) fn push(&self, item: Bytes) -> Result<(), Overrun> {
        let mut inbox = lock(&self.inbox);
        if self.finished.load(Ordering::Acquire) || inbox.closed {
            // The call ended, or the sender said it sends no more: dropped.
            return Ok(());
        }
        let granted = self.granted.load(Ordering::Acquire);
        if inbox.received_bytes >= granted {
            return Err(Overrun { sent: inbox.received_bytes, granted });
        }
        inbox.received_bytes += item.len() as u64;
        inbox.buffered += item.len() as u64;
        inbox.received += 1;
        inbox.items.push_back(item);
        if let Some(waker) = inbox.waker.take() {
            waker.wake();
        }
        Ok(())
    }

    /// The sender sends no more items.
    pub(crate) fn close_inbox(&self) {
        let mut inbox = lock(&self.inbox);
        inbox.closed = true;
        if let Some(waker) = inbox.waker.take() {
            waker.wake();
        }
    }

    /// Takes the next item: `Ready(Some)` with it, `Ready(None)` once the sender closed its side
    /// and every item was taken, else `Pending` (woken by the next item or the close).
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<Taken>> {
        let mut inbox = lock(&self.inbox);
        match inbox.items.pop_front() {
            Some(bytes) => {
                let len = bytes.len() as u64;
                inbox.buffered -= len;
                inbox.ungranted += len;
                let index = inbox.taken;
                inbox.taken += 1;
                let grant = (inbox.ungranted >= self.window / 2).then(|| std::mem::take(&mut inbox.ungranted));
                if let Some(grant) = grant {
                    self.granted.fetch_add(grant, Ordering::AcqRel);
                }
                Poll::Ready(Some(Taken { bytes, index, grant }))
            }
            None if inbox.closed || self.finished.load(Ordering::Acquire) => Poll::Ready(None),
            None => {
                if !inbox.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    inbox.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Drops the items held (the call was cancelled).
    pub(crate) fn clear(&self) {
        let mut inbox = lock(&self.inbox);
        inbox.items.clear();
        inbox.buffered = 0;
    }

    /// The peer granted `bytes` more credit.
    pub(crate) fn grant(&self, bytes: u64) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let _ = self.credit.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| Some(c.saturating_add(bytes)));
        self.credit_changed.notify_waiters();
    }

    /// Whether this side may send an item now.
    pub(crate) fn has_credit(&self) -> bool {
        self.credit.load(Ordering::Acquire) > 0 && !self.finished.load(Ordering::Acquire)
    }

    /// Waits until this side may send an item; `false` if the call ended first.
    pub(crate) async fn wait_for_credit(&self) -> bool {
        if self.has_credit() {
            return true;
        }
        loop {
            let changed = self.credit_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.finished.load(Ordering::Acquire) {
                return false;
            }
            if self.credit.load(Ordering::Acquire) > 0 {
                return true;
            }
            changed.await;
        }
    }

    /// Records that an item of `len` bytes was sent.
    pub(crate) fn spend(&self, len: usize) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        let _ = self.credit.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| Some(c.saturating_sub(len)));
    }

    /// The credit left (below zero by at most one item).
    #[cfg(test)]
    pub(crate) fn credit(&self) -> i64 {
        self.credit.load(Ordering::Acquire)
    }

    /// The call ended: senders stop waiting, and a taker sees the end once the items are taken.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.credit_changed.notify_waiters();
        let mut inbox = lock(&self.inbox);
        if let Some(waker) = inbox.waker.take() {
            waker.wake();
        }
    }

    /// Whether the call has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn take(stream: &Stream) -> Poll<Option<Taken>> {
        stream.poll_take(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn items_come_out_in_order_and_the_end_after_them() {
        let stream = Stream::new(1024);
        stream.push(Bytes::from_static(b"a")).expect("within credit");
        stream.push(Bytes::from_static(b"b")).expect("within credit");
        stream.close_inbox();
        stream.push(Bytes::from_static(b"c")).expect("dropped: after the half-close");
        let Poll::Ready(Some(a)) = take(&stream) else { panic!("an item") };
        assert_eq!((&a.bytes[..], a.index), (&b"a"[..], 0));
        let Poll::Ready(Some(b)) = take(&stream) else { panic!("an item") };
        assert_eq!((&b.bytes[..], b.index), (&b"b"[..], 1));
        assert!(matches!(take(&stream), Poll::Ready(None)));
    }

    #[test]
    fn credit_is_granted_back_in_half_windows_as_items_are_taken() {
        let stream = Stream::new(0); // the protocol's initial window
        let half = (INITIAL_WINDOW / 2) as usize;
        stream.push(Bytes::from(vec![0; half - 1])).expect("within credit");
        stream.push(Bytes::from(vec![0; 1])).expect("within credit");
        let Poll::Ready(Some(first)) = take(&stream) else { panic!("an item") };
        assert_eq!(first.grant, None, "not yet half a window");
        let Poll::Ready(Some(second)) = take(&stream) else { panic!("an item") };
        assert_eq!(second.grant, Some(INITIAL_WINDOW / 2));
    }

    #[test]
    fn a_sender_may_overshoot_by_one_item_and_no_more() {
        let stream = Stream::new(0);
        stream.push(Bytes::from(vec![0; INITIAL_WINDOW as usize - 1])).expect("within the window");
        stream.push(Bytes::from(vec![0; 100])).expect("one item past it");
        let overrun = Overrun { sent: INITIAL_WINDOW + 99, granted: INITIAL_WINDOW };
        assert_eq!(stream.push(Bytes::from(vec![0; 1])), Err(overrun), "no item once the credit is spent");
    }

    #[tokio::test]
    async fn a_sender_waits_for_credit_and_an_item_larger_than_the_window_goes_through() {
        let stream = std::sync::Arc::new(Stream::new(0));
        assert!(stream.wait_for_credit().await);
        stream.spend(10 * INITIAL_WINDOW as usize);
        assert!(stream.credit() < 0);
        let waiter = tokio::spawn({
            let stream = stream.clone();
            async move { stream.wait_for_credit().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "no credit: the sender waits");
        stream.grant(10 * INITIAL_WINDOW);
        assert!(waiter.await.expect("joined"));
        stream.finish();
        assert!(!stream.wait_for_credit().await, "an ended call sends nothing");
    }
}
