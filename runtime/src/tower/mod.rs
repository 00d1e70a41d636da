//! tower integration (feature `tower`): a server's calls through tower layers on
//! their way to the handler, and a client's calls through layers on their way to the connection.
//!
//! **Server.** [`ServerBuilder::layer`](crate::ServerBuilder::layer) puts a layer (or a
//! `ServiceBuilder` stack) between the connection and the handlers. The request a layer sees is a
//! [`Handling`]: the call's [`Context`](crate::Context) (method, peer, metadata, deadline) and
//! the handler still to run; the response is an opaque [`Handled`], and a handler's status comes
//! back as the error. A layer's error becomes the call's status: tower's `Elapsed` (timeout) is
//! `DeadlineExceeded`, `Overloaded` (load shedding) is `Unavailable` and marked unstarted, a
//! [`Status`](crate::Status) is itself, anything else is `Unknown` with its message.
//!
//! **Client.** [`ClientService`] is any [`Invoke`](crate::Invoke) (a [`Client`](crate::Client),
//! an [`Endpoint`](crate::Endpoint), a balancer) as a `tower::Service<Request>`; [`Layered`] is a
//! stack of layers over one as an `Invoke` again, which generated clients take:
//!
//! ```no_run
//! # async fn run(client: tidl_runtime::Client) {
//! use std::time::Duration;
//! use tidl_runtime::tower::{ClientService, Layered};
//! use tower::ServiceBuilder;
//!
//! let stack = ServiceBuilder::new()
//!     .concurrency_limit(64)
//!     .timeout(Duration::from_secs(2))
//!     .service(ClientService::new(client));
//! let invoke = Layered::new(stack);
//! // `ExampleClient::new(invoke)` then calls through the stack.
//! # }
//! ```
//!
//! # Cancellation through layers
//!
//! tidl stops a call by dropping its future: on the server, the future of the whole stack, with
//! the handler inside it; on the client, the stack's future, with the call inside it, whose drop
//! sends the cancel. Every layer that keeps the inner future inside its own (tower's `Timeout`,
//! `ConcurrencyLimit`, `RateLimit`, `LoadShed`, `Buffer` — whose worker hands the future back to
//! the caller —, `MapRequest`/`MapResponse`, `ServiceBuilder` stacks of them) keeps cancellation
//! whole. A layer that **spawns** the inner future (`tokio::spawn(inner.call(req))`) breaks it:
//! the spawned handler runs on after the cancel, seeing it only through
//! [`Context::is_cancelled`](crate::Context::is_cancelled). Do not spawn in a layer.

mod client;
mod server;

pub use client::{ClientService, Layered};
pub use server::{Handled, Handler, Handling, Stack};

/// The error type of tower's layers, which a stack's errors are turned into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The status a layer's `error` stands for, for a call of `method` on `side` ("server" or
/// "client").
pub(crate) fn status_of(error: BoxError, method: crate::Method, side: &str) -> crate::Status {
    use crate::{Code, Status};
    match error.downcast::<Status>() {
        Ok(status) => *status,
        Err(error) if error.is::<::tower::timeout::error::Elapsed>() => {
            Status::new(Code::DeadlineExceeded, format!("a timeout layer of the {side} stopped `{method}`"))
        }
        Err(error) if error.is::<::tower::load_shed::error::Overloaded>() => {
            Status::unavailable(format!("the {side} is overloaded: a load-shedding layer refused `{method}`"))
                .unstarted()
        }
        Err(error) => Status::unknown(format!("a layer of the {side} failed `{method}`: {error}")),
    }
}
