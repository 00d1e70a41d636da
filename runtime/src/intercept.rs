//! What interceptors on both sides answer with.

use crate::error::Status;
use std::future::Future;
use std::pin::Pin;

/// The future an interceptor (a server's [`Interceptor`](crate::Interceptor), a client's
/// [`AsyncClientInterceptor`](crate::AsyncClientInterceptor)) answers with: `Ok` lets the call
/// through, `Err` refuses it with that status.
pub type InterceptFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>>;
