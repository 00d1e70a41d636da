//! The server: a set of services, the connections it serves, and its graceful shutdown.
//!
//! [`Server::accept`] takes connections from any [`Listener`] ([`accept`]); each is served by
//! its own tasks ([`connection`]), which run every call in a task of its own ([`dispatch`])
//! and keep the connection's table of calls in flight ([`in_flight`]).

mod accept;
pub(crate) mod connection;
pub(crate) mod dispatch;
mod in_flight;
pub(crate) mod intercept;
mod observed;
pub(crate) mod streaming;

use crate::transport::{Io, Listener, Peer, tcp};
use crate::wire::DEFAULT_MAX_FRAME_LEN;
use dispatch::Service;
use intercept::Interceptor;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::ToSocketAddrs;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// sees `ResourceExhausted` (while 256 are being refused, any more are closed unanswered,
    /// and their clients see `Unavailable`). Default: 10,000.
    pub max_connections: usize,
    /// After this long without hearing from a client, send it a ping; `None` turns keepalive
    /// off. Default: 30 s. With keepalive on, a client whose socket takes no bytes at all for
    /// this plus `keepalive_timeout` while frames wait for it (it reads nothing) is given up on
    /// too, as a dead one is.
    pub keepalive_interval: Option<Duration>,
    /// If nothing arrives within this long of a ping, the client is considered gone: the
    /// connection closes and its calls are cancelled. Default: 20 s.
    pub keepalive_timeout: Duration,
    /// Streaming calls one connection may have open at once; further ones fail at once with
    /// `ResourceExhausted`. Each holds at most `stream_window` bytes of items the handler has not
    /// taken, plus one frame. Default: 100.
    pub max_concurrent_streams: usize,
    /// Bytes of items a client's stream may have in flight beyond what the handler has taken:
    /// the client waits when the handler falls this far behind. Default: 1 MiB.
    pub stream_window: usize,
    /// Connections older than this (moved at random by up to 10 %, so that a fleet's
    /// connections do not all age at once) are told to go away, gracefully: the client finishes
    /// its calls and connects again, which spreads traffic anew behind an L4 load balancer and
    /// onto servers added since. `None` keeps connections for as long as they live. Default:
    /// `None`.
    pub max_connection_age: Option<Duration>,
    /// How long the calls of a connection told to go away for its age may still run; then they
    /// are cancelled and the connection closes. Default: 30 s.
    pub max_connection_age_grace: Duration,
    /// How many connections the kernel may hold, handshaken but not yet accepted, on a socket
    /// bound by [`Server::listen`]: the `backlog` of `listen(2)`. When every client reconnects
    /// at once (the server restarted), connections beyond it are dropped, and each costs its
    /// client a SYN retransmit: a second or more. The kernel caps it at `net.core.somaxconn`
    /// (4096 by default since Linux 5.4, 128 before) without saying so; raise that sysctl to
    /// allow more. A listener given to [`Server::accept`] keeps the backlog it was made with
    /// (tokio's `TcpListener::bind` uses 1024). Default: 4096.
    pub listen_backlog: u32,
    /// The most bytes of metadata (keys and values) a call may carry; a call with more is
    /// refused with `ResourceExhausted`, unstarted. Default: 8 KiB.
    pub max_metadata_bytes: usize,
    /// Polls each handler once on its connection's reader, as the request is read, and makes a
    /// task of it only if it then waits (gRPC-Java's `directExecutor`). By default the reader
    /// first polls the handlers of one read together, after it has handled the read, under the
    /// watchdog, which hands the rest of them, and the reading of the connection, to new tasks
    /// when one computes for long; polling each as it is read costs a little less still:
    /// an echo costs about 4-6 % less CPU, with 1-4 % more throughput at 256 in flight (case
    /// 17 of BENCHMARKS.md). Cancellation is unchanged once a handler waits. Only for servers
    /// whose handlers never compute for long before their first `.await`: while one does, its
    /// connection reads nothing, neither other calls nor cancels, and the worker it runs on
    /// accepts nothing. Default: `false`.
    pub inline_handlers: bool,
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
            max_concurrent_streams: 100,
            stream_window: 1024 * 1024,
            max_metadata_bytes: 8 * 1024,
            max_connection_age: None,
            max_connection_age_grace: Duration::from_secs(30),
            listen_backlog: 4096,
            inline_handlers: false,
        }
    }
}

/// Builds a [`Server`]: register services, optionally set a config, then build.
pub struct ServerBuilder {
    services: HashMap<&'static str, Arc<dyn Service>>,
    config: ServerConfig,
    interceptors: Vec<Arc<dyn Interceptor>>,
    #[cfg(feature = "tower")]
    stack: Option<crate::tower::Stack>,
    /// What the built-in services asked for do as the server is built (see `builtin`).
    hooks: Vec<BuildHook>,
}

/// What a built-in service (`builtin`) does as the server is built: `install` registers it,
/// seeing the services registered so far and the token that fires when shutdown starts. Hooks
/// run in `order`; a hook replaces one of the same `name` added before.
pub(crate) struct BuildHook {
    pub(crate) name: &'static str,
    pub(crate) order: u8,
    #[allow(clippy::type_complexity)]
    pub(crate) install: Box<dyn FnOnce(&mut HashMap<&'static str, Arc<dyn Service>>, &CancellationToken) + Send>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .field("built_in", &self.hooks.iter().map(|h| h.name).collect::<Vec<_>>())
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

    /// Runs `interceptor` before every handler of the server (after those added before it); it
    /// may refuse a call with a [`Status`](crate::Status), and then the handler does not run.
    pub fn intercept(mut self, interceptor: impl Interceptor) -> ServerBuilder {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Runs every call through `layer` (a tower `Layer`, or a `ServiceBuilder` of several) on its
    /// way to the handler: timeouts, concurrency limits, load shedding, metrics, your own. Layers
    /// added later wrap those added before; interceptors run inside all layers, just before the
    /// handler. A cancel, the deadline or the shutdown still drops the call's future, layers and
    /// handler together (see [`tower`](crate::tower) for the one kind of layer that breaks that).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidl_runtime::Server;
    /// use tower::ServiceBuilder;
    ///
    /// let stack = ServiceBuilder::new()
    ///     .load_shed()
    ///     .concurrency_limit(256)
    ///     .timeout(Duration::from_secs(30));
    /// let server = Server::builder().layer(stack).build();
    /// # drop(server);
    /// ```
    #[cfg(feature = "tower")]
    pub fn layer<L>(mut self, layer: L) -> ServerBuilder
    where
        L: ::tower::Layer<crate::tower::Stack>,
        L::Service:
            ::tower::Service<crate::tower::Handling, Response = crate::tower::Handled> + Clone + Send + Sync + 'static,
        <L::Service as ::tower::Service<crate::tower::Handling>>::Error: Into<crate::tower::BoxError>,
        <L::Service as ::tower::Service<crate::tower::Handling>>::Future: Send + 'static,
    {
        let stack = self.stack.take().unwrap_or_else(crate::tower::Stack::handler);
        self.stack = Some(stack.wrap(&layer));
        self
    }

    /// Adds what a built-in service does as the server is built.
    pub(crate) fn on_build(mut self, hook: BuildHook) -> ServerBuilder {
        self.hooks.retain(|h| h.name != hook.name);
        self.hooks.push(hook);
        self
    }

    /// Replaces the default settings.
    pub fn config(mut self, config: ServerConfig) -> ServerBuilder {
        self.config = config;
        self
    }

    /// Builds the server.
    ///
    /// # Panics
    /// If a registered service has the name of a built-in service turned on (`tidl.Health`,
    /// `tidl.Reflection`).
    pub fn build(mut self) -> Server {
        let draining = CancellationToken::new();
        self.hooks.sort_by_key(|h| h.order);
        for hook in self.hooks.drain(..) {
            (hook.install)(&mut self.services, &draining);
        }
        let mut names: Vec<_> = self.services.keys().copied().collect();
        names.sort_unstable();
        Server {
            inner: Arc::new(Inner {
                connections: Arc::new(Semaphore::new(self.config.max_connections.min(Semaphore::MAX_PERMITS))),
                refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
                services: self.services.into_iter().collect(),
                service_names: names.join(", "),
                config: self.config,
                tracker: TaskTracker::new(),
                draining,
                drained: AtomicBool::new(false),
                stopping: CancellationToken::new(),
                interceptors: self.interceptors.into(),
                #[cfg(feature = "tower")]
                stack: self.stack,
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
    /// One permit per connection being refused for `max_connections` ([`MAX_REFUSING`]).
    refusing: Arc<Semaphore>,
    /// Found by comparing names: a server has a handful, and that beats hashing the name.
    services: Vec<(&'static str, Arc<dyn Service>)>,
    /// For error messages: the registered services, sorted.
    service_names: String,
    config: ServerConfig,
    /// Every connection, writer and handler task.
    tracker: TaskTracker,
    /// Fires when shutdown starts: stop accepting, tell clients, start no new calls.
    draining: CancellationToken,
    /// Set just before `draining` fires: what every request checks, without the token's lock.
    drained: AtomicBool,
    /// Fires when the grace period ends: cancel every call still running.
    stopping: CancellationToken,
    /// Run before every handler, in order.
    interceptors: Arc<[Arc<dyn Interceptor>]>,
    /// The layers every call goes through, if any were added.
    #[cfg(feature = "tower")]
    pub(crate) stack: Option<crate::tower::Stack>,
}

/// Connections refused for `max_connections` at once: each is told so in a "busy" hello, which
/// waits up to a second for the client's. Beyond these, a connection over the limit is closed
/// at once, unanswered, so that a storm of them holds no more than this many tasks and sockets.
const MAX_REFUSING: usize = 256;

/// Serves a connection, or refuses it if the server already has `max_connections`.
async fn run_connection<R, W>(inner: Arc<Inner>, read: R, write: W, peer: Peer)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    match inner.connections.clone().try_acquire_owned() {
        Ok(permit) => connection::serve(inner, read, write, peer, permit).await,
        Err(_) => match inner.refusing.clone().try_acquire_owned() {
            Ok(_refusing) => connection::refuse_busy(read, write, peer, inner.config.max_connections).await,
            Err(_) => tracing::debug!(
                %peer,
                "closed a connection unanswered: the server has max_connections and is refusing {MAX_REFUSING} more already"
            ),
        },
    }
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
        ServerBuilder {
            services: HashMap::new(),
            config: ServerConfig::default(),
            interceptors: Vec::new(),
            #[cfg(feature = "tower")]
            stack: None,
            hooks: Vec::new(),
        }
    }

    /// Accepts connections on `listener` (a `TcpListener`, a `UnixListener`, the in-memory
    /// transport's, or any [`Listener`]) and serves each in tasks of its own, until
    /// [`shutdown`](Server::shutdown) is called.
    ///
    /// Transient accept errors (a connection reset before it was accepted, running out of file
    /// descriptors) are logged and retried. Returns `Ok(())` once shutdown has begun, or the
    /// error if the listener itself fails.
    pub async fn accept<L: Listener>(&self, listener: L) -> io::Result<()> {
        accept::run(self, listener).await
    }

    /// Binds `addr` and accepts connections on it in a background task, as
    /// [`accept`](Server::accept) does, until shutdown. Returns the address bound, so
    /// `"127.0.0.1:0"` serves on a free port. The socket's listen queue holds
    /// [`ServerConfig::listen_backlog`] connections. A failure of the listener itself is logged.
    pub async fn listen(&self, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        let listener = tcp::bind(addr, self.inner.config.listen_backlog).await?;
        let bound = listener.local_addr()?;
        let server = self.clone();
        tokio::spawn(async move {
            if let Err(e) = server.accept(listener).await {
                tracing::error!(addr = %bound, error = %e, "tidl server stopped accepting connections");
            }
        });
        Ok(bound)
    }

    /// Serves an accepted connection in a task of its own, or refuses it if the server is full.
    /// Only the spawn happens here, in the accept loop: socket options, the connection limit and
    /// everything else are the new task's work, so that a storm of connections is taken off the
    /// listen queue as fast as it fills.
    fn spawn_connection<S: Io>(&self, io: S, peer: Peer) {
        let inner = self.inner.clone();
        self.inner.tracker.spawn(async move {
            tcp::prepare_accepted(&io);
            let (read, write) = crate::transport::halves::split(io);
            run_connection(inner, read, write, peer).await;
        });
    }

    /// Serves one connection over any byte stream, until it closes (or, if a handler is then
    /// computing in its first poll without awaiting, until that poll returns).
    pub async fn serve_connection<IO>(&self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = crate::transport::halves::split(io);
        let task = self.inner.tracker.spawn(run_connection(self.inner.clone(), read, write, Peer::Unknown));
        // The connection task logs its own failures; a panic in it is a bug in tidl.
        let _ = task.await;
    }

    /// Shuts down gracefully: stops accepting connections and tells every client to start no
    /// new calls (they fail at once with `Unavailable`), lets calls in flight finish for up to
    /// `grace`, then cancels the rest. Returns when every connection and handler task has ended.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.drained.store(true, Ordering::Release);
        self.inner.draining.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait()).await.is_err() {
            self.inner.stopping.cancel();
            self.inner.tracker.wait().await;
        }
    }
}
