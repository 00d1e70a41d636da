//! The seed's server: serves `Example` on 127.0.0.1:23333 (or the address given as argument),
//! with reflection and health turned on, so that the `tidl` tool can call it with no `.tidl`
//! file at hand. It prints when a `finite_loop` handler starts and stops, and shuts down
//! gracefully on Ctrl-C. `Example`'s handlers either answer at once (`echo`) or await at once
//! (`finite_loop`), so it polls them inline (`ServerConfig::inline_handlers`).
//!
//! Run it with `cargo run --example server`, then `cargo run --example client` in another
//! terminal, or `tidl list 127.0.0.1:23333`, `tidl call 127.0.0.1:23333 Example.echo '"hi"'`
//! and `tidl health 127.0.0.1:23333` (see the README's "Operate and debug").

use example::{Example, ExampleServer};
use std::time::Duration;
use tidl_runtime::health::HealthReporter;
use tidl_runtime::{Server, ServerConfig};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:23333".to_owned());
    let example = Example::new();
    // The application would set statuses through `health` as its state changes.
    let health = HealthReporter::new();
    let mut config = ServerConfig::default();
    config.inline_handlers = true;
    let server = Server::builder()
        .register(ExampleServer::new(example.clone()))
        .reflection()
        .health(&health)
        .config(config)
        .build();
    let listener = TcpListener::bind(&addr).await?;
    println!("serving Example on {}", listener.local_addr()?);
    tokio::spawn(announce(example));
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.accept(listener).await }
    });
    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    server.shutdown(Duration::from_secs(5)).await;
    serving.await??;
    Ok(())
}

/// Prints each `finite_loop` handler's start and stop.
async fn announce(example: Example) {
    let mut stats = example.subscribe();
    let mut seen = stats.borrow_and_update().clone();
    let mut at_start = seen.iterations;
    while stats.changed().await.is_ok() {
        let now = stats.borrow_and_update().clone();
        if now.started > seen.started {
            at_start = now.iterations;
            println!("server: finite_loop started");
        }
        if now.stopped > seen.stopped {
            println!("server: finite_loop stopped after {} iterations", now.iterations - at_start);
        }
        seen = now;
    }
}
