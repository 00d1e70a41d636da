//! Interceptors. On the server they run before every handler, in order, in the handler's task; a
//! refusal answers the call with its status and the handler never runs; a cancel stops an
//! interceptor that is still waiting, as it stops a handler; what one writes into the metadata
//! the handler reads. On the client, async interceptors run before each unary call, may refuse
//! it (nothing is sent) or change its metadata, and take their time from its deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tidl_runtime::{
    AsyncClientInterceptor, CallOptions, Client, ClientConfig, Code, Context, Error, Incoming, InterceptFuture,
    Interceptor, Invoke, Method, Server, Service, Status,
};

/// `Guarded.run() -> string`, counting the handlers that ran, and `Guarded.meta(key) ->
/// option<string>`, the call's metadata under `key` as the handler sees it.
struct Guarded(Arc<AtomicUsize>);

impl Service for Guarded {
    fn name(&self) -> &'static str {
        "Guarded"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        let ran = self.0.clone();
        match method {
            "run" => request.spawn(Method::new("Guarded", "run"), move |_ctx, (): ()| async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>("ran".to_owned())
            }),
            "meta" => request.spawn(Method::new("Guarded", "meta"), move |ctx: Context, key: String| async move {
                Ok::<_, Error>(ctx.metadata().get_str(&key).map(str::to_owned))
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

/// Waits `delay`, counting the interceptions that started and those dropped before they ended.
struct Slow {
    delay: Duration,
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

struct DropGuard(Arc<AtomicUsize>, bool);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Interceptor for Slow {
    fn intercept<'a>(&'a self, _ctx: &'a mut Context) -> InterceptFuture<'a> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            let mut guard = DropGuard(self.dropped.clone(), false);
            tokio::time::sleep(self.delay).await;
            guard.1 = true;
            Ok(())
        })
    }
}

fn run(client: &Client, options: &CallOptions) -> tidl_runtime::Call<String, String> {
    client.call::<_, String, String>(Method::new("Guarded", "run"), &(), options)
}

#[tokio::test]
async fn a_refusing_interceptor_answers_its_status_and_the_handler_never_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (first, second) = (order.clone(), order.clone());
    let server = Server::builder()
        .register(Guarded(ran.clone()))
        .intercept(move |ctx: &mut Context| {
            first.lock().expect("order").push("token");
            match ctx.metadata().get_str("authorization") {
                Some("Bearer s3cret") => Ok(()),
                _ => Err(Status::unauthenticated("a valid bearer token is required")),
            }
        })
        .intercept(move |_ctx: &mut Context| {
            second.lock().expect("order").push("second");
            Ok(())
        })
        .build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    let client = Client::dial(addr).await.expect("dial");

    let Err(Error::Status(status)) = run(&client, &CallOptions::default()).await else { panic!("expected a refusal") };
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert_eq!(status.message(), "a valid bearer token is required");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler never ran");
    assert_eq!(*order.lock().expect("order"), ["token"], "the first refusal stops the chain");

    let allowed = CallOptions::default().metadata("authorization", "Bearer s3cret");
    assert_eq!(run(&client, &allowed).await, Ok("ran".to_owned()));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(*order.lock().expect("order"), ["token", "token", "second"], "in the order added");
}

#[tokio::test]
async fn a_cancel_stops_an_interceptor_that_is_still_waiting() {
    let ran = Arc::new(AtomicUsize::new(0));
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let slow = Slow { delay: Duration::from_secs(60), started: started.clone(), dropped: dropped.clone() };
    let server = Server::builder().register(Guarded(ran.clone())).intercept(slow).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    let client = Client::dial(addr).await.expect("dial");

    let call = run(&client, &CallOptions::default());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "the interceptor did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call.cancel();
    while dropped.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "the interceptor was not stopped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler never ran");
    // A short deadline stops it too, and says so.
    let options = CallOptions::default().timeout(Duration::from_millis(50));
    let Err(Error::Status(status)) = run(&client, &options).await else { panic!("expected the deadline") };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

fn meta(client: &Client, key: &str, options: &CallOptions) -> tidl_runtime::Call<Option<String>, String> {
    client.call::<_, Option<String>, String>(Method::new("Guarded", "meta"), key, options)
}

#[tokio::test]
async fn what_a_server_interceptor_writes_into_the_metadata_the_handler_reads() {
    let server = Server::builder()
        .register(Guarded(Arc::new(AtomicUsize::new(0))))
        .intercept(|ctx: &mut Context| {
            let user = match ctx.metadata().get_str("authorization") {
                Some("Bearer s3cret") => "alice",
                _ => return Err(Status::unauthenticated("who are you?")),
            };
            ctx.metadata_mut().remove("authorization");
            ctx.metadata_mut().insert("x-user", user);
            Ok(())
        })
        .build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    let client = Client::dial(addr).await.expect("dial");
    let options = CallOptions::default().metadata("authorization", "Bearer s3cret");

    assert_eq!(meta(&client, "x-user", &options).await, Ok(Some("alice".to_owned())));
    assert_eq!(meta(&client, "authorization", &options).await, Ok(None), "the interceptor removed it");
}

/// Fetches a token (waits `delay`) and adds it to the call, or refuses calls of `refuse`.
struct FetchToken {
    delay: Duration,
    refuse: &'static str,
    runs: Arc<AtomicUsize>,
}

impl AsyncClientInterceptor for FetchToken {
    fn intercept<'a>(&'a self, method: Method, options: &'a mut CallOptions) -> InterceptFuture<'a> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if method.name() == self.refuse {
                return Err(Status::permission_denied(format!("no token for `{method}`")));
            }
            *options = options.clone().metadata("authorization", "Bearer s3cret");
            Ok(())
        })
    }
}

async fn client_with(addr: std::net::SocketAddr, interceptor: FetchToken) -> Client {
    let mut config = ClientConfig::default();
    config.interceptors.add(|_: Method, options: &mut CallOptions| {
        *options = options.clone().metadata("x-order", "sync first");
        Ok::<(), Status>(())
    });
    config.interceptors.add_async(interceptor);
    Client::dial_with(addr, config).await.expect("dial")
}

#[tokio::test]
async fn an_async_client_interceptor_adds_metadata_or_refuses_before_anything_is_sent() {
    let ran = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .register(Guarded(ran.clone()))
        .intercept(|ctx: &mut Context| match ctx.metadata().get_str("authorization") {
            Some("Bearer s3cret") => Ok(()),
            _ => Err(Status::unauthenticated("a valid bearer token is required")),
        })
        .build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    let runs = Arc::new(AtomicUsize::new(0));
    let fetch = FetchToken { delay: Duration::from_millis(20), refuse: "run", runs: runs.clone() };
    let client = client_with(addr, fetch).await;

    // Let through, with the token it fetched and what the sync interceptor added before it.
    assert_eq!(meta(&client, "x-order", &CallOptions::default()).await, Ok(Some("sync first".to_owned())));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Refused on the client: the status is the interceptor's, and the server saw nothing.
    let Err(Error::Status(status)) = run(&client, &CallOptions::default()).await else { panic!("expected a refusal") };
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert_eq!(status.message(), "no token for `Guarded.run`");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the call was never sent");
    assert_eq!(client.calls_in_flight(), 0);
}

#[tokio::test]
async fn an_async_client_interceptor_takes_its_time_from_the_deadline() {
    let server = Server::builder().register(Guarded(Arc::new(AtomicUsize::new(0)))).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    let runs = Arc::new(AtomicUsize::new(0));
    let fetch = FetchToken { delay: Duration::from_secs(60), refuse: "", runs: runs.clone() };
    let client = client_with(addr, fetch).await;

    let options = CallOptions::default().timeout(Duration::from_millis(50));
    let Err(Error::Status(status)) = meta(&client, "x", &options).await else { panic!("expected the deadline") };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(status.is_unstarted(), "nothing was sent: {status}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_with_an_async_interceptor_refuses_streams_it_cannot_intercept() {
    let server = Server::builder().register(Guarded(Arc::new(AtomicUsize::new(0)))).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    let runs = Arc::new(AtomicUsize::new(0));
    let client = client_with(addr, FetchToken { delay: Duration::ZERO, refuse: "", runs: runs.clone() }).await;

    let mut items =
        client.server_stream::<_, u64, String>(Method::new("Guarded", "watch"), &(), &CallOptions::default());
    let Err(Error::Status(status)) = items.message().await else { panic!("expected a refusal") };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    assert!(status.message().contains("async interceptor"), "{status}");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}
