//! Server interceptors: they run before every handler, in order, in the handler's task; a
//! refusal answers the call with its status and the handler never runs; a cancel stops an
//! interceptor that is still waiting, as it stops a handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tidl_runtime::{
    CallOptions, Client, Code, Context, Error, Incoming, InterceptFuture, Interceptor, Invoke, Method, Server, Service,
    Status,
};

/// `Guarded.run() -> string`, counting the handlers that ran.
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
    fn intercept<'a>(&'a self, _ctx: &'a Context) -> InterceptFuture<'a> {
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
        .intercept(move |ctx: &Context| {
            first.lock().expect("order").push("token");
            match ctx.metadata().get_str("authorization") {
                Some("Bearer s3cret") => Ok(()),
                _ => Err(Status::unauthenticated("a valid bearer token is required")),
            }
        })
        .intercept(move |_ctx: &Context| {
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
    while started.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call.cancel();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
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
