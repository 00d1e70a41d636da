//! [`Interceptor`]: code that runs before every handler of a server, and may refuse the call.
//!
//! Interceptors run in the handler's task, in the order they were added, before the handler: a
//! cancel, the deadline or the server's shutdown stops an interceptor that is still waiting
//! exactly as it stops a handler. An interceptor reads the call's [`Context`] (its metadata, its
//! peer with the TLS identity, its method, its deadline) and may change its metadata, which the
//! handler then sees.

use crate::context::Context;
use crate::error::Status;
use crate::intercept::InterceptFuture;

/// Runs before every handler of the server it is added to
/// ([`ServerBuilder::intercept`](crate::ServerBuilder::intercept)); an `Err` refuses the call with
/// that status, and the handler does not run. It may change the call's metadata
/// ([`Context::metadata_mut`]) to tell the handler what it learned.
///
/// Any `Fn(&mut Context) -> Result<(), Status>` is a (synchronous) interceptor; implement the
/// trait for one that awaits (a token check against a remote service, say):
///
/// ```
/// use tidl_runtime::{Context, InterceptFuture, Interceptor, Status};
///
/// struct CheckToken;
///
/// impl Interceptor for CheckToken {
///     fn intercept<'a>(&'a self, ctx: &'a mut Context) -> InterceptFuture<'a> {
///         Box::pin(async move {
///             match ctx.metadata().get_str("authorization") {
///                 Some("Bearer s3cret") => {
///                     // The handler reads who called from the metadata.
///                     ctx.metadata_mut().insert("x-user", "alice");
///                     Ok(())
///                 }
///                 _ => Err(Status::unauthenticated("a valid bearer token is required")),
///             }
///         })
///     }
/// }
/// ```
pub trait Interceptor: Send + Sync + 'static {
    /// Decides whether the call `ctx` may run, and may change its metadata.
    fn intercept<'a>(&'a self, ctx: &'a mut Context) -> InterceptFuture<'a>;
}

impl<F> Interceptor for F
where
    F: Fn(&mut Context) -> Result<(), Status> + Send + Sync + 'static,
{
    fn intercept<'a>(&'a self, ctx: &'a mut Context) -> InterceptFuture<'a> {
        let result = self(ctx);
        Box::pin(std::future::ready(result))
    }
}
