//! [`Endpoint`]: one server, connected lazily and reconnected for as long as the endpoint lives.
//!
//! A task of its own keeps the connection: it connects on first use, and when the connection
//! ends (the server crashed or restarted, the network failed, keepalive gave up) or the server
//! says it is shutting down, it connects again at once, then with jittered exponential backoff
//! while attempts fail (gRPC's defaults: 1 s, x1.6, ±20 %, at most 120 s). While it has no
//! connection, calls wait for one within their deadline, or fail at once with `Unavailable` if
//! they asked not to wait ([`CallOptions::wait_for_ready`]). A call the server refused unstarted
//! (it was shutting down), or an idempotent call whose connection was lost under it, is sent
//! again on the next connection (see `retry.rs`).

use super::call::Call;
use super::in_flight::Reply;
use super::invoke::{Invoke, ReplyFuture, Request, streams_through_picked_client};
use super::options::CallOptions;
use super::retry::{self, RetryBudget};
use super::streaming::{RequestSink, Streaming};
use super::{Client, ClientConfig};
use crate::error::{Code, Status};
use crate::method::Method;
use crate::transport::Connector;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How an [`Endpoint`] reconnects, and whether its calls wait for a connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// The settings of each connection.
    pub client: ClientConfig,
    /// The wait after the first failed attempt (default 1 s).
    pub initial_backoff: Duration,
    /// Each further failed attempt waits this many times longer (default 1.6).
    pub backoff_multiplier: f64,
    /// Each wait is moved at random by up to this fraction of itself, so that a fleet of clients
    /// does not reconnect in step (default 0.2).
    pub backoff_jitter: f64,
    /// The longest wait between attempts (default 120 s).
    pub max_backoff: Duration,
    /// Whether calls wait for a connection while the endpoint has none (default `true`);
    /// [`CallOptions::wait_for_ready`] overrides it per call.
    pub wait_for_ready: bool,
}

impl Default for EndpointConfig {
    fn default() -> EndpointConfig {
        EndpointConfig {
            client: ClientConfig::default(),
            initial_backoff: Duration::from_secs(1),
            backoff_multiplier: 1.6,
            backoff_jitter: 0.2,
            max_backoff: Duration::from_secs(120),
            wait_for_ready: true,
        }
    }
}

impl EndpointConfig {
    /// The wait before attempt `failures + 1`, after `failures` failed attempts in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial_backoff.as_secs_f64() * self.backoff_multiplier.powi(exponent);
        let base = Duration::try_from_secs_f64(base.min(self.max_backoff.as_secs_f64())).unwrap_or(self.max_backoff);
        crate::jitter::jittered(base, self.backoff_jitter)
    }
}

/// What an [`Endpoint`] is doing.
#[derive(Clone, Debug)]
pub enum EndpointState {
    /// Not used yet: it connects on its first call.
    Idle,
    /// Connecting; `attempt` counts from 1 since the last connection.
    Connecting {
        /// The attempt under way.
        attempt: u32,
    },
    /// Connected: calls go out at once.
    Ready,
    /// The last attempt failed; the next one starts after a backoff.
    Waiting {
        /// Failed attempts in a row.
        failures: u32,
        /// When the next attempt starts.
        next_attempt: Instant,
        /// Why the last attempt failed.
        error: Status,
    },
}

/// The state, with the connection when there is one.
#[derive(Clone)]
enum State {
    Idle,
    Connecting(u32),
    Ready(Client),
    Waiting(u32, Instant, Status),
}

type Connect = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Client, Status>> + Send>> + Send + Sync>;

/// What the endpoint's handles and its task share.
struct Shared {
    /// The server, in messages.
    target: String,
    connect: Connect,
    config: EndpointConfig,
    state: watch::Sender<State>,
    started: AtomicBool,
    /// Fires when the last handle is dropped: the task stops.
    closed: CancellationToken,
    /// Bounds the calls sent again.
    budget: RetryBudget,
}

/// Cancels the endpoint's task when the last handle goes.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.closed.cancel();
    }
}

/// One server, reconnected for as long as the endpoint lives: an [`Invoke`], so generated
/// clients use it as they use a [`Client`] (`endpoint.example().echo(..)`). Cheap to clone;
/// clones share the connection.
///
/// ```no_run
/// # async fn run() -> Result<(), tidl_runtime::Status> {
/// use tidl_runtime::{Endpoint, EndpointConfig};
/// let endpoint = Endpoint::new("127.0.0.1:23333", EndpointConfig::default());
/// endpoint.ready().await?; // optional: calls wait for the connection anyway
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    handle: Arc<Handle>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint").field("target", &self.shared().target).field("state", &self.state()).finish()
    }
}

impl Endpoint {
    /// An endpoint for the TCP server at `addr` (`"host:port"`, resolved at each connect).
    pub fn new(addr: impl Into<String>, config: EndpointConfig) -> Endpoint {
        let addr = addr.into();
        Endpoint::with_connector(crate::transport::tcp::TcpConnector::new(addr.clone()), addr, config)
    }

    /// An endpoint whose connections `connector` makes (a Unix socket, the in-memory transport,
    /// TLS); `target` names it in messages.
    pub fn with_connector<C>(connector: C, target: impl Into<String>, config: EndpointConfig) -> Endpoint
    where
        C: Connector + Clone + Sync,
    {
        let client_config = config.client.clone();
        let connect: Connect = Box::new(move || {
            let (connector, config) = (connector.clone(), client_config.clone());
            Box::pin(async move { Client::connect_with(connector, config).await })
        });
        let shared = Arc::new(Shared {
            target: target.into(),
            connect,
            config,
            state: watch::Sender::new(State::Idle),
            started: AtomicBool::new(false),
            closed: CancellationToken::new(),
            budget: RetryBudget::default(),
        });
        Endpoint { handle: Arc::new(Handle(shared)) }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.0
    }

    /// What the endpoint is doing now.
    pub fn state(&self) -> EndpointState {
        match &*self.shared().state.borrow() {
            State::Idle => EndpointState::Idle,
            State::Connecting(attempt) => EndpointState::Connecting { attempt: *attempt },
            State::Ready(_) => EndpointState::Ready,
            State::Waiting(failures, next, error) => {
                EndpointState::Waiting { failures: *failures, next_attempt: *next, error: error.clone() }
            }
        }
    }

    /// The connection, if the endpoint has one now (without waiting).
    pub fn client(&self) -> Option<Client> {
        match &*self.shared().state.borrow() {
            State::Ready(client) => Some(client.clone()),
            _ => None,
        }
    }

    /// Connects if the endpoint is idle, and waits until it has a connection. Never fails
    /// while the endpoint keeps trying: bound it with a timeout if needed.
    pub async fn ready(&self) -> Result<Client, Status> {
        self.start();
        wait_ready(self.shared(), None, true).await
    }

    /// Calls in flight on the current connection (0 without one).
    pub fn calls_in_flight(&self) -> usize {
        self.client().map_or(0, |c| c.calls_in_flight())
    }

    /// Completes when the endpoint's state next changes.
    #[cfg_attr(not(feature = "balance"), allow(dead_code))]
    pub(crate) fn state_changed(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut states = self.shared().state.subscribe();
        states.mark_unchanged();
        Box::pin(async move {
            let _ = states.changed().await;
        })
    }

    /// Starts the connection's task, once (inside a tokio runtime).
    pub(crate) fn start(&self) {
        let shared = self.shared();
        if !shared.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(keep_connected(shared.clone()));
        }
    }
}

/// The endpoint's task: connect, serve until the connection retires, and again, until closed.
async fn keep_connected(shared: Arc<Shared>) {
    let mut failures = 0u32;
    loop {
        shared.state.send_replace(State::Connecting(failures + 1));
        let attempt = tokio::select! {
            () = shared.closed.cancelled() => return,
            attempt = (shared.connect)() => attempt,
        };
        match attempt {
            Ok(client) => {
                let connected = Instant::now();
                shared.state.send_replace(State::Ready(client.clone()));
                tokio::select! {
                    () = shared.closed.cancelled() => return,
                    () = client.retired() => {}
                }
                tracing::debug!(target = %shared.target, "tidl endpoint lost its connection; reconnecting");
                // A connection that ended at once counts as a failure, so that a server that
                // accepts and closes is not reconnected to in a tight loop.
                failures = if connected.elapsed() < shared.config.initial_backoff { failures + 1 } else { 0 };
                if failures == 0 {
                    continue;
                }
                let error = Status::unavailable(format!("the connection to {} ended at once", shared.target));
                if !wait_backoff(&shared, failures, error).await {
                    return;
                }
            }
            Err(error) => {
                failures += 1;
                tracing::debug!(target = %shared.target, %error, failures, "tidl endpoint could not connect");
                if !wait_backoff(&shared, failures, error).await {
                    return;
                }
            }
        }
    }
}

/// Waits out the backoff after `failures` failed attempts; `false` if the endpoint closed.
async fn wait_backoff(shared: &Shared, failures: u32, error: Status) -> bool {
    let next = Instant::now() + shared.config.backoff(failures);
    shared.state.send_replace(State::Waiting(failures, next, error));
    tokio::select! {
        () = shared.closed.cancelled() => false,
        () = tokio::time::sleep_until(next) => true,
    }
}

/// The endpoint's connection: now, or once it has one (before `deadline`), or an `Unavailable`
/// saying why not if `wait` is false.
async fn wait_ready(shared: &Shared, deadline: Option<Instant>, wait: bool) -> Result<Client, Status> {
    let mut states = shared.state.subscribe();
    let not_ready = |state: &State| match state {
        State::Waiting(failures, next, error) => Status::unavailable(format!(
            "{} is unreachable ({failures} attempts failed, the next in {:?}): {}",
            shared.target,
            next.saturating_duration_since(Instant::now()),
            error.message()
        ))
        .unstarted(),
        _ => Status::unavailable(format!("{} is still connecting", shared.target)).unstarted(),
    };
    loop {
        let state = states.borrow_and_update().clone();
        if let State::Ready(client) = &state
            && client.is_open()
        {
            return Ok(client.clone());
        }
        if !wait {
            return Err(not_ready(&state));
        }
        let changed = states.changed();
        let changed = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, changed).await {
                Ok(changed) => changed,
                Err(_) => {
                    return Err(Status::new(
                        Code::DeadlineExceeded,
                        format!("the deadline passed while waiting for a connection; {}", not_ready(&state).message()),
                    ));
                }
            },
            None => changed.await,
        };
        if changed.is_err() {
            return Err(Status::unavailable("the endpoint was closed").unstarted());
        }
    }
}

impl Invoke for Endpoint {
    /// Sends the request on the endpoint's connection, waiting for one if needed, and again on
    /// the next connection if the server refused it unstarted.
    fn invoke(&self, request: Request) -> ReplyFuture {
        self.start();
        let shared = self.shared().clone();
        Box::pin(async move {
            let options = request.options().clone();
            retry::unless_parent_cancelled(&options.clone(), send(shared, request, options)).await
        })
    }

    streams_through_picked_client!(ready_now);
}

impl Endpoint {
    /// The connection for a stream, which starts at once: streams do not wait for one.
    fn ready_now(&self, method: Method) -> Result<Client, Status> {
        self.start();
        match self.client() {
            Some(client) if client.is_open() => Ok(client),
            _ => Err(Status::unavailable(format!(
                "`{method}` is a stream, and {} has no connection now (streams do not wait for one: \
                 await Endpoint::ready() first)",
                self.shared().target
            ))
            .unstarted()),
        }
    }
}

/// Sends `request` through the endpoint, waiting for a connection and sending again what may be
/// sent again, within the call's deadline.
async fn send(shared: Arc<Shared>, request: Request, options: CallOptions) -> Reply {
    let deadline = retry::deadline(&options, shared.config.client.default_timeout);
    let wait = options.get_wait_for_ready().unwrap_or(shared.config.wait_for_ready);
    shared.budget.deposit();
    let mut sends = 0;
    loop {
        let client = match wait_ready(&shared, deadline, wait).await {
            Ok(client) => client,
            Err(status) => return Reply::Status(status),
        };
        let attempt = retry::attempt(&request, &options, deadline);
        let reply = client.invoke(attempt).await;
        sends += 1;
        if !retry::should_retry(&reply, &request, sends, &shared.budget) {
            return reply;
        }
        // The connection failed or takes no more calls; the task is making the next.
        client.retired().await;
    }
}
