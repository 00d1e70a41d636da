//! A handler that computes without awaiting, written the documented way (`ctx.checkpoint()`
//! every so often), on a server with a runtime of its own: while it computes, another client is
//! served at once, and a cancel stops it within milliseconds. Then a handler that refuses its
//! argument with a status.
//!
//! Run it with `cargo run --example compute`.

use example::lab::{Lab, LabClientExt, LabServer};
use std::time::{Duration, Instant};
use tidl_runtime::{Call, Client, Code, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server on a 2-worker runtime of its own, as in production.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        runtime.block_on(async move {
            let server = Server::builder().register(LabServer::new(Lab)).build();
            let _ = addr_tx.send(server.listen("127.0.0.1:0").await);
            std::future::pending::<()>().await;
        });
        Ok::<_, std::io::Error>(())
    });
    let addr = addr_rx.recv()??;

    tokio::runtime::Runtime::new()?.block_on(async move {
        let client = Client::dial(addr).await?;
        let start = Instant::now();
        let at = || format!("[{:>7.1} ms]", start.elapsed().as_secs_f64() * 1000.0);

        // Enough work for many seconds.
        let call: Call<u64> = client.lab().crunch(u64::MAX);
        println!("{} crunch called", at());
        tokio::time::sleep(Duration::from_millis(300)).await;

        let other = Client::dial(addr).await?;
        let asked = Instant::now();
        let n = other.lab().positive(42).await?;
        println!("{} another client was answered {n} in {:?}, while crunch computes", at(), asked.elapsed());

        call.cancel();
        println!("{} crunch cancelled: {}", at(), call.await.map_or_else(|e| e.to_string(), |v| v.to_string()));
        // The server prints (on stderr) when the handler stops; give it a moment to be seen.
        tokio::time::sleep(Duration::from_millis(50)).await;

        // The server is free again: a call that needs the worker crunch used is served at once.
        let small = client.lab().crunch(1_000).await?;
        println!("{} crunch(1000) = {small}", at());

        match client.lab().positive(0).await {
            Err(e) if e.code() == Some(Code::InvalidArgument) => println!("{} positive(0) refused: {e}", at()),
            other => println!("{} positive(0) unexpectedly gave {other:?}", at()),
        }
        Ok(())
    })
}
