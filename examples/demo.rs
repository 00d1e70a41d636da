//! The seed scenario in one process, with a timeline: a `finite_loop` call is cancelled after
//! two seconds, the server drops the handler at once, and `echo` works on the same client.
//!
//! Run it with `cargo run --example demo`.

use example::{Example, ExampleClientExt, ExampleServer};
use std::time::Duration;
use tidl_runtime::{Call, Client, Server};
use tokio::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let at = move || format!("[{:>8.1} ms]", start.elapsed().as_secs_f64() * 1000.0);

    // The loop sleeps 250 ms per iteration, so a few iterations fit before the cancel.
    let example = Example::with_period(Duration::from_millis(250));
    let server = Server::builder().register(ExampleServer::new(example.clone())).build();
    let addr = server.listen("127.0.0.1:0").await?;
    println!("{} server listening on {addr}", at());

    let client = Client::dial(addr).await?;
    println!("{} client connected", at());

    // Print the server side of the story as it happens.
    let mut stats = example.subscribe();
    let watcher = tokio::spawn({
        async move {
            let mut seen = stats.borrow_and_update().clone();
            while stats.changed().await.is_ok() {
                let now = stats.borrow_and_update().clone();
                if now.started > seen.started {
                    println!("{} server: finite_loop handler started", at());
                }
                if now.iterations > seen.iterations {
                    println!("{} server: finite_loop iteration {}", at(), now.iterations);
                }
                if now.stopped > seen.stopped {
                    println!("{} server: finite_loop handler dropped after {} iterations", at(), now.iterations);
                    return now;
                }
                seen = now;
            }
            seen
        }
    });

    let call: Call<()> = client.example().finite_loop(());
    println!("{} client: finite_loop called", at());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cancelled_at = Instant::now();
    call.cancel();
    println!("{} client: cancel() sent", at());

    let stopped = tokio::time::timeout(Duration::from_secs(5), watcher).await??;
    if let Some(stop) = stopped.last_stop {
        let micros = stop.saturating_duration_since(cancelled_at).as_micros();
        println!("{} server stopped the handler {:.3} ms after cancel()", at(), micros as f64 / 1000.0);
    }
    println!(
        "{} client: the cancelled call resolved to: {}",
        at(),
        call.await.map_or_else(|e| e.to_string(), |()| "ok".into())
    );

    let reply = client.example().echo("hello world".to_string()).await;
    assert_eq!(reply, Ok("hello world".to_string()));
    println!("{} client: echo answered {:?} on the same connection", at(), reply?);

    server.shutdown(Duration::from_secs(1)).await;
    println!("{} server shut down", at());
    Ok(())
}
