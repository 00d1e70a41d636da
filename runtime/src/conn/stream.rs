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

/// Item frames the reader routes to streams, held until the end of a read batch (or until a
/// frame of another kind or another call arrives) and then handed over together: a stream's
/// consumer is woken once per batch, not once per item. A frame's items stay in its payload (a
/// chunk) until the consumer takes them: the reader does no work per item.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    /// The call whose items are held, and its stream.
    to: Option<(u64, std::sync::Arc<Stream>)>,
    chunks: Vec<Bytes>,
}

/// `Item` frame payloads shorter than this are copied out of the read buffer they arrived in
/// rather than shared: a shared chunk holds at most twice its own length of read buffer beside it
/// (read buffers are 16 KiB), so the memory held for a stream stays within a small multiple of
/// its window.
const COPY_BELOW: usize = 8 * 1024;

impl Deliveries {
    /// Holds the items of a valid `Item` frame payload (`chunk`) for call `id`, whose stream
    /// `find` looks up when the call changes; items of a call that is not a running streaming
    /// call are dropped.
    pub(crate) fn add(
        &mut self,
        id: u64,
        chunk: Bytes,
        find: impl FnOnce(u64) -> Option<std::sync::Arc<Stream>>,
    ) -> Result<(), (u64, Overrun)> {
        if self.to.as_ref().is_none_or(|(to, _)| *to != id) {
            self.flush()?;
            match find(id) {
                Some(stream) => self.to = Some((id, stream)),
                None => return Ok(()),
            }
        }
        // A short chunk is copied out: shared, it would keep its whole read buffer (16 KiB or
        // more) alive for a few bytes of credit, and a peer could pin gigabytes with a window
        // of one megabyte by sending one small item per read.
        self.chunks.push(if chunk.len() < COPY_BELOW { Bytes::copy_from_slice(&chunk) } else { chunk });
        Ok(())
    }

    /// Hands over the items held.
    pub(crate) fn flush(&mut self) -> Result<(), (u64, Overrun)> {
        if self.chunks.is_empty() {
            self.to = None;
            return Ok(());
        }
        if let Some((id, stream)) = self.to.take() {
            stream.push_chunks(&mut self.chunks).map_err(|overrun| (id, overrun))?;
        }
        self.chunks.clear();
        Ok(())
    }
}

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
    /// Set when the items were dropped (the call was cancelled): the taker drops its batch too.
    cleared: AtomicBool,
    /// This side's receive window, in bytes.
    window: u64,
    /// Bytes of credit this side has granted the sender so far, the initial window included.
    granted: AtomicU64,
}

#[derive(Debug, Default)]
struct Inbox {
    /// `Item` frame payloads: each one or more items, each after its 4-byte length.
    chunks: VecDeque<Bytes>,
    /// Bytes of items received so far.
    received_bytes: u64,
    /// The sender said it sends no more.
    closed: bool,
    waker: Option<Waker>,
}

/// The application's end of a stream's items: it takes the items held in one go and hands them
/// out one by one, granting credit back as they are handed out. An item handed out is a range
/// of the chunk it came in ([`item`](Taker::item)), valid until the next take: no reference
/// count is touched per item.
#[derive(Debug, Default)]
pub(crate) struct Taker {
    batch: VecDeque<Bytes>,
    /// The chunk items are being taken from.
    chunk: Bytes,
    /// Where the next item of `chunk` starts.
    at: usize,
    /// Where the item handed out last lies in `chunk`, its length prefix skipped.
    item: std::ops::Range<usize>,
    /// The credit to grant the sender for the item handed out last, if a batch was due.
    grant: Option<u64>,
    /// Bytes handed out since credit was last granted.
    ungranted: u64,
    /// Items handed out so far: the index of the next one.
    taken: u64,
}

impl Taker {
    /// The next item of `stream`: `Ready(Some)` with it, `Ready(None)` once the sender closed its
    /// side and every item was taken, else `Pending`.
    ///
    /// Always inlined (a stream's consumer calls it for every item); moving on to the next chunk,
    /// once per frame of items, is not.
    #[inline(always)]
    pub(crate) fn poll_take(&mut self, stream: &Stream, cx: &mut Context<'_>) -> Poll<Option<Taken>> {
        if stream.cleared.load(Ordering::Acquire) {
            self.clear();
        }
        if self.at >= self.chunk.len() && !std::task::ready!(self.poll_next_chunk(stream, cx)) {
            return Poll::Ready(None);
        }
        // The reader checked every chunk's items.
        let Some(range) = crate::wire::item_at(&self.chunk, self.at) else {
            self.chunk = Bytes::new();
            self.at = 0;
            return Poll::Ready(None);
        };
        self.at = range.end;
        self.ungranted += range.len() as u64;
        self.item = range;
        self.taken += 1;
        self.grant = (self.ungranted >= stream.window / 2).then(|| std::mem::take(&mut self.ungranted));
        if let Some(grant) = self.grant {
            stream.granted.fetch_add(grant, Ordering::AcqRel);
        }
        Poll::Ready(Some(Taken(())))
    }

    /// Drops the items held (the call was cancelled).
    #[cold]
    fn clear(&mut self) {
        self.batch.clear();
        self.chunk = Bytes::new();
        self.at = 0;
        self.item = 0..0;
    }

    /// Moves on to the next chunk that holds items: `Ready(true)` once there is one,
    /// `Ready(false)` at the end.
    #[inline(never)]
    fn poll_next_chunk(&mut self, stream: &Stream, cx: &mut Context<'_>) -> Poll<bool> {
        loop {
            if self.batch.is_empty() && !std::task::ready!(stream.poll_fill(cx, &mut self.batch)) {
                return Poll::Ready(false);
            }
            let Some(chunk) = self.batch.pop_front() else { return Poll::Ready(false) };
            self.chunk = chunk;
            self.at = 0;
            if !self.chunk.is_empty() {
                return Poll::Ready(true);
            }
        }
    }

    /// The index in the stream (from 0) of the item handed out last.
    pub(crate) fn index(&self) -> u64 {
        self.taken.saturating_sub(1)
    }

    /// The credit to grant the sender now, for the item handed out last, if a batch is due.
    pub(crate) fn grant(&self) -> Option<u64> {
        self.grant
    }

    /// How many items were handed out so far.
    pub(crate) fn count(&self) -> u64 {
        self.taken
    }

    /// Decodes the item the last take handed out (a long `Bytes` item shares the chunk's
    /// memory, as `codec::decode_shared` says).
    #[inline(always)]
    pub(crate) fn decode<T: serde::de::DeserializeOwned + 'static>(&self) -> Result<T, String> {
        crate::codec::decode_shared::<T>(&self.chunk, self.item.clone())
    }

    /// The bytes of the item the last take handed out, as a `Bytes` of their own (sharing the
    /// chunk's memory).
    pub(crate) fn item_bytes(&self) -> Bytes {
        if self.item.end <= self.chunk.len() { self.chunk.slice(self.item.clone()) } else { Bytes::new() }
    }
}

/// The sender sent an item when it had no credit left.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overrun {
    /// Bytes it had sent before the item.
    pub(crate) sent: u64,
    /// Bytes of credit it had been granted.
    pub(crate) granted: u64,
}

/// An item was taken from the inbox: it is the taker's "last item" ([`Taker::decode`],
/// [`Taker::item_bytes`], [`Taker::index`], [`Taker::grant`]) until the next take. It carries
/// nothing itself, so that nothing is copied through the layers of polling for each item.
#[derive(Debug)]
pub(crate) struct Taken(());

impl Stream {
    /// A stream whose receiving side has a window of `window` bytes.
    pub(crate) fn new(window: usize) -> Stream {
        Stream {
            inbox: Mutex::new(Inbox::default()),
            credit: AtomicI64::new(INITIAL_WINDOW as i64),
            credit_changed: Notify::new(),
            finished: AtomicBool::new(false),
            cleared: AtomicBool::new(false),
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
    #[cfg(test)]
    pub(crate) fn push(&self, item: &[u8]) -> Result<(), Overrun> {
        let mut chunk = bytes::BytesMut::new();
        bytes::BufMut::put_u32_le(&mut chunk, u32::try_from(item.len()).unwrap_or(u32::MAX));
        chunk.extend_from_slice(item);
        self.push_chunks(&mut vec![chunk.freeze()])
    }

    /// `Item` frame payloads arrived, in order (`chunks` is left empty; the reader has checked
    /// that each splits into items): one lock and one wake for them all. Fails as
    /// [`push`](Self::push) does.
    pub(crate) fn push_chunks(&self, chunks: &mut Vec<Bytes>) -> Result<(), Overrun> {
        let waker = {
            let mut inbox = lock(&self.inbox);
            if self.finished.load(Ordering::Acquire) || inbox.closed {
                // The call ended, or the sender said it sends no more: dropped.
                chunks.clear();
                return Ok(());
            }
            let granted = self.granted.load(Ordering::Acquire);
            for chunk in chunks.drain(..) {
                for len in crate::wire::item_lengths(&chunk) {
                    if inbox.received_bytes >= granted {
                        return Err(Overrun { sent: inbox.received_bytes, granted });
                    }
                    inbox.received_bytes += len.unwrap_or(0) as u64;
                }
                inbox.chunks.push_back(chunk);
            }
            inbox.waker.take()
        };
        if let Some(waker) = waker {
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

    /// Moves every item held into `batch` (which must be empty): `Ready(true)` if there were
    /// some, `Ready(false)` once the sender closed its side (or the call ended) and every item
    /// was taken, else `Pending` (woken by the next items or the close).
    fn poll_fill(&self, cx: &mut Context<'_>, batch: &mut VecDeque<Bytes>) -> Poll<bool> {
        let mut inbox = lock(&self.inbox);
        if !inbox.chunks.is_empty() {
            std::mem::swap(&mut inbox.chunks, batch);
            return Poll::Ready(true);
        }
        if inbox.closed || self.finished.load(Ordering::Acquire) {
            return Poll::Ready(false);
        }
        if !inbox.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            inbox.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Drops the items held, and those its taker holds (the call was cancelled).
    pub(crate) fn clear(&self) {
        self.cleared.store(true, Ordering::Release);
        lock(&self.inbox).chunks.clear();
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

    /// Queues `item` on `outbox` as the next item of call `id`'s stream, and spends its credit.
    pub(crate) fn send_item<T: serde::Serialize + 'static>(
        &self,
        outbox: &super::outbox::Outbox,
        id: u64,
        item: &T,
    ) -> Result<(), super::outbox::PushError> {
        let len = outbox.push_item(id, |buf, limit| crate::codec::encode_item_into(item, buf, limit))?;
        self.spend(len);
        Ok(())
    }

    /// Records that an item of `len` bytes was sent.
    pub(crate) fn spend(&self, len: usize) {
        // An item is at most a frame long, and credit at most what was granted: no overflow.
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        self.credit.fetch_sub(len, Ordering::AcqRel);
    }

    /// The credit left (below zero by at most one item).
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

    fn take(stream: &Stream, taker: &mut Taker) -> Poll<Option<Taken>> {
        taker.poll_take(stream, &mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_short_chunk_is_copied_out_of_its_read_buffer_and_a_long_one_shared() {
        let stream = std::sync::Arc::new(Stream::new(1024 * 1024));
        let mut one = 5u32.to_le_bytes().to_vec();
        one.extend_from_slice(b"hello");
        let mut long = 9_000u32.to_le_bytes().to_vec();
        long.resize(9_004, 7);
        let (short_at, long_at) = (1000..1000 + one.len(), 4000..4000 + long.len());
        let mut block_bytes = vec![0u8; 16 * 1024];
        block_bytes[short_at.clone()].copy_from_slice(&one);
        block_bytes[long_at.clone()].copy_from_slice(&long);
        let block = Bytes::from(block_bytes);
        let within = |chunk: &Bytes| block.as_ptr_range().contains(&chunk.as_ptr());
        let mut deliveries = Deliveries::default();
        deliveries.add(1, block.slice(short_at), |_| Some(stream.clone())).expect("within credit");
        deliveries.add(1, block.slice(long_at), |_| Some(stream.clone())).expect("within credit");
        deliveries.flush().expect("within credit");
        let inbox = lock(&stream.inbox);
        assert_eq!(inbox.chunks.len(), 2);
        assert!(!within(&inbox.chunks[0]), "a 9-byte chunk keeps its 16 KiB read buffer");
        assert_eq!(&inbox.chunks[0][..], &one[..]);
        assert!(within(&inbox.chunks[1]), "a 9 KiB chunk is shared, not copied");
    }

    #[test]
    fn items_come_out_in_order_and_the_end_after_them() {
        let stream = Stream::new(1024);
        stream.push(b"a").expect("within credit");
        stream.push(b"b").expect("within credit");
        stream.close_inbox();
        stream.push(b"c").expect("dropped: after the half-close");
        let mut taker = Taker::default();
        let Poll::Ready(Some(_)) = take(&stream, &mut taker) else { panic!("an item") };
        assert_eq!((&taker.item_bytes()[..], taker.index()), (&b"a"[..], 0));
        let Poll::Ready(Some(_)) = take(&stream, &mut taker) else { panic!("an item") };
        assert_eq!((&taker.item_bytes()[..], taker.index()), (&b"b"[..], 1));
        assert_eq!(taker.item_bytes(), Bytes::from_static(b"b"));
        assert!(matches!(take(&stream, &mut taker), Poll::Ready(None)));
    }

    #[test]
    fn an_empty_chunk_is_skipped_not_taken_for_the_end() {
        let stream = Stream::new(1024);
        let mut item = bytes::BytesMut::new();
        bytes::BufMut::put_u32_le(&mut item, 1);
        item.extend_from_slice(b"a");
        stream.push_chunks(&mut vec![Bytes::new(), item.freeze()]).expect("within credit");
        let mut taker = Taker::default();
        let Poll::Ready(Some(_)) = take(&stream, &mut taker) else { panic!("the item after the empty chunk") };
        assert_eq!(&taker.item_bytes()[..], b"a");
        assert!(take(&stream, &mut taker).is_pending(), "no end: the sender has not closed");
    }

    #[test]
    fn credit_is_granted_back_in_half_windows_as_items_are_taken() {
        let stream = Stream::new(0); // the protocol's initial window
        let half = (INITIAL_WINDOW / 2) as usize;
        stream.push(&vec![0; half - 1]).expect("within credit");
        stream.push(&[0; 1]).expect("within credit");
        let mut taker = Taker::default();
        let Poll::Ready(Some(_)) = take(&stream, &mut taker) else { panic!("an item") };
        assert_eq!(taker.grant(), None, "not yet half a window");
        let Poll::Ready(Some(_)) = take(&stream, &mut taker) else { panic!("an item") };
        assert_eq!(taker.grant(), Some(INITIAL_WINDOW / 2));
    }

    #[test]
    fn a_sender_may_overshoot_by_one_item_and_no_more() {
        let stream = Stream::new(0);
        stream.push(&vec![0; INITIAL_WINDOW as usize - 1]).expect("within the window");
        stream.push(&[0; 100]).expect("one item past it");
        let overrun = Overrun { sent: INITIAL_WINDOW + 99, granted: INITIAL_WINDOW };
        assert_eq!(stream.push(&[0; 1]), Err(overrun), "no item once the credit is spent");
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
