//! Handlers that compute without awaiting: written the documented way (`Context::checkpoint`,
//! `Context::run_blocking`) they see their cancel within milliseconds, and no handler, however
//! busy, keeps the server from reading other connections. The server runs on a 2-worker runtime
//! of its own, as in production: a client sharing its workers could hide a stall.

use crate::raw;

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tidl_runtime::{CallOptions, Client, Context, Error, Incoming, Invoke, Method, Server, ServerConfig, Service};
use tokio::sync::mpsc;

/// What the handlers report: that one started, and when one stopped.
#[derive(Debug)]
enum Event {
    Started,
    /// How far a `spin` loop got.
    Spun(u64),
    Stopped(Instant),
}

/// Records when a handler's future (or its blocking work) ends, however it ends.
struct StopGuard(mpsc::UnboundedSender<Event>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Event::Stopped(Instant::now()));
    }
}

/// Computes for about `ms` milliseconds without awaiting anything.
fn compute(ms: u64) -> u64 {
    let until = Instant::now() + Duration::from_millis(ms);
    let mut x = 0u64;
    while Instant::now() < until {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

/// `Busy.plain(ms)` computes with no checks at all; `Busy.checked(ms)` computes in 1 ms slices
/// with a checkpoint between them; `Busy.blocking(ms)` computes on the blocking pool, checking
/// its context; `Busy.spin(n)` counts to `n` without ever awaiting, until its context says it
/// is cancelled; `Busy.echo(s)` answers at once.
struct Busy(mpsc::UnboundedSender<Event>);

impl Service for Busy {
    fn name(&self) -> &'static str {
        "Busy"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        let events = self.0.clone();
        match method {
            "plain" => request.spawn(Method::new("Busy", "plain"), move |_ctx: Context, ms: u64| async move {
                let _ = events.send(Event::Started);
                let _guard = StopGuard(events);
                Ok::<_, Error>(compute(ms))
            }),
            "checked" => request.spawn(Method::new("Busy", "checked"), move |ctx: Context, ms: u64| async move {
                let _ = events.send(Event::Started);
                let _guard = StopGuard(events);
                let mut x = 0;
                for _ in 0..ms {
                    ctx.checkpoint().await?;
                    x ^= compute(1);
                }
                Ok::<_, Error>(x)
            }),
            "blocking" => request.spawn(Method::new("Busy", "blocking"), move |ctx: Context, ms: u64| async move {
                let _ = events.send(Event::Started);
                let x = ctx
                    .run_blocking(move |ctx| {
                        let _guard = StopGuard(events);
                        let mut x = 0;
                        for _ in 0..ms {
                            ctx.check()?;
                            x ^= compute(1);
                        }
                        Ok::<_, Error>(x)
                    })
                    .await?;
                Ok::<_, Error>(x)
            }),
            "spin" => request.spawn(Method::new("Busy", "spin"), move |ctx: Context, n: u64| async move {
                let _ = events.send(Event::Started);
                let _guard = StopGuard(events.clone());
                let mut i = 0;
                // Never awaits, so only the context can stop it.
                while i < n && !ctx.is_cancelled() {
                    i = std::hint::black_box(i + 1);
                }
                let _ = events.send(Event::Spun(i));
                Ok::<_, Error>(i)
            }),
            "echo" => {
                request.spawn(Method::new("Busy", "echo"), |_ctx: Context, s: String| async move { Ok::<_, Error>(s) });
            }
            _ => return Err(request),
        }
        Ok(())
    }
}

/// A server on a 2-worker runtime of its own, in a thread of its own; its address and the
/// handlers' events. The runtime ends when the test process does.
fn server() -> (String, mpsc::UnboundedReceiver<Event>) {
    server_on(2)
}

/// A server as [`server`] makes, on `workers` workers.
fn server_on(workers: usize) -> (String, mpsc::UnboundedReceiver<Event>) {
    server_with(workers, ServerConfig::default())
}

/// A server as [`server`] makes, on `workers` workers, with `config`.
fn server_with(workers: usize, config: ServerConfig) -> (String, mpsc::UnboundedReceiver<Event>) {
    let (events_tx, events) = mpsc::unbounded_channel();
    let (addr_tx, addr_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let server = Server::builder().register(Busy(events_tx)).config(config).build();
            let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
            addr_tx.send(addr.to_string()).expect("report the address");
            std::future::pending::<()>().await;
        });
    });
    (addr_rx.recv().expect("server address"), events)
}

async fn started(events: &mut mpsc::UnboundedReceiver<Event>) {
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("handler starts in time");
    assert!(matches!(event, Some(Event::Started)), "{event:?}");
}

async fn stopped(events: &mut mpsc::UnboundedReceiver<Event>) -> Instant {
    match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("handler stops in time") {
        Some(Event::Stopped(at)) => at,
        other => panic!("expected the handler to stop, got {other:?}"),
    }
}

/// Times one echo on a new connection.
async fn echo_on_a_new_connection(addr: &str) -> Duration {
    let start = Instant::now();
    let client = Client::dial(addr).await.expect("dial while the handler computes");
    let reply: Result<String, Error> = client.call(Method::new("Busy", "echo"), "hi", &CallOptions::default()).await;
    assert_eq!(reply, Ok("hi".to_owned()));
    start.elapsed()
}

/// Generous: the stall this guards against lasted the whole computation (1.5 s or more, twice
/// this); a served call takes well under a millisecond.
const PROMPTLY: Duration = Duration::from_millis(750);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_handler_sees_its_cancel_within_milliseconds_and_others_are_served() {
    let (addr, mut events) = server();
    let client = Client::dial(&addr).await.expect("dial");
    let call: tidl_runtime::Call<u64> = client.call(Method::new("Busy", "checked"), &5_000u64, &CallOptions::default());
    started(&mut events).await;
    let served_in = echo_on_a_new_connection(&addr).await;
    assert!(served_in < PROMPTLY, "another connection waited {served_in:?} for a computing handler");
    let cancelled_at = Instant::now();
    call.cancel();
    let stop = stopped(&mut events).await.saturating_duration_since(cancelled_at);
    assert!(stop < PROMPTLY, "the handler ran on for {stop:?} after its cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_work_sees_its_cancel_within_milliseconds() {
    let (addr, mut events) = server();
    let client = Client::dial(&addr).await.expect("dial");
    let call: tidl_runtime::Call<u64> =
        client.call(Method::new("Busy", "blocking"), &5_000u64, &CallOptions::default());
    started(&mut events).await;
    let served_in = echo_on_a_new_connection(&addr).await;
    assert!(served_in < PROMPTLY, "another connection waited {served_in:?} for a computing handler");
    let cancelled_at = Instant::now();
    call.cancel();
    let stop = stopped(&mut events).await.saturating_duration_since(cancelled_at);
    assert!(stop < PROMPTLY, "the blocking work ran on for {stop:?} after its cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_computing_with_no_checks_does_not_stall_other_connections() {
    let (addr, mut events) = server();
    let client = Client::dial(&addr).await.expect("dial");
    let call: tidl_runtime::Call<u64> = client.call(Method::new("Busy", "plain"), &1_500u64, &CallOptions::default());
    started(&mut events).await;
    let served_in = echo_on_a_new_connection(&addr).await;
    assert!(served_in < PROMPTLY, "another connection waited {served_in:?} for a computing handler");
    // The same connection is read too: a call made on it now is answered before the handler ends.
    let start = Instant::now();
    let echo: Result<String, Error> = client.call(Method::new("Busy", "echo"), "again", &CallOptions::default()).await;
    assert_eq!(echo, Ok("again".to_owned()));
    assert!(start.elapsed() < PROMPTLY, "the busy handler's own connection waited {:?}", start.elapsed());
    assert!(call.await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_never_awaits_sees_its_cancel_in_its_context() {
    let (addr, mut events) = server();
    let client = Client::dial(&addr).await.expect("dial");
    let call: tidl_runtime::Call<u64> = client.call(Method::new("Busy", "spin"), &u64::MAX, &CallOptions::default());
    started(&mut events).await;
    let cancelled_at = Instant::now();
    call.cancel();
    match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("the loop ends in time") {
        Some(Event::Spun(reached)) => assert!(reached < u64::MAX, "the loop stopped early, at {reached}"),
        other => panic!("expected the loop to end, got {other:?}"),
    }
    let stop = stopped(&mut events).await.saturating_duration_since(cancelled_at);
    assert!(stop < PROMPTLY, "the handler ran on for {stop:?} after its cancel");
}

/// Requests that arrive in one read are started together, by one task (`sched/batch.rs`): a
/// handler that computes in its first poll must not hold up the calls read with it. The watchdog
/// hands the rest of the batch to another worker within about a millisecond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_computing_handler_does_not_hold_up_the_calls_read_with_it() {
    let (addr, mut events) = server();
    let mut conn = raw::Raw::connect(addr.parse().expect("an address")).await;
    // One write, so that the server reads the requests together: the busy one first.
    let mut requests = raw::request(1, "Busy", "plain", None, &raw::varint(1_500));
    for id in 2..10 {
        requests.extend(raw::request(id, "Busy", "echo", None, &raw::string("hi")));
    }
    let sent_at = Instant::now();
    conn.send(&requests).await;
    started(&mut events).await;
    for _ in 2..10 {
        match conn.recv().await {
            raw::Frame::ResponseOk { id, payload } => {
                assert!((2..10).contains(&id), "call {id} answered before the echoes");
                assert_eq!(payload, raw::string("hi"));
            }
            other => panic!("expected an echo's reply, got {other:?}"),
        }
    }
    let waited = sent_at.elapsed();
    assert!(waited < PROMPTLY, "the echoes read with a computing handler waited {waited:?}");
    assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { id: 1, .. }));
}

/// The server's reader runs a read's first polls itself (`sched/batch.rs`): when one of them
/// computes, the watchdog hands reading to a new task, so the connection the computing handler
/// was read from is read on, and answered, while it computes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_computing_handler_read_with_others_does_not_stop_its_connection_being_read() {
    let (addr, mut events) = server();
    let mut conn = raw::Raw::connect(addr.parse().expect("an address")).await;
    busy_with_an_echo(&mut conn, &mut events, 1_500).await;
    // A request sent after them, while the first still computes, is read and answered.
    let sent_at = Instant::now();
    conn.send(&raw::request(3, "Busy", "echo", None, &raw::string("later"))).await;
    match conn.recv().await {
        raw::Frame::ResponseOk { id, payload } => {
            assert_eq!(id, 3, "expected the later echo first");
            assert_eq!(payload, raw::string("later"));
        }
        other => panic!("expected the later echo's reply, got {other:?}"),
    }
    let waited = sent_at.elapsed();
    assert!(waited < PROMPTLY, "a request sent while a handler computed on the reader waited {waited:?}");
    assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { id: 1, .. }));
}

/// Two computing handlers read together: the first holds the reader's task, the second the
/// task that rescued the rest of their batch (a third worker is left for everything else).
/// Reading is handed over once, and the connection is read and answered throughout, and after
/// both have finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_computing_handlers_read_together_do_not_stop_their_connection_being_read() {
    let (addr, mut events) = server_on(3);
    let mut conn = raw::Raw::connect(addr.parse().expect("an address")).await;
    let mut requests = raw::request(1, "Busy", "plain", None, &raw::varint(1_500));
    requests.extend(raw::request(2, "Busy", "plain", None, &raw::varint(1_500)));
    requests.extend(raw::request(3, "Busy", "echo", None, &raw::string("with them")));
    conn.send(&requests).await;
    started(&mut events).await;
    assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { id: 3, .. }));
    let mut next_id = 4;
    let mut answered = 0;
    // Pairs of echoes, each pair read together (a batch of its own), while the two compute and
    // after they have finished.
    while answered < 2 {
        let sent_at = Instant::now();
        let mut pair = raw::request(next_id, "Busy", "echo", None, &raw::string("pair"));
        pair.extend(raw::request(next_id + 1, "Busy", "echo", None, &raw::string("pair")));
        conn.send(&pair).await;
        let mut echoes = 0;
        while echoes < 2 {
            match conn.recv().await {
                raw::Frame::ResponseOk { id: 1 | 2, .. } => answered += 1,
                raw::Frame::ResponseOk { id, .. } if id == next_id || id == next_id + 1 => echoes += 1,
                other => panic!("expected an echo's reply, got {other:?}"),
            }
        }
        let waited = sent_at.elapsed();
        assert!(waited < PROMPTLY, "echoes sent while handlers computed waited {waited:?}");
        next_id += 2;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent_at = Instant::now();
    let mut pair = raw::request(next_id, "Busy", "echo", None, &raw::string("after"));
    pair.extend(raw::request(next_id + 1, "Busy", "echo", None, &raw::string("after")));
    conn.send(&pair).await;
    for _ in 0..2 {
        assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { .. }));
    }
    assert!(sent_at.elapsed() < PROMPTLY, "the connection was not read after its handlers finished");
}

/// A server on a 2-worker runtime of its own, with `config`, serving each connection it accepts
/// with `Server::serve_connection`; its address, the handlers' events, and a message each time a
/// `serve_connection` returns.
fn serving_each(config: ServerConfig) -> (String, mpsc::UnboundedReceiver<Event>, mpsc::UnboundedReceiver<()>) {
    let (events_tx, events) = mpsc::unbounded_channel();
    let (served_tx, served) = mpsc::unbounded_channel();
    let (addr_tx, addr_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("server runtime");
        runtime.block_on(async move {
            let server = Server::builder().register(Busy(events_tx)).config(config).build();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
            addr_tx.send(listener.local_addr().expect("an address").to_string()).expect("report the address");
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                let (server, served_tx) = (server.clone(), served_tx.clone());
                tokio::spawn(async move {
                    server.serve_connection(stream).await;
                    let _ = served_tx.send(());
                });
            }
        });
    });
    (addr_rx.recv().expect("server address"), events, served)
}

/// Sends a busy call of `ms` and an echo in one write, and waits for the echo's reply: the
/// busy handler then computes on the reader's task, and reading has been handed to another.
async fn busy_with_an_echo(conn: &mut raw::Raw, events: &mut mpsc::UnboundedReceiver<Event>, ms: u64) {
    let mut requests = raw::request(1, "Busy", "plain", None, &raw::varint(ms));
    requests.extend(raw::request(2, "Busy", "echo", None, &raw::string("with it")));
    conn.send(&requests).await;
    started(events).await;
    assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { id: 2, .. }));
}

/// `serve_connection` returns when its connection closes, not when the task that started
/// reading it hands reading over and finishes its stuck poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_connection_returns_when_the_connection_closes_not_at_a_handoff() {
    let (addr, mut events, mut served) = serving_each(ServerConfig::default());
    let mut conn = raw::Raw::connect(addr.parse().expect("an address")).await;
    busy_with_an_echo(&mut conn, &mut events, 300).await;
    // The busy call's reply: the task that read it has finished its poll.
    assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { id: 1, .. }));
    // The connection is still served, and `serve_connection` has not returned.
    conn.send(&raw::request(3, "Busy", "echo", None, &raw::string("still"))).await;
    assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { id: 3, .. }));
    assert!(served.try_recv().is_err(), "serve_connection returned while its connection was open");
    drop(conn);
    let returned = tokio::time::timeout(Duration::from_secs(5), served.recv()).await;
    assert!(matches!(returned, Ok(Some(()))), "serve_connection did not return after the client left");
}

/// A connection closed while a handler read on it still computes in its first poll gives its
/// place under `max_connections` back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_frees_its_place_while_a_handler_read_on_it_computes() {
    let mut config = ServerConfig::default();
    config.max_connections = 1;
    let (addr, mut events) = server_with(3, config);
    let mut conn = raw::Raw::connect(addr.parse().expect("an address")).await;
    busy_with_an_echo(&mut conn, &mut events, 3_000).await;
    drop(conn);
    // The server sees the close, then its place is free: a new client is served, well before
    // the handler's 3 s are over.
    let start = Instant::now();
    loop {
        let client = Client::dial(&addr).await;
        if let Ok(client) = client {
            let echo: Result<String, Error> =
                client.call(Method::new("Busy", "echo"), "next", &CallOptions::default()).await;
            if echo.is_ok() {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_millis(1_500), "no place was freed for a new client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
