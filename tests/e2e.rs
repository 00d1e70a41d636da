//! The whole path through generated code: the seed scenario over loopback TCP, generated clients
//! and servers for every kind of signature in `services.tidl` and `tests/support.tidl`, typed
//! application errors, a handler's context passed down a chain of generated clients, and a
//! generated client over a test double of [`Invoke`].
//!
//! How the runtime behaves (cancellation, deadlines, limits, shutdown, keepalive, transports,
//! statuses) is tested in `runtime/tests/`, against hand-written services.

use example::{Example, ExampleClient, ExampleClientExt, ExampleServer, LoopStats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidl_runtime::bytes::Bytes;
use tidl_runtime::{Call, Client, Code, Context, Error, Invoke, Method, Reply, ReplyFuture, Request, Server, Status};
use tokio::sync::watch;

// Private to this test: the generated public API is partly unused here.
#[allow(unreachable_pub, dead_code)]
mod support {
    tidl_runtime::include_tidl!("support");
}

use support::{AppError, Hop, InteropClientExt, InteropServer, LargeRequest, ProbeClientExt, ProbeServer};

/// Generous bound for events that take microseconds when things work.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// What the `relay` handlers of one server have done.
#[derive(Clone, Debug, Default)]
struct Stats {
    started: u64,
    /// Handlers dropped before they finished.
    dropped: u64,
}

/// `Interop` on generated code: interop cases, and chains of servers through generated clients.
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

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.stats.send_modify(|s| s.dropped += 1);
        }
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
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(())
    }

    async fn fail_with(&self, _ctx: Context, error: AppError) -> Result<(), Error<AppError>> {
        Err(Error::App(error))
    }

    async fn relay(&self, ctx: Context, wait: bool) -> Result<Vec<Hop>, Error> {
        self.stats.send_modify(|s| s.started += 1);
        let mut running = Running { stats: &self.stats, finished: false };
        let hop = Hop { remaining_micros: ctx.remaining().map(|d| d.as_micros() as u64) };
        let hops = match &self.next {
            Some(next) => {
                // The generated client carries the handler's context: deadline and cancel.
                let mut hops = next.interop().context(&ctx).relay(wait).await?;
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
            .expect("stats sender alive")
            .clone()
    }
}

/// `Probe` on generated code: an application error of the default type, `String`.
#[derive(Clone, Default)]
struct Probe;

impl support::Probe for Probe {
    async fn fail(&self, _ctx: Context, message: String) -> Result<(), Error> {
        Err(Error::App(message))
    }
}

/// A server with every service on a loopback port.
async fn serve(example: Example, interop: Interop) -> (SocketAddr, Server) {
    let server = Server::builder()
        .register(ExampleServer::new(example))
        .register(InteropServer::new(interop))
        .register(ProbeServer::new(Probe))
        .build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    (addr, server)
}

#[tokio::test]
async fn seed_scenario_cancel_stops_the_loop_and_echo_still_works() {
    let example = fast_example();
    let (addr, _server) = serve(example.clone(), Interop::default()).await;
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
async fn generated_clients_and_servers_round_trip_every_kind_of_signature() {
    let (addr, _server) = serve(fast_example(), Interop::default()).await;
    let client = Client::dial(addr).await.expect("dial");

    // `client.example()` and `ExampleClient::new(client)` are the same client.
    assert_eq!(client.example().echo("ünïcödé ✓".into()).await, Ok("ünïcödé ✓".into()));
    assert_eq!(ExampleClient::new(client.clone()).echo("new".into()).await, Ok("new".into()));
    // No argument and no reply.
    assert_eq!(client.interop().empty(()).await, Ok(()));
    // A struct with bytes in, bytes out.
    let request = LargeRequest { response_size: 314_159, payload: Bytes::from(vec![0; 271_828]) };
    let reply = client.interop().large(request).await.expect("large call");
    assert_eq!(reply.len(), 314_159);
    assert!(reply.iter().all(|b| *b == 0xab));
    // A list of structs with optional fields out; a per-call timeout through the generated client.
    let hops = client.interop().timeout(Duration::from_secs(20)).relay(false).await.expect("relay");
    assert_eq!(hops.len(), 1);
    assert!(hops[0].remaining_micros.is_some_and(|r| r <= 20_000_000 && r > 10_000_000), "{hops:?}");
    let hops = client.interop().relay(false).await.expect("relay without a timeout");
    assert_eq!(hops, vec![Hop { remaining_micros: None }]);
}

#[tokio::test]
async fn application_errors_are_typed_and_distinct_from_statuses() {
    let (addr, _server) = serve(fast_example(), Interop::default()).await;
    let client = Client::dial(addr).await.expect("dial");

    // A declared error type (`throws AppError`): its code and unicode message round trip exactly.
    let error = AppError { code: 4_040_404, message: "ünïcödé ✓ — 期限切れ 🚫\u{0}".into() };
    let result = client.interop().fail_with(error.clone()).await;
    assert_eq!(result, Err(Error::App(error)));
    assert_eq!(result.expect_err("fails").code(), None);

    // The default error type, a string.
    let result = client.probe().fail("no such thing: ünïcödé ✓".into()).await;
    assert_eq!(result, Err(Error::App("no such thing: ünïcödé ✓".to_string())));
    assert_eq!(result.expect_err("fails").code(), None);
}

/// Three servers, A -> B -> C, each relaying through a generated client with its handler's
/// context; a client of A, and the servers' `Interop`s.
async fn chain() -> (Client, [Interop; 3], [Server; 3]) {
    let c = Interop::default();
    let (c_addr, c_server) = serve(fast_example(), c.clone()).await;
    let b = Interop { next: Some(Client::dial(c_addr).await.expect("dial C")), ..Interop::default() };
    let (b_addr, b_server) = serve(fast_example(), b.clone()).await;
    let a = Interop { next: Some(Client::dial(b_addr).await.expect("dial B")), ..Interop::default() };
    let (a_addr, a_server) = serve(fast_example(), a.clone()).await;
    (Client::dial(a_addr).await.expect("dial A"), [a, b, c], [a_server, b_server, c_server])
}

#[tokio::test]
async fn a_context_passed_to_generated_clients_carries_the_deadline_down_a_chain() {
    let (client, _interops, _servers) = chain().await;
    let hops = client.interop().timeout(Duration::from_secs(20)).relay(false).await.expect("relay");
    let remaining: Vec<u64> = hops.iter().map(|h| h.remaining_micros.expect("every hop has a deadline")).collect();
    assert_eq!(remaining.len(), 3);
    assert!(remaining[0] <= 20_000_000 && remaining[0] > 10_000_000, "{remaining:?}");
    assert!(remaining[1] <= remaining[0] && remaining[2] <= remaining[1], "{remaining:?}");
}

#[tokio::test]
async fn a_context_passed_to_generated_clients_carries_the_cancel_down_a_chain() {
    let (client, [a, b, c], _servers) = chain().await;
    let call = client.interop().relay(true);
    c.wait("the call to reach the last server", |s| s.started == 1).await;
    call.cancel();
    for (name, interop) in [("A", &a), ("B", &b), ("C", &c)] {
        interop.wait(&format!("{name}'s handler to be dropped"), |s| s.dropped == 1).await;
    }
    assert_eq!(call.await.expect_err("cancelled").code(), Some(Code::Cancelled));
}

// A generated client over a test double.

/// How the double answers a method.
#[derive(Clone)]
enum Canned {
    /// With what this gives for the request.
    Reply(Arc<dyn Fn(&Request) -> Reply + Send + Sync>),
    /// Never: the reply's future stays pending until it is dropped.
    Never,
}

/// An [`Invoke`] that answers from a table of methods, and the status `otherwise` for the rest.
/// It records every request, and how many of its never-completing replies were dropped.
#[derive(Clone)]
struct Double {
    table: Arc<HashMap<&'static str, Canned>>,
    otherwise: Status,
    requests: Arc<Mutex<Vec<Request>>>,
    dropped: Arc<watch::Sender<u32>>,
}

/// Counts a never-completing reply as dropped.
struct DropGuard(Arc<watch::Sender<u32>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n += 1);
    }
}

impl Double {
    fn new(table: HashMap<&'static str, Canned>, otherwise: Status) -> Double {
        Double { table: Arc::new(table), otherwise, requests: Arc::default(), dropped: Arc::default() }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests lock").clone()
    }

    async fn wait_dropped(&self, n: u32) {
        let mut dropped = self.dropped.subscribe();
        tokio::time::timeout(EVENT_TIMEOUT, dropped.wait_for(|d| *d == n))
            .await
            .expect("the pending reply is dropped in time")
            .expect("sender alive");
    }
}

impl Invoke for Double {
    fn invoke(&self, request: Request) -> ReplyFuture {
        let key = format!("{}", request.method());
        let canned = self.table.get(key.as_str()).cloned();
        self.requests.lock().expect("requests lock").push(request.clone());
        match canned {
            Some(Canned::Reply(answer)) => {
                let reply = answer(&request);
                Box::pin(async move { reply })
            }
            Some(Canned::Never) => {
                let guard = DropGuard(self.dropped.clone());
                Box::pin(async move {
                    let _guard = guard;
                    std::future::pending::<Reply>().await
                })
            }
            None => {
                let status = self.otherwise.clone();
                Box::pin(async move { Reply::Status(status) })
            }
        }
    }
}

/// A double that answers `Example.echo` with a canned greeting for its argument, never answers
/// `Example.finite_loop`, and answers everything else `Unimplemented`.
fn example_double() -> Double {
    let echo: Arc<dyn Fn(&Request) -> Reply + Send + Sync> =
        Arc::new(|request: &Request| match request.decode::<String>() {
            Ok(text) => Reply::ok(&format!("canned: {text}")),
            Err(status) => Reply::Status(status),
        });
    Double::new(
        HashMap::from([("Example.echo", Canned::Reply(echo)), ("Example.finite_loop", Canned::Never)]),
        Status::unimplemented("the double has no answer for this"),
    )
}

#[tokio::test]
async fn a_generated_client_over_a_test_double_answers_from_its_table() {
    let double = example_double();

    // Both ways of getting a generated client work over the double.
    assert_eq!(ExampleClient::new(double.clone()).echo("hi".into()).await, Ok("canned: hi".into()));
    assert_eq!(double.example().echo("there".into()).await, Ok("canned: there".into()));
    // The generated client's options reach the double with the request.
    let timed = double.example().timeout(Duration::from_secs(5)).echo("timed".into()).await;
    assert_eq!(timed, Ok("canned: timed".into()));

    let requests = double.requests();
    let methods: Vec<Method> = requests.iter().map(Request::method).collect();
    assert_eq!(methods, vec![Method::new("Example", "echo"); 3]);
    assert_eq!(requests[1].decode::<String>(), Ok("there".to_owned()));
    assert_eq!(requests[0].options().get_timeout(), None);
    assert_eq!(requests[2].options().get_timeout(), Some(Duration::from_secs(5)));

    // A method the table does not have gets the table's status, through a generated client of
    // another service too.
    let unknown = double.interop().empty(()).await.expect_err("not in the table");
    assert_eq!(unknown, Error::Status(Status::unimplemented("the double has no answer for this")));
    assert_eq!(double.requests().last().map(Request::method), Some(Method::new("Interop", "empty")));
}

#[tokio::test]
async fn a_pending_call_on_a_test_double_is_cancelled_or_dropped_properly() {
    let double = example_double();

    // Cancelled: the double's reply future is dropped at once, and the call resolves to
    // `Cancelled`.
    let call = double.example().finite_loop(());
    assert_eq!(double.requests().len(), 1, "the call started when it was made");
    call.cancel();
    double.wait_dropped(1).await;
    let cancelled = call.await.expect_err("cancelled");
    assert_eq!(cancelled, Error::Status(Status::cancelled("`Example.finite_loop` was cancelled by the caller")));

    // Dropped after being polled: the reply future is dropped with it.
    let mut call = double.example().finite_loop(());
    assert!(tokio::time::timeout(Duration::from_millis(10), &mut call).await.is_err(), "it never completes");
    assert_eq!(*double.dropped.borrow(), 1, "still pending while the call lives");
    drop(call);
    double.wait_dropped(2).await;

    // Abandoned by a timeout around it.
    let timed_out = tokio::time::timeout(Duration::from_millis(10), double.example().finite_loop(())).await;
    assert!(timed_out.is_err());
    double.wait_dropped(3).await;
    assert_eq!(double.requests().len(), 3);

    // The double still answers.
    assert_eq!(double.example().echo("after".into()).await, Ok("canned: after".into()));
}
