//! [`CallOptions`]: per-call settings.

use crate::context::Context;
use std::time::Duration;

/// Per-call settings: a timeout, and the context of the handler a call is made from.
///
/// Generated clients carry a `CallOptions` and expose it as builder steps
/// (`client.example().timeout(d).echo(..)`).
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    parent: Option<Context>,
    wait_for_ready: Option<bool>,
    idempotent: bool,
    metadata: crate::Metadata,
}

impl CallOptions {
    /// Fails the call with `DeadlineExceeded` if it has not completed after `timeout`; the
    /// server is told the deadline and stops the handler when it passes.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the call part of the handler call `parent`: the call's deadline is never later
    /// than the parent's, and the call is cancelled when the parent is.
    pub fn context(mut self, parent: &Context) -> CallOptions {
        self.parent = Some(parent.clone());
        self
    }

    /// Through an [`Endpoint`](crate::Endpoint) or a balancer that is reconnecting: `true`
    /// waits for a connection (within the call's deadline), `false` fails at once with
    /// `Unavailable`. Unset, the endpoint's own setting decides.
    pub fn wait_for_ready(mut self, wait: bool) -> CallOptions {
        self.wait_for_ready = Some(wait);
        self
    }

    /// Says that running this call twice does what running it once does (as `@idempotent` says
    /// of a method): through an [`Endpoint`](crate::Endpoint) or a balancer, it is then sent
    /// again if its connection is lost under it, within a retry budget.
    pub fn idempotent(mut self, idempotent: bool) -> CallOptions {
        self.idempotent = idempotent;
        self
    }

    /// Whether the call was marked [`idempotent`](CallOptions::idempotent).
    pub fn get_idempotent(&self) -> bool {
        self.idempotent
    }

    /// Sends `key` with `value` as the call's metadata (after the client's own,
    /// [`ClientConfig::metadata`](crate::ClientConfig::metadata)); the handler reads it with
    /// [`Context::metadata`](crate::Context::metadata). Needs a server that speaks protocol 1.4.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<bytes::Bytes>) -> CallOptions {
        self.metadata.insert(key, value);
        self
    }

    /// The metadata set with [`metadata`](CallOptions::metadata).
    pub fn get_metadata(&self) -> &crate::Metadata {
        &self.metadata
    }

    /// The choice made with [`wait_for_ready`](CallOptions::wait_for_ready), if any.
    pub fn get_wait_for_ready(&self) -> Option<bool> {
        self.wait_for_ready
    }

    /// The timeout set with [`timeout`](CallOptions::timeout), if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The parent context set with [`context`](CallOptions::context), if any.
    pub fn get_context(&self) -> Option<&Context> {
        self.parent.as_ref()
    }
}
