//! The per-call context a handler receives: its cancellation and its deadline.

use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a handler knows about the call it is running: whether it has been cancelled, and when its
/// deadline passes.
///
/// The server stops a cancelled handler by dropping its future at the next `.await`, so most
/// handlers never look at the context. A handler that computes for a long time without awaiting
/// checks [`is_cancelled`](Context::is_cancelled) in its loop. A handler that calls another
/// service passes its context on (`client.example().context(&ctx)`), so the inner call inherits
/// the deadline and is cancelled with the outer one.
///
/// Cloning is cheap (a reference count).
#[derive(Clone, Debug)]
pub struct Context {
    token: CancellationToken,
    deadline: Option<Instant>,
}

impl Context {
    /// A context that is never cancelled and has no deadline, for calls made outside a handler.
    pub fn background() -> Context {
        Context { token: CancellationToken::new(), deadline: None }
    }

    /// A context cancelled by `token` and expiring at `deadline`.
    pub fn new(token: CancellationToken, deadline: Option<Instant>) -> Context {
        Context { token, deadline }
    }

    /// Whether the call has been cancelled or its deadline has passed.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Completes when the call is cancelled or its deadline passes.
    pub async fn cancelled(&self) {
        match self.deadline {
            Some(deadline) => {
                tokio::select! {
                    () = self.token.cancelled() => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            None => self.token.cancelled().await,
        }
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The time left until the deadline (zero once it has passed), if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The token that fires when the call is cancelled (not when the deadline passes; see
    /// [`cancelled`](Context::cancelled) for both).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Default for Context {
    fn default() -> Context {
        Context::background()
    }
}
