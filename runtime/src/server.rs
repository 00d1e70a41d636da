//! The server: accepts connections, runs each call in its own task under a cancellation token,
//! and stops handlers when they are cancelled.
//!
//! A handler stops in one of four ways: it completes (its reply is sent); the client cancels it
//! (a cancel frame, a dropped `Call`, or the client's connection closing); its deadline passes
//! (the client is told `DeadlineExceeded`); or the server shuts down and the grace period ends
//! (the client is told `Unavailable`). In every case but completion the handler's future is
//! dropped at its next `.await`: the work stops, not just the waiting for it.

use crate::client::Method;
use crate::codec;
use crate::context::{Cancellation, Context};
use crate::error::{Code, Status};
use crate::frame::{self, DEFAULT_MAX_FRAME_LEN, FrameDecoder, Header, Outcome};
use crate::handshake::{self, Answer, HELLO_LEN, HelloError};
use crate::keepalive::{Due, Keepalive};
use crate::outbox::{Outbox, PushError};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bytes the reader asks the socket for at least, per read.
const READ_CHUNK: usize = 16 * 1024;

/// Settings of a server. Build one with `ServerConfig::default()` and set fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The longest frame the server accepts or sends, in bytes. A longer incoming frame closes
    /// that connection (nothing beyond the limit is allocated); a longer reply fails that call
    /// with `ResourceExhausted`. Default: 8 MiB.
    pub max_frame_len: usize,
    /// Calls one connection may have running at once; further calls fail at once with
    /// `ResourceExhausted` (cancels are always still read). Default: 4096.
    pub max_concurrent_calls: usize,
    /// How long a new connection may take to send its handshake. Default: 10 s.
    pub handshake_timeout: Duration,
    /// Bytes of replies queued for one connection above which handlers wait before queueing
    /// more, so a client that stops reading cannot grow the server's memory. Default: 4 MiB.
    pub max_queued_reply_bytes: usize,
    /// Connections served at once; further ones are refused at the handshake, and the client
    /// sees `ResourceExhausted`. Default: 10,000.
    pub max_connections: usize,
    /// After this long without hearing from a client, send it a ping; `None` turns keepalive
    /// off. Default: 30 s.
    pub keepalive_interval: Option<Duration>,
    /// If nothing arrives within this long of a ping, the client is considered gone: the
    /// connection closes and its calls are cancelled. Default: 20 s.
    pub keepalive_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_concurrent_calls: 4096,
            handshake_timeout: Duration::from_secs(10),
            max_queued_reply_bytes: 4 * 1024 * 1024,
            max_connections: 10_000,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// A service the server can run: implemented by the generated `<Name>Server` wrappers.
pub trait Service: Send + Sync + 'static {
    /// The service's name as declared in the `.tidl` file.
    fn name(&self) -> &'static str;

    /// Starts the call `request` of `method`, or hands the request back if the service has no
    /// such method.
    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming>;
}

/// A request the server has read and is about to run; generated code hands it to
/// [`Incoming::spawn`] with the method's handler.
pub struct Incoming {
    conn: Arc<Conn>,
    id: u64,
    payload: Bytes,
    ctx: Context,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming").field("id", &self.id).field("peer", &self.conn.peer).finish_non_exhaustive()
    }
}

/// How a handler task ended.
enum Ended<T, E> {
    Ok(T),
    App(E),
    Cancelled,
    DeadlineExceeded,
    Panicked(Box<dyn Any + Send>),
}

impl Incoming {
    /// Runs `handler` on the decoded argument in a task of its own, under the call's
    /// cancellation and deadline, and sends its result as the reply.
    pub fn spawn<A, T, E, F, Fut>(self, method: Method, handler: F)
    where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Context, A) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        let Incoming { conn, id, payload, ctx } = self;
        // Decoded here, on the connection's reader: the task then carries the value rather than
        // the frame, and the read buffer is free for reuse sooner.
        let arg = match codec::decode::<A>(&payload) {
            Ok(arg) => arg,
            Err(e) => {
                let status =
                    Status::new(Code::InvalidArgument, format!("the argument of `{method}` did not decode: {e}"));
                tracing::debug!(peer = %conn.peer, %method, "call refused: {}", status.message());
                conn.send_status(id, &status);
                conn.forget(id);
                return;
            }
        };
        drop(payload);
        let call = ctx.cancellation().clone();
        let deadline = ctx.deadline();
        let tracker = conn.server.tracker.clone();
        let task = async move {
            let mut work = std::pin::pin!(handler(ctx, arg));
            // A panicking handler fails its own call with `Internal`; nothing else notices.
            let work = std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
                    Ok(Poll::Ready(Ok(reply))) => Poll::Ready(Ended::Ok(reply)),
                    Ok(Poll::Ready(Err(e))) => Poll::Ready(Ended::App(e)),
                    Ok(Poll::Pending) => Poll::Pending,
                    Err(panic) => Poll::Ready(Ended::Panicked(panic)),
                }
            });
            // Boxed, and only for calls with a deadline: a timer is large, and most calls have none.
            let mut timer = deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
            let deadline_passed = std::future::poll_fn(|cx| match &mut timer {
                Some(timer) => timer.as_mut().poll(cx),
                None => Poll::Pending,
            });
            let ended = tokio::select! {
                biased;
                () = call.cancelled() => Ended::Cancelled,
                () = deadline_passed => Ended::DeadlineExceeded,
                ended = work => ended,
            };
            // The handler's future is dropped here, whatever ended it.
            conn.finish(id, method, ended, &call).await;
        };
        tracker.spawn(task);
    }
}

/// Builds a [`Server`]: register services, optionally set a config, then build.
pub struct ServerBuilder {
    services: HashMap<&'static str, Arc<dyn Service>>,
    config: ServerConfig,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish()
    }
}

impl ServerBuilder {
    /// Adds a service (a generated `<Name>Server` wrapping your implementation).
    ///
    /// # Panics
    /// If a service with the same name is already registered: that is a bug in the program.
    #[track_caller]
    pub fn register(mut self, service: impl Service) -> ServerBuilder {
        let name = service.name();
        if self.services.insert(name, Arc::new(service)).is_some() {
            panic!("tidl: the service `{name}` is registered twice on one server");
        }
        self
    }

    /// Replaces the default settings.
    pub fn config(mut self, config: ServerConfig) -> ServerBuilder {
        self.config = config;
        self
    }

    /// Builds the server.
    pub fn build(self) -> Server {
        let mut names: Vec<_> = self.services.keys().copied().collect();
        names.sort_unstable();
        Server {
            inner: Arc::new(Inner {
                connections: Arc::new(Semaphore::new(self.config.max_connections.min(Semaphore::MAX_PERMITS))),
                services: self.services.into_iter().collect(),
                service_names: names.join(", "),
                config: self.config,
                tracker: TaskTracker::new(),
                draining: CancellationToken::new(),
                stopping: CancellationToken::new(),
            }),
        }
    }
}

/// A tidl server: a set of services and the connections being served. Cheap to clone; clones
/// share the services, connections and shutdown.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    /// One permit per connection being served.
    connections: Arc<Semaphore>,
    /// Found by comparing names: a server has a handful, and that beats hashing the name.
    services: Vec<(&'static str, Arc<dyn Service>)>,
    /// For error messages: the registered services, sorted.
    service_names: String,
    config: ServerConfig,
    /// Every connection, writer and handler task.
    tracker: TaskTracker,
    /// Fires when shutdown starts: stop accepting, tell clients, start no new calls.
    draining: CancellationToken,
    /// Fires when the grace period ends: cancel every call still running.
    stopping: CancellationToken,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("services", &self.inner.service_names)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder { services: HashMap::new(), config: ServerConfig::default() }
    }

    /// Accepts connections on `listener` and serves each in tasks of its own, until
    /// [`shutdown`](Server::shutdown) is called.
    ///
    /// Transient accept errors (a connection reset before it was accepted, running out of file
    /// descriptors) are logged and retried. Returns `Ok(())` once shutdown has begun, or the
    /// error if the listener itself fails.
    pub async fn accept(&self, listener: TcpListener) -> io::Result<()> {
        loop {
            let accepted = tokio::select! {
                biased;
                () = self.inner.draining.cancelled() => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_per_connection_error(&e) => continue,
                Err(e) if is_resource_error(&e) => {
                    tracing::warn!(error = %e, "tidl server could not accept a connection; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Err(e) = tune(&stream) {
                tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
            }
            let (read, write) = stream.into_split();
            self.spawn_connection(read, write, peer.to_string());
        }
    }

    /// Binds `addr` and accepts connections on it in a background task, as
    /// [`accept`](Server::accept) does, until shutdown. Returns the address bound, so
    /// `"127.0.0.1:0"` serves on a free port. A failure of the listener itself is logged.
    pub async fn listen(&self, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let server = self.clone();
        tokio::spawn(async move {
            if let Err(e) = server.accept(listener).await {
                tracing::error!(addr = %bound, error = %e, "tidl server stopped accepting connections");
            }
        });
        Ok(bound)
    }

    /// Serves a connection in a task of its own, or refuses it if the server is full.
    fn spawn_connection<R, W>(&self, read: R, write: W, peer: String) -> tokio::task::JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let inner = &self.inner;
        match inner.connections.clone().try_acquire_owned() {
            Ok(permit) => inner.tracker.spawn(serve(inner.clone(), read, write, peer, permit)),
            Err(_) => inner.tracker.spawn(refuse_busy(read, write, peer, inner.config.max_connections)),
        }
    }

    /// Serves one connection over any byte stream, until it closes.
    pub async fn serve_connection<IO>(&self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let task = self.spawn_connection(read, write, "a client".to_owned());
        // The connection task logs its own failures; a panic in it is a bug in tidl.
        let _ = task.await;
    }

    /// Shuts down gracefully: stops accepting connections and tells every client to start no
    /// new calls (they fail at once with `Unavailable`), lets calls in flight finish for up to
    /// `grace`, then cancels the rest. Returns when every connection and handler task has ended.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.draining.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait()).await.is_err() {
            self.inner.stopping.cancel();
            self.inner.tracker.wait().await;
        }
    }
}

/// Sets the socket options of every tidl TCP connection, on both sides: `TCP_NODELAY`, so a
/// cancel or a small reply is never held back waiting for a delayed ACK (Nagle's algorithm
/// would hold a small frame for up to ~40 ms while an earlier one is unacknowledged).
pub(crate) fn tune(stream: &tokio::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn is_resource_error(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or system is out of something for a while.
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) || e.kind() == io::ErrorKind::OutOfMemory
}

/// One connection's shared state.
struct Conn {
    server: Arc<Inner>,
    outbox: Outbox,
    /// The cancellation of every call running on this connection.
    in_flight: Mutex<HashMap<u64, Arc<Cancellation>>>,
    /// Fires when the connection ends or the server stops; the reader then cancels every call
    /// in flight.
    token: CancellationToken,
    /// Signalled when the last running call of the connection ends.
    idle: Notify,
    peer: String,
    /// Cancels received for calls that were not running (they had usually just finished); only
    /// the first is logged.
    unknown_cancels: AtomicU64,
}

impl Conn {
    fn in_flight(&self) -> MutexGuard<'_, HashMap<u64, Arc<Cancellation>>> {
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends the reply of a call that ended (if anyone is still waiting for it), then forgets
    /// the call. In that order: a draining connection closes once no call is left, and must not
    /// close before the last reply is queued.
    async fn finish<T: Serialize + Send, E: Serialize + Send>(
        &self,
        id: u64,
        method: Method,
        ended: Ended<T, E>,
        call: &Cancellation,
    ) {
        let status = match ended {
            Ended::Ok(reply) => {
                self.reply(id, method, Outcome::Ok, reply).await;
                None
            }
            Ended::App(error) => {
                self.reply(id, method, Outcome::AppError, error).await;
                None
            }
            Ended::DeadlineExceeded => {
                call.cancel();
                Some(Status::new(
                    Code::DeadlineExceeded,
                    format!("`{method}` passed its deadline; the server stopped it"),
                ))
            }
            Ended::Cancelled if self.server.stopping.is_cancelled() => Some(Status::unavailable(format!(
                "the server shut down and stopped `{method}` at the end of its grace period"
            ))),
            // Cancelled by the client, or its connection is gone: nobody is waiting.
            Ended::Cancelled => None,
            Ended::Panicked(panic) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("no message");
                tracing::error!(peer = %self.peer, %method, panic = detail, "a tidl handler panicked");
                Some(Status::new(Code::Internal, format!("the handler of `{method}` panicked: {detail}")))
            }
        };
        if let Some(status) = status {
            self.send_status(id, &status);
        }
        self.forget(id);
    }

    /// Forgets call `id`, which has ended (its reply, if any, is queued).
    fn forget(&self, id: u64) {
        let now_idle = {
            let mut in_flight = self.in_flight();
            if in_flight.remove(&id).is_some() {
                self.outbox.call_ended();
            }
            in_flight.is_empty()
        };
        if now_idle {
            self.idle.notify_one();
        }
    }

    /// Completes when no call of this connection is running.
    async fn wait_until_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight().is_empty() {
                return;
            }
            idle.await;
        }
    }

    async fn reply<V: Serialize + Send>(&self, id: u64, method: Method, outcome: Outcome<'_>, value: V) {
        if !self.outbox.has_space() {
            // Rare: the client is not reading. Boxed, so every handler task does not carry the
            // space for waiting.
            Box::pin(self.outbox.wait_for_space()).await;
        }
        let header = Header::Response { id, outcome };
        let pushed = self.outbox.push(|buf, max| {
            frame::write_frame(buf, max, &header, |buf, limit| codec::encode_into(&value, buf, limit))
        });
        if let Err(PushError::Frame(e)) = pushed {
            let status = e.into_status(&format!("the reply of `{method}`"), "ServerConfig::max_frame_len");
            tracing::warn!(peer = %self.peer, %method, %status, "a tidl reply could not be sent");
            self.send_status(id, &status);
        }
    }

    fn send_status(&self, id: u64, status: &Status) {
        // Fails only when the connection is closing, and then nobody is listening.
        let _ = self.outbox.push_header(&Header::Response { id, outcome: Outcome::status(status) });
    }

    /// Handles one frame; an error closes the connection with that status.
    fn on_frame(self: &Arc<Self>, frame: &Bytes) -> Result<(), Status> {
        let (header, payload) = frame::parse(frame).map_err(|e| {
            Status::new(Code::InvalidArgument, format!("received a frame that is not a tidl frame ({e})"))
        })?;
        match header {
            Header::Request { id, service, method, timeout_micros } => {
                self.on_request(id, &service, &method, timeout_micros, payload)
            }
            Header::Cancel { id } => {
                // The handler task forgets the call once it has stopped.
                let call = self.in_flight().get(&id).cloned();
                match call {
                    Some(call) => call.cancel(),
                    // Usually a call that finished as the cancel was sent: nothing to do.
                    None => {
                        if self.unknown_cancels.fetch_add(1, Ordering::Relaxed) == 0 {
                            tracing::debug!(peer = %self.peer, "ignored a cancel for call {id}, which is not running");
                        }
                    }
                }
                Ok(())
            }
            Header::Ping { nonce } => {
                let _ = self.outbox.push_header(&Header::Pong { nonce });
                Ok(())
            }
            Header::Pong { .. } => Ok(()),
            Header::Response { .. } | Header::GoAway { .. } => {
                Err(Status::new(Code::InvalidArgument, "received a server-to-client frame from a client"))
            }
        }
    }

    fn on_request(
        self: &Arc<Self>,
        id: u64,
        service: &str,
        method: &str,
        timeout_micros: Option<u64>,
        payload: Bytes,
    ) -> Result<(), Status> {
        if self.server.draining.is_cancelled() {
            self.send_status(id, &Status::unavailable("the server is shutting down and takes no new calls"));
            return Ok(());
        }
        let Some((_, svc)) = self.server.services.iter().find(|(name, _)| *name == service) else {
            let message = format!("the server has no service `{service}` (it serves: {})", self.server.service_names);
            tracing::debug!(peer = %self.peer, "call refused: {message}");
            self.send_status(id, &Status::new(Code::Unimplemented, message));
            return Ok(());
        };
        // Not tied to the connection's token (registering children would serialise every call
        // on one lock): closing the connection cancels each call explicitly.
        let call = Arc::new(Cancellation::default());
        {
            let mut in_flight = self.in_flight();
            if in_flight.contains_key(&id) {
                return Err(Status::new(
                    Code::InvalidArgument,
                    format!("request id {id} was reused while its call is still running"),
                ));
            }
            let limit = self.server.config.max_concurrent_calls;
            if in_flight.len() >= limit {
                drop(in_flight);
                let message = format!(
                    "`{service}.{method}` was refused: this connection already has {limit} calls \
                     running, the limit (ServerConfig::max_concurrent_calls)"
                );
                tracing::debug!(peer = %self.peer, "call refused: {message}");
                self.send_status(id, &Status::new(Code::ResourceExhausted, message));
                return Ok(());
            }
            in_flight.insert(id, call.clone());
            self.outbox.call_started();
        }
        let deadline = timeout_micros.and_then(|t| Instant::now().checked_add(Duration::from_micros(t)));
        let request = Incoming { conn: self.clone(), id, payload, ctx: Context::for_call(call, deadline) };
        if svc.call(method, request).is_err() {
            if self.in_flight().remove(&id).is_some() {
                self.outbox.call_ended();
            }
            let message = format!("the service `{service}` has no method `{method}`");
            tracing::debug!(peer = %self.peer, "call refused: {message}");
            self.send_status(id, &Status::new(Code::Unimplemented, message));
        }
        Ok(())
    }
}

/// How long a closing connection waits for its cancelled handlers to queue their last statuses.
const HANDLER_STOP_WAIT: Duration = Duration::from_secs(1);

/// Serves one connection: the handshake, then frames until it closes.
async fn serve<R, W>(server: Arc<Inner>, mut read: R, write: W, peer: String, _permit: OwnedSemaphorePermit)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let config = &server.config;
    let mut hello = [0u8; HELLO_LEN];
    match tokio::time::timeout(config.handshake_timeout, read.read_exact(&mut hello)).await {
        Err(_) => {
            tracing::info!(
                %peer,
                "closed a connection that sent no tidl handshake within {:?} (ServerConfig::handshake_timeout)",
                config.handshake_timeout
            );
            return;
        }
        Ok(Err(e)) => {
            tracing::info!(%peer, "a connection closed before completing the tidl handshake: {e}");
            return;
        }
        Ok(Ok(_)) => {}
    }
    let answer = match handshake::decode(hello) {
        Ok(_) => Answer::Accepted,
        Err(e @ HelloError::NotTidl(_)) => {
            tracing::info!(%peer, "closed a connection: {e}");
            return;
        }
        Err(e) => {
            tracing::info!(%peer, "refused a connection: {e}");
            Answer::UnsupportedVersion
        }
    };

    let conn = Arc::new(Conn {
        outbox: Outbox::new(config.max_frame_len, config.max_queued_reply_bytes),
        in_flight: Mutex::new(HashMap::new()),
        token: server.stopping.child_token(),
        idle: Notify::new(),
        server: server.clone(),
        peer,
        unknown_cancels: AtomicU64::new(0),
    });
    let reply_hello = handshake::encode(answer);
    let _ = conn.outbox.push(|buf, _| {
        buf.extend_from_slice(&reply_hello);
        Ok(())
    });
    server.tracker.spawn({
        let conn = conn.clone();
        async move {
            if let Err(e) = conn.outbox.run_writer(write, CancellationToken::new()).await {
                tracing::debug!(peer = %conn.peer, error = %e, "writing to a tidl client failed");
                // The reader notices too; cancel the calls now rather than at its next read.
                conn.token.cancel();
            }
        }
    });
    if answer == Answer::Accepted
        && let Some(status) = read_frames(&conn, &mut read).await
    {
        tracing::warn!(peer = %conn.peer, "closed a tidl connection: {}", status.message());
        let goaway = Header::GoAway { code: status.code().as_u16(), message: status.message().into() };
        let _ = conn.outbox.push_header(&goaway);
    }
    // Stop every call still running for this connection, give the handlers a moment to queue
    // their last statuses (when the server is stopping, clients are told so), then close.
    conn.token.cancel();
    for call in conn.in_flight().values() {
        call.cancel();
    }
    let _ = tokio::time::timeout(HANDLER_STOP_WAIT, conn.wait_until_idle()).await;
    conn.outbox.close();
}

/// Refuses a connection because the server is at `ServerConfig::max_connections`: reads the
/// client's hello, answers with a "busy" hello, and closes.
async fn refuse_busy<R, W>(mut read: R, mut write: W, peer: String, limit: usize)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    tracing::info!(%peer, "refused a connection: the server already has {limit} connections (ServerConfig::max_connections)");
    let exchange = async {
        let mut hello = [0u8; HELLO_LEN];
        read.read_exact(&mut hello).await?;
        write.write_all(&handshake::encode(Answer::Busy)).await?;
        write.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), exchange).await;
}

/// Reads frames until the client closes the connection (`None`) or breaks the protocol (the
/// status to tell it).
async fn read_frames<R: AsyncRead + Unpin>(conn: &Arc<Conn>, read: &mut R) -> Option<Status> {
    let config = &conn.server.config;
    let mut decoder = FrameDecoder::new(config.max_frame_len);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut keepalive = Keepalive::new(config.keepalive_interval, config.keepalive_timeout);
    let mut goaway_sent = false;
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(status) = conn.on_frame(&frame.freeze()) {
                        return Some(status);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let message = format!("{e}; raise ServerConfig::max_frame_len (and the client's) to allow it");
                    return Some(Status::new(Code::ResourceExhausted, message));
                }
            }
        }
        if goaway_sent && conn.in_flight().is_empty() {
            // Draining and nothing left to answer: close now rather than wait for the client.
            return None;
        }
        // A client that does not read what it is sent is not read from either, so answers to
        // its pings and bad requests cannot pile up without bound.
        tokio::select! {
            biased;
            () = conn.token.cancelled() => return None,
            () = conn.outbox.wait_for_space() => {}
        }
        // Frames split off earlier may still hold the buffer; reading into its spare room
        // reuses it, and only a nearly full buffer is replaced.
        if buf.capacity() - buf.len() < READ_CHUNK / 16 {
            buf.reserve(READ_CHUNK);
        }
        let read_result = tokio::select! {
            biased;
            () = conn.token.cancelled() => return None,
            () = conn.server.draining.cancelled(), if !goaway_sent => {
                goaway_sent = true;
                let _ = conn.outbox.push_header(&Header::GoAway {
                    code: Code::Unavailable.as_u16(),
                    message: "the server is shutting down".into(),
                });
                continue;
            }
            () = conn.idle.notified(), if goaway_sent => continue,
            due = keepalive.due() => match due {
                Due::Ping(nonce) => {
                    let _ = conn.outbox.push_header(&Header::Ping { nonce });
                    continue;
                }
                Due::Dead(quiet) => {
                    return Some(Status::unavailable(format!(
                        "the client sent nothing for {quiet:?}, not even an answer to a keepalive \
                         ping (ServerConfig::keepalive_timeout)"
                    )));
                }
            },
            read_result = read.read_buf(&mut buf) => read_result,
        };
        match read_result {
            Ok(0) if buf.is_empty() => return None,
            Ok(0) => {
                tracing::info!(peer = %conn.peer, "a client closed its connection in the middle of a frame");
                return None;
            }
            Ok(_) => keepalive.heard(),
            Err(e) => {
                tracing::info!(peer = %conn.peer, "reading from a tidl client failed: {e}");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tuned_sockets_have_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(!stream.nodelay().unwrap() && !accepted.nodelay().unwrap(), "Nagle is on by default");
        tune(&stream).unwrap();
        tune(&accepted).unwrap();
        assert!(stream.nodelay().unwrap() && accepted.nodelay().unwrap());
    }

    #[test]
    fn resource_errors_are_retried_and_others_are_not() {
        assert!(is_resource_error(&io::Error::from_raw_os_error(24)));
        assert!(is_per_connection_error(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert!(!is_resource_error(&io::Error::from(io::ErrorKind::InvalidInput)));
    }
}
