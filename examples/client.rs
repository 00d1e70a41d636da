//! The seed's client: starts `finite_loop`, cancels it after two seconds, then calls `echo` on
//! the same client. Needs `cargo run --example server` running (or an address as argument).

use example::ExampleClientExt;
use std::time::Duration;
use tidl_runtime::{Call, Client};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:23333".to_owned());
    let client = Client::dial(addr.as_str()).await?;

    let call: Call<()> = client.example().finite_loop(());
    println!("finite_loop started; cancelling it in 2 s");

    // Wait for two seconds and cancel.
    tokio::time::sleep(Duration::from_secs(2)).await;
    call.cancel();
    println!("finite_loop cancelled: {}", call.await.map_or_else(|e| e.to_string(), |()| "completed".to_owned()));

    // The same client goes on working.
    let result = client.example().echo("hello world".to_string()).await;
    assert_eq!(result, Ok("hello world".to_string()));
    println!("echo answered {:?}", result?);
    Ok(())
}
