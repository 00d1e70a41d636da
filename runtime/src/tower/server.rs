//! The server's side: [`Handling`] in, [`Handled`] out, [`Handler`] at the bottom of the stack.

use super::BoxError;
use crate::context::Context;
use crate::error::{Error, Status};
use crate::method::Method;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

/// What the handler's future answers, erased: its reply or application error, or its status.
type HandlerFuture = Pin<Box<dyn Future<Output = Result<Handled, Status>> + Send>>;

/// A call on its way to its handler through the server's layers: the request of the
/// `tower::Service`s a layer wraps ([`ServerBuilder::layer`](crate::ServerBuilder::layer)).
pub struct Handling {
    ctx: Context,
    handler: Box<dyn FnOnce(Context) -> HandlerFuture + Send>,
}

impl Handling {
    /// The call's context handed to the handler in the end: its method, peer, metadata,
    /// deadline and cancellation.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The call's context, to change its metadata before the handler runs.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }

    /// The method called.
    pub fn method(&self) -> Method {
        // Always set: the server records the method before the call enters the stack.
        self.ctx.method().unwrap_or_else(|| Method::new("", ""))
    }
}

impl fmt::Debug for Handling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handling").field("ctx", &self.ctx).finish_non_exhaustive()
    }
}

/// A handler's answer on its way back through the server's layers: its reply or its
/// application error, opaque to the layers (the call's status, if it failed otherwise, is the
/// service's error instead).
pub struct Handled {
    value: Box<dyn Any + Send>,
    app_error: bool,
}

impl Handled {
    /// Whether the handler answered with the method's declared error rather than its reply.
    pub fn is_app_error(&self) -> bool {
        self.app_error
    }
}

impl fmt::Debug for Handled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handled").field("app_error", &self.app_error).finish_non_exhaustive()
    }
}

/// The bottom of every server stack: runs the call's interceptors and handler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Handler;

impl Service<Handling> for Handler {
    type Response = Handled;
    type Error = Status;
    type Future = HandlerFuture;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Handling) -> HandlerFuture {
        (request.handler)(request.ctx)
    }
}

/// The server's layers so far, boxed: what each layer given to
/// [`ServerBuilder::layer`](crate::ServerBuilder::layer) wraps. Its error is a [`BoxError`],
/// as tower's layers make theirs.
pub struct Stack(BoxCloneSyncService<Handling, Handled, BoxError>);

impl Stack {
    /// The handlers alone, with no layer yet.
    pub(crate) fn handler() -> Stack {
        Stack(BoxCloneSyncService::new(Handler.map_err(BoxError::from)))
    }

    /// `layer` over this stack.
    pub(crate) fn wrap<L>(self, layer: &L) -> Stack
    where
        L: tower::Layer<Stack>,
        L::Service: Service<Handling, Response = Handled> + Clone + Send + Sync + 'static,
        <L::Service as Service<Handling>>::Error: Into<BoxError>,
        <L::Service as Service<Handling>>::Future: Send + 'static,
    {
        Stack(BoxCloneSyncService::new(layer.layer(self).map_err(Into::into)))
    }

    /// Runs the call `ctx` through the stack to the handler that `start` makes, and back.
    pub(crate) async fn run<T, E, F, Fut>(self, ctx: Context, start: F) -> Result<T, Error<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error<E>>> + Send + 'static,
    {
        let method = ctx.method().unwrap_or_else(|| Method::new("", ""));
        let handler = Box::new(move |ctx: Context| -> HandlerFuture {
            Box::pin(async move {
                match start(ctx).await {
                    Ok(value) => Ok(Handled { value: Box::new(value), app_error: false }),
                    Err(Error::App(error)) => Ok(Handled { value: Box::new(error), app_error: true }),
                    Err(Error::Status(status)) => Err(status),
                }
            })
        });
        match self.oneshot(Handling { ctx, handler }).await {
            Ok(Handled { value, app_error: false }) => match value.downcast::<T>() {
                Ok(value) => Ok(*value),
                Err(_) => Err(Error::Status(substituted(method))),
            },
            Ok(Handled { value, app_error: true }) => match value.downcast::<E>() {
                Ok(error) => Err(Error::App(*error)),
                Err(_) => Err(Error::Status(substituted(method))),
            },
            Err(error) => Err(Error::Status(super::status_of(error, method, "server"))),
        }
    }
}

/// A layer answered one call with another call's reply: the only way a `Handled` can be of
/// the wrong type.
fn substituted(method: Method) -> Status {
    Status::internal(format!("a layer of the server answered `{method}` with the reply of another method"))
}

impl Clone for Stack {
    fn clone(&self) -> Stack {
        Stack(self.0.clone())
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stack")
    }
}

impl Service<Handling> for Stack {
    type Response = Handled;
    type Error = BoxError;
    type Future = <BoxCloneSyncService<Handling, Handled, BoxError> as Service<Handling>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Handling) -> Self::Future {
        self.0.call(request)
    }
}
