//! Many servers over real TCP: an [`Endpoint`] reconnects to a server that crashed and came back
//! on the same address; a [`Balancer`] sends a slow server a smaller share, none to a dead one
//! until it returns, and calls to an endpoint discovery adds; a graceful shutdown under load
//! loses no call. Every server runs on a runtime of its own, in a thread of its own, as in
//! production, so that crashing it is dropping that runtime.

#![cfg(feature = "balance")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tidl_runtime::{
    Balancer, CallOptions, Change, Code, Endpoint, EndpointConfig, EndpointState, Error, Incoming, Invoke, Method,
    Server, ServerConfig, Service,
};
use tokio::sync::{mpsc, oneshot};

/// `Who.name(delay_ms) -> string`: sleeps (plus the server's own extra delay), then answers
/// the server's name.
struct Who(&'static str, u64);

impl Service for Who {
    fn name(&self) -> &'static str {
        "Who"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        let (name, extra) = (self.0, self.1);
        match method {
            "name" => request.spawn(Method::new("Who", "name"), move |_ctx, delay_ms: u64| async move {
                tokio::time::sleep(Duration::from_millis(delay_ms + extra)).await;
                Ok::<_, Error>(name.to_owned())
            }),
            "peer" => request
                .spawn(Method::new("Who", "peer"), |ctx, (): ()| async move { Ok::<_, Error>(ctx.peer().to_string()) }),
            _ => return Err(request),
        }
        Ok(())
    }
}

/// How a test server stops.
enum Stop {
    /// As a crash: its runtime is dropped with everything on it.
    Crash,
    /// Gracefully, within this grace.
    Graceful(Duration),
}

/// A server on a runtime and thread of its own.
struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<Stop>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `Who(name)` on `addr` (port 0 for any).
    fn start(name: &'static str, addr: SocketAddr) -> TestServer {
        TestServer::start_slow(name, addr, 0)
    }

    /// Serves `Who(name)` on `addr`, its calls taking `extra_ms` longer.
    fn start_slow(name: &'static str, addr: SocketAddr, extra_ms: u64) -> TestServer {
        TestServer::start_with(name, addr, extra_ms, ServerConfig::default())
    }

    /// Serves `Who(name)` on `addr` with `config`, its calls taking `extra_ms` longer.
    fn start_with(name: &'static str, addr: SocketAddr, extra_ms: u64, config: ServerConfig) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            let stop = runtime.block_on(async move {
                let server = Server::builder().register(Who(name, extra_ms)).config(config).build();
                let addr = server.listen(addr).await.expect("bind");
                addr_tx.send(addr).expect("report the address");
                match stop_rx.await {
                    Ok(Stop::Graceful(grace)) => {
                        server.shutdown(grace).await;
                        None
                    }
                    Ok(Stop::Crash) | Err(_) => Some(server),
                }
            });
            // A crash: the runtime goes with its connections and handlers, unannounced.
            drop(runtime);
            drop(stop);
        });
        let addr = addr_rx.recv().expect("server address");
        TestServer { addr, stop: Some(stop_tx), thread: Some(thread) }
    }

    fn stop(mut self, how: Stop) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Crash);
        }
    }
}

fn fast_config() -> EndpointConfig {
    let mut config = EndpointConfig::default();
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    config
}

/// Waits until `condition` holds, looking every millisecond; fails after 10 s.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until `endpoint` is connected; fails after 10 s.
async fn connected(endpoint: &Endpoint) {
    tokio::time::timeout(Duration::from_secs(10), endpoint.ready())
        .await
        .expect("connected within 10 s")
        .expect("the endpoint keeps trying");
}

async fn name<I: Invoke>(via: &I, delay_ms: u64) -> Result<String, Error> {
    via.call::<_, String, String>(Method::new("Who", "name"), &delay_ms, &CallOptions::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_reconnects_to_a_server_that_came_back() {
    let server = TestServer::start("first", "127.0.0.1:0".parse().expect("addr"));
    let addr = server.addr;
    let endpoint = Endpoint::new(addr.to_string(), fast_config());
    assert!(matches!(endpoint.state(), EndpointState::Idle));
    assert_eq!(name(&endpoint, 0).await, Ok("first".to_owned()));

    // A call running when the server crashes fails at once, not at its deadline.
    let pending = {
        let endpoint = endpoint.clone();
        tokio::spawn(async move { name(&endpoint, 60_000).await })
    };
    until("the call to be sent", || endpoint.calls_in_flight() == 1).await;
    let crashed = std::time::Instant::now();
    server.stop(Stop::Crash);
    let err = tokio::time::timeout(Duration::from_secs(5), pending).await.expect("no hang").expect("task");
    let Err(Error::Status(status)) = err else { panic!("expected a status, got {err:?}") };
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(!status.is_unstarted(), "the call had started: {status}");
    assert!(crashed.elapsed() < Duration::from_secs(5));

    // A call without waiting fails at once while nothing listens.
    let options = CallOptions::default().wait_for_ready(false);
    let quick = endpoint.call::<_, String, String>(Method::new("Who", "name"), &0u64, &options).await;
    let Err(Error::Status(status)) = quick else { panic!("{quick:?}") };
    assert_eq!(status.code(), Code::Unavailable, "{status}");

    // The server comes back on the same address: the same endpoint serves calls again.
    let _again = TestServer::start("second", addr);
    let answer = tokio::time::timeout(Duration::from_secs(10), name(&endpoint, 0)).await.expect("reconnected in time");
    assert_eq!(answer, Ok("second".to_owned()));
    assert!(matches!(endpoint.state(), EndpointState::Ready));
}

/// Sends `total` calls, `concurrency` at a time, through `balancer`; the answers by server.
async fn spread(balancer: &Balancer, total: u64, concurrency: usize, delay_ms: u64) -> HashMap<String, u64> {
    let left = Arc::new(AtomicU64::new(total));
    let (tx, mut rx) = mpsc::unbounded_channel();
    for _ in 0..concurrency {
        let (balancer, left, tx) = (balancer.clone(), left.clone(), tx.clone());
        tokio::spawn(async move {
            while left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                let _ = tx.send(name(&balancer, delay_ms).await);
            }
        });
    }
    drop(tx);
    let mut by_server = HashMap::new();
    while let Some(answer) = rx.recv().await {
        let key = answer.unwrap_or_else(|e| format!("failed: {e}"));
        *by_server.entry(key).or_insert(0) += 1;
    }
    by_server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_prefers_fast_servers_skips_dead_ones_and_takes_them_back() {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (a, b) = (TestServer::start("a", any), TestServer::start("b", any));
    let (changes_tx, changes_rx) = mpsc::unbounded_channel::<Result<Change<String, Endpoint>, std::io::Error>>();
    let endpoints: Vec<Endpoint> = [&a, &b].iter().map(|s| Endpoint::new(s.addr.to_string(), fast_config())).collect();
    for (server, endpoint) in [&a, &b].iter().zip(&endpoints) {
        changes_tx.send(Ok(Change::Insert(server.addr.to_string(), endpoint.clone()))).expect("insert");
    }
    let b_endpoint = endpoints[1].clone();
    let balancer = Balancer::new(tokio_stream(changes_rx));
    let counts = spread(&balancer, 400, 16, 1).await;
    assert_eq!(counts.values().sum::<u64>(), 400);
    assert!(counts.get("a").copied().unwrap_or(0) > 50 && counts.get("b").copied().unwrap_or(0) > 50, "{counts:?}");

    // A slow server (its calls take 30 ms, the others' 1 ms) gets a clearly smaller share: the
    // balancer sees its calls pile up.
    let slow = TestServer::start_slow("slow", any, 30);
    let slow_addr = slow.addr.to_string();
    let slow_endpoint = Endpoint::new(slow_addr.clone(), fast_config());
    changes_tx.send(Ok(Change::Insert(slow_addr.clone(), slow_endpoint.clone()))).expect("insert");
    connected(&slow_endpoint).await;
    let counts = spread(&balancer, 600, 16, 1).await;
    let slow_share = counts.get("slow").copied().unwrap_or(0);
    assert!(slow_share > 0, "an endpoint added by discovery gets calls: {counts:?}");
    // (A third of a fast one's at most: with the whole test suite running beside it, the fast
    // servers' 1 ms calls take longer too; 68 against 268 was seen then.)
    assert!(slow_share * 3 < counts.get("a").copied().unwrap_or(0), "{counts:?}");

    // A dead server gets no calls and fails none: the balancer skips it while it reconnects.
    let b_addr = b.addr;
    b.stop(Stop::Crash);
    until("the crash to be noticed", || !matches!(b_endpoint.state(), EndpointState::Ready)).await;
    let counts = spread(&balancer, 300, 16, 1).await;
    assert_eq!(counts.get("b"), None, "{counts:?}");
    assert!(counts.keys().all(|k| !k.starts_with("failed")), "{counts:?}");

    // It comes back on its address, and gets its share again.
    let _b = TestServer::start("b", b_addr);
    connected(&b_endpoint).await;
    let counts = spread(&balancer, 400, 16, 1).await;
    assert!(counts.get("b").copied().unwrap_or(0) > 40, "{counts:?}");
    drop((a, slow));
}

/// A channel's receiver as a stream (tokio-stream is not a dependency).
fn tokio_stream<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures_core::Stream<Item = T> + Send + 'static {
    struct Rx<T>(mpsc::UnboundedReceiver<T>);
    impl<T> futures_core::Stream for Rx<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
    Rx(rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_under_load_loses_no_call() {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (a, b) = (TestServer::start("a", any), TestServer::start("b", any));
    let balancer = Balancer::from_addrs([a.addr.to_string(), b.addr.to_string()], &fast_config());
    let load = {
        let balancer = balancer.clone();
        tokio::spawn(async move { spread(&balancer, 3_000, 32, 2).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    // `a` shuts down gracefully while calls keep coming: running ones finish, new ones are
    // refused unstarted and go to `b`.
    tokio::task::spawn_blocking(move || a.stop(Stop::Graceful(Duration::from_secs(5)))).await.expect("stopped");
    let counts = tokio::time::timeout(Duration::from_secs(60), load).await.expect("no hang").expect("load");
    assert_eq!(counts.values().sum::<u64>(), 3_000);
    assert!(counts.keys().all(|k| !k.starts_with("failed")), "no call lost: {counts:?}");
    assert!(counts.get("a").copied().unwrap_or(0) > 0 && counts.get("b").copied().unwrap_or(0) > 0, "{counts:?}");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aged_connections_are_replaced_without_failing_a_call() {
    let mut config = ServerConfig::default();
    config.max_connection_age = Some(Duration::from_millis(200));
    config.max_connection_age_grace = Duration::from_secs(5);
    let server = TestServer::start_with("aging", "127.0.0.1:0".parse().expect("addr"), 0, config);
    let endpoint = Endpoint::new(server.addr.to_string(), fast_config());
    let mut peers = std::collections::HashSet::new();
    let started = std::time::Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(1_200) {
        let peer = endpoint.call::<_, String, String>(Method::new("Who", "peer"), &(), &CallOptions::default()).await;
        peers.insert(peer.expect("no call fails while connections age"));
        calls += 1;
    }
    // About six connections in 1.2 s, each told to go away after 180-220 ms.
    assert!(peers.len() >= 3, "{} connections for {calls} calls", peers.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_call_whose_connection_is_lost_is_sent_again() {
    let server = TestServer::start("first", "127.0.0.1:0".parse().expect("addr"));
    let addr = server.addr;
    let endpoint = Endpoint::new(addr.to_string(), fast_config());
    endpoint.ready().await.expect("connected");
    let slow = |options: CallOptions| {
        let endpoint = endpoint.clone();
        tokio::spawn(
            async move { endpoint.call::<_, String, String>(Method::new("Who", "name"), &300u64, &options).await },
        )
    };
    let plain = slow(CallOptions::default());
    let idempotent = slow(CallOptions::default().idempotent(true));
    until("both calls to be sent", || endpoint.calls_in_flight() == 2).await;
    server.stop(Stop::Crash);
    let _second = TestServer::start("second", addr);
    // The plain call may have run: it fails. The idempotent one is sent again, on the new
    // connection, and answered by the new server.
    let plain = tokio::time::timeout(Duration::from_secs(10), plain).await.expect("no hang").expect("task");
    let Err(Error::Status(status)) = plain else { panic!("{plain:?}") };
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    let idempotent = tokio::time::timeout(Duration::from_secs(10), idempotent).await.expect("no hang").expect("task");
    assert_eq!(idempotent, Ok("second".to_owned()));
}

/// An address where nothing listens.
fn nowhere() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_wait_for_a_connection_only_within_their_deadline_or_not_at_all() {
    let mut config = fast_config();
    config.client.default_timeout = Some(Duration::from_millis(300));
    let endpoint = Endpoint::new(nowhere().to_string(), config);
    // The client's default timeout bounds the wait for a connection.
    let started = std::time::Instant::now();
    let err = name(&endpoint, 0).await.expect_err("nothing listens");
    let Error::Status(status) = err else { panic!("{err:?}") };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Through a balancer with no connected endpoint: a call that waits without a deadline does
    // not hold up one that does not wait.
    let balancer = Balancer::from_addrs([nowhere().to_string()], &fast_config());
    let waiting = {
        let balancer = balancer.clone();
        tokio::spawn(async move { name(&balancer, 0).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let options = CallOptions::default().wait_for_ready(false);
    let quick = tokio::time::timeout(
        Duration::from_secs(2),
        balancer.call::<_, String, String>(Method::new("Who", "name"), &0u64, &options),
    )
    .await
    .expect("a call that does not wait fails at once");
    let Err(Error::Status(status)) = quick else { panic!("{quick:?}") };
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(status.is_unstarted(), "{status}");
    waiting.abort();
}

#[cfg(feature = "dns")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_discovery_finds_a_server_by_name() {
    let server = TestServer::start("named", "127.0.0.1:0".parse().expect("addr"));
    // `localhost` comes from the hosts file; an address it also resolves to where nothing
    // listens (`::1`) is an endpoint that never connects, and gets no calls.
    let changes = tidl_runtime::dns("localhost", server.addr.port(), Duration::from_millis(200), fast_config());
    let balancer = Balancer::new(changes);
    let options = CallOptions::default().timeout(Duration::from_secs(10));
    let answer = balancer.call::<_, String, String>(Method::new("Who", "name"), &0u64, &options).await;
    assert_eq!(answer, Ok("named".to_owned()));
    let endpoints: Vec<String> = balancer.endpoints().into_iter().map(|(k, _)| k).collect();
    assert!(endpoints.contains(&server.addr.to_string()), "{endpoints:?}");
}
