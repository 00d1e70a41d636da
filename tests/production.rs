//! Calls people can trust in production: status codes, deadlines, cascading cancellation across
//! servers, limits and graceful shutdown, through generated code over loopback TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tidl_runtime::bytes::Bytes;
use tidl_runtime::{Client, ClientConfig, Code, Context, Error, Server, ServerConfig, Status};
use tokio::sync::watch;
use tokio::time::Instant;

// Private to this test: the generated public API is partly unused here.
#[allow(unreachable_pub, dead_code)]
mod support {
    tidl_runtime::include_tidl!("support");
}

use support::{AppError, Hop, InteropClientExt, InteropServer, LargeRequest};

/// Generous bound for events that take microseconds when things work.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the `sleep` and `relay` handlers of one server have done.
#[derive(Clone, Debug, Default)]
struct Stats {
    started: u64,
    /// Handlers dropped before they finished: stopped by a cancel, a deadline or a shutdown.
    dropped: u64,
    finished: u64,
}

#[derive(Clone, Default)]
struct Interop {
    /// The next server of a relay chain.
    next: Option<Client>,
    stats: Arc<watch::Sender<Stats>>,
}

/// Counts a handler as dropped unless it finishes.
struct Running<'a> {
    stats: &'a watch::Sender<Stats>,
    finished: bool,
}

impl<'a> Running<'a> {
    fn start(stats: &'a watch::Sender<Stats>) -> Running<'a> {
        stats.send_modify(|s| s.started += 1);
        Running { stats, finished: false }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let finished = self.finished;
        self.stats.send_modify(|s| if finished { s.finished += 1 } else { s.dropped += 1 });
    }
}

impl support::Interop for Interop {
    async fn empty(&self, _ctx: Context, (): ()) -> Result<(), Error> {
        Ok(())
    }

    async fn large(&self, _ctx: Context, request: LargeRequest) -> Result<Bytes, Error> {
        Ok(Bytes::from(vec![0xab; request.response_size as usize]))
    }

    async fn sleep(&self, _ctx: Context, millis: u64) -> Result<(), Error> {
        let mut running = Running::start(&self.stats);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        running.finished = true;
        Ok(())
    }

    async fn fail_with(&self, _ctx: Context, error: AppError) -> Result<(), Error<AppError>> {
        Err(Error::App(error))
    }

    async fn relay(&self, ctx: Context, wait: bool) -> Result<Vec<Hop>, Error> {
        let mut running = Running::start(&self.stats);
        let hop = Hop { remaining_micros: ctx.remaining().map(|d| d.as_micros() as u64) };
        let hops = match &self.next {
            Some(next) => {
                let mut hops = next.interop().context(&ctx).relay(wait).await.map_err(|e| Error::App(e.to_string()))?;
                hops.insert(0, hop);
                hops
            }
            None if wait => std::future::pending().await,
            None => vec![hop],
        };
        running.finished = true;
        Ok(hops)
    }
}

impl Interop {
    async fn wait(&self, what: &str, condition: impl FnMut(&Stats) -> bool) -> Stats {
        let mut stats = self.stats.subscribe();
        tokio::time::timeout(EVENT_TIMEOUT, stats.wait_for(condition))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
            .expect("sender alive")
            .clone()
    }
}

async fn serve_with(interop: Interop, config: ServerConfig) -> (SocketAddr, Server) {
    let server = Server::builder().register(InteropServer::new(interop)).config(config).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    (addr, server)
}

async fn serve(interop: Interop) -> (SocketAddr, Server) {
    serve_with(interop, ServerConfig::default()).await
}

fn status<T: std::fmt::Debug, E: std::fmt::Debug>(result: Result<T, Error<E>>) -> Status {
    match result {
        Err(Error::Status(status)) => status,
        other => panic!("expected an RPC status, got {other:?}"),
    }
}

// The gRPC interop cases.

#[tokio::test]
async fn empty_request_and_empty_reply() {
    let (addr, _server) = serve(Interop::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    assert_eq!(client.interop().empty(()).await, Ok(()));
}

#[tokio::test]
async fn large_request_and_large_reply() {
    let (addr, _server) = serve(Interop::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let request = LargeRequest { response_size: 314_159, payload: Bytes::from(vec![0; 271_828]) };
    let reply = client.interop().large(request).await.expect("large call");
    assert_eq!(reply.len(), 314_159);
    assert!(reply.iter().all(|b| *b == 0xab));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_large_calls_in_parallel_on_one_client() {
    let (addr, _server) = serve(Interop::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let payload = Bytes::from(vec![7; 271_828]);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000u32 {
        let client = client.clone();
        let request = LargeRequest { response_size: 314_159 + i, payload: payload.clone() };
        calls.spawn(async move { (i, client.interop().large(request).await) });
    }
    let mut done = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, reply) = joined.expect("task");
        assert_eq!(reply.expect("large call").len(), 314_159 + i as usize);
        done += 1;
    }
    assert_eq!(done, 1000);
}

#[tokio::test]
async fn a_1ms_deadline_on_a_sleeping_handler_exceeds_and_stops_it() {
    let interop = Interop::default();
    let (addr, _server) = serve(interop.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    let result = client.interop().timeout(Duration::from_millis(1)).sleep(60_000).await;
    let status = status(result);
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(status.message(), "`Interop.sleep` did not complete within its timeout of 1ms");
    // The server stopped the handler too (it learnt the deadline with the request).
    let stats = interop.wait("the handler to be stopped", |s| s.dropped == 1).await;
    assert_eq!(stats.finished, 0);
}

#[tokio::test]
async fn a_call_cancelled_right_after_it_starts_is_cancelled() {
    let (addr, _server) = serve(Interop::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let call = client.interop().sleep(60_000);
    call.cancel();
    assert_eq!(status(call.await).code(), Code::Cancelled);
}

#[tokio::test]
async fn a_call_with_a_generous_deadline_completes_normally() {
    let interop = Interop::default();
    let (addr, _server) = serve(interop.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    assert_eq!(client.interop().timeout(Duration::from_secs(30)).sleep(5).await, Ok(()));
    assert_eq!(interop.stats.borrow().finished, 1);
}

#[tokio::test]
async fn an_application_error_code_and_unicode_message_round_trip_exactly() {
    let (addr, _server) = serve(Interop::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let error = AppError { code: 4_040_404, message: "ünïcödé ✓ — 期限切れ 🚫\u{0}".into() };
    assert_eq!(client.interop().fail_with(error.clone()).await, Err(Error::App(error)));
}

// Deadlines.

#[tokio::test]
async fn the_server_enforces_the_deadline_even_if_nobody_waits() {
    let interop = Interop::default();
    let (addr, _server) = serve(interop.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    client.interop().timeout(Duration::from_millis(50)).sleep(60_000).detach();
    interop.wait("the handler to start", |s| s.started == 1).await;
    let stats = interop.wait("the deadline to stop the handler", |s| s.dropped == 1).await;
    assert_eq!(stats.finished, 0);
}

#[tokio::test]
async fn a_client_wide_default_timeout_applies_to_every_call() {
    let interop = Interop::default();
    let (addr, _server) = serve(interop.clone()).await;
    let mut config = ClientConfig::default();
    config.default_timeout = Some(Duration::from_millis(20));
    let client = Client::dial_with(addr, config).await.expect("dial");
    assert_eq!(status(client.interop().sleep(60_000).await).code(), Code::DeadlineExceeded);
    // A per-call timeout overrides the default.
    assert_eq!(client.interop().timeout(Duration::from_secs(30)).sleep(40).await, Ok(()));
    interop.wait("one stopped, one finished", |s| s.dropped == 1 && s.finished == 1).await;
}

/// Three servers, A -> B -> C, each relaying with its handler's context.
async fn chain() -> (Client, [Interop; 3]) {
    let c = Interop::default();
    let (c_addr, _) = serve(c.clone()).await;
    let b = Interop { next: Some(Client::dial(c_addr).await.expect("dial C")), ..Interop::default() };
    let (b_addr, _) = serve(b.clone()).await;
    let a = Interop { next: Some(Client::dial(b_addr).await.expect("dial B")), ..Interop::default() };
    let (a_addr, _) = serve(a.clone()).await;
    (Client::dial(a_addr).await.expect("dial A"), [a, b, c])
}

#[tokio::test]
async fn cancelling_a_call_cancels_it_on_every_server_of_a_chain() {
    let (client, [a, b, c]) = chain().await;
    let call = client.interop().relay(true);
    c.wait("the call to reach the last server", |s| s.started == 1).await;
    call.cancel();
    for (name, server) in [("A", &a), ("B", &b), ("C", &c)] {
        server.wait(&format!("{name}'s handler to be dropped"), |s| s.dropped == 1).await;
    }
    assert_eq!(status(call.await).code(), Code::Cancelled);
}

#[tokio::test]
async fn a_deadline_travels_down_a_chain_and_stops_every_server() {
    let (client, [a, b, c]) = chain().await;
    let started = Instant::now();
    let result = client.interop().timeout(Duration::from_millis(300)).relay(true).await;
    assert_eq!(status(result).code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(5));
    for (name, server) in [("A", &a), ("B", &b), ("C", &c)] {
        server.wait(&format!("{name}'s handler to be stopped"), |s| s.dropped == 1).await;
    }
}

#[tokio::test]
async fn an_inner_deadline_is_never_later_than_the_outer_one() {
    // A chain of two, where B answers at once with what it saw.
    let b = Interop::default();
    let (b_addr, _b) = serve(b).await;
    let b_client = Client::dial(b_addr).await.expect("dial B");
    // The caller's context has a 200 ms deadline; the inner call asks for 60 s.
    let parent = Context::new(
        tidl_runtime::CancellationToken::new(),
        Some(std::time::Instant::now() + Duration::from_millis(200)),
    );
    let inner = b_client.interop().context(&parent).timeout(Duration::from_secs(60)).sleep(60_000);
    let started = Instant::now();
    assert_eq!(status(inner.await).code(), Code::DeadlineExceeded);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn each_server_of_a_chain_sees_no_more_time_than_the_one_before() {
    let (client, _servers) = chain().await;
    let hops = client.interop().timeout(Duration::from_secs(20)).relay(false).await.expect("relay");
    let remaining: Vec<u64> = hops.iter().map(|h| h.remaining_micros.expect("every hop has a deadline")).collect();
    assert_eq!(remaining.len(), 3);
    assert!(remaining[0] <= 20_000_000 && remaining[0] > 10_000_000, "{remaining:?}");
    assert!(remaining[1] <= remaining[0] && remaining[2] <= remaining[1], "{remaining:?}");
}

// Connections and limits.

#[tokio::test]
async fn cancel_then_dropping_the_client_still_stops_the_handler() {
    let interop = Interop::default();
    let (addr, _server) = serve(interop.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    let call = client.interop().sleep(60_000);
    interop.wait("the handler to start", |s| s.started == 1).await;
    call.cancel();
    drop(call);
    drop(client);
    interop.wait("the handler to be stopped", |s| s.dropped == 1).await;
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_refused_and_cancels_still_work() {
    let interop = Interop::default();
    let mut config = ServerConfig::default();
    config.max_concurrent_calls = 4;
    let (addr, _server) = serve_with(interop.clone(), config).await;
    let client = Client::dial(addr).await.expect("dial");
    let running: Vec<_> = (0..4).map(|_| client.interop().sleep(60_000)).collect();
    interop.wait("four handlers to run", |s| s.started == 4).await;

    let refused = status(client.interop().sleep(1).await);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "`Interop.sleep` was refused: this connection already has 4 calls running, the limit \
         (ServerConfig::max_concurrent_calls)"
    );

    // Cancels are still read at the limit, and free a place.
    running[0].cancel();
    interop.wait("the cancelled handler to stop", |s| s.dropped == 1).await;
    assert_eq!(client.interop().sleep(1).await, Ok(()));
    drop(running);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_resource_exhausted() {
    let mut config = ServerConfig::default();
    config.max_connections = 2;
    let (addr, _server) = serve_with(Interop::default(), config).await;
    let first = Client::dial(addr).await.expect("first");
    let second = Client::dial(addr).await.expect("second");
    let refused = Client::dial(addr).await.expect_err("third is over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("maximum number of connections (ServerConfig::max_connections)"), "{refused}");
    assert_eq!(first.interop().empty(()).await, Ok(()));

    // Closing one frees a place.
    drop(second);
    let again = tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            match Client::dial(addr).await {
                Ok(client) => break client,
                Err(e) if e.code() == Code::ResourceExhausted => tokio::task::yield_now().await,
                Err(e) => panic!("unexpected: {e}"),
            }
        }
    })
    .await
    .expect("a place frees up");
    assert_eq!(again.interop().empty(()).await, Ok(()));
}

#[tokio::test]
async fn a_request_over_the_frame_limit_fails_locally_and_the_connection_goes_on() {
    let (addr, _server) = serve(Interop::default()).await;
    let mut config = ClientConfig::default();
    config.max_frame_len = 64 * 1024;
    let client = Client::dial_with(addr, config).await.expect("dial");
    let request = LargeRequest { response_size: 0, payload: Bytes::from(vec![0; 100_000]) };
    let refused = status(client.interop().large(request).await);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "the request to `Interop.large` is larger than the maximum frame length of 65536 bytes; raise \
         ClientConfig::max_frame_len on both peers to send it"
    );
    assert_eq!(client.interop().empty(()).await, Ok(()));
}

#[tokio::test]
async fn a_reply_over_the_frame_limit_fails_that_call_only() {
    let mut config = ServerConfig::default();
    config.max_frame_len = 64 * 1024;
    let (addr, _server) = serve_with(Interop::default(), config).await;
    let client = Client::dial(addr).await.expect("dial");
    let request = LargeRequest { response_size: 100_000, payload: Bytes::new() };
    let refused = status(client.interop().large(request).await);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "the reply of `Interop.large` is larger than the maximum frame length of 65536 bytes; raise \
         ServerConfig::max_frame_len on both peers to send it"
    );
    assert_eq!(client.interop().empty(()).await, Ok(()));
}

#[tokio::test]
async fn an_idle_connection_with_keepalive_stays_up() {
    let mut server_config = ServerConfig::default();
    server_config.keepalive_interval = Some(Duration::from_millis(20));
    server_config.keepalive_timeout = Duration::from_millis(50);
    let (addr, _server) = serve_with(Interop::default(), server_config).await;
    let mut config = ClientConfig::default();
    config.keepalive_interval = Some(Duration::from_millis(20));
    config.keepalive_timeout = Duration::from_millis(50);
    let client = Client::dial_with(addr, config).await.expect("dial");
    // Many keepalive rounds on both sides, with no call at all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.interop().empty(()).await, Ok(()));
}

// Graceful shutdown.

#[tokio::test]
async fn shutdown_lets_running_calls_finish_and_refuses_new_ones_at_once() {
    let interop = Interop::default();
    let (addr, server) = serve(interop.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    let running = client.interop().sleep(200);
    interop.wait("the handler to start", |s| s.started == 1).await;

    let shutdown = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_secs(30)).await }
    });
    // The client hears that the server is going away: new calls fail at once.
    let refused = tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            match client.interop().empty(()).await {
                Err(Error::Status(status)) => break status,
                Ok(()) => tokio::task::yield_now().await,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("refused in time");
    assert_eq!(refused.code(), Code::Unavailable);

    // The running call completes, and only then does shutdown return.
    assert_eq!(running.await, Ok(()));
    tokio::time::timeout(EVENT_TIMEOUT, shutdown).await.expect("shutdown returns").expect("task");
    assert_eq!(interop.stats.borrow().finished, 1);
    assert!(Client::dial(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn shutdown_cancels_what_is_left_after_the_grace_period_and_says_why() {
    let interop = Interop::default();
    let (addr, server) = serve(interop.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    let running = client.interop().sleep(60_000);
    interop.wait("the handler to start", |s| s.started == 1).await;

    tokio::time::timeout(EVENT_TIMEOUT, server.shutdown(Duration::from_millis(50))).await.expect("shutdown returns");
    // Every task has ended when shutdown returns: the handler was dropped before.
    assert_eq!(interop.stats.borrow().dropped, 1);
    let stopped = status(running.await);
    assert_eq!(stopped.code(), Code::Unavailable);
    assert_eq!(stopped.message(), "the server shut down and stopped `Interop.sleep` at the end of its grace period");
}

#[tokio::test]
async fn a_dropped_connection_fails_every_pending_call_at_once() {
    let interop = Interop::default();
    let (addr, server) = serve(interop.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    let calls: Vec<_> = (0..3).map(|_| client.interop().sleep(60_000)).collect();
    interop.wait("three handlers to start", |s| s.started == 3).await;
    // A grace of zero: the server cancels the calls and closes the connection.
    server.shutdown(Duration::ZERO).await;
    for call in calls {
        let status = tokio::time::timeout(EVENT_TIMEOUT, call).await.expect("no hang");
        assert_eq!(self::status(status).code(), Code::Unavailable);
    }
    let after = status(client.interop().empty(()).await);
    assert_eq!(after.code(), Code::Unavailable);
}
