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

    /// The timeout set with [`timeout`](CallOptions::timeout), if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The parent context set with [`context`](CallOptions::context), if any.
    pub fn get_context(&self) -> Option<&Context> {
        self.parent.as_ref()
    }
}
