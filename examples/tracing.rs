//! A trace that follows calls across three services: a checkout asks pricing, which asks the
//! inventory (`examples/shop.tidl`), each on a server of its own. tidl gives every call a span
//! on each side; with the runtime's `otel` feature the client sends its span's W3C trace
//! context in the call's metadata and the server continues the trace from it. The spans go to
//! OpenTelemetry (through tracing-opentelemetry) and an in-memory exporter, and the example
//! prints each trace as a tree: span name, kind, duration, status code, and events.
//!
//! Three orders: one that succeeds, one for a product the inventory does not know (`NotFound`,
//! passed back up the chain), and one that outlives its 50 ms deadline (every hop stops).
//!
//! Run it with `cargo run --example tracing`.

use opentelemetry::trace::{SpanId, SpanKind, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use tidl_runtime::{CallOptions, Client, Context, Error, Server, Status};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use example::shop::{
    self, CheckoutClientExt, CheckoutServer, InventoryClientExt, InventoryServer, Order, PricingClientExt,
    PricingServer,
};

/// Takes orders: asks pricing for the total.
struct Checkout {
    pricing: Client,
}

impl shop::Checkout for Checkout {
    async fn order(&self, ctx: Context, order: Order) -> Result<u64, Error> {
        tracing::info!(product = %order.product, count = order.count, "taking an order");
        // Made with the handler's context: cancelled with it, never later than its deadline,
        // and (in the trace) a child of this handler's span.
        self.pricing.pricing().context(&ctx).quote(order).await
    }
}

/// Prices orders, once the inventory has reserved them.
struct Pricing {
    inventory: Client,
}

impl shop::Pricing for Pricing {
    async fn quote(&self, ctx: Context, order: Order) -> Result<u64, Error> {
        let left = self.inventory.inventory().context(&ctx).reserve(order.clone()).await?;
        tracing::info!(left, "reserved");
        Ok(u64::from(order.count) * 250)
    }
}

/// Keeps the stock.
struct Inventory;

impl shop::Inventory for Inventory {
    async fn reserve(&self, _ctx: Context, order: Order) -> Result<u32, Error> {
        match order.product.as_str() {
            "tea" => Ok(100 - order.count),
            "slow" => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(0)
            }
            other => Err(Status::not_found(format!("no product `{other}`")).into()),
        }
    }
}

async fn serve(server: &Server) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    Ok(server.listen("127.0.0.1:0").await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // OpenTelemetry: W3C trace context between services, spans kept in memory.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tidl-example")))
        .with(LevelFilter::INFO)
        .init();

    // Three servers, each calling the next.
    let inventory = Server::builder().register(InventoryServer::new(Inventory)).build();
    let inventory_addr = serve(&inventory).await?;
    let pricing = Server::builder()
        .register(PricingServer::new(Pricing { inventory: Client::dial(inventory_addr).await? }))
        .build();
    let pricing_addr = serve(&pricing).await?;
    let checkout = Server::builder()
        .register(CheckoutServer::new(Checkout { pricing: Client::dial(pricing_addr).await? }))
        .build();
    let client = Client::dial(serve(&checkout).await?).await?;

    let order = |product: &str, count| Order { product: product.to_owned(), count };
    match client.checkout().order(order("tea", 2)).await {
        Ok(total) => println!("tea: {total} cents"),
        Err(e) => println!("tea: {e}"),
    }
    match client.checkout().order(order("unobtainium", 1)).await {
        Ok(total) => println!("unobtainium: {total} cents"),
        Err(e) => println!("unobtainium: {e}"),
    }
    let hurried = CallOptions::default().timeout(Duration::from_millis(50));
    match client.checkout().with_options(hurried).order(order("slow", 1)).await {
        Ok(total) => println!("slow: {total} cents"),
        Err(e) => println!("slow: {e}"),
    }

    // Every span has ended once the servers have stopped.
    drop(client);
    for server in [checkout, pricing, inventory] {
        server.shutdown(Duration::from_secs(1)).await;
    }
    println!();
    print_traces(&exporter.get_finished_spans()?);
    Ok(())
}

/// Prints each trace as a tree of its spans, in the order they started.
fn print_traces(spans: &[SpanData]) {
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut roots: Vec<&SpanData> = spans.iter().filter(|s| !ids.contains(&s.parent_span_id)).collect();
    roots.sort_by_key(|s| s.start_time);
    for root in roots {
        println!("trace {}", root.span_context.trace_id());
        print_span(root, spans, "");
        println!();
    }
}

fn print_span(span: &SpanData, spans: &[SpanData], indent: &str) {
    let kind = match span.span_kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        _ => "internal",
    };
    let duration = span.end_time.duration_since(span.start_time).unwrap_or_default();
    let status = attribute(span, "rpc.response.status_code").unwrap_or_default();
    println!("{indent}{} [{kind}] {:.2} ms {status}", span.name, duration.as_secs_f64() * 1000.0);
    // Its events and the spans under it, in the order they happened.
    let mut within: Vec<(SystemTime, Option<&SpanData>, String)> = span
        .events
        .iter()
        .map(|event| {
            let fields = event
                .attributes
                .iter()
                .filter(|kv| !kv.key.as_str().contains('.') && !matches!(kv.key.as_str(), "level" | "target"))
                .map(|kv| format!(" {}={}", kv.key, kv.value));
            (event.timestamp, None, format!("· {}{}", event.name, fields.collect::<String>()))
        })
        .collect();
    within.extend(
        spans
            .iter()
            .filter(|s| s.parent_span_id == span.span_context.span_id())
            .map(|child| (child.start_time, Some(child), String::new())),
    );
    within.sort_by_key(|(at, _, _)| *at);
    for (_, child, event) in within {
        match child {
            Some(child) => print_span(child, spans, &format!("{indent}    ")),
            None => println!("{indent}  {event}"),
        }
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}
