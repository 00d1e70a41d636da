//! An async interceptor checking a bearer token before every handler: a call without the token
//! is refused with `Unauthenticated` and its handler never runs; a call with it is answered.
//!
//! Run it with `cargo run --example auth`.

use example::{Example, ExampleClientExt, ExampleServer};
use std::time::Duration;
use tidl_runtime::{CallOptions, Client, Context, InterceptFuture, Interceptor, Server, Status};

/// Accepts the calls whose `authorization` metadata holds a known token. The check awaits, as
/// one against a token service would.
struct CheckToken;

impl Interceptor for CheckToken {
    fn intercept<'a>(&'a self, ctx: &'a Context) -> InterceptFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await; // the token service's answer
            match ctx.metadata().get_str("authorization") {
                Some("Bearer s3cret") => Ok(()),
                Some(_) => Err(Status::permission_denied("this token is not valid")),
                None => Err(Status::unauthenticated("a bearer token is required (authorization metadata)")),
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .register(ExampleServer::new(Example::new()))
        .intercept(|ctx: &Context| {
            println!("server: {:?} from {}", ctx.method().map(|m| m.to_string()), ctx.peer());
            Ok(())
        })
        .intercept(CheckToken)
        .build();
    let addr = server.listen("127.0.0.1:0").await?;
    let client = Client::dial(addr).await?;

    match client.example().echo("no token".into()).await {
        Ok(reply) => println!("client: {reply}"),
        Err(e) => println!("client, without a token: {e}"),
    }
    let wrong = CallOptions::default().metadata("authorization", "Bearer guess");
    match client.example().with_options(wrong).echo("wrong token".into()).await {
        Ok(reply) => println!("client: {reply}"),
        Err(e) => println!("client, with a wrong token: {e}"),
    }
    let right = CallOptions::default().metadata("authorization", "Bearer s3cret");
    let reply = client.example().with_options(right).echo("with the token".into()).await?;
    println!("client, with the token: {reply}");
    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
