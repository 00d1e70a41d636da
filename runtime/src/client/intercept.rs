//! [`ClientInterceptor`]: code that runs before every call a client starts, and may change its
//! options (add metadata: a credential, a trace context) or refuse it.

use super::options::CallOptions;
use crate::error::Status;
use crate::method::Method;
use std::fmt;
use std::sync::Arc;

/// Runs before every call of the client it is configured on
/// ([`ClientConfig::interceptors`](crate::ClientConfig::interceptors)), synchronously, as the call
/// starts: it may change the call's options (add metadata, shorten the timeout) or refuse the
/// call with a status, and then nothing is sent. Any `Fn(Method, &mut CallOptions) -> Result<(),
/// Status>` is one.
///
/// ```
/// use tidl_runtime::{CallOptions, ClientConfig, Method, Status};
///
/// let mut config = ClientConfig::default();
/// config.interceptors.add(|_method: Method, options: &mut CallOptions| {
///     *options = options.clone().metadata("authorization", "Bearer s3cret");
///     Ok::<(), Status>(())
/// });
/// ```
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Decides whether the call of `method` may start, and with which options.
    fn intercept(&self, method: Method, options: &mut CallOptions) -> Result<(), Status>;
}

impl<F> ClientInterceptor for F
where
    F: Fn(Method, &mut CallOptions) -> Result<(), Status> + Send + Sync + 'static,
{
    fn intercept(&self, method: Method, options: &mut CallOptions) -> Result<(), Status> {
        self(method, options)
    }
}

/// A client's interceptors, run in the order added.
#[derive(Clone, Default)]
pub struct ClientInterceptors(Vec<Arc<dyn ClientInterceptor>>);

impl ClientInterceptors {
    /// Adds `interceptor`, to run after those added before it.
    pub fn add(&mut self, interceptor: impl ClientInterceptor) -> &mut ClientInterceptors {
        self.0.push(Arc::new(interceptor));
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `options` as the interceptors leave them for a call of `method`, or the first refusal.
    pub(crate) fn apply(&self, method: Method, options: &CallOptions) -> Result<CallOptions, Status> {
        let mut options = options.clone();
        for interceptor in &self.0 {
            interceptor.intercept(method, &mut options)?;
        }
        Ok(options)
    }
}

impl fmt::Debug for ClientInterceptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} interceptors", self.0.len())
    }
}
