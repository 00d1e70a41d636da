//! With the `otel` feature, a trace follows a call across services: each client sends its
//! span's W3C trace context in the call's metadata, and each server makes it the parent of its
//! own span. Three servers in a chain (A's handler calls B, B's calls C), each on a runtime of
//! its own, over loopback TCP, with OpenTelemetry's in-memory exporter.

#![cfg(feature = "otel")]

#[path = "behaviour/common/mod.rs"]
mod common;
#[path = "behaviour/raw/mod.rs"]
mod raw;

use common::{Probe, call};
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tidl_runtime::{Client, Server};
use tokio::sync::oneshot;
use tracing_subscriber::layer::SubscriberExt;

/// The process's subscriber: OpenTelemetry's layer, exporting to memory, with W3C trace
/// context as the propagator. Installed once for the whole test binary.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("tidl-tests"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only global subscriber of this test binary");
        exporter
    })
}

/// A server with a probe whose `relay` calls `next`, on a runtime of its own in a thread of
/// its own. Dropping the handle shuts it down and waits until every task of it has ended.
struct Remote {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Remote {
    fn start(next: Option<SocketAddr>) -> Remote {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("the server's runtime");
            runtime.block_on(async move {
                let probe = match next {
                    Some(next) => Probe::with_next(Client::dial(next).await.expect("dial the next server")),
                    None => Probe::default(),
                };
                let server = Server::builder().register(probe).build();
                addr_tx.send(server.listen("127.0.0.1:0").await.expect("bind loopback")).expect("addr sent");
                let _ = stopped.await;
                server.shutdown(Duration::from_secs(5)).await;
            });
        });
        let addr = addr_rx.recv().expect("the server started");
        Remote { addr, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server's thread");
        }
    }
}

/// The attribute `key` of `span`, as text.
fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_follows_a_call_across_three_services() {
    let exporter = exporter();
    let c = Remote::start(None);
    let b = Remote::start(Some(c.addr));
    let a = Remote::start(Some(b.addr));
    let client = Client::dial(a.addr).await.expect("dial A");

    // The call starts (and its span with it) in the root span.
    let root = tracing::info_span!("test root");
    let relayed = root.in_scope(|| call::<_, Vec<Option<u64>>>(&client, "relay", &false));
    let hops = relayed.await.expect("relayed through A, B and C");
    assert_eq!(hops.len(), 3);
    drop(root);
    drop(client);
    // Every server task has ended, and every span with it, once the servers have shut down.
    drop(a);
    drop(b);
    drop(c);

    let spans = exporter.get_finished_spans().expect("the exported spans");
    let root = spans.iter().find(|s| s.name == "test root").expect("the root span");
    let trace: TraceId = root.span_context.trace_id();
    let ours: Vec<&SpanData> = spans.iter().filter(|s| s.span_context.trace_id() == trace).collect();
    let relays: Vec<&&SpanData> = ours.iter().filter(|s| s.name == "Probe/relay").collect();
    assert_eq!(relays.len(), 6, "a client and a server span per hop, all of one trace: {spans:#?}");
    let by_id: HashMap<SpanId, &SpanData> = ours.iter().map(|s| (s.span_context.span_id(), *s)).collect();

    // Walk down from the root: client A, server A, client B, server B, client C, server C.
    let child_of = |parent: SpanId, kind: SpanKind| {
        let children: Vec<_> =
            relays.iter().filter(|s| s.parent_span_id == parent && s.span_kind == kind).map(|s| **s).collect();
        assert_eq!(children.len(), 1, "one {kind:?} child of {parent}: {children:#?}");
        children[0]
    };
    let mut parent = root.span_context.span_id();
    for hop in ["A", "B", "C"] {
        let client_span = child_of(parent, SpanKind::Client);
        assert!(!client_span.parent_span_is_remote, "a client span's parent is its own process's span");
        let server_span = child_of(client_span.span_context.span_id(), SpanKind::Server);
        assert!(server_span.parent_span_is_remote, "server {hop}'s parent came over the wire");
        assert_eq!(attribute(server_span, "rpc.system.name").as_deref(), Some("tidl"));
        assert_eq!(attribute(server_span, "rpc.response.status_code").as_deref(), Some("OK"));
        assert_eq!(attribute(client_span, "server.address").as_deref(), Some("127.0.0.1"));
        parent = server_span.span_context.span_id();
    }
    assert_eq!(by_id.len(), 7, "the root and six spans of calls");
}

#[tokio::test]
async fn a_server_older_than_metadata_gets_the_call_without_a_trace_context() {
    exporter();
    // A server that speaks 1.3, which has no metadata: the call goes out as a plain request.
    let (addr, accept) = raw::scripted_server_answering(b"TIDL\x01\x03\x00\x00".to_vec()).await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let root = tracing::info_span!("a traced caller");
    let reply = tokio::spawn(root.in_scope(|| call::<_, String>(&client, "echo", "hi")));
    let raw::Frame::Request { id, .. } = server.recv().await else { panic!("expected a plain request") };
    server.send(&raw::response_ok(id, &raw::string("hi"))).await;
    assert_eq!(reply.await.expect("joined"), Ok("hi".to_owned()), "the trace context did not fail the call");
}
