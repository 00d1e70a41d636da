//! tower layers on both sides, and a cancel that still stops the handler through them.
//!
//! The server runs every call through `load_shed` -> `concurrency_limit(1)` -> `timeout(5 s)`:
//! while a `finite_loop` holds the only slot, an `echo` is shed (`Unavailable`, unstarted);
//! cancelling the loop from the client drops it, layers and handler together, and the next
//! `echo` goes through. The client sends through its own stack, a `timeout(1 s)` layer, which
//! cancels a `finite_loop` on the server when it fires.
//!
//! Run it with `cargo run --example layers`.

use example::{Example, ExampleClientExt, ExampleServer};
use std::time::Duration;
use tidl_runtime::tower::{ClientService, Layered};
use tidl_runtime::{Client, Server};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let example = Example::with_period(Duration::from_millis(10));
    let mut stats = example.subscribe();
    let server = Server::builder()
        .register(ExampleServer::new(example))
        .layer(ServiceBuilder::new().load_shed().concurrency_limit(1).timeout(Duration::from_secs(5)))
        .build();
    let addr = server.listen("127.0.0.1:0").await?;
    let client = Client::dial(addr).await?;

    let looping = client.example().finite_loop(());
    stats.wait_for(|s| s.iterations >= 5).await?;
    println!("server: finite_loop holds the only slot");
    match client.example().echo("while busy".into()).await {
        Ok(reply) => println!("client: {reply}"),
        Err(e) => println!("client, echo while busy: {e}"),
    }
    looping.cancel();
    let stopped = stats.wait_for(|s| s.stopped == 1).await?.clone();
    println!("server: finite_loop stopped after {} iterations", stopped.iterations);
    println!("client: {}", client.example().echo("after the cancel".into()).await?);

    // The client's own stack: its timeout cancels the call, and the server stops the handler.
    let timed = Layered::new(ServiceBuilder::new().timeout(Duration::from_secs(1)).service(ClientService::new(client)));
    let started = std::time::Instant::now();
    match timed.example().finite_loop(()).await {
        Ok(()) => println!("client: finite_loop completed"),
        Err(e) => println!("client, through a 1 s timeout layer, after {:.1?}: {e}", started.elapsed()),
    }
    let stats = stats.wait_for(|s| s.stopped == 2).await?.clone();
    println!("server: the second finite_loop stopped too: {} loops started, {} stopped", stats.started, stats.stopped);
    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
