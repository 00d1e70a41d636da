//! A connection, for either role: the engine both the client and the server run on.
//!
//! A connection is two tasks around a [`Side`] (the role's own state: the client's or the
//! server's table of calls in flight and what it does with each frame):
//!
//! - the **reader** ([`reader::run`]): *the* read loop. It splits the byte stream into frames,
//!   answers pings, keeps the peer alive ([`keepalive`]), reads large frames into pooled buffers
//!   ([`buffers`]), stops reading a peer that does not read what it is sent, and hands every
//!   other frame to the side;
//! - the **writer** ([`outbox::Outbox::run_writer`]): whoever produces a frame (a caller, a
//!   handler, the reader) encodes it straight into the connection's [`outbox::Outbox`], and the
//!   writer sends everything queued with one system call.
//!
//! The hello ([`crate::wire::handshake`]) is exchanged before either loop starts reading frames.

pub(crate) mod buffers;
pub(crate) mod keepalive;
pub(crate) mod outbox;
pub(crate) mod reader;
pub(crate) mod spin;
pub(crate) mod stream;

use crate::error::Status;
use crate::transport::Peer;
use crate::wire::Header;
use bytes::Bytes;
use outbox::Outbox;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What both roles' connections have.
#[derive(Debug)]
pub(crate) struct Link {
    /// The write side.
    pub(crate) outbox: Outbox,
    /// Who is at the other end.
    pub(crate) peer: Arc<Peer>,
    /// Read-side settings.
    pub(crate) settings: Settings,
}

/// The settings of a connection's read loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// The longest frame accepted.
    pub(crate) max_frame_len: usize,
    /// Ping a peer silent for this long; `None`: never.
    pub(crate) keepalive_interval: Option<Duration>,
    /// A pinged peer silent for this long is dead.
    pub(crate) keepalive_timeout: Duration,
    /// How long a wait for the peer polls before it parks, while [`Side::expecting`] ([`spin`]).
    pub(crate) busy_poll: Duration,
}

/// Something other than the peer that needs the read loop's attention.
#[derive(Debug)]
pub(crate) enum Interrupt {
    /// Stop reading: this side is closing the connection.
    Stop,
    /// The side acted on its own state; go on reading.
    Continue,
}

/// The role-specific half of a connection, driven by the read loop.
pub(crate) trait Side: Send + Sync + 'static {
    /// Which role this is, as metrics label it.
    const ROLE: crate::observe::Side;

    /// The parts of the connection both roles have.
    fn link(&self) -> &Link;

    /// Handles a frame other than a ping or a pong; an error closes the connection with that
    /// status.
    fn on_frame(&self, header: Header<'_>, payload: Bytes) -> Result<(), Status>;

    /// Completes when something other than the peer needs the loop (a shutdown, a close); never,
    /// if nothing can. Dropped and called again at every turn of the loop, so it keeps its
    /// state in the side.
    fn interrupt(&self) -> impl Future<Output = Interrupt> + Send;

    /// The peer answered the ping `nonce` (keepalive pings need nothing more).
    fn on_pong(&self, nonce: u64) {
        let _ = nonce;
    }

    /// Whether the loop should end now although the peer is still there (a draining server
    /// with nothing left to answer).
    fn finished(&self) -> bool {
        false
    }

    /// Whether frames from the peer are due soon enough to poll for (a client with more than one
    /// call in flight): a read that finds nothing then polls again for a while before it parks
    /// ([`spin`]).
    fn expecting(&self) -> bool {
        false
    }

    /// The stream of running streaming call `id`, which the read loop hands that call's items.
    fn stream(&self, id: u64) -> Option<std::sync::Arc<stream::Stream>>;

    /// The status that closes the connection when the peer sent an item with no credit left, or
    /// an item frame that does not split into items (`overrun` is then `None`).
    fn bad_items(&self, id: u64, overrun: Option<&stream::Overrun>, what: &str) -> Status;
}
