//! tower layers on both sides (feature `tower`): a server's calls go through its layers to the
//! handler, a client's through its stack to the connection; a layer's errors become statuses;
//! and a cancel still stops the handler through timeout, concurrency-limit and load-shed layers.
//! The servers run on runtimes of their own, as in production.

#![cfg(feature = "tower")]

use crate::common;

use common::{EVENT_TIMEOUT, Probe, call, serve_alone, status};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tidl_runtime::tower::{ClientService, Handling, Layered};
use tidl_runtime::{CallOptions, Client, Code, Context, Invoke, Method, Server};
use tower::ServiceBuilder;

/// Calls `Probe.<name>` with `arg` through `invoke`.
fn call_with<A: tidl_runtime::serde::Serialize + ?Sized, T>(
    invoke: &impl Invoke,
    name: &'static str,
    arg: &A,
    options: &CallOptions,
) -> tidl_runtime::Call<T> {
    invoke.call(Method::new("Probe", name), arg, options)
}

#[tokio::test]
async fn a_cancel_stops_the_handler_through_timeout_concurrency_limit_and_load_shed_layers() {
    let probe = Probe::default();
    let addr = serve_alone({
        let probe = probe.clone();
        move || {
            let stack = ServiceBuilder::new().load_shed().concurrency_limit(1).timeout(Duration::from_secs(60));
            Server::builder().register(probe).layer(stack).build()
        }
    });
    let client = Client::dial(addr).await.expect("dial");

    for round in 1..=3 {
        let sleeping = call::<_, ()>(&client, "sleep", &60_000u64);
        probe.wait("the handler started", |s| s.started == round).await;
        sleeping.cancel();
        let stats = probe.wait("the handler was dropped", |s| s.dropped == round).await;
        assert_eq!(stats.finished, 0);
    }
    // The only permit came back each time: a call still goes through.
    assert_eq!(call::<_, String>(&client, "echo", "after").await, Ok("after".to_owned()));
}

#[tokio::test]
async fn a_load_shedding_layer_refuses_unstarted_while_the_limit_is_reached() {
    let probe = Probe::default();
    let addr = serve_alone({
        let probe = probe.clone();
        move || Server::builder().register(probe).layer(ServiceBuilder::new().load_shed().concurrency_limit(1)).build()
    });
    let client = Client::dial(addr).await.expect("dial");

    let busy = call::<_, ()>(&client, "sleep", &60_000u64);
    probe.wait("the handler started", |s| s.started == 1).await;
    let refused = status(call::<_, String>(&client, "echo", "shed").await);
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
    assert!(refused.is_unstarted(), "the server said the call never started: {refused}");
    assert!(refused.message().contains("load-shedding layer refused `Probe.echo`"), "{refused}");

    busy.cancel();
    probe.wait("the handler was dropped", |s| s.dropped == 1).await;
    assert_eq!(call::<_, String>(&client, "echo", "room").await, Ok("room".to_owned()));
}

/// Counts the times the layers under it were not ready: a call waiting for a permit.
#[derive(Clone)]
struct Blocked<S> {
    inner: S,
    blocked: Arc<tokio::sync::watch::Sender<usize>>,
}

impl<S: tower::Service<Handling>> tower::Service<Handling> for Blocked<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        let ready = self.inner.poll_ready(cx);
        if ready.is_pending() {
            self.blocked.send_modify(|n| *n += 1);
        }
        ready
    }

    fn call(&mut self, request: Handling) -> S::Future {
        self.inner.call(request)
    }
}

#[tokio::test]
async fn a_call_waiting_for_a_concurrency_permit_is_cancelled_before_its_handler_starts() {
    let probe = Probe::default();
    let blocked = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let addr = serve_alone({
        let (probe, blocked) = (probe.clone(), blocked.clone());
        move || {
            let stack = ServiceBuilder::new()
                .layer_fn(move |inner| Blocked { inner, blocked: blocked.clone() })
                .concurrency_limit(1);
            Server::builder().register(probe).layer(stack).build()
        }
    });
    let client = Client::dial(addr).await.expect("dial");

    let first = call::<_, ()>(&client, "sleep", &60_000u64);
    probe.wait("the first handler started", |s| s.started == 1).await;
    let waiting = call::<_, ()>(&client, "sleep", &60_000u64);
    let mut blocked = blocked.subscribe();
    let waits = tokio::time::timeout(EVENT_TIMEOUT, blocked.wait_for(|n| *n >= 1));
    waits.await.expect("the second call waits for the permit").expect("sender");
    waiting.cancel();
    first.cancel();
    let stats = probe.wait("the first handler was dropped", |s| s.dropped == 1).await;
    assert_eq!(stats.started, 1, "the waiting call never reached its handler");
    assert_eq!(call::<_, String>(&client, "echo", "free").await, Ok("free".to_owned()));
    assert_eq!(probe.stats().started, 1);
}

#[tokio::test]
async fn a_server_timeout_layer_answers_deadline_exceeded_and_drops_the_handler() {
    let probe = Probe::default();
    let addr = serve_alone({
        let probe = probe.clone();
        move || {
            Server::builder().register(probe).layer(ServiceBuilder::new().timeout(Duration::from_millis(100))).build()
        }
    });
    let client = Client::dial(addr).await.expect("dial");

    let expired = status(call::<_, ()>(&client, "sleep", &60_000u64).await);
    assert_eq!(expired.code(), Code::DeadlineExceeded, "{expired}");
    assert_eq!(expired.message(), "a timeout layer of the server stopped `Probe.sleep`");
    let stats = probe.wait("the handler was dropped", |s| s.dropped == 1).await;
    assert_eq!(stats.finished, 0);
    // A handler's own status passes through the layers unchanged.
    let failed = status(call::<_, ()>(&client, "fail", &("not_found", "gone")).await);
    assert_eq!((failed.code(), failed.message()), (Code::NotFound, "gone"));
}

#[tokio::test]
async fn layers_see_the_call_and_may_change_its_metadata_and_later_layers_wrap_earlier_ones() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = serve_alone({
        let order = order.clone();
        move || {
            let (inner, outer) = (order.clone(), order);
            Server::builder()
                .register(Probe::default())
                .intercept(|ctx: &mut Context| {
                    ctx.metadata_mut().insert("x-seen-by", "interceptor");
                    Ok(())
                })
                .layer(tower::util::MapRequestLayer::new(move |mut request: Handling| {
                    inner.lock().expect("order").push(format!("inner {}", request.method()));
                    let user = request.context().metadata().get_str("authorization").map(str::to_owned);
                    request.context_mut().metadata_mut().insert("x-user", user.unwrap_or_default());
                    request
                }))
                .layer(tower::util::MapRequestLayer::new(move |request: Handling| {
                    outer.lock().expect("order").push("outer".to_owned());
                    request
                }))
                .build()
        }
    });
    let client = Client::dial(addr).await.expect("dial");
    let options = CallOptions::default().metadata("authorization", "alice");
    let get = |key: &str| call_with::<_, Option<String>>(&client, "meta", key, &options);

    assert_eq!(get("x-user").await, Ok(Some("alice".to_owned())));
    assert_eq!(get("x-seen-by").await, Ok(Some("interceptor".to_owned())), "interceptors run inside the layers");
    assert_eq!(*order.lock().expect("order"), ["outer", "inner Probe.meta", "outer", "inner Probe.meta"]);
}

#[tokio::test]
async fn a_cancel_through_a_client_stack_stops_the_handler_on_the_server() {
    let probe = Probe::default();
    let addr = serve_alone({
        let probe = probe.clone();
        move || Server::builder().register(probe).build()
    });
    let client = Client::dial(addr).await.expect("dial");
    let stack = ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(4)
        .timeout(Duration::from_secs(60))
        .service(ClientService::new(client.clone()));
    let layered = Layered::new(stack);

    let sleeping = tokio::spawn(call_with::<_, ()>(&layered, "sleep", &60_000u64, &CallOptions::default()));
    probe.wait("the handler started", |s| s.started == 1).await;
    sleeping.abort(); // drops the `Call`, inside the task, wherever it is in the stack
    let stats = probe.wait("the handler was dropped", |s| s.dropped == 1).await;
    assert_eq!(stats.finished, 0);

    // `Call::cancel` does the same, and says `Cancelled`.
    let call = call_with::<_, ()>(&layered, "sleep", &60_000u64, &CallOptions::default());
    let mut call = std::pin::pin!(call);
    tokio::select! {
        biased;
        _ = &mut call => panic!("the call ended early"),
        _ = probe.wait("the second handler started", |s| s.started == 2) => {}
    }
    call.cancel();
    assert_eq!(status(call.await).code(), Code::Cancelled);
    probe.wait("the second handler was dropped", |s| s.dropped == 2).await;
    assert_eq!(client.calls_in_flight(), 0);
}

#[tokio::test]
async fn client_layers_errors_become_statuses_and_their_timeout_cancels_the_call() {
    let probe = Probe::default();
    let addr = serve_alone({
        let probe = probe.clone();
        move || Server::builder().register(probe).build()
    });
    let client = Client::dial(addr).await.expect("dial");
    let timed = Layered::new(
        ServiceBuilder::new().timeout(Duration::from_millis(100)).service(ClientService::new(client.clone())),
    );
    let expired = status(call_with::<_, ()>(&timed, "sleep", &60_000u64, &CallOptions::default()).await);
    assert_eq!(expired.code(), Code::DeadlineExceeded, "{expired}");
    assert_eq!(expired.message(), "a timeout layer of the client stopped `Probe.sleep`");
    probe.wait("the handler was dropped", |s| s.dropped == 1).await;

    // Load shedding on the client: refused before anything is sent, so marked unstarted.
    let shed = Layered::new(
        ServiceBuilder::new().load_shed().concurrency_limit(1).service(ClientService::new(client.clone())),
    );
    let busy = tokio::spawn(call_with::<_, ()>(&shed, "sleep", &60_000u64, &CallOptions::default()));
    probe.wait("the handler started", |s| s.started == 2).await;
    let refused = status(call_with::<_, String>(&shed, "echo", "x", &CallOptions::default()).await);
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
    assert!(refused.is_unstarted(), "{refused}");
    busy.abort();
    probe.wait("the handler was dropped", |s| s.dropped == 2).await;
    let echoed =
        tokio::time::timeout(EVENT_TIMEOUT, call_with::<_, String>(&shed, "echo", "y", &CallOptions::default()));
    assert_eq!(echoed.await.expect("in time"), Ok("y".to_owned()));
}

#[tokio::test]
async fn a_user_layer_counts_calls_on_the_client() {
    let probe = Probe::default();
    let addr = serve_alone({
        let probe = probe.clone();
        move || Server::builder().register(probe).build()
    });
    let client = Client::dial(addr).await.expect("dial");
    let counted = Arc::new(AtomicUsize::new(0));
    let count = counted.clone();
    let layered = Layered::new(
        ServiceBuilder::new()
            .map_request(move |request: tidl_runtime::Request| {
                count.fetch_add(1, Ordering::SeqCst);
                request
            })
            .service(ClientService::new(client)),
    );
    for i in 0..3 {
        assert_eq!(call_with::<_, u64>(&layered, "ticks", &1u64, &CallOptions::default()).await, Ok(1), "call {i}");
    }
    assert_eq!(counted.load(Ordering::SeqCst), 3);
}
