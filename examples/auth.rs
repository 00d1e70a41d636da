//! An async interceptor checking a bearer token before every handler: a call without the token
//! is refused with `Unauthenticated` and its handler never runs; a call with it is answered, and
//! the interceptor tells the handler who called by adding to the call's metadata.
//!
//! The last call comes from a client whose async interceptor fetches the token and adds it to
//! every call.
//!
//! Run it with `cargo run --example auth`.

use example::{Example, ExampleClientExt, ExampleServer};
use std::time::Duration;
use tidl_runtime::{
    AsyncClientInterceptor, CallOptions, Client, ClientConfig, Context, InterceptFuture, Interceptor, Method, Server,
    Status,
};

/// Accepts the calls whose `authorization` metadata holds a known token. The check awaits, as
/// one against a token service would.
struct CheckToken;

impl Interceptor for CheckToken {
    fn intercept<'a>(&'a self, ctx: &'a mut Context) -> InterceptFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await; // the token service's answer
            match ctx.metadata().get_str("authorization") {
                Some("Bearer s3cret") => {
                    // What the check learned, for the interceptors and the handler after it.
                    ctx.metadata_mut().insert("x-user", "alice");
                    Ok(())
                }
                Some(_) => Err(Status::permission_denied("this token is not valid")),
                None => Err(Status::unauthenticated("a bearer token is required (authorization metadata)")),
            }
        })
    }
}

/// Adds a bearer token to every call of the client, fetched (awaited) as from an identity
/// service.
struct FetchToken;

impl AsyncClientInterceptor for FetchToken {
    fn intercept<'a>(&'a self, method: Method, options: &'a mut CallOptions) -> InterceptFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await; // the identity service's answer
            println!("client: a token for {method}");
            *options = options.clone().metadata("authorization", "Bearer s3cret");
            Ok(())
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .register(ExampleServer::new(Example::new()))
        .intercept(|ctx: &mut Context| {
            println!("server: {:?} from {}", ctx.method().map(|m| m.to_string()), ctx.peer());
            Ok(())
        })
        .intercept(CheckToken)
        .intercept(|ctx: &mut Context| {
            println!("server: let through, as user {:?}", ctx.metadata().get_str("x-user"));
            Ok(())
        })
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

    let mut config = ClientConfig::default();
    config.interceptors.add_async(FetchToken);
    let fetching = Client::dial_with(addr, config).await?;
    let reply = fetching.example().echo("with a fetched token".into()).await?;
    println!("client, with a fetched token: {reply}");
    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
