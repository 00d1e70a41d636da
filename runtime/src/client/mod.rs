//! The client: one connection, many concurrent calls.
//!
//! A [`Client`] is a cheap handle (an `Arc`) on one connection. Making a call encodes the request
//! straight into the connection's outbox and registers an entry under a fresh request id in the
//! connection's table of calls in flight ([`in_flight`]); the connection's reader leaves each
//! response in its entry and wakes the caller. There is no dispatch task between the caller and
//! the socket, so a call costs no task switch before it is written, and no channel per call.
//!
//! The connection closes when the last `Client` handle and the last pending [`Call`] are
//! dropped: the writer first flushes everything queued (cancels included), then shuts the socket
//! down, and the server cancels whatever the client left running.

#[cfg(feature = "balance")]
pub(crate) mod balance;
pub(crate) mod call;
mod connection;
#[cfg(feature = "dns")]
pub(crate) mod dns;
pub(crate) mod endpoint;
pub(crate) mod in_flight;
pub(crate) mod intercept;
pub(crate) mod invoke;
pub(crate) mod options;
pub(crate) mod retry;
pub(crate) mod streaming;

use crate::codec;
use crate::conn::outbox::{Outbox, PushError};
use crate::conn::stream::Stream;
use crate::conn::{Link, Settings};
use crate::deadline::Deadline;
use crate::error::{Code, Status};
use crate::method::Method;
use crate::observe;
use crate::schema;
use crate::sync::lock;
use crate::transport::{self, Connector, Io, Peer};
use crate::wire::handshake::{self, STREAMS_MINOR};
use crate::wire::{self, DEFAULT_MAX_FRAME_LEN, Header};
use call::{Call, Pending, RawCall};
use connection::{Conn, Readiness};
use in_flight::{InFlight, Reply};
use invoke::{Invoke, ReplyFuture, Request};
use options::CallOptions;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streaming::{RequestSink, Streaming};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::ToSocketAddrs;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
    /// How long [`Client::dial`] and [`Client::connect`] may take to connect and complete the
    /// handshake. Default: 10 s.
    pub connect_timeout: Duration,
    /// After this long without hearing from the server, send it a ping; `None` turns keepalive
    /// off. Default: 30 s. With keepalive on, a server whose socket takes no bytes at all for
    /// this plus `keepalive_timeout` while frames wait for it (it reads nothing) is given up on
    /// too, as a dead one is.
    pub keepalive_interval: Option<Duration>,
    /// If nothing arrives within this long of a ping, the server is considered dead: the
    /// connection closes and every pending call fails with `Unavailable`. Default: 20 s.
    pub keepalive_timeout: Duration,
    /// While more than one call is in flight, how long the connection's reader, finding no
    /// reply, keeps polling the socket (yielding to every other ready task in between) before
    /// its worker thread parks: a reply that comes within it is read without a park and a
    /// wake-up, which cost more. A wait that polls in vain makes the next reads skip polling,
    /// more of them after each miss in a row (up to 64), so a server whose replies take long
    /// costs little; replies that come steadily tens of microseconds apart, with nothing else
    /// for the worker to run, cost up to that much polling each: latency bought with CPU.
    /// `Duration::ZERO` never polls. Default: 100 µs.
    pub busy_poll: Duration,
    /// Bytes of items a stream from the server may have in flight beyond what this side has
    /// taken: the server waits when a consumer falls this far behind. Default: 1 MiB.
    pub stream_window: usize,
    /// Bytes of requests queued for the connection but not yet written (the server is slow to
    /// read them, or the network is) beyond which a new call waits for room, within its
    /// deadline, or fails at once with `ResourceExhausted` (see [`when_full`](Self::when_full)),
    /// so that a client making calls faster than they can go out does not grow without bound.
    /// A stream's sender waits too, whatever credit the server has granted. Default: 16 MiB.
    pub max_queued_request_bytes: usize,
    /// What a call does when [`max_queued_request_bytes`](Self::max_queued_request_bytes) are
    /// queued. Default: [`WhenFull::Wait`].
    pub when_full: WhenFull,
    /// Metadata sent with every call of this client, before the call's own
    /// ([`CallOptions::metadata`]). Default: none.
    pub metadata: crate::Metadata,
    /// The most bytes of metadata (keys and values) a call may carry; a call with more fails
    /// at once with `ResourceExhausted`. Servers have their own limit
    /// (`ServerConfig::max_metadata_bytes`). Default: 8 KiB.
    pub max_metadata_bytes: usize,
    /// Run as every call starts, in order: they may change its options or refuse it. Default:
    /// none.
    pub interceptors: intercept::ClientInterceptors,
}

/// What a new call does when its connection has too many bytes of requests queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Waits for room, within the call's deadline (nothing is sent meanwhile; dropping the call
    /// gives up its place).
    Wait,
    /// Fails at once with `ResourceExhausted` (the call never started).
    Fail,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            default_timeout: None,
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
            busy_poll: Duration::from_micros(100),
            stream_window: DEFAULT_STREAM_WINDOW,
            max_queued_request_bytes: 16 * 1024 * 1024,
            when_full: WhenFull::Wait,
            metadata: crate::Metadata::new(),
            max_metadata_bytes: 8 * 1024,
            interceptors: intercept::ClientInterceptors::default(),
        }
    }
}

/// The default window of a stream, in bytes.
pub(crate) const DEFAULT_STREAM_WINDOW: usize = 1024 * 1024;

/// The protocol minor version that added `Call` (requests with metadata).
const METADATA_MINOR: u8 = 4;

/// The protocol minor version that added `Bind` (schema checks).
const BIND_MINOR: u8 = 2;

/// The protocol minor version of a connection whose server has not answered yet.
pub(crate) const MINOR_UNKNOWN: u8 = u8::MAX;

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
        f.debug_struct("Client").field("peer", &self.handle.conn.name).finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to a tidl server over TCP (with `TCP_NODELAY`) and completes the handshake.
    pub async fn dial(addr: impl ToSocketAddrs) -> Result<Client, Status> {
        Client::dial_with(addr, ClientConfig::default()).await
    }

    /// [`dial`](Client::dial) with settings.
    pub async fn dial_with(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client, Status> {
        Client::open(transport::tcp::connect(addr), config).await
    }

    /// Connects through `connector` (TCP, a Unix socket, the in-memory transport, or one of your
    /// own) and completes the handshake.
    pub async fn connect<C: Connector>(connector: C) -> Result<Client, Status> {
        Client::connect_with(connector, ClientConfig::default()).await
    }

    /// [`connect`](Client::connect) with settings.
    pub async fn connect_with<C: Connector>(connector: C, config: ClientConfig) -> Result<Client, Status> {
        Client::open(connector.connect(), config).await
    }

    /// A client over any byte stream (a TLS stream, a pipe, a socket made elsewhere).
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
        let (read, write) = crate::transport::halves::split(io);
        Client::start(read, write, config, Peer::Unknown)
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

    /// Calls (and streams) in flight on this connection: its load, as a balancer sees it.
    pub fn calls_in_flight(&self) -> usize {
        self.handle.conn.in_flight.len()
    }

    /// Bytes of requests queued for the connection and not yet written: what
    /// [`ClientConfig::max_queued_request_bytes`] bounds.
    pub fn queued_request_bytes(&self) -> usize {
        self.handle.conn.link.outbox.queued()
    }

    /// Whether the connection still takes new calls: it has not ended, and the server has not
    /// said it is shutting down.
    pub fn is_open(&self) -> bool {
        !self.handle.conn.retired.is_set()
    }

    /// Completes when the connection takes no more new calls: it ended (the server went away,
    /// the network failed, keepalive gave up), or the server said it is shutting down. Calls
    /// already running may still finish. [`Endpoint`](crate::Endpoint) reconnects then.
    pub async fn retired(&self) {
        self.handle.conn.retired.wait().await;
    }

    /// The server this client is connected to.
    pub fn peer(&self) -> &Peer {
        &self.handle.conn.link.peer
    }

    /// Connects with `connecting` and completes the handshake, within the connect timeout.
    async fn open<S: Io>(
        connecting: impl Future<Output = io::Result<(S, Peer)>>,
        config: ClientConfig,
    ) -> Result<Client, Status> {
        let timeout = config.connect_timeout;
        let deadline = Instant::now() + timeout;
        let (io, peer) = tokio::time::timeout_at(deadline, connecting)
            .await
            .map_err(|_| {
                Status::unavailable(format!("could not connect within {timeout:?} (ClientConfig::connect_timeout)"))
            })?
            .map_err(|e| Status::unavailable(format!("could not connect: {e}")).with_source(e))?;
        let (read, write) = crate::transport::halves::split(io);
        let client = Client::start(read, write, config, peer);
        match tokio::time::timeout_at(deadline, client.ready()).await {
            Ok(result) => result.map(|()| client),
            Err(_) => Err(Status::unavailable(format!(
                "{} did not complete the tidl handshake within {timeout:?} (ClientConfig::connect_timeout)",
                client.handle.conn.name
            ))),
        }
    }

    /// Starts the connection's tasks: the hello goes first, and calls made before the server
    /// answers queue up behind it.
    fn start<R, W>(read: R, write: W, config: ClientConfig, peer: Peer) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let name = match peer {
            Peer::Unknown => "the server".to_owned(),
            ref peer => peer.to_string(),
        };
        let settings = Settings {
            max_frame_len: config.max_frame_len,
            keepalive_interval: config.keepalive_interval,
            keepalive_timeout: config.keepalive_timeout,
            busy_poll: config.busy_poll,
        };
        let conn = Arc::new(Conn {
            link: Link {
                outbox: Outbox::new(config.max_frame_len, usize::MAX, observe::Side::Client)
                    .stalls_after(config.keepalive_interval.map(|interval| interval + config.keepalive_timeout)),
                peer: Arc::new(peer),
                settings,
            },
            in_flight: InFlight::default(),
            closing: CancellationToken::new(),
            failed: CancellationToken::new(),
            retired: connection::Retired::default(),
            ready: watch::Sender::new(Readiness::Connecting),
            minor: AtomicU8::new(MINOR_UNKNOWN),
            bound: Mutex::new(Vec::new()),
            config,
            name,
        });
        let hello = handshake::encode(handshake::Answer::Accepted);
        let _ = conn.link.outbox.push(|buf, _| {
            buf.extend_from_slice(&hello);
            Ok(())
        });
        tokio::spawn({
            let conn = conn.clone();
            async move {
                let busy = || conn.in_flight.len() > 1;
                if let Err(e) = conn.link.outbox.run_writer(write, conn.failed.clone(), busy).await {
                    let status = Status::unavailable(format!("writing to {} failed: {e}", conn.name)).with_source(e);
                    conn.in_flight.fail_all(&status);
                    // The reader stops too, and the connection is retired (an `Endpoint`
                    // connects again): a server that reads nothing may still be sending.
                    conn.failed.cancel();
                }
            }
        });
        tokio::spawn({
            let conn = conn.clone();
            async move { conn.run_reader(read).await }
        });
        Client { handle: Arc::new(Handle { conn }) }
    }

    /// Cancels call `id`: resolves it with `status` and tells the server, unless it has already
    /// completed. Returns whether the call was still pending.
    pub(crate) fn cancel(&self, id: u64, status: Option<Status>) -> bool {
        let conn = &self.handle.conn;
        if !conn.in_flight.stop(id, status) {
            return false;
        }
        // If the connection is already closing the server cancels everything anyway.
        let _ = conn.link.outbox.push_header(&Header::Cancel { id });
        true
    }

    /// Forgets call `id` without cancelling it: its reply, when it comes, is dropped.
    pub(crate) fn forget(&self, id: u64) {
        self.handle.conn.in_flight.forget(id);
    }

    /// Takes call `id`'s outcome once it has one; `None` if the call is unknown (forgotten, or
    /// its outcome already taken).
    pub(crate) fn poll_reply(&self, id: u64, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Reply>> {
        self.handle.conn.in_flight.poll(id, cx)
    }

    /// Takes call `id`'s outcome if it has one, forgetting the call.
    pub(crate) fn take_reply(&self, id: u64) -> Option<Reply> {
        self.handle.conn.in_flight.take(id)
    }

    /// Queues a frame with no payload; a closed connection drops it (the server then cancels
    /// the call anyway).
    pub(crate) fn send_header(&self, header: &Header<'_>) {
        let _ = self.handle.conn.link.outbox.push_header(header);
    }

    /// The connection's outbox.
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.handle.conn.link.outbox
    }

    /// Bytes this client queues for the server at most before a sender waits
    /// ([`ClientConfig::max_queued_request_bytes`]).
    pub(crate) fn queue_limit(&self) -> usize {
        self.handle.conn.config.max_queued_request_bytes
    }

    /// Starts a streaming call of `method` whose request payload `arg` is; `Err` if the
    /// connection cannot carry streams.
    fn start_stream<A: Serialize + ?Sized>(
        &self,
        method: Method,
        arg: &A,
        options: &CallOptions,
    ) -> Result<(Pending, Arc<Stream>), Status> {
        let conn = &self.handle.conn;
        match conn.minor.load(Ordering::Acquire) {
            MINOR_UNKNOWN => {
                return Err(Status::unavailable(format!(
                    "`{method}` is a streaming call, and {} has not answered the handshake yet: await \
                     Client::ready() before starting a stream",
                    conn.name
                )));
            }
            minor if minor < STREAMS_MINOR => {
                return Err(Status::unimplemented(format!(
                    "`{method}` is a streaming call, and {} speaks tidl protocol 1.{minor}, which has no \
                     streams (1.{STREAMS_MINOR} added them); nothing was sent",
                    conn.name
                )));
            }
            _ => {}
        }
        let stream = Arc::new(Stream::new(conn.config.stream_window));
        let pending = self.start_call(method, options, Some(stream.clone()), false, |buf, limit| {
            codec::encode_into(arg, buf, limit)
        })?;
        if let Some(bytes) = stream.opening_grant() {
            self.send_header(&Header::Credit { id: pending.id(), bytes });
        }
        Ok((pending, stream))
    }

    /// Starts a call whose payload `write_payload` encodes into the outbox, observed (its span
    /// and metrics) from here until it ends. `intercepted` says the interceptors have already
    /// run (those that await, before an unary call).
    fn start_call(
        &self,
        method: Method,
        options: &CallOptions,
        stream: Option<Arc<Stream>>,
        intercepted: bool,
        write_payload: impl FnOnce(&mut bytes::BytesMut, usize) -> Result<(), codec::EncodeFailure>,
    ) -> Result<Pending, Status> {
        let observed = observe::ClientCall::start(method, self.peer());
        match self.start_observed(method, options, stream, intercepted, write_payload, &observed) {
            Ok(pending) => Ok(pending.observed(observed)),
            Err(status) => {
                observed.refused(&status);
                Err(status)
            }
        }
    }

    /// [`start_call`](Client::start_call), sending the trace context of `observed`.
    #[allow(clippy::too_many_arguments, reason = "start_call's, and the call's observer")]
    fn start_observed(
        &self,
        method: Method,
        options: &CallOptions,
        stream: Option<Arc<Stream>>,
        intercepted: bool,
        write_payload: impl FnOnce(&mut bytes::BytesMut, usize) -> Result<(), codec::EncodeFailure>,
        observed: &observe::ClientCall,
    ) -> Result<Pending, Status> {
        let conn = &self.handle.conn;
        let applied;
        let options = if intercepted || conn.config.interceptors.is_empty() {
            options
        } else {
            applied = conn.config.interceptors.apply(method, options)?;
            &applied
        };
        let timeout = options.get_timeout().or(conn.config.default_timeout);
        let parent = options.get_context();
        if let Some(parent) = parent
            && parent.token().is_cancelled()
        {
            return Err(Status::cancelled(format!("`{method}` was not started: the call it belongs to was cancelled")));
        }
        let deadline = Deadline::of_call(timeout, parent.and_then(crate::Context::deadline_instant));
        if deadline == Deadline::Passed {
            return Err(Status::new(
                Code::DeadlineExceeded,
                format!("`{method}` was not started: its deadline had already passed"),
            ));
        }
        let minor = conn.minor.load(Ordering::Acquire);
        if minor < BIND_MINOR
            && let Some(schema) = method.schema()
            && schema::needs_1_2(schema.descriptor)
        {
            return Err(Status::new(
                Code::FailedPrecondition,
                format!(
                    "`{method}` sends evolvable structs or open enums, whose encoding tidl protocol 1.2 \
                     introduced, and {} speaks 1.{minor}: rebuild it with a current tidl; nothing was sent",
                    conn.name
                ),
            ));
        }
        // Refused before anything was sent (the server said GoAway, or the connection is gone).
        let metadata = if conn.config.metadata.is_empty() && options.get_metadata().is_empty() {
            None
        } else {
            Some(self.check_metadata(method, conn.config.metadata.merged(options.get_metadata()), minor)?)
        };
        let metadata = observed.propagate(
            metadata,
            (METADATA_MINOR..MINOR_UNKNOWN).contains(&minor),
            conn.config.max_metadata_bytes,
        );
        let id = conn.in_flight.start(stream).map_err(Status::unstarted)?;
        let (service, name, timeout_micros) = (method.service().into(), method.name().into(), deadline.wire());
        let header = match &metadata {
            None => Header::Request { id, service, method: name, timeout_micros },
            Some(metadata) => Header::Call { id, service, method: name, timeout_micros, metadata: metadata.wire() },
        };
        // The first call of a method on a connection that speaks 1.2 tells the server the
        // method's schema first, in the same critical section, so no request overtakes it.
        let schema = method.schema().filter(|_| (BIND_MINOR..MINOR_UNKNOWN).contains(&minor));
        let mut retired = false;
        let pushed = conn.link.outbox.push(|buf, max| {
            // Checked under the outbox's lock: a GoAway read after the id was taken has queued
            // its pong by now, and a request written after that pong would reach a server that
            // may have closed on it. Such a call is refused here instead, unstarted.
            if conn.retired.is_set() {
                retired = true;
                return Ok(());
            }
            if let Some(schema) = schema {
                let mut bound = lock(&conn.bound);
                // By address: the compiler may merge equal strings and equal schemas, but
                // never two that differ, so equal keys mean the same method and shape.
                let key = (
                    method.service().as_ptr() as usize,
                    method.name().as_ptr() as usize,
                    std::ptr::from_ref(schema) as usize,
                );
                if !bound.contains(&key) {
                    let bind = Header::Bind {
                        service: method.service().into(),
                        method: method.name().into(),
                        fingerprint: schema.fingerprint,
                    };
                    wire::write_frame(buf, max, &bind, |buf, limit| {
                        codec::extend_limited(buf, schema.descriptor, limit)
                    })?;
                    bound.push(key);
                }
            }
            wire::write_frame(buf, max, &header, write_payload)
        });
        if retired {
            conn.in_flight.forget(id);
            return Err(conn
                .in_flight
                .refusal()
                .unwrap_or_else(|| Status::unavailable("the connection is closed"))
                .unstarted());
        }
        if let Err(e) = pushed {
            conn.in_flight.forget(id);
            return Err(match e {
                PushError::Closed => conn
                    .in_flight
                    .refusal()
                    .unwrap_or_else(|| Status::unavailable("the connection is closed"))
                    .unstarted(),
                PushError::Frame(e) => {
                    e.into_status(&format!("the request to `{method}`"), "ClientConfig::max_frame_len")
                }
            });
        }
        let parent_token = parent.map(|p| p.token().clone());
        Ok(Pending::new(self.clone(), id, method, deadline.instant(), timeout, parent_token))
    }
}

impl Client {
    /// `metadata` if a call of `method` may carry it on this connection (within the size limit,
    /// to a server that speaks 1.4), or the status the call fails with, nothing sent.
    fn check_metadata(&self, method: Method, metadata: crate::Metadata, minor: u8) -> Result<crate::Metadata, Status> {
        let conn = &self.handle.conn;
        let limit = conn.config.max_metadata_bytes;
        // Not marked unstarted: sending it again, anywhere, cannot help.
        if metadata.size() > limit {
            return Err(Status::resource_exhausted(format!(
                "`{method}` was not started: its metadata takes {} bytes, more than {limit} \
                 (ClientConfig::max_metadata_bytes)",
                metadata.size()
            )));
        }
        if metadata.len() > wire::MAX_METADATA_ENTRIES {
            return Err(Status::resource_exhausted(format!(
                "`{method}` was not started: it has {} metadata entries, more than the protocol's {}",
                metadata.len(),
                wire::MAX_METADATA_ENTRIES
            )));
        }
        match minor {
            MINOR_UNKNOWN => Err(Status::unavailable(format!(
                "`{method}` carries metadata, and {} has not answered the handshake yet: await \
                 Client::ready() first; nothing was sent",
                conn.name
            ))
            .unstarted()),
            minor if minor < METADATA_MINOR => Err(Status::new(
                Code::FailedPrecondition,
                format!(
                    "`{method}` carries metadata, and {} speaks tidl protocol 1.{minor}, which has none \
                     (1.{METADATA_MINOR} added it); nothing was sent",
                    conn.name
                ),
            )
            .unstarted()),
            _ => Ok(metadata),
        }
    }

    /// `None` if a call of `method` may go out now; else `Ok` if it is to wait for room
    /// ([`WhenFull::Wait`]), or the status it fails with.
    fn full(&self, method: Method) -> Option<Result<(), Status>> {
        let conn = &self.handle.conn;
        let limit = conn.config.max_queued_request_bytes;
        if conn.link.outbox.queued() < limit {
            return None;
        }
        Some(match conn.config.when_full {
            WhenFull::Wait => Ok(()),
            WhenFull::Fail => Err(Status::resource_exhausted(format!(
                "`{method}` was not started: {limit} bytes of requests are already queued for {} \
                 (ClientConfig::max_queued_request_bytes)",
                conn.name
            ))
            .unstarted()),
        })
    }

    /// Runs the interceptors, some of which await, then sends `request` as they leave it. The
    /// time they take counts against the call's timeout.
    fn intercepted(self, request: Request) -> ReplyFuture {
        Box::pin(async move {
            let conn = &self.handle.conn;
            let method = request.method();
            let timeout = request.options().get_timeout().or(conn.config.default_timeout);
            let started = Instant::now();
            let applied = conn.config.interceptors.apply_async(method, request.options());
            let applied = match timeout {
                None => applied.await,
                Some(timeout) => match tokio::time::timeout(timeout, applied).await {
                    Ok(applied) => applied,
                    Err(_) => {
                        return Reply::Status(
                            Status::new(
                                Code::DeadlineExceeded,
                                format!("`{method}` was not started: its deadline passed in the client's interceptors"),
                            )
                            .unstarted(),
                        );
                    }
                },
            };
            let mut options = match applied {
                Ok(options) => options,
                Err(status) => return Reply::Status(status),
            };
            if let Some(timeout) = options.get_timeout().or(timeout) {
                options = options.timeout(timeout.saturating_sub(started.elapsed()));
            }
            self.send(request.with_options(options), true).await
        })
    }

    /// Sends the encoded `request`, waiting for room first if the client is full;
    /// `intercepted` says whether the interceptors have run.
    fn send(&self, request: Request, intercepted: bool) -> ReplyFuture {
        if let Some(full) = self.full(request.method()) {
            return match full {
                Ok(()) => self.clone().when_room(request, intercepted),
                Err(status) => Box::pin(std::future::ready(Reply::Status(status))),
            };
        }
        let payload = request.payload().clone();
        match self.start_call(request.method(), request.options(), None, intercepted, |buf, limit| {
            codec::extend_limited(buf, &payload, limit)
        }) {
            Ok(pending) => Box::pin(RawCall(pending)),
            Err(status) => Box::pin(std::future::ready(Reply::Status(status))),
        }
    }

    /// Sends `request` once fewer than `max_queued_request_bytes` are queued, within its
    /// deadline.
    fn when_room(self, request: Request, intercepted: bool) -> ReplyFuture {
        Box::pin(async move {
            let conn = &self.handle.conn;
            let room = conn.link.outbox.wait_below(conn.config.max_queued_request_bytes);
            let timeout = request.options().get_timeout().or(conn.config.default_timeout);
            let started = Instant::now();
            match timeout {
                Some(timeout) => {
                    if tokio::time::timeout(timeout, room).await.is_err() {
                        return Reply::Status(
                            Status::new(
                                Code::DeadlineExceeded,
                                format!(
                                    "`{}` was not started: its deadline passed while {} had too many bytes of \
                                     requests queued (ClientConfig::max_queued_request_bytes)",
                                    request.method(),
                                    conn.name
                                ),
                            )
                            .unstarted(),
                        );
                    }
                    let left = timeout.saturating_sub(started.elapsed());
                    let options = request.options().clone().timeout(left);
                    self.send(request.with_options(options), intercepted).await
                }
                None => {
                    room.await;
                    self.send(request, intercepted).await
                }
            }
        })
    }
}

impl Invoke for Client {
    /// Sends the encoded request as it is.
    fn invoke(&self, request: Request) -> ReplyFuture {
        if self.handle.conn.config.interceptors.awaits() {
            return self.clone().intercepted(request);
        }
        self.send(request, false)
    }

    /// Encodes the argument straight into the connection's write buffer. The request is queued
    /// for the connection's writer before this returns, whether or not the returned [`Call`] is
    /// ever awaited (unless an interceptor awaits: then it is queued once they have run, as the
    /// `Call` is first polled).
    fn call<A, T, E>(&self, method: Method, arg: &A, options: &CallOptions) -> Call<T, E>
    where
        A: Serialize + ?Sized,
    {
        if self.handle.conn.config.interceptors.awaits() {
            return match Request::new(method, arg, options.clone()) {
                Ok(request) => Call::from_future(method, self.clone().intercepted(request)),
                Err(status) => Call::failed(status),
            };
        }
        if let Some(full) = self.full(method) {
            return match full.and_then(|()| Request::new(method, arg, options.clone())) {
                Ok(request) => Call::from_future(method, self.clone().when_room(request, false)),
                Err(status) => Call::failed(status),
            };
        }
        match self.start_call(method, options, None, false, |buf, limit| codec::encode_into(arg, buf, limit)) {
            Ok(pending) => Call::pending(pending),
            Err(status) => Call::failed(status),
        }
    }

    fn server_stream<A, T, E>(&self, method: Method, arg: &A, options: &CallOptions) -> Streaming<T, E>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
        E: DeserializeOwned,
    {
        match self.start_stream(method, arg, options) {
            Ok((pending, stream)) => Streaming::open(pending, stream),
            Err(status) => Streaming::failed(status),
        }
    }

    fn client_stream<I, R, E>(&self, method: Method, options: &CallOptions) -> (RequestSink<I>, Call<R, E>)
    where
        I: Serialize,
        R: DeserializeOwned,
        E: DeserializeOwned,
    {
        match self.start_stream(method, &(), options) {
            Ok((pending, stream)) => {
                (RequestSink::open(self.clone(), pending.id(), stream, method), Call::pending(pending))
            }
            Err(status) => (RequestSink::closed(), Call::failed(status)),
        }
    }

    fn bidi_stream<I, T, E>(&self, method: Method, options: &CallOptions) -> (RequestSink<I>, Streaming<T, E>)
    where
        I: Serialize,
        T: DeserializeOwned,
        E: DeserializeOwned,
    {
        match self.start_stream(method, &(), options) {
            Ok((pending, stream)) => {
                let sink = RequestSink::open(self.clone(), pending.id(), stream.clone(), method);
                (sink, Streaming::open(pending, stream))
            }
            Err(status) => (RequestSink::closed(), Streaming::failed(status)),
        }
    }
}
