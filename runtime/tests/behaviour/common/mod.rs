//! A hand-written service (what generated code does) whose handlers record how they ended, and
//! servers for it over every transport: the fixture of the runtime's behaviour tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidl_runtime::bytes::Bytes;
use tidl_runtime::transport::memory;
use tidl_runtime::{CallOptions, Client, ClientConfig, Context, Error, Incoming, Invoke, Method, Peer, Server};
use tidl_runtime::{ServerConfig, Service, Status};
use tokio::sync::watch;

/// Generous bound for events that take microseconds when things work.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the tracked handlers (`sleep`, `ticks`, `relay`) of one server have done.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub started: u64,
    /// Handlers whose future was dropped before they finished: stopped by a cancel, a
    /// deadline, a closed connection or a shutdown.
    pub dropped: u64,
    /// Of those, the handlers (of `sleep`) whose call's cancellation token had fired when their
    /// future was dropped.
    pub dropped_cancelled: u64,
    pub finished: u64,
    /// Iterations of `ticks` loops, across all calls.
    pub ticks: u64,
}

/// The `Probe` service:
///
/// - `echo(string) -> string`, `empty(())`;
/// - `large((u32, bytes)) -> bytes`: a reply of that many bytes, the payload ignored;
/// - `sleep(u64 ms)`, tracked;
/// - `ticks(u64 n) -> u64`: sleeps 1 ms, `n` times, counting each in [`Stats::ticks`]; tracked;
/// - `fail((kind, message))`: fails with the status `Status::<kind>(message)`;
/// - `explode(string)`: panics with that message;
/// - `relay(bool) -> list<option<u64>>`: calls `relay` on the next server with its context and
///   returns the microseconds each hop had left; the last one waits until it is cancelled if
///   the argument is true; tracked;
/// - `forward((kind, message))`: calls `fail` on the next server with its context and forwards
///   its error with `?`;
/// - `whoami(())`: records its context's peer in [`Probe::peers`];
/// - `meta(string) -> option<string>`: the call's metadata under that key, as the handler sees it.
#[derive(Clone, Default)]
pub struct Probe {
    /// The next server of a chain.
    pub next: Option<Client>,
    pub stats: Arc<watch::Sender<Stats>>,
    pub peers: Arc<Mutex<Vec<Peer>>>,
}

/// Counts a handler as dropped unless it finishes.
struct Running<'a> {
    stats: &'a watch::Sender<Stats>,
    finished: bool,
    /// Whether the call's cancellation token has fired, if the handler watches it.
    cancelled: Option<Box<dyn Fn() -> bool + Send + 'a>>,
}

impl<'a> Running<'a> {
    fn start(stats: &'a watch::Sender<Stats>) -> Running<'a> {
        stats.send_modify(|s| s.started += 1);
        Running { stats, finished: false, cancelled: None }
    }

    /// Also records whether `ctx`'s token had fired when the handler was dropped.
    fn watching(mut self, ctx: &Context) -> Running<'a> {
        let token = ctx.token().clone();
        self.cancelled = Some(Box::new(move || token.is_cancelled()));
        self
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let finished = self.finished;
        let cancelled = self.cancelled.as_ref().is_some_and(|cancelled| cancelled());
        self.stats.send_modify(|s| {
            if finished {
                s.finished += 1;
            } else {
                s.dropped += 1;
                s.dropped_cancelled += u64::from(cancelled);
            }
        });
    }
}

/// The status the `fail` handler answers for `kind`.
pub fn status_of_kind(kind: &str, message: String) -> Status {
    match kind {
        "cancelled" => Status::cancelled(message),
        "unknown" => Status::unknown(message),
        "invalid_argument" => Status::invalid_argument(message),
        "deadline_exceeded" => Status::deadline_exceeded(message),
        "not_found" => Status::not_found(message),
        "already_exists" => Status::already_exists(message),
        "permission_denied" => Status::permission_denied(message),
        "resource_exhausted" => Status::resource_exhausted(message),
        "failed_precondition" => Status::failed_precondition(message),
        "aborted" => Status::aborted(message),
        "out_of_range" => Status::out_of_range(message),
        "unimplemented" => Status::unimplemented(message),
        "internal" => Status::internal(message),
        "unavailable" => Status::unavailable(message),
        "data_loss" => Status::data_loss(message),
        "unauthenticated" => Status::unauthenticated(message),
        other => panic!("no status constructor `{other}`"),
    }
}

impl Service for Probe {
    fn name(&self) -> &'static str {
        "Probe"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        let this = self.clone();
        let m = |name| Method::new("Probe", name);
        match method {
            "echo" => request.spawn(m("echo"), |_ctx, s: String| async move { Ok::<_, Error>(s) }),
            "empty" => request.spawn(m("empty"), |_ctx, (): ()| async move { Ok::<_, Error>(()) }),
            "large" => request.spawn(m("large"), |_ctx, (size, _payload): (u32, Bytes)| async move {
                Ok::<_, Error>(Bytes::from(vec![0xab; size as usize]))
            }),
            "sleep" => request.spawn(m("sleep"), move |ctx, ms: u64| async move {
                let mut running = Running::start(&this.stats).watching(&ctx);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                running.finished = true;
                Ok::<_, Error>(())
            }),
            "ticks" => request.spawn(m("ticks"), move |_ctx, n: u64| async move {
                let mut running = Running::start(&this.stats);
                for _ in 0..n {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    this.stats.send_modify(|s| s.ticks += 1);
                }
                running.finished = true;
                Ok::<_, Error>(n)
            }),
            "fail" => request.spawn(m("fail"), |_ctx, (kind, message): (String, String)| async move {
                Err::<(), Error>(status_of_kind(&kind, message).into())
            }),
            "explode" => request.spawn(m("explode"), |_ctx, message: String| async move {
                if !message.is_empty() {
                    panic!("{message}");
                }
                Ok::<_, Error>(())
            }),
            "relay" => request.spawn(m("relay"), move |ctx: Context, wait: bool| async move {
                let mut running = Running::start(&this.stats);
                let hop = ctx.remaining().map(|d| d.as_micros() as u64);
                let hops = match &this.next {
                    Some(next) => {
                        let options = CallOptions::default().context(&ctx);
                        let mut hops = next.call::<_, Vec<Option<u64>>, String>(m("relay"), &wait, &options).await?;
                        hops.insert(0, hop);
                        hops
                    }
                    None if wait => std::future::pending().await,
                    None => vec![hop],
                };
                running.finished = true;
                Ok::<_, Error>(hops)
            }),
            "forward" => request.spawn(m("forward"), move |ctx: Context, failure: (String, String)| async move {
                let next = this.next.as_ref().expect("`forward` needs a next server");
                let options = CallOptions::default().context(&ctx);
                next.call::<_, (), String>(m("fail"), &failure, &options).await?;
                Ok::<_, Error>(())
            }),
            "whoami" => request.spawn(m("whoami"), move |ctx: Context, (): ()| async move {
                this.peers.lock().expect("peers lock").push(ctx.peer().clone());
                Ok::<_, Error>(())
            }),
            "meta" => request.spawn(m("meta"), |ctx: Context, key: String| async move {
                Ok::<_, Error>(ctx.metadata().get_str(&key).map(str::to_owned))
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

impl Probe {
    /// A probe whose `relay` and `forward` call `next`.
    pub fn with_next(next: Client) -> Probe {
        Probe { next: Some(next), ..Probe::default() }
    }

    /// Waits until the stats satisfy `condition`, and returns them.
    pub async fn wait(&self, what: &str, condition: impl FnMut(&Stats) -> bool) -> Stats {
        let mut stats = self.stats.subscribe();
        tokio::time::timeout(EVENT_TIMEOUT, stats.wait_for(condition))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}; stats: {:?}", self.stats()))
            .expect("stats sender alive")
            .clone()
    }

    /// The stats now.
    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }
}

/// Calls `Probe.<name>` with `arg`.
pub fn call<A, T>(client: &Client, name: &'static str, arg: &A) -> tidl_runtime::Call<T>
where
    A: tidl_runtime::serde::Serialize + ?Sized,
{
    client.call(Method::new("Probe", name), arg, &CallOptions::default())
}

/// Calls `Probe.<name>` with `arg` and options.
pub fn call_with<A, T>(client: &Client, name: &'static str, arg: &A, options: &CallOptions) -> tidl_runtime::Call<T>
where
    A: tidl_runtime::serde::Serialize + ?Sized,
{
    client.call(Method::new("Probe", name), arg, options)
}

/// The status a call failed with; panics if it succeeded or failed with an application error.
pub fn status<T: std::fmt::Debug, E: std::fmt::Debug>(result: Result<T, Error<E>>) -> Status {
    match result {
        Err(Error::Status(status)) => status,
        other => panic!("expected an RPC status, got {other:?}"),
    }
}

/// A server with `probe` on a loopback TCP port.
pub async fn serve(probe: Probe) -> (SocketAddr, Server) {
    serve_with(probe, ServerConfig::default()).await
}

/// [`serve`] with settings.
pub async fn serve_with(probe: Probe, config: ServerConfig) -> (SocketAddr, Server) {
    let server = Server::builder().register(probe).config(config).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    (addr, server)
}

/// A server with `probe` on loopback TCP, and a client connected to it.
pub async fn connected(probe: Probe) -> (Client, Server) {
    let (addr, server) = serve(probe).await;
    (Client::dial(addr).await.expect("dial"), server)
}

/// The transports tidl comes with.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Tcp,
    #[cfg(unix)]
    Unix,
    Memory,
}

/// A Unix socket path in the temporary directory, unique to this process and call, removed
/// when dropped.
#[derive(Debug)]
pub struct SocketPath(pub PathBuf);

impl SocketPath {
    pub fn new() -> SocketPath {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("tidl-test-{}-{}.sock", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        SocketPath(path)
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A server with `probe` and a client connected to it over one transport.
#[derive(Debug)]
pub struct Served {
    pub client: Client,
    pub server: Server,
    /// The Unix socket's path, removed when this is dropped.
    pub socket: Option<SocketPath>,
}

/// Serves `probe` over `transport` and connects a client to it.
pub async fn serve_over(transport: Transport, probe: Probe) -> Served {
    serve_over_with(transport, probe, ServerConfig::default(), ClientConfig::default()).await
}

/// [`serve_over`] with settings.
pub async fn serve_over_with(
    transport: Transport,
    probe: Probe,
    server_config: ServerConfig,
    client_config: ClientConfig,
) -> Served {
    let server = Server::builder().register(probe).config(server_config).build();
    match transport {
        Transport::Tcp => {
            let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
            let client = Client::dial_with(addr, client_config).await.expect("dial");
            Served { client, server, socket: None }
        }
        #[cfg(unix)]
        Transport::Unix => {
            let socket = SocketPath::new();
            let listener = tokio::net::UnixListener::bind(&socket.0).expect("bind a unix socket");
            tokio::spawn({
                let server = server.clone();
                async move { server.accept(listener).await }
            });
            let connector = tidl_runtime::transport::unix::UnixConnector::new(&socket.0);
            let client = Client::connect_with(connector, client_config).await.expect("connect");
            Served { client, server, socket: Some(socket) }
        }
        Transport::Memory => {
            let (listener, connector) = memory::channel();
            tokio::spawn({
                let server = server.clone();
                async move { server.accept(listener).await }
            });
            let client = Client::connect_with(connector, client_config).await.expect("connect");
            Served { client, server, socket: None }
        }
    }
}

/// Three servers, A -> B -> C, each relaying with its handler's context; a client of A, the
/// probes, and the servers (kept alive with the chain).
pub async fn chain() -> (Client, [Probe; 3], [Server; 3]) {
    let c = Probe::default();
    let (c_addr, c_server) = serve(c.clone()).await;
    let b = Probe::with_next(Client::dial(c_addr).await.expect("dial C"));
    let (b_addr, b_server) = serve(b.clone()).await;
    let a = Probe::with_next(Client::dial(b_addr).await.expect("dial B"));
    let (a_addr, a_server) = serve(a.clone()).await;
    (Client::dial(a_addr).await.expect("dial A"), [a, b, c], [a_server, b_server, c_server])
}

/// Serves the server `build` makes on a runtime of its own (two workers), on loopback TCP.
pub fn serve_alone(build: impl FnOnce() -> Server + Send + 'static) -> SocketAddr {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("server runtime");
        runtime.block_on(async move {
            let server = build();
            let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
            addr_tx.send(addr).expect("report the address");
            std::future::pending::<()>().await;
        });
    });
    addr_rx.recv().expect("server address")
}
