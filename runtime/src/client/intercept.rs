//! [`ClientInterceptor`]: code that runs before every call a client starts, and may change its
//! options (add metadata: a credential, a trace context) or refuse it.

use super::options::CallOptions;
use crate::error::Status;
use crate::intercept::InterceptFuture;
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

/// An interceptor that awaits (a token fetched or refreshed from an identity service, say): runs
/// before every unary call of the client it is added to
/// ([`ClientInterceptors::add_async`]), as the call is first polled, and may change the call's
/// options or refuse it. The time it takes counts against the call's timeout.
///
/// A client with one cannot start streaming calls, which start at once, before any await: they
/// fail with `FailedPrecondition`, unstarted. Use a synchronous [`ClientInterceptor`] for what
/// streams need.
///
/// ```
/// use tidl_runtime::{AsyncClientInterceptor, CallOptions, ClientConfig, InterceptFuture, Method};
///
/// struct FreshToken;
///
/// impl AsyncClientInterceptor for FreshToken {
///     fn intercept<'a>(&'a self, _method: Method, options: &'a mut CallOptions) -> InterceptFuture<'a> {
///         Box::pin(async move {
///             let token = "s3cret"; // fetched from a token service here
///             *options = options.clone().metadata("authorization", format!("Bearer {token}"));
///             Ok(())
///         })
///     }
/// }
///
/// let mut config = ClientConfig::default();
/// config.interceptors.add_async(FreshToken);
/// ```
pub trait AsyncClientInterceptor: Send + Sync + 'static {
    /// Decides whether the call of `method` may start, and with which options.
    fn intercept<'a>(&'a self, method: Method, options: &'a mut CallOptions) -> InterceptFuture<'a>;
}

#[derive(Clone)]
enum Entry {
    Sync(Arc<dyn ClientInterceptor>),
    Async(Arc<dyn AsyncClientInterceptor>),
}

/// A client's interceptors, run in the order added.
#[derive(Clone, Default)]
pub struct ClientInterceptors {
    entries: Vec<Entry>,
    awaits: bool,
}

impl ClientInterceptors {
    /// Adds `interceptor`, to run after those added before it.
    pub fn add(&mut self, interceptor: impl ClientInterceptor) -> &mut ClientInterceptors {
        self.entries.push(Entry::Sync(Arc::new(interceptor)));
        self
    }

    /// Adds `interceptor`, which awaits, to run after those added before it.
    pub fn add_async(&mut self, interceptor: impl AsyncClientInterceptor) -> &mut ClientInterceptors {
        self.entries.push(Entry::Async(Arc::new(interceptor)));
        self.awaits = true;
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether one of them awaits.
    pub(crate) fn awaits(&self) -> bool {
        self.awaits
    }

    /// `options` as the interceptors leave them for a call of `method`, or the first refusal;
    /// for a client whose interceptors do not await.
    pub(crate) fn apply(&self, method: Method, options: &CallOptions) -> Result<CallOptions, Status> {
        let mut options = options.clone();
        for entry in &self.entries {
            match entry {
                Entry::Sync(interceptor) => interceptor.intercept(method, &mut options)?,
                Entry::Async(_) => {
                    return Err(Status::failed_precondition(format!(
                        "`{method}` was not started: it is a streaming call, which starts at once, and \
                         this client has an async interceptor, which runs only before unary calls"
                    ))
                    .unstarted());
                }
            }
        }
        Ok(options)
    }

    /// `options` as the interceptors, awaited, leave them for a call of `method`, or the first
    /// refusal.
    pub(crate) async fn apply_async(&self, method: Method, options: &CallOptions) -> Result<CallOptions, Status> {
        let mut options = options.clone();
        for entry in &self.entries {
            match entry {
                Entry::Sync(interceptor) => interceptor.intercept(method, &mut options)?,
                Entry::Async(interceptor) => interceptor.intercept(method, &mut options).await?,
            }
        }
        Ok(options)
    }
}

impl fmt::Debug for ClientInterceptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} interceptors", self.entries.len())
    }
}
