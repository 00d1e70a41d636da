//! The client's side: an [`Invoke`] as a tower service, and a stack of layers as an `Invoke`.

use super::BoxError;
use crate::client::Client;
use crate::client::in_flight::Reply;
use crate::client::invoke::{Invoke, ReplyFuture, Request};
use crate::error::Status;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tower::{Service, ServiceExt};

/// An [`Invoke`] (a [`Client`], an [`Endpoint`](crate::Endpoint), a balancer) as a
/// `tower::Service`: the bottom of a client's stack of layers. A call that fails with a status
/// answers it as the service's error; replies and application errors are its response.
#[derive(Clone, Debug)]
pub struct ClientService<I = Client> {
    invoke: I,
}

impl<I: Invoke> ClientService<I> {
    /// The service that sends its requests through `invoke`.
    pub fn new(invoke: I) -> ClientService<I> {
        ClientService { invoke }
    }

    /// The `Invoke` underneath.
    pub fn get_ref(&self) -> &I {
        &self.invoke
    }
}

impl<I: Invoke> Service<Request> for ClientService<I> {
    type Response = Reply;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Status>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    /// Starts the call now (a [`Client`] queues it before this returns); dropping the future
    /// cancels it.
    fn call(&mut self, request: Request) -> Self::Future {
        let reply = self.invoke.invoke(request);
        Box::pin(async move {
            match reply.await {
                Reply::Status(status) => Err(status),
                reply => Ok(reply),
            }
        })
    }
}

/// A stack of tower layers over a [`ClientService`] (any `tower::Service<Request>` answering
/// [`Reply`]s), as an [`Invoke`]: what a generated client is made over to send its calls
/// through the layers (`ExampleClient::new(Layered::new(stack))`).
///
/// A call enters the stack when its [`Call`](crate::Call) is first polled (awaited), so that a
/// layer that waits (for a concurrency permit, say) waits in the caller's task; dropping or
/// cancelling the `Call` drops it wherever it is in the stack, and a call already sent is
/// cancelled on the server. A layer's error becomes the call's status (tower's `Elapsed` is
/// `DeadlineExceeded`, `Overloaded` is `Unavailable` and unstarted). Streaming calls do not fit
/// a request/response service, and fail with `Unimplemented`: make streams on the `Invoke`
/// underneath.
#[derive(Clone)]
pub struct Layered<S> {
    stack: S,
}

impl<S> Layered<S> {
    /// Sends calls through `stack`.
    pub fn new(stack: S) -> Layered<S> {
        Layered { stack }
    }

    /// The stack.
    pub fn get_ref(&self) -> &S {
        &self.stack
    }
}

impl<S> fmt::Debug for Layered<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Layered")
    }
}

impl<S> Invoke for Layered<S>
where
    S: Service<Request, Response = Reply> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn invoke(&self, request: Request) -> ReplyFuture {
        let stack = self.stack.clone();
        let method = request.method();
        Box::pin(async move {
            match stack.oneshot(request).await {
                Ok(reply) => reply,
                Err(error) => Reply::Status(super::status_of(error.into(), method, "client")),
            }
        })
    }
}
