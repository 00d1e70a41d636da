//! The client: one connection, many concurrent calls.
//!
//! A [`Client`] is a cheap handle (an `Arc`) on one connection. Making a call encodes the request
//! straight into the connection's outbox (see `outbox.rs`) and registers a one-shot reply slot
//! under a fresh request id; a reader task routes each response to its slot. There is no
//! dispatch task between the caller and the socket, so a call costs no task switch before it is
//! written.
//!
//! The connection closes when the last `Client` handle and the last pending [`Call`] are
//! dropped: the writer first flushes everything queued (cancels included), then shuts the socket
//! down, and the server cancels whatever the client left running.

use crate::call::Call;
use crate::codec;
use crate::context::Context;
use crate::error::{Code, Status};
use crate::frame::{self, DEFAULT_MAX_FRAME_LEN, FrameDecoder, Header, Outcome};
use crate::handshake::{self, HELLO_LEN, HelloError};
use crate::keepalive::{Due, Keepalive};
use crate::outbox::{Outbox, PushError};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

/// Bytes the reader asks the socket for at least, per read.
const READ_CHUNK: usize = 16 * 1024;

/// Replies at least this long are read into a buffer of their own (see [`LargeBuffers`]).
const LARGE_FRAME: usize = 64 * 1024;

/// Settings of a client connection. Build one with `ClientConfig::default()` and set fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The longest frame this client sends or accepts, in bytes. A call whose request would be
    /// longer fails locally with `ResourceExhausted` before anything is sent; a longer reply
    /// closes the connection. Default: 8 MiB.
    pub max_frame_len: usize,
    /// The timeout of calls that set none of their own. Default: none.
    pub default_timeout: Option<Duration>,
    /// How long [`Client::dial`] may take to connect and complete the handshake. Default: 10 s.
    pub connect_timeout: Duration,
    /// After this long without hearing from the server, send it a ping; `None` turns keepalive
    /// off. Default: 30 s.
    pub keepalive_interval: Option<Duration>,
    /// If nothing arrives within this long of a ping, the server is considered dead: the
    /// connection closes and every pending call fails with `Unavailable`. Default: 20 s.
    pub keepalive_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            default_timeout: None,
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// Identifies a method: its service's name and its own name, as declared in the `.tidl` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Method {
    service: &'static str,
    name: &'static str,
}

impl Method {
    /// The method `name` of `service`.
    pub const fn new(service: &'static str, name: &'static str) -> Method {
        Method { service, name }
    }

    /// The service's name.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.service, self.name)
    }
}

/// Per-call settings: a timeout, and the context of the handler a call is made from.
///
/// Generated clients carry a `CallOptions` and expose it as builder steps
/// (`client.example().timeout(d).echo(..)`).
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    parent: Option<Context>,
}

impl CallOptions {
    /// Fails the call with `DeadlineExceeded` if it has not completed after `timeout`; the
    /// server is told the deadline and stops the handler when it passes.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the call part of the handler call `parent`: the call's deadline is never later
    /// than the parent's, and the call is cancelled when the parent is.
    pub fn context(mut self, parent: &Context) -> CallOptions {
        self.parent = Some(parent.clone());
        self
    }
}

/// A connection to a tidl server; clone it freely, every clone shares the connection.
///
/// ```no_run
/// # async fn run() -> Result<(), tidl_runtime::Status> {
/// let client = tidl_runtime::Client::dial("127.0.0.1:23333").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

/// Closes the connection when the last `Client` (and the last `Call`, which holds a `Client`)
/// is dropped.
struct Handle {
    conn: Arc<Conn>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.conn.close();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("peer", &self.handle.conn.peer).finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to a tidl server over TCP (with `TCP_NODELAY`) and completes the handshake.
    pub async fn dial(addr: impl ToSocketAddrs) -> Result<Client, Status> {
        Client::dial_with(addr, ClientConfig::default()).await
    }

    /// [`dial`](Client::dial) with settings.
    pub async fn dial_with(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client, Status> {
        let deadline = Instant::now() + config.connect_timeout;
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                Status::unavailable(format!(
                    "could not connect within {:?} (ClientConfig::connect_timeout)",
                    config.connect_timeout
                ))
            })?
            .map_err(|e| Status::unavailable(format!("could not connect: {e}")).with_source(e))?;
        crate::server::tune(&stream)
            .map_err(|e| Status::unavailable(format!("could not set TCP_NODELAY: {e}")).with_source(e))?;
        let peer = stream.peer_addr().map_or_else(|_| "the server".to_owned(), |a| a.to_string());
        let (read, write) = stream.into_split();
        let timeout = config.connect_timeout;
        let client = Client::spawn(read, write, config, peer);
        match tokio::time::timeout_at(deadline, client.ready()).await {
            Ok(result) => result.map(|()| client),
            Err(_) => Err(Status::unavailable(format!(
                "{} did not complete the tidl handshake within {timeout:?} \
                 (ClientConfig::connect_timeout)",
                client.handle.conn.peer
            ))),
        }
    }

    /// A client over any byte stream (a Unix socket, a TLS stream, an in-memory pipe).
    ///
    /// Returns at once: the handshake is sent ahead of the first calls and checked by the
    /// connection's reader; if it fails, every call fails with `Unavailable` saying why. Await
    /// [`ready`](Client::ready) to check it up front. Must be called inside a tokio runtime.
    pub fn new<IO>(io: IO) -> Client
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        Client::with_config(io, ClientConfig::default())
    }

    /// [`new`](Client::new) with settings.
    pub fn with_config<IO>(io: IO, config: ClientConfig) -> Client
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        Client::spawn(read, write, config, "the server".to_owned())
    }

    /// Completes once the server has accepted the handshake, or fails saying why it did not.
    pub async fn ready(&self) -> Result<(), Status> {
        let mut ready = self.handle.conn.ready.subscribe();
        let state = ready.wait_for(|state| !matches!(state, Readiness::Connecting)).await;
        match state.as_deref() {
            Ok(Readiness::Ready) => Ok(()),
            Ok(Readiness::Failed(status)) => Err(status.clone()),
            Ok(Readiness::Connecting) | Err(_) => {
                Err(Status::unavailable("the connection closed during the handshake"))
            }
        }
    }

    /// Starts a call of `method` with argument `arg`; generated clients call this.
    ///
    /// The request is queued for the connection's writer before this returns, whether or not
    /// the returned [`Call`] is ever awaited.
    pub fn call<A, T, E>(&self, method: Method, arg: &A, options: &CallOptions) -> Call<T, E>
    where
        A: Serialize + ?Sized,
    {
        let conn = &self.handle.conn;
        let timeout = options.timeout.or(conn.config.default_timeout);
        let mut parent_token = None;
        let mut parent_deadline = None;
        if let Some(parent) = &options.parent {
            if parent.token().is_cancelled() {
                return Call::failed(Status::cancelled(format!(
                    "`{method}` was not started: the call it belongs to was cancelled"
                )));
            }
            parent_deadline = parent.deadline();
            parent_token = Some(parent.token().clone());
        }
        // Only calls with a deadline read the clock.
        let (deadline, timeout_micros) = if timeout.is_some() || parent_deadline.is_some() {
            let now = Instant::now();
            let own = timeout.map(|t| now + t);
            let deadline = match (own, parent_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match deadline {
                Some(deadline) if deadline <= now => {
                    return Call::failed(Status::new(
                        Code::DeadlineExceeded,
                        format!("`{method}` was not started: its deadline had already passed"),
                    ));
                }
                Some(deadline) => {
                    let micros = deadline.duration_since(now).as_micros();
                    (Some(deadline), Some(u64::try_from(micros).unwrap_or(u64::MAX)))
                }
                None => (None, None),
            }
        } else {
            (None, None)
        };

        let (reply_tx, reply_rx) = oneshot::channel();
        let id = {
            let mut calls = conn.calls();
            if let Some(status) = &calls.refusal {
                return Call::failed(status.clone());
            }
            let id = calls.next_id;
            calls.next_id += 1;
            calls.pending.insert(id, reply_tx);
            conn.outbox.call_started();
            id
        };
        let header =
            Header::Request { id, service: method.service().into(), method: method.name().into(), timeout_micros };
        let pushed = conn
            .outbox
            .push(|buf, max| frame::write_frame(buf, max, &header, |buf, limit| codec::encode_into(arg, buf, limit)));
        if let Err(e) = pushed {
            conn.take_pending(id);
            let calls = conn.calls();
            let status = match e {
                PushError::Closed => {
                    calls.refusal.clone().unwrap_or_else(|| Status::unavailable("the connection is closed"))
                }
                PushError::Frame(e) => {
                    e.into_status(&format!("the request to `{method}`"), "ClientConfig::max_frame_len")
                }
            };
            return Call::failed(status);
        }
        Call::pending(self.clone(), id, reply_rx, method, deadline, timeout, parent_token)
    }

    /// Cancels call `id`: resolves it with `status` and tells the server, unless it has already
    /// completed. Returns whether the call was still pending.
    pub(crate) fn cancel(&self, id: u64, status: Option<Status>) -> bool {
        let conn = &self.handle.conn;
        let Some(reply) = conn.take_pending(id) else {
            return false;
        };
        if let Some(status) = status {
            // The receiver is gone only if the `Call` is being dropped; nothing to tell then.
            let _ = reply.send(Reply::Status(status));
        }
        // If the connection is already closing the server cancels everything anyway.
        let _ = conn.outbox.push_header(&Header::Cancel { id });
        true
    }

    /// Forgets call `id` without cancelling it: its reply, when it comes, is dropped.
    pub(crate) fn forget(&self, id: u64) {
        self.handle.conn.take_pending(id);
    }

    fn spawn<R, W>(read: R, write: W, config: ClientConfig, peer: String) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let conn = Arc::new(Conn {
            outbox: Outbox::new(config.max_frame_len, usize::MAX),
            calls: Mutex::new(Calls { next_id: 1, pending: HashMap::new(), refusal: None }),
            closing: CancellationToken::new(),
            failed: CancellationToken::new(),
            ready: watch::Sender::new(Readiness::Connecting),
            config,
            peer,
        });
        // The hello goes first; calls made before the server answers queue up behind it.
        let hello = handshake::encode(handshake::Answer::Accepted);
        let _ = conn.outbox.push(|buf, _| {
            buf.extend_from_slice(&hello);
            Ok(())
        });
        tokio::spawn({
            let conn = conn.clone();
            async move {
                if let Err(e) = conn.outbox.run_writer(write, conn.failed.clone()).await {
                    conn.fail_all(&Status::unavailable(format!("writing to {} failed: {e}", conn.peer)).with_source(e));
                }
            }
        });
        tokio::spawn({
            let conn = conn.clone();
            async move { conn.run_reader(read).await }
        });
        Client { handle: Arc::new(Handle { conn }) }
    }
}

/// Reads into the large reply being read, if there is one (no further than its end), else into
/// the read buffer.
async fn read_some<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut BytesMut,
    large: &mut Option<(Vec<u8>, usize)>,
) -> std::io::Result<usize> {
    match large {
        Some((body, len)) => {
            let want = *len - body.len();
            let mut rest = bytes::BufMut::limit(&mut *body, want);
            read.read_buf(&mut rest).await
        }
        None => read.read_buf(buf).await,
    }
}

/// A few buffers for large replies, reused from one reply to the next so a large reply does not
/// land in freshly allocated memory (hundreds of page faults per megabyte). Emptied when the
/// connection goes quiet.
#[derive(Debug, Default)]
struct LargeBuffers(Mutex<Vec<Vec<u8>>>);

impl LargeBuffers {
    /// Buffers kept, and the largest one kept.
    const KEPT: usize = 4;
    const LARGEST: usize = 4 * 1024 * 1024;

    /// An empty buffer with room for `len` bytes.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut body = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop().unwrap_or_default();
        body.clear();
        body.reserve_exact(len);
        body
    }

    fn give_back(&self, body: Vec<u8>) {
        let mut kept = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() < Self::KEPT && body.capacity() <= Self::LARGEST {
            kept.push(body);
        }
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

/// A large reply's buffer, as the owner of the frame's `Bytes`: back to the pool when the last
/// slice of it is dropped.
struct Pooled {
    body: Vec<u8>,
    pool: std::sync::Weak<LargeBuffers>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.body));
        }
    }
}

/// What the reader hands a pending call.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The encoded reply value.
    Ok(Bytes),
    /// The encoded application error.
    App(Bytes),
    /// An RPC-layer failure.
    Status(Status),
}

#[derive(Debug)]
enum Readiness {
    Connecting,
    Ready,
    Failed(Status),
}

/// The state of one client connection, shared by handles, calls and the connection's tasks.
struct Conn {
    outbox: Outbox,
    calls: Mutex<Calls>,
    /// Fires when the last handle is dropped: the reader stops.
    closing: CancellationToken,
    /// Fires when the connection failed: the writer stops without flushing.
    failed: CancellationToken,
    ready: watch::Sender<Readiness>,
    config: ClientConfig,
    peer: String,
}

struct Calls {
    next_id: u64,
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once new calls must fail (the server said go away, or the connection is gone).
    refusal: Option<Status>,
}

impl Conn {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Removes call `id` from the pending map, if it is there.
    fn take_pending(&self, id: u64) -> Option<oneshot::Sender<Reply>> {
        let slot = self.calls().pending.remove(&id);
        if slot.is_some() {
            self.outbox.call_ended();
        }
        slot
    }

    fn close(&self) {
        self.outbox.close();
        self.closing.cancel();
    }

    /// Fails every pending call and every future one with `status`.
    fn fail_all(&self, status: &Status) {
        let pending = {
            let mut calls = self.calls();
            calls.refusal.get_or_insert_with(|| status.clone());
            std::mem::take(&mut calls.pending)
        };
        for _ in 0..pending.len() {
            self.outbox.call_ended();
        }
        for (_, reply) in pending {
            let _ = reply.send(Reply::Status(status.clone()));
        }
        self.ready.send_if_modified(|state| match state {
            Readiness::Connecting => {
                *state = Readiness::Failed(status.clone());
                true
            }
            _ => false,
        });
    }

    async fn run_reader<R: AsyncRead + Unpin>(&self, mut read: R) {
        let status = tokio::select! {
            biased;
            () = self.closing.cancelled() => Status::unavailable("the client was closed"),
            status = self.read_loop(&mut read) => status,
        };
        if !self.closing.is_cancelled() {
            // A failure, not a close: the writer stops at once instead of flushing.
            tracing::debug!(peer = %self.peer, %status, "tidl client connection ended");
            self.failed.cancel();
        }
        self.fail_all(&status);
    }

    /// Reads until the connection fails; returns the status pending calls fail with.
    async fn read_loop<R: AsyncRead + Unpin>(&self, read: &mut R) -> Status {
        let mut hello = [0u8; HELLO_LEN];
        if let Err(e) = read.read_exact(&mut hello).await {
            return Status::unavailable(format!("{} closed the connection during the tidl handshake: {e}", self.peer))
                .with_source(e);
        }
        if let Err(e) = handshake::decode_server_hello(hello) {
            let code = if e == HelloError::Busy { Code::ResourceExhausted } else { Code::Unavailable };
            return Status::new(code, format!("handshake with {} failed: {e}", self.peer));
        }
        self.ready.send_replace(Readiness::Ready);

        let mut decoder = FrameDecoder::new(self.config.max_frame_len).with_large_frames(LARGE_FRAME);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut keepalive = Keepalive::new(self.config.keepalive_interval, self.config.keepalive_timeout);
        let pool = Arc::new(LargeBuffers::default());
        // A large reply being read: its buffer and its length.
        let mut large: Option<(Vec<u8>, usize)> = None;
        loop {
            if let Some((body, len)) = &large
                && body.len() == *len
            {
                let Some((body, _)) = large.take() else { continue };
                let frame = Bytes::from_owner(Pooled { body, pool: Arc::downgrade(&pool) });
                if let Err(status) = self.on_frame(&frame) {
                    return status;
                }
                continue;
            }
            while large.is_none() {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        if let Err(status) = self.on_frame(&frame.freeze()) {
                            return status;
                        }
                    }
                    Ok(None) => {
                        // A large reply: read the rest of it straight into a buffer of its own, so
                        // the read buffer is not held while the caller decodes it.
                        if let Some(len) = decoder.take_large() {
                            let mut body = pool.take(len);
                            body.extend_from_slice(&buf);
                            buf.clear();
                            large = Some((body, len));
                        }
                        break;
                    }
                    Err(e) => {
                        return Status::unavailable(format!(
                            "closed the connection to {}: {e}; raise ClientConfig::max_frame_len (and the \
                             server's) to allow it",
                            self.peer
                        ));
                    }
                }
            }
            if large.as_ref().is_some_and(|(body, len)| body.len() == *len) {
                continue;
            }
            // Frames split off earlier may still hold the buffer; reading into its spare room
            // reuses it, and only a nearly full buffer is replaced.
            if buf.capacity() - buf.len() < READ_CHUNK / 16 {
                buf.reserve(READ_CHUNK);
            }
            let read_result = tokio::select! {
                biased;
                due = keepalive.due() => match due {
                    Due::Ping(nonce) => {
                        // A quiet connection keeps no large buffers.
                        pool.clear();
                        let _ = self.outbox.push_header(&Header::Ping { nonce });
                        continue;
                    }
                    Due::Dead(quiet) => {
                        return Status::unavailable(format!(
                            "{} sent nothing for {quiet:?}, not even an answer to a keepalive ping; \
                             the connection is considered dead (ClientConfig::keepalive_timeout)",
                            self.peer
                        ));
                    }
                },
                read_result = read_some(read, &mut buf, &mut large) => read_result,
            };
            match read_result {
                Ok(0) => return self.closed_by_server(),
                Ok(_) => keepalive.heard(),
                Err(e) => {
                    return Status::unavailable(format!("the connection to {} failed: {e}", self.peer)).with_source(e);
                }
            }
        }
    }

    fn closed_by_server(&self) -> Status {
        match &self.calls().refusal {
            Some(goaway) => {
                Status::new(goaway.code(), format!("{} closed the connection: {}", self.peer, goaway.message()))
            }
            None => Status::unavailable(format!("{} closed the connection", self.peer)),
        }
    }

    fn on_frame(&self, frame: &Bytes) -> Result<(), Status> {
        let (header, payload) = frame::parse(frame).map_err(|e| {
            Status::unavailable(format!(
                "{} sent a frame that is not a tidl frame ({e}); closed the connection",
                self.peer
            ))
        })?;
        match header {
            Header::Response { id, outcome } => {
                let reply = match outcome {
                    Outcome::Ok => Reply::Ok(payload),
                    Outcome::AppError => Reply::App(payload),
                    Outcome::Status { code, message } => {
                        Reply::Status(Status::new(Code::from_u16(code), message.into_owned()))
                    }
                };
                // A reply to a call that was cancelled or forgotten is dropped silently.
                if let Some(slot) = self.take_pending(id) {
                    let _ = slot.send(reply);
                }
            }
            Header::Ping { nonce } => {
                let _ = self.outbox.push_header(&Header::Pong { nonce });
            }
            Header::Pong { .. } => {}
            Header::GoAway { code, message } => {
                self.calls().refusal.get_or_insert_with(|| Status::new(Code::from_u16(code), message.into_owned()));
            }
            Header::Request { .. } | Header::Cancel { .. } => {
                return Err(Status::unavailable(format!(
                    "{} sent a client-to-server frame; closed the connection",
                    self.peer
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_reply_buffer_returns_to_the_pool_when_its_last_slice_is_dropped() {
        let pool = Arc::new(LargeBuffers::default());
        let mut body = pool.take(100_000);
        body.resize(100_000, 7);
        let address = body.as_ptr();
        let frame = Bytes::from_owner(Pooled { body, pool: Arc::downgrade(&pool) });
        let slice = frame.slice(10..20);
        drop(frame);
        assert!(pool.0.lock().expect("lock").is_empty(), "still held by a slice");
        drop(slice);
        let again = pool.take(50_000);
        assert_eq!(again.as_ptr(), address, "the same memory is used for the next large reply");
        assert!(again.is_empty());
    }

    #[test]
    fn the_pool_keeps_a_few_buffers_of_bounded_size_and_empties_on_request() {
        let pool = LargeBuffers::default();
        for _ in 0..LargeBuffers::KEPT + 3 {
            pool.give_back(Vec::with_capacity(1024));
        }
        pool.give_back(Vec::with_capacity(LargeBuffers::LARGEST + 1));
        assert_eq!(pool.0.lock().expect("lock").len(), LargeBuffers::KEPT);
        assert!(pool.0.lock().expect("lock").iter().all(|b| b.capacity() <= LargeBuffers::LARGEST));
        pool.clear();
        assert!(pool.0.lock().expect("lock").is_empty());
    }
}
