//! What the benchmark cases need from an implementation, and which implementations there are.

use crate::probe::Probe;
use crate::wire::WireCounter;
use bytes::Bytes;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The implementations compared, in the order they are run and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Impl {
    /// tokio-util length-delimited frames echoed back: no RPC at all, the floor.
    Raw,
    /// tarpc over its serde transport on TCP, with the bincode codec.
    Tarpc,
    /// tonic (gRPC over HTTP/2) with a server-streaming handler that returns a ready `Stream`
    /// (`futures::stream::repeat(..).take(n)`, or the request stream itself for bidi): its fastest
    /// producer. Streaming cases only.
    TonicReady,
    /// tonic with a handler that spawns a task feeding a `tokio::sync::mpsc` channel and returns
    /// it as a `ReceiverStream`, the pattern tonic's examples teach. Streaming cases only.
    TonicChan,
    /// tidl through code generated from `bench.tidl` (and, for streams, a hand-written
    /// `tidl_runtime::Service` registered beside it).
    Tidl,
}

impl Impl {
    /// The implementations of the unary tables, in run order (and column order).
    pub const ALL: [Impl; 3] = [Impl::Raw, Impl::Tarpc, Impl::Tidl];

    /// Every implementation, in run order.
    pub const EVERY: [Impl; 5] = [Impl::Raw, Impl::Tarpc, Impl::TonicReady, Impl::TonicChan, Impl::Tidl];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Raw => "raw",
            Impl::Tarpc => "tarpc",
            Impl::TonicReady => "tonic-ready",
            Impl::TonicChan => "tonic-chan",
            Impl::Tidl => "tidl",
        }
    }

    /// The implementation called `name`.
    pub fn parse(name: &str) -> Option<Impl> {
        Impl::EVERY.into_iter().find(|i| i.name() == name)
    }
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A connected client making echo calls. Clones share the connection.
pub trait EchoClient: Clone + Send + Sync + 'static {
    /// Echoes `text`; returns the length of the reply.
    fn echo(&self, text: String) -> impl Future<Output = usize> + Send;

    /// Echoes `body`; returns the length of the reply.
    fn echo_bytes(&self, body: Bytes) -> impl Future<Output = usize> + Send;
}

/// A client whose `spin` calls can be cancelled: the cancel-latency case.
pub trait CancelClient: EchoClient {
    /// Starts a `spin` call, waits until its handler runs, cancels it, and returns the time from
    /// just before the cancel to the handler's future being dropped on the server.
    fn cancel_trial(&self, probe: &Probe) -> impl Future<Output = Duration> + Send;
}

/// A client whose `compute` calls occupy a server worker: the busy-server case.
pub trait BusyClient: EchoClient {
    /// Calls `compute(ms)`: the handler computes for `ms` milliseconds without awaiting.
    fn compute(&self, ms: u64) -> impl Future<Output = u64> + Send;
}

/// How to serve and connect one implementation.
pub trait Rpc: Send + Sync + 'static {
    /// Its client.
    type Client: EchoClient;

    /// Serves connections accepted on `listener` in tasks of the current tokio runtime; the
    /// `spin` handlers report to `probe`.
    fn serve(listener: TcpListener, probe: Arc<Probe>);

    /// Connects to `addr` over TCP (with `TCP_NODELAY`), as a user of the implementation would.
    /// `pipelined` says whether several calls will be in flight at once (only the raw client
    /// cares).
    fn connect(addr: SocketAddr, pipelined: bool) -> impl Future<Output = Self::Client> + Send;

    /// Connects to `addr` over TCP, counting every byte the client sends and receives into
    /// `counter`. Used with one call in flight at a time.
    fn connect_counted(addr: SocketAddr, counter: Arc<WireCounter>) -> impl Future<Output = Self::Client> + Send;
}

/// A connected client of the streaming cases.
pub trait StreamClient: Send + Sync + 'static {
    /// Opens a server stream of `count` items of `size` bytes each and takes them all; returns
    /// the number of bytes taken.
    fn take_items(&self, count: u64, size: u32) -> impl Future<Output = u64> + Send;

    /// Opens a bidirectional stream whose handler echoes every item, then sends `item`
    /// `warmup + n` times, each time waiting for the echo; returns the last `n` round trips.
    fn ping_pong(&self, item: Bytes, warmup: usize, n: usize) -> impl Future<Output = Vec<Duration>> + Send;

    /// Opens an endless server stream of `size`-byte items whose handler holds a guard of
    /// `probe` (and counts its items there). The stream is cancelled when the returned value is
    /// dropped; nothing is read from it meanwhile.
    fn open_endless(&self, size: u32) -> impl Future<Output = Box<dyn std::any::Any + Send>> + Send;

    /// Opens an endless stream of 16-byte items, takes the first, waits until the handler has
    /// started, cancels (`cancel()`, or dropping the stream) and returns the time from just
    /// before the cancel to the handler's guard being dropped on the server.
    fn cancel_trial(&self, probe: &Probe) -> impl Future<Output = Duration> + Send;
}

/// How to serve and connect one implementation in the streaming cases.
pub trait StreamRpc: Send + Sync + 'static {
    /// Its client.
    type Client: StreamClient;

    /// Serves connections accepted on `listener` in tasks of the current tokio runtime; the
    /// endless handlers report to `probe`.
    fn serve(listener: TcpListener, probe: Arc<Probe>);

    /// Connects to `addr` over TCP with `TCP_NODELAY`, as a user of the implementation would.
    fn connect(addr: SocketAddr) -> impl Future<Output = Self::Client> + Send;
}

/// Connects a TCP stream to `addr` with `TCP_NODELAY` set.
pub async fn tcp_connect(addr: SocketAddr) -> tokio::net::TcpStream {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream.set_nodelay(true).expect("setting TCP_NODELAY on a client socket");
    stream
}
