//! The client's side of one connection: the state its handles, calls and tasks share, the
//! server's hello, and what the read loop does with each frame.

use super::ClientConfig;
use super::in_flight::{InFlight, Reply};
use crate::conn::reader::{self, Ended};
use crate::conn::stream::{Overrun, Stream};
use crate::conn::{Interrupt, Link, Side};
use crate::error::{Code, Status};
use crate::wire::handshake::{self, HelloError};
use crate::wire::{Header, Outcome};
use bytes::Bytes;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use tokio::io::AsyncRead;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub(super) enum Readiness {
    Connecting,
    Ready,
    Failed(Status),
}

/// Whether a connection takes no more new calls: a flag read on every call (an atomic load:
/// a `CancellationToken` would take a lock), and a notification for those who wait for it.
#[derive(Debug, Default)]
pub(super) struct Retired {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Retired {
    pub(super) fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(super) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub(super) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// The client's side of one connection, shared by handles, calls and the connection's tasks.
pub(super) struct Conn {
    pub(super) link: Link,
    pub(super) in_flight: InFlight,
    /// Fires when the last handle is dropped: the reader stops.
    pub(super) closing: CancellationToken,
    /// Fires when the connection failed: the writer stops without flushing.
    pub(super) failed: CancellationToken,
    /// Fires when the connection takes no more new calls: it ended, or the server said GoAway.
    pub(super) retired: Retired,
    pub(super) ready: watch::Sender<Readiness>,
    /// The protocol minor version the connection speaks, once the server has answered.
    pub(super) minor: AtomicU8,
    pub(super) config: ClientConfig,
    /// The server, in messages.
    pub(super) name: String,
    /// The methods whose schemas this connection has sent (`Header::Bind`), by the addresses of
    /// the service's name, the method's name and the schema. A list: a connection calls a few
    /// methods, and scanning a few entries is cheaper than hashing.
    pub(super) bound: Mutex<Vec<(usize, usize, usize)>>,
}

impl Conn {
    pub(super) fn close(&self) {
        self.link.outbox.close();
        self.closing.cancel();
    }

    pub(super) async fn run_reader<R: AsyncRead + Unpin>(&self, mut read: R) {
        let status = tokio::select! {
            biased;
            () = self.closing.cancelled() => Status::unavailable("the client was closed"),
            () = self.failed.cancelled() => {
                Status::unavailable(format!("writing to {} failed; closed the connection", self.name))
            }
            status = self.read(&mut read) => status,
        };
        if !self.closing.is_cancelled() {
            // A failure, not a close: the writer stops at once instead of flushing.
            tracing::debug!(peer = %self.name, %status, "tidl client connection ended");
            self.failed.cancel();
        }
        self.in_flight.fail_all(&status);
        self.retired.set();
        self.ready.send_if_modified(|state| match state {
            Readiness::Connecting => {
                *state = Readiness::Failed(status.clone());
                true
            }
            _ => false,
        });
    }

    /// Reads the server's hello, then frames until the connection ends; returns the status
    /// pending calls fail with.
    async fn read<R: AsyncRead + Unpin>(&self, read: &mut R) -> Status {
        let hello = match reader::read_hello(read).await {
            Ok(hello) => hello,
            Err(e) => {
                return Status::unavailable(format!(
                    "{} closed the connection during the tidl handshake: {e}",
                    self.name
                ))
                .with_source(e);
            }
        };
        match handshake::decode_server_hello(hello) {
            Ok(hello) => self.minor.store(hello.minor.min(handshake::VERSION_MINOR), Ordering::Release),
            Err(e) => {
                let code = if e == HelloError::Busy { Code::ResourceExhausted } else { Code::Unavailable };
                return Status::new(code, format!("handshake with {} failed: {e}", self.name));
            }
        }
        self.ready.send_replace(Readiness::Ready);
        match reader::run(read, self).await {
            Ended::Closed | Ended::ClosedMidFrame => self.closed_by_server(),
            Ended::Stopped => Status::unavailable("the client was closed"),
            Ended::Io(e) => Status::unavailable(format!("the connection to {} failed: {e}", self.name)).with_source(e),
            Ended::TooLarge(e) => Status::unavailable(format!(
                "closed the connection to {}: {e}; raise ClientConfig::max_frame_len (and the server's) to allow it",
                self.name
            )),
            Ended::Dead(quiet) => Status::unavailable(format!(
                "{} sent nothing for {quiet:?}, not even an answer to a keepalive ping; the connection is \
                 considered dead (ClientConfig::keepalive_timeout)",
                self.name
            )),
            Ended::NotAFrame(e) => Status::unavailable(format!(
                "{} sent a frame that is not a tidl frame ({e}); closed the connection",
                self.name
            )),
            Ended::Refused(status) => status,
        }
    }

    /// The status that closes the connection when the server sent an item with no credit left.
    fn overrun(&self, id: u64, overrun: &Overrun) -> Status {
        Status::unavailable(format!(
            "{} sent an item on call {id} with no credit left ({} bytes sent, {} granted); closed the connection",
            self.name, overrun.sent, overrun.granted
        ))
    }

    fn closed_by_server(&self) -> Status {
        match self.in_flight.refusal() {
            Some(goaway) => {
                Status::new(goaway.code(), format!("{} closed the connection: {}", self.name, goaway.message()))
            }
            None => Status::unavailable(format!("{} closed the connection", self.name)),
        }
    }
}

/// The longest message kept from a status the server sent; the rest is cut (a GoAway's message
/// is copied into every call it fails, and a server may send megabytes of it).
const MAX_PEER_MESSAGE: usize = 4 * 1024;

/// A status the server sent, its message cut to [`MAX_PEER_MESSAGE`] bytes.
fn from_peer(code: u16, message: &str) -> Status {
    let message = if message.len() <= MAX_PEER_MESSAGE {
        message.to_owned()
    } else {
        let cut = (0..=MAX_PEER_MESSAGE).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
        format!("{}... (cut; {} bytes in all)", &message[..cut], message.len())
    };
    Status::new(Code::from_u16(code), message)
}

impl Side for Conn {
    const ROLE: crate::observe::Side = crate::observe::Side::Client;

    fn link(&self) -> &Link {
        &self.link
    }

    fn on_frame(&self, header: Header<'_>, payload: Bytes) -> Result<(), Status> {
        match header {
            Header::Response { id, outcome } => {
                let reply = match outcome {
                    Outcome::Ok => Reply::Ok(payload),
                    Outcome::AppError => Reply::App(payload),
                    Outcome::Status { code, message } => Reply::Status(from_peer(code, &message)),
                    Outcome::Refused { code, message } => Reply::Status(from_peer(code, &message).unstarted()),
                };
                // A reply to a call that was cancelled or forgotten is dropped silently.
                self.in_flight.complete(id, reply);
            }
            Header::GoAway { code, message } => {
                self.in_flight.refuse(from_peer(code, &message));
                self.retired.set();
            }
            Header::Credit { id, bytes } => {
                if let Some(stream) = self.in_flight.stream(id) {
                    stream.grant(bytes);
                }
            }
            Header::Item { .. }
            | Header::Request { .. }
            | Header::Call { .. }
            | Header::Bind { .. }
            | Header::Cancel { .. }
            | Header::HalfClose { .. }
            | Header::Ping { .. }
            | Header::Pong { .. } => {
                return Err(Status::unavailable(format!(
                    "{} sent a client-to-server frame; closed the connection",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// With more than one call in flight. A lone call's reply is left to the park: polling for
    /// it draws the idle worker into what one worker does alone (a stream's ping-pong took twice
    /// as long).
    fn expecting(&self) -> bool {
        self.in_flight.len() > 1
    }

    async fn interrupt(&self) -> Interrupt {
        self.closing.cancelled().await;
        Interrupt::Stop
    }

    fn stream(&self, id: u64) -> Option<std::sync::Arc<Stream>> {
        self.in_flight.stream(id)
    }

    fn bad_items(&self, id: u64, overrun: Option<&Overrun>, what: &str) -> Status {
        match overrun {
            Some(overrun) => self.overrun(id, overrun),
            None => Status::unavailable(format!(
                "{} sent an item frame for call {id} that is not one ({what}); closed the connection",
                self.name
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_from_the_server_is_cut_at_a_character_boundary() {
        assert_eq!(from_peer(14, "short").message(), "short");
        let long = "é".repeat(5_000);
        let status = from_peer(14, &long);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().len() < MAX_PEER_MESSAGE + 64, "{} bytes kept", status.message().len());
        assert!(status.message().ends_with("... (cut; 10000 bytes in all)"), "{}", &status.message()[4000..]);
    }
}
