//! End-to-end tests of the whole path: code generated from `services.tidl` and
//! `tests/support.tidl`, served and called over real loopback TCP.

use example::{Example, ExampleClientExt, ExampleServer, LoopStats};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tidl_runtime::{Call, CallOptions, Client, Code, Context, Error, Invoke, Method, Server};
use tokio::net::TcpListener;
use tokio::sync::watch;

// Private to this test: the generated public API is partly unused here.
#[allow(unreachable_pub, dead_code)]
mod support {
    tidl_runtime::include_tidl!("support");
}

use support::{ProbeClientExt, ProbeServer};

/// Generous bound for events that take microseconds when things work.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Test handlers that compute, fail and panic, and record how their spin loops ended.
#[derive(Clone, Default)]
struct Probe {
    /// How far the last `spin` got, once it has ended.
    spun: Arc<watch::Sender<Option<u64>>>,
    spinning: Arc<AtomicU64>,
}

impl support::Probe for Probe {
    async fn spin(&self, ctx: Context, n: u64) -> Result<u64, Error> {
        self.spinning.fetch_add(1, Ordering::SeqCst);
        let mut i = 0;
        // CPU-bound: never awaits, so only the context can stop it.
        while i < n && !ctx.is_cancelled() {
            i = std::hint::black_box(i + 1);
        }
        self.spun.send_replace(Some(i));
        Ok(i)
    }

    async fn fail(&self, _ctx: Context, message: String) -> Result<(), Error> {
        Err(Error::App(message))
    }

    async fn explode(&self, _ctx: Context, message: String) -> Result<(), Error> {
        panic!("{message}");
    }
}

async fn serve(example: Example, probe: Probe) -> (SocketAddr, Server) {
    let server = Server::builder().register(ExampleServer::new(example)).register(ProbeServer::new(probe)).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    (addr, server)
}

/// A fast loop, so tests see many iterations in little time.
fn fast_example() -> Example {
    Example::with_period(Duration::from_millis(5))
}

async fn wait_for(example: &Example, what: &str, condition: impl FnMut(&LoopStats) -> bool) -> LoopStats {
    let mut stats = example.subscribe();
    tokio::time::timeout(EVENT_TIMEOUT, stats.wait_for(condition))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
        .expect("stats sender alive")
        .clone()
}

#[tokio::test]
async fn seed_scenario_cancel_stops_the_loop_and_echo_still_works() {
    let example = fast_example();
    let (addr, _server) = serve(example.clone(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");

    let call: Call<()> = client.example().finite_loop(());
    wait_for(&example, "three iterations", |s| s.iterations >= 3).await;
    call.cancel();
    let at_stop = wait_for(&example, "the handler to be dropped", |s| s.stopped == 1).await;
    assert_eq!(at_stop.started, 1);
    assert_eq!(at_stop.completed, 0);

    // Forty loop periods later the count has not moved: the work stopped, not just the waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(example.stats().iterations, at_stop.iterations);

    let cancelled = call.await.expect_err("a cancelled call fails");
    assert_eq!(cancelled.code(), Some(Code::Cancelled));

    let echo = client.example().echo("hello world".to_string()).await;
    assert_eq!(echo, Ok("hello world".to_string()));
}

#[tokio::test]
async fn dropping_a_pending_call_cancels_it() {
    let example = fast_example();
    let (addr, _server) = serve(example.clone(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");

    let call = client.example().finite_loop(());
    wait_for(&example, "the loop to run", |s| s.iterations >= 1).await;
    drop(call);
    wait_for(&example, "the handler to be dropped", |s| s.stopped == 1).await;

    // The same happens to a call abandoned by a timeout around it.
    let timed_out = tokio::time::timeout(Duration::from_millis(20), client.example().finite_loop(())).await;
    assert!(timed_out.is_err());
    wait_for(&example, "the second handler to be dropped", |s| s.stopped == 2).await;
    assert_eq!(example.stats().completed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_echo_calls_each_get_their_own_answer() {
    let (addr, _server) = serve(fast_example(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");

    // All thousand are in flight at once: each was sent when it was made.
    let calls: Vec<_> = (0..1000).map(|i| (i, client.example().echo(format!("message {i}")))).collect();
    // And some from concurrent tasks, too.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1000..1100 {
        let client = client.clone();
        tasks.spawn(async move { (i, client.example().echo(format!("message {i}")).await) });
    }
    for (i, call) in calls {
        assert_eq!(call.await, Ok(format!("message {i}")));
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, reply) = joined.expect("task");
        assert_eq!(reply, Ok(format!("message {i}")));
    }
}

#[tokio::test]
async fn closing_the_client_cancels_its_running_handlers() {
    let example = fast_example();
    let (addr, _server) = serve(example.clone(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");

    for _ in 0..3 {
        client.example().finite_loop(()).detach();
    }
    wait_for(&example, "three handlers to start", |s| s.started == 3).await;
    // Detached calls run on while the client lives.
    let before = example.stats().iterations;
    wait_for(&example, "detached loops to keep going", |s| s.iterations >= before + 6).await;
    drop(client);
    let stats = wait_for(&example, "all three handlers to be dropped", |s| s.stopped == 3).await;
    assert_eq!(stats.completed, 0);
}

#[tokio::test]
async fn unknown_method_and_service_get_unimplemented_and_the_connection_survives() {
    let (addr, _server) = serve(fast_example(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let options = CallOptions::default();

    let call: Call<(), String> = client.call(Method::new("Example", "no_such_method"), &(), &options);
    let status = call.await.expect_err("unknown method").status().cloned().expect("a status");
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(status.message(), "the service `Example` has no method `no_such_method`");

    let call: Call<(), String> = client.call(Method::new("Nowhere", "echo"), &(), &options);
    let status = call.await.expect_err("unknown service").status().cloned().expect("a status");
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(status.message(), "the server has no service `Nowhere` (it serves: Example, Probe)");

    assert_eq!(client.example().echo("still here".into()).await, Ok("still here".into()));
}

#[tokio::test]
async fn arguments_of_the_wrong_type_get_invalid_argument() {
    let (addr, _server) = serve(fast_example(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    // `echo` takes a string; send a bool instead.
    let call: Call<String, String> = client.call(Method::new("Example", "echo"), &true, &CallOptions::default());
    let status = call.await.expect_err("bad argument").status().cloned().expect("a status");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("the argument of `Example.echo` did not decode"), "{}", status.message());
    assert_eq!(client.example().echo("fine".into()).await, Ok("fine".into()));
}

#[tokio::test]
async fn cancelling_a_completed_call_does_nothing() {
    let (addr, _server) = serve(fast_example(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let call = client.example().echo("done".into());
    // Wait for the reply to arrive, by completing another call issued after it.
    assert_eq!(client.example().echo("later".into()).await, Ok("later".into()));
    call.cancel();
    assert_eq!(call.await, Ok("done".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_sees_cancellation_in_its_context() {
    let probe = Probe::default();
    let (addr, _server) = serve(fast_example(), probe.clone()).await;
    let client = Client::dial(addr).await.expect("dial");

    let call = client.probe().spin(u64::MAX);
    tokio::time::timeout(EVENT_TIMEOUT, async {
        while probe.spinning.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("spin started");
    call.cancel();
    let mut spun = probe.spun.subscribe();
    let reached = tokio::time::timeout(EVENT_TIMEOUT, spun.wait_for(Option::is_some))
        .await
        .expect("spin stopped")
        .expect("sender alive")
        .expect("checked by wait_for");
    assert!(reached < u64::MAX, "the loop stopped early, at {reached}");
}

#[tokio::test]
async fn application_errors_are_typed_and_distinct_from_statuses() {
    let (addr, _server) = serve(fast_example(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let result = client.probe().fail("no such thing: ünïcödé ✓".into()).await;
    assert_eq!(result, Err(Error::App("no such thing: ünïcödé ✓".to_string())));
    assert_eq!(result.expect_err("fails").code(), None);
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_own_call() {
    let example = fast_example();
    let (addr, _server) = serve(example.clone(), Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    let running = client.example().finite_loop(());

    let status = client.probe().explode("kaboom".into()).await.expect_err("panics").status().cloned().expect("status");
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(status.message(), "the handler of `Probe.explode` panicked: kaboom");

    // The connection and the other call are unaffected.
    assert_eq!(client.example().echo("after".into()).await, Ok("after".into()));
    wait_for(&example, "the loop to keep running", |s| s.iterations >= 2).await;
    assert_eq!(example.stats().stopped, 0);
    drop(running);
}

#[tokio::test]
async fn client_and_server_work_over_any_byte_stream() {
    let example = fast_example();
    let server = Server::builder().register(ExampleServer::new(example.clone())).build();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve_connection(server_io).await }
    });
    let client = Client::new(client_io);
    client.ready().await.expect("handshake over the pipe");
    assert_eq!(client.example().echo("piped".into()).await, Ok("piped".into()));

    let call = client.example().finite_loop(());
    wait_for(&example, "the loop to run", |s| s.iterations >= 1).await;
    call.cancel();
    wait_for(&example, "the handler to be dropped", |s| s.stopped == 1).await;

    drop((call, client));
    tokio::time::timeout(EVENT_TIMEOUT, serving).await.expect("connection ends").expect("task");
}

#[tokio::test]
async fn dialing_nothing_fails_with_unavailable() {
    // Bind then drop, so the port is (very likely) closed.
    let addr = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let err = Client::dial(addr).await.expect_err("nobody listens");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().starts_with("could not connect: "), "{}", err.message());
    assert!(std::error::Error::source(&err).is_some(), "the io::Error is the source");
}
