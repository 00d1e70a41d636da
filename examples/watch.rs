//! A server streams events; the client takes a few, then drops the stream, and the server's
//! producer stops at once: dropping a stream cancels its call. Then a client-streaming call
//! sums numbers the client sends.
//!
//! Run it with `cargo run --example watch`.

use example::lab::{Lab, LabClientExt, LabServer};
use std::time::{Duration, Instant};
use tidl_runtime::{Client, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().register(LabServer::new(Lab)).build();
    let addr = server.listen("127.0.0.1:0").await?;
    let client = Client::dial(addr).await?;
    let start = Instant::now();
    let at = || format!("[{:>7.1} ms]", start.elapsed().as_secs_f64() * 1000.0);

    // Events every 100 ms, for ever.
    let mut events = client.lab().watch(100);
    for _ in 0..3 {
        match events.message().await? {
            Some(event) => println!("{} client: got event {} (sent at {} ms)", at(), event.seq, event.at_ms),
            None => break,
        }
    }
    println!("{} client: dropping the stream", at());
    drop(events);
    // The server prints (on stderr) when its producer stops; give it a moment to be seen.
    tokio::time::sleep(Duration::from_millis(50)).await;

    // A stream the other way: the client sends, the server answers once at the end.
    let (mut numbers, total) = client.lab().sum();
    for n in 1..=10 {
        numbers.send(n).await?;
    }
    drop(numbers); // no more numbers: the server's source ends
    println!("{} client: the server summed 1..=10 to {}", at(), total.await?);

    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
