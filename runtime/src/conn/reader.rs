//! The read loop of every connection, client or server.

use super::buffers::{LARGE_FRAME, LargeBuffers, Pooled, read_some};
use super::keepalive::{Due, Keepalive};
use super::stream::Deliveries;
use super::{Interrupt, Side};
use crate::error::Status;
use crate::observe;
use crate::wire::{self, FrameDecoder, Header, handshake::HELLO_LEN};
use bytes::{Bytes, BytesMut};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

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
/// side stops it, or something fails.
pub(crate) async fn run<R: AsyncRead + Unpin, S: Side>(read: &mut R, side: &S) -> Ended {
    let link = side.link();
    let settings = link.settings;
    let mut decoder = FrameDecoder::new(settings.max_frame_len).with_large_frames(LARGE_FRAME);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut keepalive = Keepalive::new(settings.keepalive_interval, settings.keepalive_timeout);
    let pool = Arc::new(LargeBuffers::default());
    // A large frame being read: its buffer and its length.
    let mut large: Option<(Vec<u8>, usize)> = None;
    // Stream items read and not yet handed to their streams.
    let mut deliveries = Deliveries::default();
    let received = observe::ByteCount::new(observe::ByteCount::RECEIVED, S::ROLE);
    loop {
        {
            // Handler tasks that this read's requests start are spawned together, as the block
            // ends (sched/batch.rs); nothing in it awaits.
            let batch = crate::sched::batch::Open::begin(S::ROLE == observe::Side::Server);
            if let Some((body, len)) = &large
                && body.len() == *len
            {
                let Some((body, _)) = large.take() else { continue };
                let frame = Bytes::from_owner(Pooled { body, pool: Arc::downgrade(&pool) });
                if let Err(ended) = on_frame(side, &mut deliveries, &frame) {
                    return ended;
                }
            }
            while large.is_none() {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        batch.more(!buf.is_empty());
                        if let Err(ended) = on_frame(side, &mut deliveries, &frame.freeze()) {
                            return ended;
                        }
                    }
                    Ok(None) => {
                        // A large frame: read the rest of it straight into a buffer of its own, so
                        // the read buffer is not held while its value is decoded.
                        if let Some(len) = decoder.take_large() {
                            let mut body = pool.take(len);
                            body.extend_from_slice(&buf);
                            buf.clear();
                            large = Some((body, len));
                        }
                        break;
                    }
                    Err(e) => return Ended::TooLarge(e),
                }
            }
        }
        if let Err((id, overrun)) = deliveries.flush() {
            return Ended::Refused(side.bad_items(id, Some(&overrun), ""));
        }
        if side.finished() {
            return Ended::Stopped;
        }
        if large.as_ref().is_some_and(|(body, len)| body.len() == *len) {
            continue;
        }
        // A peer that does not read what it is sent is not read from either, so answers to its
        // pings and requests cannot pile up without bound.
        if !link.outbox.has_space() {
            tokio::select! {
                biased;
                interrupt = side.interrupt() => match interrupt {
                    Interrupt::Stop => return Ended::Stopped,
                    Interrupt::Continue => continue,
                },
                () = link.outbox.wait_for_space() => {}
            }
        }
        // Frames split off earlier may still hold the buffer; reading into its spare room
        // reuses it, and only a nearly full buffer is replaced.
        if buf.capacity() - buf.len() < READ_CHUNK / 16 {
            buf.reserve(READ_CHUNK);
        }
        let read_result = tokio::select! {
            biased;
            interrupt = side.interrupt() => match interrupt {
                Interrupt::Stop => return Ended::Stopped,
                Interrupt::Continue => continue,
            },
            due = keepalive.due() => match due {
                Due::Ping(nonce) => {
                    // A quiet connection keeps no large buffers.
                    pool.clear();
                    let _ = link.outbox.push_header(&Header::Ping { nonce });
                    continue;
                }
                Due::Dead(quiet) => return Ended::Dead(quiet),
            },
            read_result = read_some(read, &mut buf, &mut large) => read_result,
        };
        match read_result {
            Ok(0) if buf.is_empty() && large.is_none() && decoder.is_between_frames() => return Ended::Closed,
            Ok(0) => return Ended::ClosedMidFrame,
            Ok(n) => {
                received.add(n);
                keepalive.heard();
            }
            Err(e) => return Ended::Io(e),
        }
    }
}

/// Parses one frame and handles it: pings and stream items here, everything else by the side.
/// Items are held until the end of the read batch, or until a frame of another kind comes.
fn on_frame<S: Side>(side: &S, deliveries: &mut Deliveries, frame: &Bytes) -> Result<(), Ended> {
    let (header, payload) = wire::parse(frame).map_err(Ended::NotAFrame)?;
    if let Header::Item { id } = header {
        for len in wire::item_lengths(&payload) {
            len.map_err(|e| Ended::Refused(side.bad_items(id, None, &e)))?;
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
            let _ = side.link().outbox.push_header(&Header::Pong { nonce });
            Ok(())
        }
        Header::Pong { nonce } => {
            side.on_pong(nonce);
            Ok(())
        }
        header => side.on_frame(header, payload).map_err(Ended::Refused),
    }
}
