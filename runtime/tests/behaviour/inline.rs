//! `ServerConfig::inline_handlers`: a handler that answers without waiting runs on its
//! connection's reader before the request is handed on, and a handler that waits is still a
//! task that a cancel stops. The servers run on runtimes of their own.

use crate::common;

use common::{Probe, call, serve_alone, status};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tidl_runtime::{Client, Code, Error, Incoming, Invoke, Method, Server, ServerConfig, Service};

fn inline() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.inline_handlers = true;
    config
}

/// `Quick.answer() -> string`: answers at once, and records whether it had already run when
/// `Incoming::spawn` returned (it had, if it ran inline).
#[derive(Clone, Default)]
struct Quick {
    ran: Arc<AtomicBool>,
    ran_before_spawn_returned: Arc<AtomicUsize>,
    spawned_first: Arc<AtomicUsize>,
}

impl Service for Quick {
    fn name(&self) -> &'static str {
        "Quick"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        if method != "answer" {
            return Err(request);
        }
        self.ran.store(false, Ordering::SeqCst);
        let ran = self.ran.clone();
        request.spawn(Method::new("Quick", "answer"), move |_ctx, (): ()| async move {
            ran.store(true, Ordering::SeqCst);
            Ok::<_, Error>("done".to_owned())
        });
        let counter =
            if self.ran.load(Ordering::SeqCst) { &self.ran_before_spawn_returned } else { &self.spawned_first };
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_that_answers_without_waiting_runs_inline() {
    let quick = Quick::default();
    let addr = serve_alone({
        let quick = quick.clone();
        move || Server::builder().register(quick).config(inline()).build()
    });
    let client = Client::dial(addr).await.expect("dial");
    for _ in 0..100 {
        let reply = client.call::<_, String, String>(Method::new("Quick", "answer"), &(), &Default::default()).await;
        assert_eq!(reply, Ok("done".to_owned()));
    }
    assert_eq!(quick.ran_before_spawn_returned.load(Ordering::SeqCst), 100, "every handler ran inline");
    assert_eq!(quick.spawned_first.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_inline_server_still_stops_a_waiting_handler_on_cancel_and_at_its_deadline() {
    let probe = Probe::default();
    let addr = serve_alone({
        let probe = probe.clone();
        move || Server::builder().register(probe).config(inline()).build()
    });
    let client = Client::dial(addr).await.expect("dial");

    let sleeping = call::<_, ()>(&client, "sleep", &60_000u64);
    probe.wait("the handler started", |s| s.started == 1).await;
    sleeping.cancel();
    probe.wait("the handler was dropped", |s| s.dropped == 1).await;

    let options = tidl_runtime::CallOptions::default().timeout(std::time::Duration::from_millis(50));
    let expired = status(common::call_with::<_, ()>(&client, "sleep", &60_000u64, &options).await);
    assert_eq!(expired.code(), Code::DeadlineExceeded, "{expired}");
    probe.wait("the second handler was dropped", |s| s.dropped == 2).await;

    // Handlers that answer at once, fail or panic answer as they do on a server without it.
    assert_eq!(call::<_, String>(&client, "echo", "hi").await, Ok("hi".to_owned()));
    let failed = status(call::<_, ()>(&client, "fail", &("not_found", "gone")).await);
    assert_eq!((failed.code(), failed.message()), (Code::NotFound, "gone"));
    let panicked = status(call::<_, ()>(&client, "explode", "boom").await);
    assert_eq!(panicked.code(), Code::Internal, "{panicked}");
    assert_eq!(call::<_, String>(&client, "echo", "still serving").await, Ok("still serving".to_owned()));
}
