//! The write side of a connection, shared by client and server.
//!
//! Frames are encoded straight into one shared buffer by whoever produces them (the task making a
//! call, a handler task finishing one, the reader answering a ping), and a single writer task
//! swaps the buffer out and writes everything queued with one `write_all`. Producers never wait
//! for a task switch, many frames share one system call under load, and no frame is copied into a
//! per-frame allocation on its way to the socket.
//!
//! The connection's reader *holds* the outbox while it handles what one read brought
//! ([`hold`](Outbox::hold)): frames queued meanwhile (a server's replies from the handlers the
//! read started, a client's next requests from the callers its replies woke on other threads)
//! do not wake the writer, and when the reader is done ([`release`](Outbox::release)) it writes
//! them itself, with one system call, if the writer is idle and the socket takes them at once.
//! A busy connection's frames then reach the socket without a wake of another task, often on
//! another thread: on a server, what one read asked is answered by one write, in the task that
//! read it. Whatever the socket does not take at once goes to the writer task.

use crate::codec::EncodeFailure;
use crate::observe;
use crate::sched::YieldOnce;
use crate::sync::lock;
use crate::wire::{self, Header, WriteFailure};
use bytes::BytesMut;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Buffer capacity the writer always keeps for reuse. A larger buffer (grown for a large frame)
/// is kept while large frames keep coming, and given back after [`SMALL_WRITES_BEFORE_SHRINK`]
/// writes in a row that would have fitted: reusing it spares a large frame a fresh allocation
/// and its page faults, and returning it bounds an idle connection's memory.
const KEEP_CAPACITY: usize = 1024 * 1024;

/// See [`KEEP_CAPACITY`].
const SMALL_WRITES_BEFORE_SHRINK: u32 = 64;

/// The write half of a connection's byte stream, shared by the writer task and a reader's
/// direct writes (one at a time: whoever set [`State::writing`]).
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The shared write buffer of one connection.
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// The write half, once the writer has started and until it ends. Locked only while
    /// polling it, by whoever set [`State::writing`].
    io: Mutex<Option<WriteHalf>>,
    /// Wakes the writer when the buffer goes from empty to non-empty, or on close.
    wake_writer: Notify,
    /// Wakes producers waiting for the buffer to drain below the high-water mark.
    drained: Notify,
    max_frame_len: usize,
    high_water: usize,
    /// Fires on `close`.
    closing: CancellationToken,
    /// Bytes queued, as of the last push or swap: lets `wait_for_space` skip the lock when
    /// there is plenty of room.
    queued: AtomicUsize,
    /// Counts the bytes written, by the writer and by direct writes.
    sent: observe::ByteCount,
    /// Set by [`hold`](Outbox::hold): frames queued do not wake the writer; `release` writes
    /// them. Cleared under the state's lock, and read under it by every push, so a push either
    /// sees it cleared (and wakes the writer) or comes before the release (which writes it).
    held: AtomicBool,
    /// How long the socket may take no bytes at all before the writer gives up on the peer
    /// ([`stalls_after`](Outbox::stalls_after)); `None`: for ever.
    stall_limit: Option<Duration>,
    /// When the writer's current wait for the socket began, in milliseconds since
    /// [`clock_base`] plus one; 0 while it is not waiting. Timed without a timer: the reader
    /// looks at it ([`check_stall`](Outbox::check_stall)), so a write costs no timer.
    waiting_since: AtomicU64,
    /// Fired by [`check_stall`](Outbox::check_stall): the writer gives up.
    stalled: CancellationToken,
}

/// The origin of [`Outbox::waiting_since`].
fn clock_base() -> std::time::Instant {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(std::time::Instant::now)
}

/// Milliseconds since [`clock_base`], plus one (so never 0).
fn clock_now() -> u64 {
    u64::try_from(clock_base().elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("state", &self.state).finish_non_exhaustive()
    }
}

/// How long a closed connection may take to flush its last frames before the writer gives up
/// (a peer that stopped reading must not keep a task and a socket alive for ever).
pub(crate) const FLUSH_LINGER: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct State {
    buf: BytesMut,
    /// Set by `close`: no new frames; the writer flushes what is queued, then shuts down.
    closing: bool,
    /// Set when the writer has stopped: frames can no longer be sent at all.
    dead: bool,
    /// The `Item` frame at the end of `buf`, if the last frame queued is one: its call and
    /// where it starts. The next item of that call joins it.
    open_item: Option<(u64, usize)>,
    /// The write half is being written to, by the writer or by a direct write.
    writing: bool,
    /// Bytes a direct write left unwritten, and where they start: the writer writes them before
    /// anything queued after them.
    leftover: Option<(BytesMut, usize)>,
    /// The buffer of direct writes, kept for reuse.
    spare: BytesMut,
    /// Set by [`trim`](Outbox::trim): the writer gives back its large buffers when next idle.
    trim: bool,
}

/// A frame could not be queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The connection is closing or closed.
    Closed,
    /// The frame could not be built.
    Frame(WriteFailure),
}

/// How many bytes of items [`Outbox::push_items`] encodes under one lock, beyond the first item.
pub(crate) const BATCH_BYTES: usize = 16 * 1024;

/// An item at least this long closes its `Item` frame: the next item starts a frame of its own,
/// so a large item is (nearly) all of its frame, and its receiver can share the frame's memory
/// rather than copy the item out of it (see `codec::SHARE_AT`).
const ITEM_ALONE: usize = 16 * 1024;

impl Outbox {
    /// The outbox of a connection of `role`.
    pub(crate) fn new(max_frame_len: usize, high_water: usize, role: observe::Side) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(8 * 1024),
                closing: false,
                dead: false,
                open_item: None,
                writing: false,
                leftover: None,
                spare: BytesMut::new(),
                trim: false,
            }),
            io: Mutex::new(None),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            max_frame_len,
            high_water,
            closing: CancellationToken::new(),
            queued: AtomicUsize::new(0),
            sent: observe::ByteCount::new(observe::ByteCount::SENT, role),
            held: AtomicBool::new(false),
            stall_limit: None,
            waiting_since: AtomicU64::new(0),
            stalled: CancellationToken::new(),
        }
    }

    /// The outbox, its writer giving up (and the connection with it) once the socket has taken
    /// no bytes for `limit`: a peer that stops reading does not keep its connection, its
    /// queued frames and the calls waiting to queue theirs for ever.
    pub(crate) fn stalls_after(mut self, limit: Option<Duration>) -> Outbox {
        self.stall_limit = limit;
        self
    }

    /// Gives the writer up, and the connection with it, if it has waited for the socket to take
    /// a byte for longer than the stall limit. Called by the reader after each read and while
    /// it waits for room.
    pub(crate) fn check_stall(&self) {
        let since = self.waiting_since.load(Ordering::Relaxed);
        if let Some(limit) = self.stall_limit
            && since != 0
            && u128::from(clock_now().saturating_sub(since)) > limit.as_millis()
        {
            self.stalled.cancel();
        }
    }

    /// The stall limit, if there is one.
    pub(crate) fn stall_limit(&self) -> Option<Duration> {
        self.stall_limit
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a partial frame: `write_frame` truncates
        // on failure and encodes only generated (derived, non-panicking) types.
        lock(&self.state)
    }

    /// Queues a frame built by `write` (which gets the buffer and the frame length limit).
    pub(crate) fn push(
        &self,
        write: impl FnOnce(&mut BytesMut, usize) -> Result<(), WriteFailure>,
    ) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.closing || state.dead {
            return Err(PushError::Closed);
        }
        let was_empty = state.buf.is_empty() && !self.held.load(Ordering::Relaxed);
        write(&mut state.buf, self.max_frame_len).map_err(PushError::Frame)?;
        state.open_item = None;
        self.queued.store(state.buf.len(), Ordering::Relaxed);
        drop(state);
        if was_empty {
            self.wake_writer.notify_one();
        }
        Ok(())
    }

    /// Queues one item of call `id`'s stream, written by `encode`; returns its length. Items of
    /// one call queued one after another, with nothing between them, share one `Item` frame (up
    /// to the frame length limit), so a burst of small items costs one header.
    pub(crate) fn push_item(
        &self,
        id: u64,
        encode: impl FnMut(&mut BytesMut, usize) -> Result<(), EncodeFailure>,
    ) -> Result<usize, PushError> {
        let mut state = self.lock();
        if state.closing || state.dead {
            return Err(PushError::Closed);
        }
        let was_empty = state.buf.is_empty() && !self.held.load(Ordering::Relaxed);
        let len = self.put_item(&mut state, id, encode)?;
        self.queued.store(state.buf.len(), Ordering::Relaxed);
        drop(state);
        if was_empty {
            self.wake_writer.notify_one();
        }
        Ok(len)
    }

    /// Queues items of call `id`'s stream from the front of `items`, under one lock and with one
    /// wake of the writer, up to [`BATCH_BYTES`] (at least one item), while `credit` lasts (an item may take it below zero, as for one item)
    /// and the outbox is below its high-water mark. Returns how many were queued and their
    /// bytes, and the error that stopped it, if one did.
    pub(crate) fn push_items<T: serde::Serialize + 'static>(
        &self,
        id: u64,
        items: &[T],
        mut credit: i64,
    ) -> (usize, usize, Option<PushError>) {
        let mut state = self.lock();
        if state.closing || state.dead {
            return (0, 0, Some(PushError::Closed));
        }
        let was_empty = state.buf.is_empty() && !self.held.load(Ordering::Relaxed);
        let (mut count, mut bytes, mut failed) = (0, 0, None);
        for item in items {
            // Large items go one at a time: encoding them is what takes the time, and the writer
            // should not wait for a whole batch of them behind the lock.
            if credit <= 0 || state.buf.len() >= self.high_water || bytes >= BATCH_BYTES {
                break;
            }
            match self.put_item(&mut state, id, |buf, limit| crate::codec::encode_item_into(item, buf, limit)) {
                Ok(len) => {
                    count += 1;
                    bytes += len;
                    credit -= i64::try_from(len).unwrap_or(i64::MAX);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.queued.store(state.buf.len(), Ordering::Relaxed);
        drop(state);
        if was_empty && count > 0 {
            self.wake_writer.notify_one();
        }
        (count, bytes, failed)
    }

    /// Appends one item of call `id` to `state`'s buffer: to the open `Item` frame of the same
    /// call if it fits, else in a frame of its own. Always inlined, as the item's encoding is
    /// into it: [`push_items`](Self::push_items) calls it for every item.
    #[inline(always)]
    fn put_item(
        &self,
        state: &mut State,
        id: u64,
        mut encode: impl FnMut(&mut BytesMut, usize) -> Result<(), EncodeFailure>,
    ) -> Result<usize, PushError> {
        if let Some((open, start)) = state.open_item
            && open == id
        {
            match wire::append_item(&mut state.buf, start, self.max_frame_len, &mut encode) {
                Ok(len) => {
                    if len >= ITEM_ALONE {
                        state.open_item = None;
                    }
                    return Ok(len);
                }
                // It does not fit beside the others: a frame of its own.
                Err(EncodeFailure::TooLarge) => state.open_item = None,
                Err(EncodeFailure::Invalid(e)) => return Err(PushError::Frame(WriteFailure::Invalid(e))),
            }
        }
        let start = state.buf.len();
        let len = wire::write_item(&mut state.buf, self.max_frame_len, id, encode).map_err(PushError::Frame)?;
        state.open_item = (len < ITEM_ALONE).then_some((id, start));
        Ok(len)
    }

    /// Queues a payload-less frame.
    pub(crate) fn push_header(&self, header: &Header<'_>) -> Result<(), PushError> {
        self.push(|buf, max| wire::write_header(buf, max, header))
    }

    /// Waits until the queued bytes are below the high-water mark (or the connection is gone), so
    /// a peer that stops reading cannot make the server buffer without bound.
    pub(crate) async fn wait_for_space(&self) {
        self.wait_below(self.high_water).await;
    }

    /// Waits until fewer than `limit` bytes are queued.
    pub(crate) async fn wait_below(&self, limit: usize) {
        if self.queued() < limit {
            return;
        }
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let state = self.lock();
                if state.buf.len() < limit || state.dead || state.closing {
                    return;
                }
            }
            drained.await;
        }
    }

    /// Bytes queued and not yet handed to the writer (without taking the lock).
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether the queued bytes are below the high-water mark (without taking the lock).
    pub(crate) fn has_space(&self) -> bool {
        self.queued.load(Ordering::Relaxed) < self.high_water
    }

    /// Stops accepting frames; the writer flushes what is queued and then shuts the stream down.
    pub(crate) fn close(&self) {
        self.lock().closing = true;
        self.closing.cancel();
        self.wake_writer.notify_one();
    }

    fn mark_dead(&self) {
        self.lock().dead = true;
        self.drained.notify_waiters();
    }

    /// The connection is quiet: buffers grown past [`KEEP_CAPACITY`] for large frames are given
    /// back now (by the writer, once it is idle), not after [`SMALL_WRITES_BEFORE_SHRINK`]
    /// more writes, which a quiet connection may never make.
    pub(crate) fn trim(&self) {
        self.lock().trim = true;
        self.wake_writer.notify_one();
    }

    /// Holds the outbox while the reader handles what it read: frames queued until
    /// [`release`](Self::release) do not wake the writer.
    pub(crate) fn hold(&self) {
        self.held.store(true, Ordering::Relaxed);
    }

    /// Ends a [`hold`](Self::hold) without writing: wakes the writer if anything is queued (the
    /// task that held it is stuck, and another reads on).
    pub(crate) fn unhold(&self) {
        let state = self.lock();
        self.held.store(false, Ordering::Relaxed);
        let queued = !state.buf.is_empty();
        drop(state);
        if queued {
            self.wake_writer.notify_one();
        }
    }

    /// Ends a [`hold`](Self::hold): writes what is queued now, if the writer is idle, with one
    /// system call that must not wait (the socket takes what it can; the writer writes the
    /// rest), else leaves it to the writer, waking it if need be.
    pub(crate) fn release(&self) {
        let mut out = {
            let mut state = self.lock();
            self.held.store(false, Ordering::Relaxed);
            if state.buf.is_empty() || state.writing {
                // Nothing to write, or the writer is writing and looks again when done.
                return;
            }
            // A task whose cooperative budget is spent would find the socket "not ready" (tokio's
            // I/O charges the budget): the writer does better then.
            if state.closing || state.dead || state.leftover.is_some() || !tokio::task::coop::has_budget_remaining() {
                drop(state);
                self.wake_writer.notify_one();
                return;
            }
            let mut out = std::mem::take(&mut state.spare);
            std::mem::swap(&mut state.buf, &mut out);
            state.open_item = None;
            state.writing = true;
            self.queued.store(0, Ordering::Relaxed);
            out
        };
        let (written, done) = {
            let _unwinding = WritingGuard(self);
            self.write_now(&out)
        };
        self.sent.add(written);
        let mut state = self.lock();
        state.writing = false;
        let wake = if done {
            out.clear();
            if out.capacity() <= KEEP_CAPACITY {
                state.spare = out;
            }
            // The writer writes what was queued meanwhile, or ends a close.
            !state.buf.is_empty() || state.closing
        } else {
            // The writer writes the rest (or meets the error again, and ends the connection).
            state.leftover = Some((out, written));
            true
        };
        drop(state);
        if wake {
            self.wake_writer.notify_one();
        }
        if written > 0 {
            self.drained.notify_waiters();
        }
    }

    /// Ends the connection's writing after a direct write panicked (a user's stream may): the
    /// outbox is dead, and the writer, woken, ends.
    #[cold]
    fn abandon_direct_write(&self) {
        self.lock().writing = false;
        self.mark_dead();
        self.closing.cancel();
        self.wake_writer.notify_one();
    }

    /// Writes `out` to the write half and flushes it, without waiting: how many bytes the write
    /// half took, and whether it took them all and flushed (`false` too if it failed, or the
    /// writer has not started or has ended).
    fn write_now(&self, out: &[u8]) -> (usize, bool) {
        let mut io = lock(&self.io);
        let Some(io) = io.as_mut() else { return (0, false) };
        let mut cx = Context::from_waker(Waker::noop());
        let mut written = 0;
        while written < out.len() {
            match Pin::new(&mut **io).poll_write(&mut cx, &out[written..]) {
                Poll::Ready(Ok(n)) if n > 0 => written += n,
                _ => return (written, false),
            }
        }
        (written, matches!(Pin::new(&mut **io).poll_flush(&mut cx), Poll::Ready(Ok(()))))
    }

    /// Polls the write half with `op`; fails if it is gone.
    fn poll_io<T>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut WriteHalf>, &mut Context<'_>) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match lock(&self.io).as_mut() {
            Some(io) => op(Pin::new(io), cx),
            None => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    /// Writes all of `out` from `from` on, and flushes, waiting as the socket needs.
    async fn write_all(&self, out: &[u8], mut from: usize) -> std::io::Result<()> {
        while from < out.len() {
            let n = self.io_timed(|io, cx| io.poll_write(cx, &out[from..])).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            from += n;
        }
        self.io_timed(|io, cx| io.poll_flush(cx)).await
    }

    /// Polls the write half with `op` until it is ready, noting when a wait for the socket began
    /// and ended ([`waiting_since`](Self::waiting_since)).
    async fn io_timed<T>(
        &self,
        mut op: impl FnMut(Pin<&mut WriteHalf>, &mut Context<'_>) -> Poll<std::io::Result<T>>,
    ) -> std::io::Result<T> {
        let mut waited = false;
        let result = std::future::poll_fn(|cx| {
            let polled = self.poll_io(cx, &mut op);
            if polled.is_pending() && !waited && self.stall_limit.is_some() {
                waited = true;
                self.waiting_since.store(clock_now(), Ordering::Relaxed);
            }
            polled
        })
        .await;
        if waited {
            self.waiting_since.store(0, Ordering::Relaxed);
        }
        result
    }

    /// Writes queued frames to `io` until the outbox is closed and flushed, `abort` fires, a
    /// write fails, or the flush after `close` takes longer than [`FLUSH_LINGER`]. Always marks
    /// the outbox dead on return.
    ///
    /// `busy` says whether other calls are in flight on the connection: their frames are then
    /// usually microseconds away, so the writer lets them be queued first and writes them all
    /// with one system call.
    pub(crate) async fn run_writer<W: AsyncWrite + Send + Unpin + 'static>(
        &self,
        io: W,
        abort: CancellationToken,
        busy: impl Fn() -> bool,
    ) -> std::io::Result<()> {
        *lock(&self.io) = Some(Box::new(io));
        let linger = async {
            self.closing.cancelled().await;
            tokio::time::sleep(FLUSH_LINGER).await;
        };
        let result = tokio::select! {
            biased;
            () = abort.cancelled() => Ok(()),
            () = self.stalled.cancelled() => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the peer read nothing for {:?} (keepalive_interval + keepalive_timeout)",
                    self.stall_limit.unwrap_or_default()
                ),
            )),
            () = linger => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer read nothing for {FLUSH_LINGER:?} after the connection was closed"),
            )),
            result = self.write_loop(busy) => result,
        };
        self.mark_dead();
        // A direct write in progress finishes first: it holds the write half while it polls.
        let io = lock(&self.io).take();
        if let (Ok(()), Some(mut io)) = (&result, io) {
            // Best effort: the peer may already be gone.
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
        }
        result
    }

    async fn write_loop(&self, busy: impl Fn() -> bool) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(8 * 1024);
        // Writes in a row that would have fitted in `KEEP_CAPACITY`.
        let mut small_writes = 0;
        loop {
            let from = {
                let mut state = self.lock();
                if state.dead {
                    return Err(std::io::Error::other("a direct write to the connection's stream panicked"));
                }
                if state.writing {
                    // A direct write is under way; it wakes the writer if it leaves anything.
                    None
                } else if let Some((leftover, from)) = state.leftover.take() {
                    state.writing = true;
                    let emptied = std::mem::replace(&mut out, leftover);
                    if state.spare.capacity() == 0 {
                        state.spare = emptied;
                    }
                    Some(from)
                } else if state.buf.is_empty() {
                    if state.closing {
                        return Ok(());
                    }
                    if std::mem::take(&mut state.trim) {
                        small_writes = SMALL_WRITES_BEFORE_SHRINK;
                        shrink_if_unused(&mut out, small_writes);
                        shrink_if_unused(&mut state.spare, small_writes);
                    }
                    shrink_if_unused(&mut state.buf, small_writes);
                    None
                } else {
                    std::mem::swap(&mut state.buf, &mut out);
                    state.open_item = None;
                    state.writing = true;
                    self.queued.store(0, Ordering::Relaxed);
                    Some(0)
                }
            };
            let Some(from) = from else {
                self.wake_writer.notified().await;
                // With other calls in flight, step aside once so the tasks that are about to
                // queue their frames do so, and one write carries them all. A lone call (a
                // sequential caller) is written at once.
                if busy() {
                    YieldOnce::default().await;
                }
                continue;
            };
            let written = self.write_all(&out, from).await;
            self.lock().writing = false;
            written?;
            self.sent.add(out.len() - from);
            small_writes = if out.len() <= KEEP_CAPACITY { small_writes.saturating_add(1) } else { 0 };
            out.clear();
            shrink_if_unused(&mut out, small_writes);
            self.drained.notify_waiters();
        }
    }
}

/// Abandons the connection's writing if dropped while a direct write unwinds.
struct WritingGuard<'a>(&'a Outbox);

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.abandon_direct_write();
        }
    }
}

/// Replaces an empty buffer grown past [`KEEP_CAPACITY`] with a small one, once
/// `small_writes` writes in a row have not needed it.
fn shrink_if_unused(buf: &mut BytesMut, small_writes: u32) {
    if buf.capacity() > KEEP_CAPACITY && small_writes >= SMALL_WRITES_BEFORE_SHRINK {
        *buf = BytesMut::with_capacity(8 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    /// A sink that records each write it is given.
    #[derive(Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl AsyncWrite for Writes {
        fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            self.0.lock().expect("lock").push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn push(outbox: &Outbox, bytes: &'static [u8]) {
        outbox
            .push(|buf, _| {
                buf.extend_from_slice(bytes);
                Ok(())
            })
            .expect("open");
    }

    /// Pushes a frame, and wakes a task that pushes another right after the writer is woken.
    async fn two_frames(busy: bool) -> Vec<Vec<u8>> {
        let outbox = Arc::new(Outbox::new(1024, usize::MAX, crate::observe::Side::Server));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let writer = tokio::spawn({
            let (outbox, sink) = (outbox.clone(), Writes(writes.clone()));
            async move { outbox.run_writer(sink, CancellationToken::new(), move || busy).await }
        });
        let go = Arc::new(tokio::sync::Notify::new());
        let second = tokio::spawn({
            let (outbox, go) = (outbox.clone(), go.clone());
            async move {
                go.notified().await;
                push(&outbox, b"B");
            }
        });
        tokio::task::yield_now().await;
        // On this one-thread runtime the writer is now queued first, the second task after it.
        push(&outbox, b"A");
        go.notify_one();
        second.await.expect("second task");
        outbox.close();
        writer.await.expect("writer").expect("writes");
        Arc::try_unwrap(writes).expect("one owner").into_inner().expect("lock")
    }

    #[tokio::test]
    async fn a_trimmed_outbox_gives_back_the_buffer_a_large_frame_grew() {
        let outbox = Arc::new(Outbox::new(8 * 1024 * 1024, usize::MAX, crate::observe::Side::Server));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let writer = tokio::spawn({
            let (outbox, sink) = (outbox.clone(), Writes(writes.clone()));
            async move { outbox.run_writer(sink, CancellationToken::new(), || false).await }
        });
        let written = |n: usize| {
            let writes = writes.clone();
            async move {
                while writes.lock().expect("lock").len() < n {
                    tokio::task::yield_now().await;
                }
            }
        };
        static LARGE: [u8; 2 * KEEP_CAPACITY] = [7; 2 * KEEP_CAPACITY];
        push(&outbox, &LARGE);
        written(1).await;
        outbox.trim();
        while outbox.lock().trim {
            tokio::task::yield_now().await;
        }
        // The next write swaps the writer's buffer into the outbox: the large one, unless trimmed.
        push(&outbox, b"A");
        written(2).await;
        while outbox.lock().writing {
            tokio::task::yield_now().await;
        }
        let capacity = outbox.lock().buf.capacity();
        assert!(capacity <= KEEP_CAPACITY, "a {capacity}-byte buffer kept");
        outbox.close();
        writer.await.expect("writer").expect("writes");
    }

    #[tokio::test]
    async fn with_calls_in_flight_frames_queued_meanwhile_share_one_write() {
        assert_eq!(two_frames(true).await, vec![b"AB".to_vec()]);
    }

    #[tokio::test]
    async fn a_lone_call_is_written_at_once() {
        assert_eq!(two_frames(false).await, vec![b"A".to_vec(), b"B".to_vec()]);
    }

    /// A sink that takes at most `budget` bytes more (then is pending until given more), and
    /// records each write it is given.
    #[derive(Clone, Default)]
    struct Gated(Arc<Mutex<Gate>>);

    #[derive(Default)]
    struct Gate {
        writes: Vec<Vec<u8>>,
        budget: usize,
        waker: Option<std::task::Waker>,
        /// Panic on the next write.
        panic: bool,
    }

    impl Gated {
        fn with_budget(budget: usize) -> Gated {
            Gated(Arc::new(Mutex::new(Gate { budget, ..Gate::default() })))
        }

        fn give(&self, bytes: usize) {
            let waker = {
                let mut gate = self.0.lock().expect("lock");
                gate.budget += bytes;
                gate.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }

        fn writes(&self) -> Vec<Vec<u8>> {
            self.0.lock().expect("lock").writes.clone()
        }
    }

    impl AsyncWrite for Gated {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            let mut gate = self.0.lock().expect("lock");
            assert!(!std::mem::take(&mut gate.panic), "a stream that panics");
            if gate.budget == 0 {
                gate.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(gate.budget);
            gate.budget -= n;
            gate.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// An outbox and its writer, on this one-thread runtime, writing to `sink`; the writer has
    /// started and waits for frames.
    async fn writing_to(sink: Gated) -> (Arc<Outbox>, tokio::task::JoinHandle<std::io::Result<()>>) {
        let outbox = Arc::new(Outbox::new(1024, usize::MAX, crate::observe::Side::Server));
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.run_writer(sink, CancellationToken::new(), || false).await }
        });
        tokio::task::yield_now().await;
        (outbox, writer)
    }

    #[tokio::test]
    async fn frames_queued_while_held_are_written_by_the_release_in_one_write() {
        let sink = Gated::with_budget(usize::MAX);
        let (outbox, writer) = writing_to(sink.clone()).await;
        outbox.hold();
        push(&outbox, b"A");
        push(&outbox, b"B");
        tokio::task::yield_now().await;
        assert!(sink.writes().is_empty(), "the writer was not woken while the outbox was held");
        outbox.release();
        // No task ran in between: the release wrote them itself.
        assert_eq!(sink.writes(), vec![b"AB".to_vec()]);
        push(&outbox, b"C");
        outbox.close();
        writer.await.expect("writer").expect("writes");
        assert_eq!(sink.writes(), vec![b"AB".to_vec(), b"C".to_vec()], "unheld, the writer writes");
    }

    #[tokio::test]
    async fn what_the_socket_does_not_take_at_once_the_writer_writes_before_later_frames() {
        let sink = Gated::with_budget(2);
        let (outbox, writer) = writing_to(sink.clone()).await;
        outbox.hold();
        push(&outbox, b"ABCDEF");
        outbox.release();
        assert_eq!(sink.writes(), vec![b"AB".to_vec()], "the release wrote what the socket took");
        sink.give(usize::MAX / 2);
        tokio::task::yield_now().await;
        assert_eq!(sink.writes().concat(), b"ABCDEF".to_vec(), "the release woke the writer for the rest");
        push(&outbox, b"GH");
        sink.give(usize::MAX / 2);
        outbox.close();
        writer.await.expect("writer").expect("writes");
        assert_eq!(sink.writes().concat(), b"ABCDEFGH".to_vec());
    }

    #[tokio::test]
    async fn a_release_while_the_writer_writes_leaves_its_frames_to_the_writer() {
        let sink = Gated::with_budget(0);
        let (outbox, writer) = writing_to(sink.clone()).await;
        push(&outbox, b"A");
        // The writer takes "A" and waits for the socket.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        outbox.hold();
        push(&outbox, b"B");
        outbox.release();
        assert!(sink.writes().is_empty(), "the write half is the writer's until its write is done");
        sink.give(usize::MAX / 2);
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(sink.writes(), vec![b"A".to_vec(), b"B".to_vec()], "the writer wrote both, in order");
        outbox.close();
        writer.await.expect("writer").expect("writes");
        assert_eq!(sink.writes(), vec![b"A".to_vec(), b"B".to_vec()]);
    }

    #[tokio::test]
    async fn a_release_with_a_leftover_pending_leaves_its_frames_to_the_writer() {
        let sink = Gated::with_budget(2);
        let (outbox, writer) = writing_to(sink.clone()).await;
        outbox.hold();
        push(&outbox, b"ABCDEF");
        outbox.release();
        // A direct write would now succeed, but "CDEF" must go first.
        sink.give(usize::MAX / 2);
        outbox.hold();
        push(&outbox, b"GH");
        outbox.release();
        assert_eq!(sink.writes(), vec![b"AB".to_vec()], "no direct write past a leftover");
        tokio::task::yield_now().await;
        assert_eq!(sink.writes(), vec![b"AB".to_vec(), b"CDEF".to_vec(), b"GH".to_vec()]);
        outbox.close();
        writer.await.expect("writer").expect("writes");
    }

    #[tokio::test]
    async fn a_direct_write_that_panics_ends_the_writer_instead_of_leaving_it_waiting() {
        let sink = Gated::with_budget(usize::MAX);
        let (outbox, writer) = writing_to(sink.clone()).await;
        sink.0.lock().expect("lock").panic = true;
        outbox.hold();
        push(&outbox, b"A");
        let released = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outbox.release()));
        assert!(released.is_err(), "the stream's panic reached the releasing task");
        let ended = tokio::time::timeout(Duration::from_secs(30), writer).await.expect("the writer ended");
        let error = ended.expect("writer task").expect_err("the writer failed");
        assert!(error.to_string().contains("panicked"), "{error}");
    }

    /// A sink that takes 1 to 7 bytes per write and is not ready every third poll (waking the
    /// poller at once), recording the bytes.
    struct Trickle {
        out: Arc<Mutex<Vec<u8>>>,
        polls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            self.polls += 1;
            if self.polls.is_multiple_of(3) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(1 + self.polls % 7);
            self.out.lock().expect("lock").extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Two producers on two workers and a reader holding and releasing in a loop, over a sink
    /// that takes a few bytes at a time: every frame arrives whole, once, in its producer's
    /// order, and the writer ends on close (a lost wake-up would leave it waiting).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_releases_and_the_writer_together_lose_and_reorder_nothing() {
        const FRAMES: u32 = 10_000;
        let out = Arc::new(Mutex::new(Vec::new()));
        let outbox = Arc::new(Outbox::new(1024, usize::MAX, crate::observe::Side::Server));
        let writer = tokio::spawn({
            let (outbox, sink) = (outbox.clone(), Trickle { out: out.clone(), polls: 0 });
            async move { outbox.run_writer(sink, CancellationToken::new(), || true).await }
        });
        let producers: Vec<_> = (0..2u8)
            .map(|tag| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    for seq in 0..FRAMES {
                        outbox
                            .push(|buf, _| {
                                buf.extend_from_slice(&[tag]);
                                buf.extend_from_slice(&seq.to_le_bytes());
                                Ok(())
                            })
                            .expect("open");
                        if seq.is_multiple_of(64) {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = tokio::spawn({
            let (outbox, done) = (outbox.clone(), done.clone());
            async move {
                while !done.load(Ordering::Acquire) {
                    outbox.hold();
                    tokio::task::yield_now().await;
                    outbox.release();
                }
            }
        });
        for producer in producers {
            producer.await.expect("producer");
        }
        done.store(true, Ordering::Release);
        reader.await.expect("reader");
        outbox.close();
        let ended = tokio::time::timeout(Duration::from_secs(30), writer).await.expect("the writer ended");
        ended.expect("writer task").expect("writes");
        let out = out.lock().expect("lock").clone();
        assert_eq!(out.len(), 2 * FRAMES as usize * 5);
        let mut next = [0u32; 2];
        for frame in out.chunks(5) {
            let tag = usize::from(frame[0]);
            let seq = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]);
            assert_eq!(seq, next[tag], "producer {tag}'s frames arrive whole and in order");
            next[tag] += 1;
        }
        assert_eq!(next, [FRAMES, FRAMES]);
    }

    #[tokio::test]
    async fn unhold_wakes_the_writer_for_what_was_held() {
        let sink = Gated::with_budget(usize::MAX);
        let (outbox, writer) = writing_to(sink.clone()).await;
        outbox.hold();
        push(&outbox, b"A");
        tokio::task::yield_now().await;
        assert!(sink.writes().is_empty());
        outbox.unhold();
        tokio::task::yield_now().await;
        assert_eq!(sink.writes(), vec![b"A".to_vec()], "the writer wrote it");
        outbox.close();
        writer.await.expect("writer").expect("writes");
    }

    /// Each `Item` frame's call and items.
    type ItemFrames = Vec<(u64, Vec<Vec<u8>>)>;

    /// The items of every `Item` frame queued, by call, and the number of frames.
    fn queued_items(outbox: &Outbox) -> (ItemFrames, usize) {
        let mut buf = outbox.lock().buf.clone();
        let mut decoder = wire::FrameDecoder::new(1 << 20);
        let mut out = Vec::new();
        let mut frames = 0;
        while let Some(frame) = tokio_util::codec::Decoder::decode(&mut decoder, &mut buf).expect("frames") {
            frames += 1;
            let frame = frame.freeze();
            let (header, payload) = wire::parse(&frame).expect("a frame");
            if let Header::Item { id } = header {
                out.push((id, wire::items(&payload).iter().map(|i| i.to_vec()).collect()));
            }
        }
        (out, frames)
    }

    fn item(outbox: &Outbox, id: u64, bytes: &'static [u8]) -> Result<usize, PushError> {
        outbox.push_item(id, |buf, limit| crate::codec::extend_limited(buf, bytes, limit))
    }

    #[test]
    fn items_of_one_call_queued_in_a_row_share_a_frame() {
        let outbox = Outbox::new(1024, usize::MAX, crate::observe::Side::Server);
        assert_eq!(item(&outbox, 1, b"a").expect("queued"), 1);
        item(&outbox, 1, b"bc").expect("queued");
        item(&outbox, 2, b"d").expect("queued");
        outbox.push_header(&Header::Ping { nonce: 1 }).expect("queued");
        item(&outbox, 2, b"e").expect("queued");
        let (items, frames) = queued_items(&outbox);
        assert_eq!(
            items,
            vec![(1, vec![b"a".to_vec(), b"bc".to_vec()]), (2, vec![b"d".to_vec()]), (2, vec![b"e".to_vec()])]
        );
        assert_eq!(frames, 4, "another call's item, or any other frame, starts a new one");
    }

    #[test]
    fn an_item_that_does_not_fit_beside_the_others_gets_a_frame_of_its_own() {
        let outbox = Outbox::new(16, usize::MAX, crate::observe::Side::Server);
        item(&outbox, 1, b"0123456789").expect("queued");
        item(&outbox, 1, b"0123456789").expect("queued, in a new frame");
        let (items, frames) = queued_items(&outbox);
        assert_eq!(items.len(), 2);
        assert_eq!(frames, 2);
    }

    #[test]
    fn a_large_item_closes_its_frame() {
        static LARGE: [u8; ITEM_ALONE] = [7; ITEM_ALONE];
        let outbox = Outbox::new(1024 * 1024, usize::MAX, crate::observe::Side::Server);
        item(&outbox, 1, b"a").expect("queued");
        item(&outbox, 1, &LARGE).expect("queued after the small one");
        item(&outbox, 1, &LARGE).expect("queued in a frame of its own");
        item(&outbox, 1, b"b").expect("queued in a frame of its own");
        item(&outbox, 1, b"c").expect("queued beside the small one");
        let (items, frames) = queued_items(&outbox);
        let counts: Vec<usize> = items.iter().map(|(_, items)| items.len()).collect();
        assert_eq!(counts, vec![2, 1, 2]);
        assert_eq!(frames, 3);
    }

    #[test]
    fn a_large_buffer_is_kept_until_it_has_gone_unused_for_a_while() {
        let mut buf = BytesMut::with_capacity(4 * KEEP_CAPACITY);
        shrink_if_unused(&mut buf, SMALL_WRITES_BEFORE_SHRINK - 1);
        assert!(buf.capacity() >= 4 * KEEP_CAPACITY, "kept while large writes are recent");
        shrink_if_unused(&mut buf, SMALL_WRITES_BEFORE_SHRINK);
        assert!(buf.capacity() < KEEP_CAPACITY, "given back after enough small writes");
    }
}
