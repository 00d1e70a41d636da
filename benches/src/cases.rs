//! The benchmark cases, as run inside one child process.
//!
//! Every case but `cost` runs on a tokio multi-thread runtime with exactly 2 worker threads,
//! with the client and (unless the server is in another process) the server on it, and the
//! measuring task itself spawned onto it so that everything runs on those two workers. Each case
//! returns named numbers, which the driver prints as one `RESULT` line.

use crate::alloc::{self, Side, Snapshot};
use crate::imp::{BusyClient, CancelClient, EchoClient, Impl, Rpc};
use crate::probe::Probe;
use crate::raw::Raw;
use crate::stats::{cpu_ns, micros, peak_rss_mib, percentile};
use crate::streams;
use crate::tarpc_bench::Tarpc;
use crate::tidl_bench::Tidl;
use crate::tonic_bench::{TonicChan, TonicReady};
use crate::wire::WireCounter;
use bytes::Bytes;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The argument of every `echo` call.
pub const HELLO: &str = "hello world";

/// Calls in flight on each connection when sweeping payload sizes.
pub const PAYLOAD_IN_FLIGHT: usize = 16;

/// Connections and calls in flight on each in the multi-connection case.
pub const CONNS: (usize, usize) = (16, 16);

/// One benchmark case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// Echo calls one after another: latency percentiles.
    Seq,
    /// Echo calls on one connection with this many in flight: throughput.
    Tput(usize),
    /// Echo calls over [`CONNS`] connections: throughput.
    Conns,
    /// `echo_bytes` calls with a body of this many bytes, [`PAYLOAD_IN_FLIGHT`] in flight.
    Payload(usize),
    /// Cancel a running `spin` handler: time from `cancel()` to the handler's future dropped.
    Cancel,
    /// Heap allocations and bytes on the wire per echo call.
    Cost,
    /// While a handler computes without awaiting, a new connection's first echo: how long the
    /// busy handler delays it.
    Busy,
    /// One server stream of items of this many bytes: items/s and MB/s.
    StreamItems(usize),
    /// 16-byte items back and forth on one bidirectional stream, one at a time: latency.
    StreamPingPong,
    /// Cancel a server stream: time from `cancel()` (or drop) to the handler's future dropped.
    StreamCancel,
    /// A server stream of 64 KiB items that the client never reads: how far the producer gets.
    StreamStall,
    /// A four-field record echoed as a `@frozen` and as an evolvable struct (tidl only).
    Structs,
    /// `echo` over plain TCP and over TLS (tidl only).
    Tls,
    /// `echo` without tower layers, through a server stack and through a client stack (tidl
    /// only).
    Layers,
    /// `echo` from a server whose handlers are spawned and from one that polls them inline
    /// first (tidl only).
    Inline,
    /// 10,000 connections opened at once, each handshaken (tidl, and a plain accept loop as
    /// raw; the server in a child process of its own).
    Storm,
}

impl Case {
    /// The cases of the one-process table, in run order.
    pub const ALL: [Case; 23] = [
        Case::Seq,
        Case::Tput(1),
        Case::Tput(64),
        Case::Tput(256),
        Case::Tput(1024),
        Case::Conns,
        Case::Payload(16),
        Case::Payload(1024),
        Case::Payload(64 * 1024),
        Case::Payload(1024 * 1024),
        Case::Cancel,
        Case::Cost,
        Case::Busy,
        Case::StreamItems(crate::streams::SMALL_ITEM as usize),
        Case::StreamItems(crate::streams::LARGE_ITEM as usize),
        Case::StreamPingPong,
        Case::StreamCancel,
        Case::StreamStall,
        Case::Structs,
        Case::Tls,
        Case::Layers,
        Case::Inline,
        Case::Storm,
    ];

    /// The cases also run with client and server in separate processes.
    pub const TWO_PROCESS: [Case; 4] = [Case::Seq, Case::Tput(64), Case::Tput(256), Case::Tput(1024)];

    /// The case called `name` (as printed by `Display`).
    pub fn parse(name: &str) -> Option<Case> {
        // Throughput with any number of calls in flight, not only the suite's.
        if let Some(in_flight) = name.strip_prefix("tput-").and_then(|n| n.parse().ok())
            && in_flight > 0
        {
            return Some(Case::Tput(in_flight));
        }
        Case::ALL.into_iter().find(|c| c.to_string() == name)
    }

    /// Whether this is one of the streaming cases (tidl and tonic; tarpc has no streams).
    pub fn is_streaming(self) -> bool {
        matches!(self, Case::StreamItems(_) | Case::StreamPingPong | Case::StreamCancel | Case::StreamStall)
    }

    /// Whether `imp` takes part in this case (cancellation and handlers do not apply to raw
    /// frames; tonic runs only the streaming cases, which raw and tarpc do not).
    pub fn applies_to(self, imp: Impl) -> bool {
        match imp {
            Impl::Tidl => true,
            _ if matches!(self, Case::Structs | Case::Tls | Case::Layers | Case::Inline) => false,
            Impl::Raw if self == Case::Storm => true,
            _ if self == Case::Storm => false,
            Impl::TonicReady | Impl::TonicChan => self.is_streaming(),
            Impl::Tarpc => !self.is_streaming(),
            Impl::Raw => !self.is_streaming() && !matches!(self, Case::Cancel | Case::Busy),
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Case::Seq => f.write_str("seq"),
            Case::Tput(n) => write!(f, "tput-{n}"),
            Case::Conns => f.write_str("conns-16"),
            Case::Payload(n) => write!(f, "payload-{n}"),
            Case::Cancel => f.write_str("cancel"),
            Case::Cost => f.write_str("cost"),
            Case::Busy => f.write_str("busy"),
            Case::StreamItems(n) => write!(f, "stream-{n}"),
            Case::StreamPingPong => f.write_str("stream-pingpong"),
            Case::StreamCancel => f.write_str("stream-cancel"),
            Case::StreamStall => f.write_str("stream-stall"),
            Case::Structs => f.write_str("structs"),
            Case::Tls => f.write_str("tls"),
            Case::Layers => f.write_str("layers"),
            Case::Inline => f.write_str("inline"),
            Case::Storm => f.write_str("storm"),
        }
    }
}

/// How many calls each case makes.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// Sequential calls timed.
    pub seq: usize,
    /// Calls per throughput run (one connection or many).
    pub tput: u64,
    /// Calls per payload size, for 16 B, 1 KiB, 64 KiB and 1 MiB.
    pub payload: [u64; 4],
    /// Cancel trials timed.
    pub cancel: usize,
    /// Sequential calls counted in the cost case.
    pub cost: usize,
    /// Trials of the busy-server case.
    pub busy: usize,
    /// Items in one server stream, for 16-byte and 64 KiB items.
    pub stream_items: [u64; 2],
    /// Round trips timed on one bidirectional stream.
    pub ping_pong: usize,
    /// Stream cancel trials timed.
    pub stream_cancel: usize,
    /// How long the never-reading consumer does not read, in milliseconds.
    pub stall_ms: u64,
}

impl Counts {
    /// The counts named in the issue.
    pub const FULL: Counts = Counts {
        seq: 20_000,
        tput: 200_000,
        payload: [100_000, 100_000, 20_000, 2_000],
        cancel: 2_000,
        cost: 20_000,
        busy: 10,
        stream_items: [3_000_000, 30_000],
        ping_pong: 50_000,
        stream_cancel: 1_000,
        stall_ms: 1_000,
    };

    /// A smoke test: a tenth or less of everything.
    pub const QUICK: Counts = Counts {
        seq: 2_000,
        tput: 20_000,
        payload: [10_000, 10_000, 2_000, 200],
        cancel: 200,
        cost: 2_000,
        busy: 3,
        stream_items: [300_000, 3_000],
        ping_pong: 5_000,
        stream_cancel: 100,
        stall_ms: 200,
    };

    /// Items in one server stream of `size`-byte items.
    pub fn stream_items(&self, size: u32) -> u64 {
        if size <= 1024 { self.stream_items[0] } else { self.stream_items[1] }
    }

    fn payload_calls(&self, size: usize) -> u64 {
        match size {
            0..=16 => self.payload[0],
            17..=1024 => self.payload[1],
            1025..=65_536 => self.payload[2],
            _ => self.payload[3],
        }
    }
}

/// Named results of one case run.
pub type Metrics = Vec<(&'static str, f64)>;

/// Runs `case` for `imp` in this process. With `addr`, the server is another process listening
/// there; otherwise this process serves too.
pub fn run(case: Case, imp: Impl, counts: &Counts, addr: Option<SocketAddr>) -> Metrics {
    if case.is_streaming() {
        assert!(addr.is_none(), "the streaming cases run in one process");
        assert!(case.applies_to(imp), "the {case} case does not apply to {imp}");
        return match imp {
            Impl::TonicReady => streams::run::<TonicReady>(case, counts),
            Impl::TonicChan => streams::run::<TonicChan>(case, counts),
            _ => streams::run::<Tidl>(case, counts),
        };
    }
    match imp {
        Impl::TonicReady | Impl::TonicChan => panic!("tonic runs only the streaming cases"),
        Impl::Raw | Impl::Tidl if case == Case::Storm => crate::storm::run(imp, addr),
        Impl::Raw => {
            assert!(case.applies_to(imp), "the {case} case does not apply to raw frames");
            run_for::<Raw, _>(case, counts, addr, |_, _| async { unreachable!("checked above") })
        }
        Impl::Tarpc if case == Case::Busy => busy::<Tarpc>(counts.busy),
        Impl::Tidl if case == Case::Busy => busy::<Tidl>(counts.busy),
        Impl::Tidl if case == Case::Structs => crate::structs::run(counts),
        Impl::Tidl if case == Case::Tls => crate::tls_case::run(counts),
        Impl::Tidl if case == Case::Layers => crate::layers_case::run(counts),
        Impl::Tidl if case == Case::Inline => crate::inline_case::run(counts),
        Impl::Tarpc => run_for::<Tarpc, _>(case, counts, addr, cancel::<Tarpc>),
        Impl::Tidl => run_for::<Tidl, _>(case, counts, addr, cancel::<Tidl>),
    }
}

/// Worker threads of every runtime the suite makes: 2 unless `--workers` says otherwise.
pub static WORKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(2);

/// A tokio multi-thread runtime with exactly [`WORKERS`] worker threads (2 by default).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS.load(Ordering::Relaxed))
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

/// Binds a listener on an ephemeral loopback port and serves `R` on it.
pub async fn start_server<R: Rpc>(probe: Arc<Probe>) -> SocketAddr {
    start_server_on::<R>("127.0.0.1:0".parse().expect("an address"), probe).await
}

/// Binds a listener on `addr` and serves `R` on it; returns the address it got.
pub async fn start_server_on<R: Rpc>(addr: SocketAddr, probe: Arc<Probe>) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    let addr = listener.local_addr().expect("the listener's address");
    R::serve(listener, probe);
    addr
}

fn run_for<R: Rpc, F: Future<Output = Metrics> + Send + 'static>(
    case: Case,
    counts: &Counts,
    addr: Option<SocketAddr>,
    cancel_case: impl FnOnce(SocketAddr, (Arc<Probe>, usize)) -> F,
) -> Metrics {
    if case == Case::Cost {
        assert!(addr.is_none(), "the cost case runs in one process");
        return cost::<R>(counts.cost);
    }
    let counts = *counts;
    let rt = runtime();
    rt.block_on(async move {
        let probe = Arc::new(Probe::default());
        let addr = match addr {
            Some(addr) => addr,
            None => start_server::<R>(probe.clone()).await,
        };
        let task = match case {
            Case::Seq => tokio::spawn(sequential::<R>(addr, counts.seq)),
            Case::Tput(in_flight) => tokio::spawn(throughput::<R>(addr, 1, in_flight, counts.tput, Body::Text)),
            Case::Conns => tokio::spawn(throughput::<R>(addr, CONNS.0, CONNS.1, counts.tput, Body::Text)),
            Case::Payload(size) => {
                let body = Body::Bytes(Bytes::from(vec![0xa5; size]));
                tokio::spawn(throughput::<R>(addr, 1, PAYLOAD_IN_FLIGHT, counts.payload_calls(size), body))
            }
            Case::Cancel => tokio::spawn(cancel_case(addr, (probe, counts.cancel))),
            _ => unreachable!("handled apart"),
        };
        let mut metrics = task.await.expect("the benchmark task panicked");
        if matches!(case, Case::Tput(_))
            && let Some(rss) = peak_rss_mib()
        {
            metrics.push(("rss_mib", rss));
        }
        metrics
    })
}

/// What the load sends.
#[derive(Debug, Clone)]
enum Body {
    /// `echo("hello world")`.
    Text,
    /// `echo_bytes(body)`.
    Bytes(Bytes),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Text => HELLO.len(),
            Body::Bytes(b) => b.len(),
        }
    }

    async fn call<C: EchoClient>(&self, client: &C) -> usize {
        match self {
            Body::Text => client.echo(HELLO.to_owned()).await,
            Body::Bytes(b) => client.echo_bytes(b.clone()).await,
        }
    }
}

/// Case 1: `n` echo calls one after another, each timed.
async fn sequential<R: Rpc>(addr: SocketAddr, n: usize) -> Metrics {
    let client = R::connect(addr, false).await;
    for _ in 0..(n / 10).max(100) {
        client.echo(HELLO.to_owned()).await;
    }
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let len = client.echo(HELLO.to_owned()).await;
        samples.push(t.elapsed());
        assert_eq!(len, HELLO.len(), "echo returned a reply of the wrong length");
    }
    let total = start.elapsed();
    samples.sort_unstable();
    vec![
        ("p50_us", micros(percentile(&samples, 0.50))),
        ("p99_us", micros(percentile(&samples, 0.99))),
        ("p999_us", micros(percentile(&samples, 0.999))),
        ("calls_per_s", n as f64 / total.as_secs_f64()),
    ]
}

/// Cases 2 to 4: `total` calls over `conns` connections with `per_conn` in flight on each; a
/// tenth as many first, to warm up.
async fn throughput<R: Rpc>(addr: SocketAddr, conns: usize, per_conn: usize, total: u64, body: Body) -> Metrics {
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(R::connect(addr, per_conn > 1).await);
    }
    let warm_up = (total / 10).max(100);
    load(&clients, per_conn, warm_up, &body).await;
    let cpu_before = cpu_ns(None);
    let elapsed = load(&clients, per_conn, total, &body).await;
    let cpu_after = cpu_ns(None);
    let calls_per_s = total as f64 / elapsed.as_secs_f64();
    let mut metrics = vec![("calls_per_s", calls_per_s)];
    // This process's CPU per call: both sides in one process, the client's alone in two.
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        metrics.push(("cpu_us_per_call", after.saturating_sub(before) as f64 / 1e3 / total as f64));
    }
    // Every call this process made, for figures taken from outside it (its syscalls, and the
    // server's CPU in two processes).
    metrics.push(("calls_total", (warm_up + total) as f64));
    if let Body::Bytes(_) = body {
        metrics.push(("mb_per_s", calls_per_s * body.len() as f64 / 1e6));
    }
    metrics
}

/// Makes `total` calls with `per_conn` tasks per client, each calling in a loop; returns how
/// long they took.
async fn load<C: EchoClient>(clients: &[C], per_conn: usize, total: u64, body: &Body) -> Duration {
    let remaining = Arc::new(AtomicI64::new(i64::try_from(total).expect("call count fits in i64")));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len() * per_conn);
    for client in clients {
        for _ in 0..per_conn {
            let (client, remaining, body) = (client.clone(), remaining.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                while remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                    let len = body.call(&client).await;
                    assert_eq!(len, body.len(), "echo returned a reply of the wrong length");
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("a load task panicked");
    }
    start.elapsed()
}

/// Case 5: `n` cancel trials (after a few to warm up): median, p99 and max in microseconds.
async fn cancel<R>(addr: SocketAddr, (probe, n): (Arc<Probe>, usize)) -> Metrics
where
    R: Rpc,
    R::Client: CancelClient,
{
    let client = R::connect(addr, false).await;
    for _ in 0..50 {
        client.cancel_trial(&probe).await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(client.cancel_trial(&probe).await);
    }
    samples.sort_unstable();
    vec![
        ("median_us", micros(percentile(&samples, 0.50))),
        ("p99_us", micros(percentile(&samples, 0.99))),
        ("max_us", micros(percentile(&samples, 1.0))),
    ]
}

/// How long the busy-server case's handler computes.
const COMPUTE_MS: u64 = 300;

/// Case 7: `n` trials of: one connection calls `compute(COMPUTE_MS)`, whose handler computes
/// without awaiting; once it runs, a new connection is made and makes one echo, timed from the
/// connect to the reply. The server runs on a 2-worker runtime of its own, in another thread, as
/// a server does in production (a client sharing its workers would hide a stall). Median and
/// maximum in milliseconds.
fn busy<R>(n: usize) -> Metrics
where
    R: Rpc,
    R::Client: BusyClient,
{
    let probe = Arc::new(Probe::default());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn({
        let probe = probe.clone();
        move || {
            runtime().block_on(async move {
                let addr = start_server::<R>(probe).await;
                addr_tx.send(addr).expect("sending the server's address");
                let _ = stop_rx.await;
            });
        }
    });
    let addr = addr_rx.recv().expect("the server thread's address");
    let metrics = runtime().block_on(async move {
        let busy = R::connect(addr, false).await;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let computing = tokio::spawn({
                let busy = busy.clone();
                async move { busy.compute(COMPUTE_MS).await }
            });
            probe.wait_started().await;
            let start = Instant::now();
            let other = R::connect(addr, false).await;
            let len = other.echo(HELLO.to_owned()).await;
            samples.push(start.elapsed());
            assert_eq!(len, HELLO.len(), "echo returned a reply of the wrong length");
            computing.await.expect("the compute task panicked");
        }
        samples.sort_unstable();
        vec![
            ("median_ms", micros(percentile(&samples, 0.50)) / 1000.0),
            ("max_ms", micros(percentile(&samples, 1.0)) / 1000.0),
        ]
    });
    let _ = stop_tx.send(());
    server.join().expect("the server thread panicked");
    metrics
}

/// Case 6: heap allocations (client and server separately) and bytes on the wire per echo call,
/// over `n` sequential calls after a warm-up.
///
/// The server runs on a thread of its own with a current-thread runtime, the client on this
/// thread with another; the counting allocator charges each thread's allocations to its side.
/// The calls' arguments are built before counting starts, so only the RPC path is counted (the
/// decoded reply included).
fn cost<R: Rpc>(n: usize) -> Metrics {
    let current_thread =
        || tokio::runtime::Builder::new_current_thread().enable_all().build().expect("building a tokio runtime");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        alloc::set_thread_side(Side::Server);
        current_thread().block_on(async move {
            let addr = start_server::<R>(Arc::new(Probe::default())).await;
            addr_tx.send(addr).expect("sending the server's address");
            let _ = stop_rx.await;
        });
    });
    let addr = addr_rx.recv().expect("the server thread's address");
    alloc::set_thread_side(Side::Client);
    alloc::enable(true);
    let metrics = current_thread().block_on(async move {
        let counter = Arc::new(WireCounter::default());
        let client = R::connect_counted(addr, counter.clone()).await;
        for _ in 0..(n / 10).max(100) {
            client.echo(HELLO.to_owned()).await;
        }
        let args: Vec<String> = (0..n).map(|_| HELLO.to_owned()).collect();
        let (wire0, allocs0) = (counter.totals(), Snapshot::take());
        for arg in args {
            let len = client.echo(arg).await;
            assert_eq!(len, HELLO.len(), "echo returned a reply of the wrong length");
        }
        let (wire1, allocs1) = (counter.totals(), Snapshot::take());
        let per_call = |x: u64| x as f64 / n as f64;
        let (client_allocs, server_allocs) =
            (allocs1.allocations_since(&allocs0, Side::Client), allocs1.allocations_since(&allocs0, Side::Server));
        vec![
            ("allocs_client", per_call(client_allocs)),
            ("allocs_server", per_call(server_allocs)),
            ("allocs_other", per_call(allocs1.allocations_since(&allocs0, Side::Other))),
            ("allocs_total", per_call(allocs1.counts.iter().sum::<u64>() - allocs0.counts.iter().sum::<u64>())),
            ("alloc_bytes_client", per_call(allocs1.bytes_since(&allocs0, Side::Client))),
            ("alloc_bytes_server", per_call(allocs1.bytes_since(&allocs0, Side::Server))),
            ("wire_sent", per_call(wire1.1 - wire0.1)),
            ("wire_received", per_call(wire1.0 - wire0.0)),
            ("wire_bytes", per_call((wire1.0 - wire0.0) + (wire1.1 - wire0.1))),
        ]
    });
    alloc::enable(false);
    let _ = stop_tx.send(());
    server.join().expect("the server thread panicked");
    metrics
}

/// `n` generated-client echo calls through `invoke`, one after another, each timed.
pub async fn echo_sequential<I: tidl_runtime::Invoke + Clone>(invoke: &I, n: usize) -> Vec<Duration> {
    let bench = crate::generated::BenchClientExt::bench(invoke);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        assert_eq!(bench.echo(HELLO.to_owned()).await.map(|r| r.len()), Ok(HELLO.len()));
        samples.push(t.elapsed());
    }
    samples
}

/// `total` generated-client echo calls through `invoke` by 256 tasks, each calling in a loop: calls/s.
pub async fn echo_throughput<I: tidl_runtime::Invoke + Clone>(invoke: &I, total: u64) -> f64 {
    let remaining = Arc::new(AtomicI64::new(i64::try_from(total).expect("fits")));
    let start = Instant::now();
    let tasks: Vec<_> = (0..256)
        .map(|_| {
            let (bench, remaining) = (crate::generated::BenchClientExt::bench(invoke), remaining.clone());
            tokio::spawn(async move {
                while remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                    assert_eq!(bench.echo(HELLO.to_owned()).await.map(|r| r.len()), Ok(HELLO.len()));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a load task panicked");
    }
    total as f64 / start.elapsed().as_secs_f64()
}
