//! One server on three transports: TCP, a Unix domain socket and the in-process pipe. Each
//! client asks `whoami`, and the handler answers with what it knows of its caller: an address,
//! the caller's uid, gid and pid (from the kernel), or that it is in-process.
//!
//! Run it with `cargo run --example transports`.

use example::lab::{Lab, LabClientExt, LabServer};
use tidl_runtime::transport::memory;
use tidl_runtime::{Client, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().register(LabServer::new(Lab)).build();

    // TCP: `listen` binds and accepts in the background.
    let addr = server.listen("127.0.0.1:0").await?;
    let tcp = Client::dial(addr).await?;
    println!("over TCP:         {}", tcp.lab().whoami(()).await?);

    // A Unix domain socket: any listener can be served.
    #[cfg(unix)]
    {
        let path = std::env::temp_dir().join(format!("tidl-transports-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)?;
        tokio::spawn({
            let server = server.clone();
            async move { server.accept(listener).await }
        });
        let unix = Client::connect(tidl_runtime::transport::unix::UnixConnector::new(&path)).await?;
        println!("over a Unix socket: {}", unix.lab().whoami(()).await?);
        std::fs::remove_file(&path)?;
    }

    // In-process: no socket at all, every behaviour of a real connection.
    let (listener, connector) = memory::channel();
    tokio::spawn({
        let server = server.clone();
        async move { server.accept(listener).await }
    });
    let local = Client::connect(connector).await?;
    println!("in-process:       {}", local.lab().whoami(()).await?);

    server.shutdown(std::time::Duration::from_secs(1)).await;
    Ok(())
}
