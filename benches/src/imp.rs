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
    /// tidl through code generated from `bench.tidl`.
    Tidl,
}

impl Impl {
    /// Every implementation, in run order.
    pub const ALL: [Impl; 3] = [Impl::Raw, Impl::Tarpc, Impl::Tidl];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Raw => "raw",
            Impl::Tarpc => "tarpc",
            Impl::Tidl => "tidl",
        }
    }

    /// The implementation called `name`.
    pub fn parse(name: &str) -> Option<Impl> {
        Impl::ALL.into_iter().find(|i| i.name() == name)
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

/// Connects a TCP stream to `addr` with `TCP_NODELAY` set.
pub async fn tcp_connect(addr: SocketAddr) -> tokio::net::TcpStream {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream.set_nodelay(true).expect("setting TCP_NODELAY on a client socket");
    stream
}
