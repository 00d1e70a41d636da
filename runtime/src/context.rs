//! The per-call context a handler receives: its cancellation and its deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Whether one call has been cancelled, shared by the server's bookkeeping and the handler's
/// [`Context`]. Checking and cloning are atomic operations (a `CancellationToken` takes a lock for
/// each); a `CancellationToken` is only made if a handler asks for one.
#[derive(Debug, Default)]
pub(crate) struct Cancellation {
    cancelled: AtomicBool,
    notify: Notify,
    /// Made on demand by [`Context::token`], or given to [`Context::new`]; cancelled with the call.
    token: OnceLock<CancellationToken>,
    /// Orders making the token against cancelling, so a token made during a cancel is cancelled.
    token_lock: Mutex<()>,
}

impl Cancellation {
    fn with_token(token: CancellationToken) -> Cancellation {
        let cancellation = Cancellation::default();
        let _ = cancellation.token.set(token);
        cancellation
    }

    /// Cancels the call: wakes everything waiting in [`cancelled`](Self::cancelled).
    pub(crate) fn cancel(&self) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        self.notify.notify_waiters();
        let _made = self.token_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }

    /// Whether the call has been cancelled (by the server, or through a token given to
    /// [`Context::new`]).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.token.get().is_some_and(CancellationToken::is_cancelled)
    }

    /// Completes when the call is cancelled.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            match self.token.get() {
                // A token from outside can be cancelled without `cancel`.
                Some(token) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = token.cancelled() => return,
                    }
                }
                None => notified.await,
            }
        }
    }

    fn token(&self) -> &CancellationToken {
        if let Some(token) = self.token.get() {
            return token;
        }
        let _made = self.token_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let token = self.token.get_or_init(CancellationToken::new);
        if self.cancelled.load(Ordering::SeqCst) {
            token.cancel();
        }
        token
    }
}

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
    call: Arc<Cancellation>,
    deadline: Option<Instant>,
}

impl Context {
    /// A context that is never cancelled and has no deadline, for calls made outside a handler.
    pub fn background() -> Context {
        Context { call: Arc::default(), deadline: None }
    }

    /// A context cancelled by `token` and expiring at `deadline`.
    pub fn new(token: CancellationToken, deadline: Option<Instant>) -> Context {
        Context { call: Arc::new(Cancellation::with_token(token)), deadline }
    }

    /// The context of a call the server runs.
    pub(crate) fn for_call(call: Arc<Cancellation>, deadline: Option<Instant>) -> Context {
        Context { call, deadline }
    }

    /// The call's shared cancellation state.
    pub(crate) fn cancellation(&self) -> &Arc<Cancellation> {
        &self.call
    }

    /// Whether the call has been cancelled or its deadline has passed.
    pub fn is_cancelled(&self) -> bool {
        self.call.is_cancelled() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Completes when the call is cancelled or its deadline passes.
    pub async fn cancelled(&self) {
        match self.deadline {
            Some(deadline) => {
                tokio::select! {
                    () = self.call.cancelled() => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            None => self.call.cancelled().await,
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

    /// A token that fires when the call is cancelled (not when the deadline passes; see
    /// [`cancelled`](Context::cancelled) for both), for code that works with tokio-util's
    /// `CancellationToken`. Made on first use.
    pub fn token(&self) -> &CancellationToken {
        self.call.token()
    }
}

impl Default for Context {
    fn default() -> Context {
        Context::background()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelling_wakes_waiters_and_tokens_made_before_or_after() {
        let call = Arc::new(Cancellation::default());
        let ctx = Context::for_call(call.clone(), None);
        let before = ctx.token().clone();
        let waiter = tokio::spawn({
            let ctx = ctx.clone();
            async move { ctx.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(!ctx.is_cancelled() && !before.is_cancelled());
        call.cancel();
        waiter.await.expect("woken");
        assert!(ctx.is_cancelled() && before.is_cancelled());
        // A context that made no token before the cancel gets a cancelled one.
        let later = Arc::new(Cancellation::default());
        later.cancel();
        assert!(Context::for_call(later, None).token().is_cancelled());
    }

    #[tokio::test]
    async fn a_given_token_cancels_the_context() {
        let token = CancellationToken::new();
        let ctx = Context::new(token.clone(), None);
        let waiter = tokio::spawn({
            let ctx = ctx.clone();
            async move { ctx.cancelled().await }
        });
        tokio::task::yield_now().await;
        token.cancel();
        waiter.await.expect("woken by the token");
        assert!(ctx.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_as_cancelled() {
        let ctx = Context::new(CancellationToken::new(), Some(Instant::now() + Duration::from_secs(5)));
        assert!(!ctx.is_cancelled());
        ctx.cancelled().await;
        assert!(ctx.is_cancelled());
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    }
}
