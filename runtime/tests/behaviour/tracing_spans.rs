//! Every call has a span on each side, named and with fields after OpenTelemetry's RPC
//! conventions; what ends a call early (a cancel, a deadline, a shutdown) is an event in its
//! spans; what a handler logs, and the calls it makes, are inside its span.
//!
//! Each test collects spans with a layer of its own, set as the default subscriber of its
//! thread: `#[tokio::test]` runs on one thread, servers and clients included.

use crate::common;

use common::{EVENT_TIMEOUT, Probe, call, call_with, chain, connected, serve, status};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidl_runtime::{Call, CallOptions, Client, Code, Error, Incoming, Invoke, Method, Server, Service};
use tokio::sync::watch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the collector saw it.
#[derive(Clone, Debug)]
struct Seen {
    id: u64,
    name: &'static str,
    target: String,
    parent: Option<u64>,
    fields: HashMap<String, String>,
    events: Vec<HashMap<String, String>>,
    closed: bool,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    fn kind(&self) -> Option<&str> {
        self.field("otel.kind")
    }

    /// The events whose message is `message`.
    fn events(&self, message: &str) -> Vec<&HashMap<String, String>> {
        self.events.iter().filter(|e| e.get("message").map(String::as_str) == Some(message)).collect()
    }
}

/// Records every span's fields, parent and events; signals every change.
#[derive(Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<Seen>>>,
    changed: Arc<watch::Sender<u64>>,
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Collector {
    fn new() -> Collector {
        Collector { spans: Arc::default(), changed: Arc::new(watch::Sender::new(0)) }
    }

    /// Makes the collector this thread's subscriber, until the guard is dropped.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    fn update(&self, id: &Id, f: impl FnOnce(&mut Seen)) {
        if let Some(seen) = self.spans.lock().expect("the spans lock").iter_mut().find(|s| s.id == id.into_u64()) {
            f(seen);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The spans of tidl's calls.
    fn calls(&self) -> Vec<Seen> {
        self.spans
            .lock()
            .expect("the spans lock")
            .iter()
            .filter(|s| s.target == tidl_runtime::observe::TARGET)
            .cloned()
            .collect()
    }

    /// Waits until the spans of calls satisfy `condition`, and returns them.
    async fn wait(&self, what: &str, mut condition: impl FnMut(&[Seen]) -> bool) -> Vec<Seen> {
        let mut changed = self.changed.subscribe();
        let waited = tokio::time::timeout(EVENT_TIMEOUT, async {
            loop {
                let calls = self.calls();
                if condition(&calls) {
                    return calls;
                }
                changed.changed().await.expect("the collector lives");
            }
        });
        waited.await.unwrap_or_else(|_| panic!("timed out waiting for {what}; spans: {:#?}", self.calls()))
    }

    /// Waits until `n` spans of calls have closed, and returns the spans.
    async fn closed(&self, n: usize) -> Vec<Seen> {
        self.wait(&format!("{n} spans to close"), |spans| spans.iter().filter(|s| s.closed).count() >= n).await
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collector {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let parent = ctx.span(id).and_then(|span| span.parent()).map(|parent| parent.id().into_u64());
        self.spans.lock().expect("the spans lock").push(Seen {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            target: attrs.metadata().target().to_owned(),
            parent,
            fields: fields.0,
            events: Vec::new(),
            closed: false,
        });
        self.changed.send_modify(|n| *n += 1);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        self.update(id, |seen| seen.fields.extend(fields.0));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else { return };
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.update(&span.id(), |seen| seen.events.push(fields.0));
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.update(&id, |seen| seen.closed = true);
    }
}

/// The one span of `kind` among `spans`.
fn one<'a>(spans: &'a [Seen], kind: &str) -> &'a Seen {
    let mut of_kind = spans.iter().filter(|s| s.kind() == Some(kind));
    let span = of_kind.next().unwrap_or_else(|| panic!("no {kind} span in {spans:#?}"));
    assert!(of_kind.next().is_none(), "more than one {kind} span in {spans:#?}");
    span
}

/// A service whose handler logs, and one that answers its declared error.
#[derive(Clone)]
struct Traced;

impl Service for Traced {
    fn name(&self) -> &'static str {
        "shop.Traced"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "log" => request.spawn(Method::new("shop.Traced", "log"), |_ctx, (): ()| async move {
                tracing::info!(step = 1, "inside the handler");
                tokio::task::yield_now().await;
                tracing::info!(step = 2, "inside the handler");
                Ok::<_, Error>(())
            }),
            "refuse" => request.spawn(Method::new("shop.Traced", "refuse"), |_ctx, (): ()| async move {
                Err::<(), _>(Error::App("refused".to_owned()))
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

async fn serve_traced() -> (Client, Server) {
    let server = Server::builder().register(Traced).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    (Client::dial(addr).await.expect("dial"), server)
}

#[tokio::test]
async fn spans_on_both_sides_carry_the_rpc_conventions() {
    let collector = Collector::new();
    let _guard = collector.install();
    let (addr, _server) = serve(Probe::default()).await;
    let client = Client::dial(addr).await.expect("dial");
    assert_eq!(call::<_, String>(&client, "echo", "hi").await, Ok("hi".to_owned()));
    let spans = collector.closed(2).await;

    let (client_span, server_span) = (one(&spans, "client"), one(&spans, "server"));
    assert_eq!(client_span.name, "rpc.client");
    assert_eq!(server_span.name, "rpc.server");
    for span in [client_span, server_span] {
        assert_eq!(span.field("otel.name"), Some("Probe/echo"));
        assert_eq!(span.field("rpc.method"), Some("Probe/echo"));
        assert_eq!(span.field("rpc.system.name"), Some("tidl"));
        assert_eq!(span.field("rpc.response.status_code"), Some("OK"));
        assert_eq!(span.field("otel.status_code"), None, "a call that succeeded leaves the status unset");
        assert!(span.events.is_empty(), "nothing stopped the call: {span:#?}");
    }
    assert_eq!(client_span.field("server.address"), Some("127.0.0.1"));
    assert_eq!(client_span.field("server.port"), Some(addr.port().to_string().as_str()));
    assert_eq!(server_span.field("network.peer.address"), Some("127.0.0.1"));
    let peer_port: u16 = server_span.field("network.peer.port").expect("the peer's port").parse().expect("a port");
    assert_ne!(peer_port, addr.port(), "the client's port, not the server's");
    assert_eq!(client_span.parent, None);
    assert_eq!(server_span.parent, None, "a server span in a process without OpenTelemetry is a root");
}

#[tokio::test]
async fn a_method_of_a_package_is_named_with_it_and_failures_set_the_error_status() {
    let collector = Collector::new();
    let _guard = collector.install();
    let (client, _server) = serve_traced().await;
    let refused: Result<(), Error> =
        client.call(Method::new("shop.Traced", "refuse"), &(), &CallOptions::default()).await;
    assert_eq!(refused, Err(Error::App("refused".to_owned())));
    let spans = collector.closed(2).await;
    for span in [one(&spans, "client"), one(&spans, "server")] {
        assert_eq!(span.field("otel.name"), Some("shop.Traced/refuse"));
        assert_eq!(span.field("rpc.response.status_code"), Some("APP_ERROR"));
        assert_eq!(span.field("otel.status_code"), Some("ERROR"));
    }

    let (client, _server) = connected(Probe::default()).await;
    let failed: Result<(), Error> = call(&client, "fail", &("not_found", "no such thing")).await;
    assert_eq!(status(failed).code(), Code::NotFound);
    let spans = collector.closed(4).await;
    let failed: Vec<_> = spans.iter().filter(|s| s.field("rpc.method") == Some("Probe/fail")).cloned().collect();
    for span in [one(&failed, "client"), one(&failed, "server")] {
        assert_eq!(span.field("rpc.response.status_code"), Some("NOT_FOUND"));
        assert_eq!(span.field("otel.status_code"), Some("ERROR"));
        assert_eq!(span.field("otel.status_description"), Some("no such thing"));
    }
}

#[tokio::test]
async fn a_call_refused_before_any_handler_runs_has_a_server_span_with_its_status() {
    let collector = Collector::new();
    let _guard = collector.install();
    let (client, _server) = connected(Probe::default()).await;
    let unknown: Result<(), Error> = call(&client, "nope", &()).await;
    assert_eq!(status(unknown).code(), Code::Unimplemented);
    let spans = collector.closed(2).await;
    let server = one(&spans, "server");
    assert_eq!(server.name, "rpc.server");
    assert_eq!(server.field("otel.name"), Some("_OTHER"), "a span name never comes from the peer");
    assert_eq!(server.field("rpc.method"), Some("_OTHER"));
    assert_eq!(server.field("rpc.method_original"), Some("Probe/nope"));
    assert_eq!(server.field("rpc.response.status_code"), Some("UNIMPLEMENTED"));
    assert_eq!(server.field("otel.status_code"), Some("ERROR"));
    assert_eq!(one(&spans, "client").field("rpc.method"), Some("Probe/nope"));

    // A method the server serves, whose argument does not decode: named as it is.
    let undecodable: Result<String, Error> = call(&client, "echo", &42u64).await;
    assert_eq!(status(undecodable).code(), Code::InvalidArgument);
    let spans = collector.closed(4).await;
    let echo: Vec<_> = spans.iter().filter(|s| s.field("rpc.method") == Some("Probe/echo")).cloned().collect();
    let server = one(&echo, "server");
    assert_eq!(server.field("rpc.response.status_code"), Some("INVALID_ARGUMENT"));
    assert_eq!(server.field("rpc.method_original"), None);
}

#[tokio::test]
async fn what_a_handler_logs_and_the_calls_it_makes_are_inside_its_span() {
    let collector = Collector::new();
    let _guard = collector.install();
    let (client, _server) = serve_traced().await;
    let logged: Result<(), Error> = client.call(Method::new("shop.Traced", "log"), &(), &CallOptions::default()).await;
    assert_eq!(logged, Ok(()));
    let spans = collector.closed(2).await;
    let events = one(&spans, "server").events("inside the handler");
    assert_eq!(events.len(), 2, "both events, before and after an await, in the server's span");

    // A -> B -> C: each handler's call to the next server is a child of the handler's span.
    let (client, _probes, _servers) = chain().await;
    let hops: Vec<Option<u64>> = call(&client, "relay", &false).await.expect("relayed");
    assert_eq!(hops.len(), 3);
    let spans = collector.closed(2 + 6).await;
    let relay: Vec<_> = spans.iter().filter(|s| s.field("rpc.method") == Some("Probe/relay")).collect();
    let by_id: HashMap<u64, &Seen> = relay.iter().map(|s| (s.id, *s)).collect();
    let clients: Vec<_> = relay.iter().filter(|s| s.kind() == Some("client")).collect();
    assert_eq!(clients.len(), 3);
    assert_eq!(relay.iter().filter(|s| s.kind() == Some("server")).count(), 3);
    let parents: Vec<_> = clients.iter().filter_map(|s| s.parent).collect();
    assert_eq!(parents.len(), 2, "the calls made by A's and B's handlers have a parent; the first has none");
    assert_ne!(parents[0], parents[1]);
    for parent in parents {
        assert_eq!(
            by_id.get(&parent).and_then(|p| p.kind()),
            Some("server"),
            "a client span's parent is a server span"
        );
    }
}

#[tokio::test]
async fn a_cancelled_or_dropped_call_shows_a_cancel_event_on_both_sides() {
    let collector = Collector::new();
    let _guard = collector.install();
    let probe = Probe::default();
    let (client, _server) = connected(probe.clone()).await;

    let running: Call<()> = call(&client, "sleep", &60_000u64);
    probe.wait("the handler to start", |s| s.started == 1).await;
    running.cancel();
    assert_eq!(status(running.await).code(), Code::Cancelled);
    let spans = collector.closed(2).await;
    let (client_span, server_span) = (one(&spans, "client"), one(&spans, "server"));
    let cancelled = client_span.events("call cancelled");
    assert_eq!(cancelled.len(), 1, "{client_span:#?}");
    assert_eq!(cancelled[0].get("reason").map(String::as_str), Some("caller"));
    let cancelled = server_span.events("call cancelled");
    assert_eq!(cancelled.len(), 1, "{server_span:#?}");
    assert_eq!(cancelled[0].get("reason").map(String::as_str), Some("client"));
    for span in [client_span, server_span] {
        assert_eq!(span.field("rpc.response.status_code"), Some("CANCELLED"));
        assert_eq!(span.field("otel.status_code"), Some("ERROR"));
    }

    let dropped: Call<()> = call(&client, "sleep", &60_000u64);
    probe.wait("the second handler to start", |s| s.started == 2).await;
    drop(dropped);
    let spans = collector.closed(4).await;
    let second: Vec<_> = spans.iter().filter(|s| s.id != client_span.id && s.id != server_span.id).cloned().collect();
    let (client_span, server_span) = (one(&second, "client"), one(&second, "server"));
    assert_eq!(client_span.events("call cancelled")[0].get("reason").map(String::as_str), Some("dropped"));
    assert_eq!(server_span.events("call cancelled")[0].get("reason").map(String::as_str), Some("client"));
    assert_eq!(client_span.field("rpc.response.status_code"), Some("CANCELLED"));
}

#[tokio::test]
async fn a_call_past_its_deadline_shows_the_deadline_event_on_each_side() {
    let collector = Collector::new();
    let _guard = collector.install();
    let (client, _server) = connected(Probe::default()).await;
    let options = CallOptions::default().timeout(Duration::from_millis(50));

    // The client's timer: the client's span says so (the server may hear the client's cancel
    // before its own timer fires).
    let late: Result<(), Error> = call_with(&client, "sleep", &60_000u64, &options).await;
    assert_eq!(status(late).code(), Code::DeadlineExceeded);
    let spans = collector
        .wait("the client's span to close", |s| s.iter().any(|s| s.closed && s.kind() == Some("client")))
        .await;
    let client_span = one(&spans, "client");
    assert_eq!(client_span.events("deadline exceeded").len(), 1, "{client_span:#?}");
    assert!(client_span.events("call cancelled").is_empty());
    assert_eq!(client_span.field("rpc.response.status_code"), Some("DEADLINE_EXCEEDED"));

    // The server's timer: a detached call has no client timer, so the server stops it.
    let detached: Call<()> = call_with(&client, "sleep", &60_000u64, &options);
    detached.detach();
    let spans = collector
        .wait("the detached call's server span to close", |spans| {
            spans.iter().filter(|s| s.closed && s.kind() == Some("server")).count() == 2
        })
        .await;
    let server_span = spans.iter().rfind(|s| s.kind() == Some("server")).expect("the second server span");
    assert_eq!(server_span.events("deadline exceeded").len(), 1, "{server_span:#?}");
    assert_eq!(server_span.field("rpc.response.status_code"), Some("DEADLINE_EXCEEDED"));
    let detached_client = spans.iter().rfind(|s| s.kind() == Some("client")).expect("the detached call's span");
    assert_eq!(detached_client.events("call detached").len(), 1);
    assert_eq!(detached_client.field("rpc.response.status_code"), None, "nobody took its outcome");
}

#[tokio::test]
async fn a_shutdown_that_stops_a_call_says_so_in_the_server_span() {
    let collector = Collector::new();
    let _guard = collector.install();
    let probe = Probe::default();
    let (client, server) = connected(probe.clone()).await;
    let running: Call<()> = call(&client, "sleep", &60_000u64);
    probe.wait("the handler to start", |s| s.started == 1).await;
    tokio::time::timeout(EVENT_TIMEOUT, server.shutdown(Duration::from_millis(20))).await.expect("shutdown returns");
    assert_eq!(status(running.await).code(), Code::Unavailable);
    let spans = collector.closed(2).await;
    let server_span = one(&spans, "server");
    let cancelled = server_span.events("call cancelled");
    assert_eq!(cancelled.len(), 1, "{server_span:#?}");
    assert_eq!(cancelled[0].get("reason").map(String::as_str), Some("shutdown"));
    assert_eq!(server_span.field("rpc.response.status_code"), Some("UNAVAILABLE"));
    assert_eq!(one(&spans, "client").field("rpc.response.status_code"), Some("UNAVAILABLE"));
}
