//! The read loop of every connection, client or server.

use super::buffers::{LARGE_FRAME, LargeBuffers, Pooled, read_some};
use super::keepalive::{Due, Keepalive};
use super::spin::Spin;
use super::stream::Deliveries;
use super::{Interrupt, Side};
use crate::error::Status;
use crate::observe;
use crate::sched::batch::Ready;
use crate::wire::{self, FrameDecoder, Header, handshake::HELLO_LEN};
use bytes::{Bytes, BytesMut};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

/// Pings are answered only while less than this is queued for the peer.
const PONG_ROOM: usize = 1024 * 1024;

/// How often (in frames) the read loop looks whether the outbox is full.
const CHECK_ROOM_EVERY: usize = 8;

/// Bytes the reader asks the socket for at least, per read.
const READ_CHUNK: usize = 16 * 1024;

/// Why the read loop ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The peer closed the connection between frames.
    Closed,
    /// The peer closed the connection in the middle of a frame.
    ClosedMidFrame,
    /// This side stopped it ([`Interrupt::Stop`], or the side [`finished`](Side::finished)).
    Stopped,
    /// Reading failed.
    Io(io::Error),
    /// The peer announced a frame over the limit.
    TooLarge(io::Error),
    /// The peer sent nothing for this long, not even an answer to a ping.
    Dead(Duration),
    /// The peer sent bytes that are not a tidl frame.
    NotAFrame(String),
    /// The side refused a frame.
    Refused(Status),
}

/// Reads the peer's hello.
pub(crate) async fn read_hello<R: AsyncRead + Unpin>(read: &mut R) -> io::Result<[u8; HELLO_LEN]> {
    let mut hello = [0u8; HELLO_LEN];
    read.read_exact(&mut hello).await?;
    Ok(hello)
}

/// Reads frames from `read` and hands them to `side`, until the peer closes the connection, the
/// side stops it, or something fails. A read's batch of handler first polls runs in a task of
/// its own.
pub(crate) async fn run<R: AsyncRead + Unpin, S: Side>(read: &mut R, side: &S) -> Ended {
    let mut reader = Reader::new(read, side);
    loop {
        match reader.next(side).await {
            Step::Ended(ended) => return ended,
            Step::Batch(ready) => ready.spawn(),
        }
    }
}

/// What [`Reader::next`] stopped for.
pub(crate) enum Step {
    /// Reading is over.
    Ended(Ended),
    /// A read started handlers: their first polls, for the caller to run (or spawn) before it
    /// reads on.
    Batch(Ready),
}

/// The read loop's state: the byte stream and what is read of it. A server's connection keeps
/// it where another task can take it over (`server::connection`), so that reading goes on while
/// the task that read a batch is stuck running it.
pub(crate) struct Reader<R> {
    read: R,
    decoder: FrameDecoder,
    buf: BytesMut,
    keepalive: Keepalive,
    pool: Arc<LargeBuffers>,
    /// A large frame being read: its buffer and its length.
    large: Option<(Vec<u8>, usize)>,
    /// Stream items read and not yet handed to their streams.
    deliveries: Deliveries,
    received: observe::ByteCount,
    spin: Spin,
    /// Frames decoded, modulo the word size.
    decoded: usize,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// A read loop over `read` for `side`'s connection.
    pub(crate) fn new<S: Side>(read: R, side: &S) -> Reader<R> {
        let settings = side.link().settings;
        Reader {
            read,
            decoder: FrameDecoder::new(settings.max_frame_len).with_large_frames(LARGE_FRAME),
            buf: BytesMut::with_capacity(READ_CHUNK),
            keepalive: Keepalive::new(settings.keepalive_interval, settings.keepalive_timeout),
            pool: Arc::new(LargeBuffers::default()),
            large: None,
            deliveries: Deliveries::default(),
            received: observe::ByteCount::new(observe::ByteCount::RECEIVED, S::ROLE),
            spin: Spin::new(settings.busy_poll),
            decoded: 0,
        }
    }

    /// Reads and handles frames until reading ends, or a read starts handlers whose first
    /// polls are ready to run ([`Step::Batch`]); calling it again then reads on.
    ///
    /// The reader holds its outbox from each read until it has handled all of it, and then
    /// writes the frames queued meanwhile itself ([`Outbox::hold`](super::outbox::Outbox::hold)).
    pub(crate) async fn next<S: Side>(&mut self, side: &S) -> Step {
        let step = self.read_on(side).await;
        if matches!(step, Step::Ended(_)) {
            side.link().outbox.release();
        }
        step
    }

    async fn read_on<S: Side>(&mut self, side: &S) -> Step {
        let link = side.link();
        let Reader { read, decoder, buf, keepalive, pool, large, deliveries, received, spin, decoded } = self;
        loop {
            // Set when the outbox filled up before the buffer's frames were all handled.
            let mut full = false;
            let ready = {
                // Handler tasks that this read's requests start are collected (sched/batch.rs)
                // and handed over as the block ends; nothing in it awaits.
                let batch = crate::sched::batch::Open::begin(S::ROLE == observe::Side::Server);
                if let Some((body, len)) = &*large
                    && body.len() == *len
                {
                    let Some((body, _)) = large.take() else { continue };
                    let frame = Bytes::from_owner(Pooled { body, pool: Arc::downgrade(pool) });
                    if let Err(ended) = on_frame(side, deliveries, pool, &frame) {
                        return Step::Ended(ended);
                    }
                }
                while large.is_none() {
                    match decoder.decode(buf) {
                        Ok(Some(frame)) => {
                            *decoded = decoded.wrapping_add(1);
                            batch.more(!buf.is_empty());
                            if let Err(ended) = on_frame(side, deliveries, pool, &frame.freeze()) {
                                return Step::Ended(ended);
                            }
                            // What this read's frames answered (refusals, pongs) may fill the
                            // outbox: the rest of the buffer then waits for room, as unread bytes
                            // do. Looked at every few frames, on a server only: the count is a
                            // cache line every producer writes, and a client queues no answers.
                            if S::ROLE == observe::Side::Server
                                && *decoded % CHECK_ROOM_EVERY == 0
                                && !link.outbox.has_space()
                            {
                                full = true;
                                break;
                            }
                            if batch.is_full() {
                                // The rest of the buffer is handled once this batch has run.
                                break;
                            }
                        }
                        Ok(None) => {
                            // A large frame: read the rest of it straight into a buffer of its own,
                            // so the read buffer is not held while its value is decoded.
                            if let Some(len) = decoder.take_large() {
                                let mut body = pool.take(len);
                                body.extend_from_slice(buf);
                                buf.clear();
                                *large = Some((body, len));
                            }
                            break;
                        }
                        Err(e) => return Step::Ended(Ended::TooLarge(e)),
                    }
                }
                batch.finish()
            };
            if let Err((id, overrun)) = deliveries.flush() {
                return Step::Ended(Ended::Refused(side.bad_items(id, Some(&overrun), "")));
            }
            if side.finished() {
                return Step::Ended(Ended::Stopped);
            }
            if ready.is_some() {
                // Coming back here reads on: the loop's next turn starts with what is left.
                return Step::Batch(ready);
            }
            if large.as_ref().is_some_and(|(body, len)| body.len() == *len) {
                continue;
            }
            link.outbox.release();
            // A peer that does not read what it is sent is not read from either, so answers to
            // its pings and requests cannot pile up without bound.
            if !link.outbox.has_space() {
                // A peer that reads nothing is given up on (`Outbox::check_stall`) while the
                // reader waits here too.
                let stall_check = async {
                    match link.outbox.stall_limit() {
                        Some(limit) => tokio::time::sleep(limit / 4).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    interrupt = side.interrupt() => match interrupt {
                        Interrupt::Stop => return Step::Ended(Ended::Stopped),
                        Interrupt::Continue => continue,
                    },
                    () = link.outbox.wait_for_space() => {}
                    () = stall_check => {
                        link.outbox.check_stall();
                        continue;
                    }
                }
            }
            if full {
                // The release made room: the frames left in the buffer come first.
                continue;
            }
            // Frames split off earlier may still hold the buffer; reading into its spare room
            // reuses it, and only a nearly full buffer is replaced.
            if buf.capacity() - buf.len() < READ_CHUNK / 16 {
                buf.reserve(READ_CHUNK);
            }
            let read_result = tokio::select! {
                biased;
                interrupt = side.interrupt() => match interrupt {
                    Interrupt::Stop => return Step::Ended(Ended::Stopped),
                    Interrupt::Continue => continue,
                },
                due = keepalive.due() => match due {
                    Due::Ping(nonce) => {
                        quiet(pool, link);
                        let _ = link.outbox.push_header(&Header::Ping { nonce });
                        continue;
                    }
                    Due::Dead(quiet) => return Step::Ended(Ended::Dead(quiet)),
                },
                read_result = spin.read(read_some(read, buf, large), || side.expecting()) => read_result,
            };
            match read_result {
                Ok(0) if buf.is_empty() && large.is_none() && decoder.is_between_frames() => {
                    return Step::Ended(Ended::Closed);
                }
                Ok(0) => return Step::Ended(Ended::ClosedMidFrame),
                Ok(n) => {
                    received.add(n);
                    keepalive.heard();
                    // A peer may keep sending and read nothing: the keepalive cannot tell.
                    link.outbox.check_stall();
                    link.outbox.hold();
                }
                Err(e) => return Step::Ended(Ended::Io(e)),
            }
        }
    }
}

/// A ping either way shows the connection quiet: it keeps no buffers grown for large frames.
fn quiet(pool: &LargeBuffers, link: &super::Link) {
    pool.clear();
    link.outbox.trim();
}

/// Parses one frame and handles it: pings and stream items here, everything else by the side.
/// Items are held until the end of the read batch, or until a frame of another kind comes.
fn on_frame<S: Side>(side: &S, deliveries: &mut Deliveries, pool: &LargeBuffers, frame: &Bytes) -> Result<(), Ended> {
    let (header, payload) = wire::parse(frame).map_err(Ended::NotAFrame)?;
    if let Header::Item { id } = header {
        for len in wire::item_lengths(&payload) {
            // An item of no bytes would cost no credit: a peer could send them without end.
            if len.map_err(|e| Ended::Refused(side.bad_items(id, None, &e)))? == 0 {
                return Err(Ended::Refused(side.bad_items(
                    id,
                    None,
                    "an item of no bytes; every item takes at least one",
                )));
            }
        }
        if payload.is_empty() {
            // No items: nothing to hand over (a taker must never see an empty chunk).
            return Ok(());
        }
        // Items of a call that is not a running streaming call are dropped.
        return deliveries
            .add(id, payload, |id| side.stream(id))
            .map_err(|(id, overrun)| Ended::Refused(side.bad_items(id, Some(&overrun), "")));
    }
    // Every item before this frame goes first.
    deliveries.flush().map_err(|(id, overrun)| Ended::Refused(side.bad_items(id, Some(&overrun), "")))?;
    match header {
        Header::Ping { nonce } => {
            // A peer pings when it has heard nothing for its keepalive interval. (This side's
            // own ping means the same, but a peer that pings first keeps it from ever pinging.)
            quiet(pool, side.link());
            // A peer that pings and reads nothing gets no more pongs once this much waits for
            // it: it would not see them anyway, and they must not pile up without bound. The
            // ping that follows a GoAway is always answered: the server closes on its pong.
            if side.link().outbox.queued() < PONG_ROOM || nonce == crate::wire::GOAWAY_PING {
                let _ = side.link().outbox.push_header(&Header::Pong { nonce });
            }
            Ok(())
        }
        Header::Pong { nonce } => {
            side.on_pong(nonce);
            Ok(())
        }
        header => side.on_frame(header, payload).map_err(Ended::Refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::outbox::Outbox;
    use crate::conn::{Link, Settings};
    use crate::transport::Peer;
    use tokio::io::AsyncWriteExt;

    /// A side that takes every frame and drops it, answering each with `.1` bytes; counts them.
    #[derive(Debug)]
    struct Sink(Link, usize, std::sync::atomic::AtomicUsize);

    impl Side for Sink {
        const ROLE: observe::Side = observe::Side::Server;

        fn link(&self) -> &Link {
            &self.0
        }

        fn on_frame(&self, _header: Header<'_>, _payload: Bytes) -> Result<(), Status> {
            self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if self.1 > 0 {
                let answer = vec![0; self.1];
                let _ = self.0.outbox.push(|buf, _| {
                    buf.extend_from_slice(&answer);
                    Ok(())
                });
            }
            Ok(())
        }

        async fn interrupt(&self) -> super::super::Interrupt {
            std::future::pending().await
        }

        fn stream(&self, _id: u64) -> Option<Arc<crate::conn::stream::Stream>> {
            None
        }

        fn bad_items(&self, _id: u64, _overrun: Option<&crate::conn::stream::Overrun>, what: &str) -> Status {
            Status::unavailable(what.to_owned())
        }
    }

    fn frame(header: &Header<'_>, payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        wire::write_frame(&mut buf, usize::MAX >> 8, header, |buf, _| {
            buf.extend_from_slice(payload);
            Ok(())
        })
        .expect("a frame");
        buf
    }

    /// A side answering each frame with `answer` bytes into an outbox whose high-water mark is
    /// `high_water` (and that nothing writes out).
    fn sink(high_water: usize, answer: usize) -> Sink {
        let settings = Settings {
            max_frame_len: 8 * 1024 * 1024,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            busy_poll: Duration::ZERO,
        };
        let link = Link {
            outbox: Outbox::new(settings.max_frame_len, high_water, observe::Side::Server),
            peer: Arc::new(Peer::Memory),
            settings,
        };
        Sink(link, answer, std::sync::atomic::AtomicUsize::new(0))
    }

    #[tokio::test]
    async fn answers_within_one_read_stop_at_the_outbox_high_water_mark() {
        let side = sink(4 * 1024, 1024);
        let (near, mut far) = tokio::io::duplex(1024 * 1024);
        let mut reader = Reader::new(near, &side);
        let mut frames = BytesMut::new();
        for id in 0..200 {
            frames.extend_from_slice(&frame(&Header::Cancel { id }, &[]));
        }
        far.write_all(&frames).await.expect("200 frames in one write");
        // Nothing writes the outbox out: the reader stops once it is full (its release moved
        // one outbox's worth aside for the writer, so twice), and waits for room.
        let step = tokio::time::timeout(Duration::from_millis(100), reader.next(&side)).await;
        assert!(step.is_err(), "the reader waits for room");
        let handled = side.2.load(std::sync::atomic::Ordering::Relaxed);
        let most = 2 * (4 + CHECK_ROOM_EVERY);
        assert!(handled <= most, "{handled} frames answered with 1 KiB each past a mark of 4 KiB");
        assert!(!reader.buf.is_empty(), "the rest of the read waits in the buffer");
        // Once the outbox is written out, the frames left in the buffer are all handled, with no
        // more bytes from the peer.
        let writer = side.0.outbox.run_writer(tokio::io::sink(), tokio_util::sync::CancellationToken::new(), || false);
        let handled_all = async {
            while side.2.load(std::sync::atomic::Ordering::Relaxed) < 200 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let within = tokio::time::sleep(Duration::from_secs(5));
        tokio::select! {
            ended = writer => panic!("the writer ended: {ended:?}"),
            _ = reader.next(&side) => panic!("the reader stopped"),
            () = within => panic!("{} of 200 frames handled", side.2.load(std::sync::atomic::Ordering::Relaxed)),
            () = handled_all => {}
        }
    }

    #[tokio::test]
    async fn a_ping_from_the_peer_empties_the_large_frame_pool() {
        let side = sink(usize::MAX, 0);
        let (near, mut far) = tokio::io::duplex(1024 * 1024);
        let mut reader = Reader::new(near, &side);
        let reply = Header::Response { id: 1, outcome: wire::Outcome::Ok };
        far.write_all(&frame(&reply, &vec![7; 2 * LARGE_FRAME])).await.expect("a large frame");
        // The large frame's buffer goes back to the pool once the side has dropped it.
        read_until(&mut reader, &side, 1).await;
        far.write_all(&frame(&Header::Ping { nonce: 2 }, &[])).await.expect("a ping");
        read_until(&mut reader, &side, 0).await;
    }

    /// Reads until the reader's pool keeps `kept` buffers; fails after 5 s.
    async fn read_until<R: AsyncRead + Unpin>(reader: &mut Reader<R>, side: &Sink, kept: usize) {
        let reading = async {
            while reader.pool.kept() != kept {
                let step = tokio::time::timeout(Duration::from_millis(20), reader.next(side)).await;
                assert!(!matches!(step, Ok(Step::Ended(_))), "reading ended");
            }
        };
        tokio::time::timeout(Duration::from_secs(5), reading)
            .await
            .unwrap_or_else(|_| panic!("the pool never kept {kept}"));
    }
}
