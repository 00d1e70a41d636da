//! The seed's server: serves `Example` on 127.0.0.1:23333 (or the address given as argument).
//!
//! Run it with `cargo run --example server`, then `cargo run --example client` in another terminal.

use example::{Example, ExampleServer};
use tidl_runtime::Server;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:23333".to_owned());
    let server = Server::builder().register(ExampleServer::new(Example::new())).build();
    let listener = TcpListener::bind(&addr).await?;
    println!("serving Example on {}", listener.local_addr()?);
    server.accept(listener).await?;
    Ok(())
}
