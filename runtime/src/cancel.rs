//! [`Cancellation`]: whether one call has been cancelled, shared by the server's bookkeeping and
//! the handler's [`Context`](crate::Context).

use crate::sync::lock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Checking and cloning are atomic operations (a `CancellationToken` takes a lock for each); a
/// `CancellationToken` is only made if a handler asks for one.
#[derive(Debug, Default)]
pub(crate) struct Cancellation {
    cancelled: AtomicBool,
    notify: Notify,
    /// Made on demand by [`token`](Self::token), or given to [`with_token`](Self::with_token);
    /// cancelled with the call.
    token: OnceLock<CancellationToken>,
    /// Orders making the token against cancelling, so a token made during a cancel is cancelled.
    token_lock: Mutex<()>,
}

impl Cancellation {
    /// A cancellation that `token` also triggers.
    pub(crate) fn with_token(token: CancellationToken) -> Cancellation {
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
        let _made = lock(&self.token_lock);
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }

    /// Whether the call has been cancelled (by [`cancel`](Self::cancel), or through the token).
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

    /// A token cancelled with the call, made on first use.
    pub(crate) fn token(&self) -> &CancellationToken {
        if let Some(token) = self.token.get() {
            return token;
        }
        let _made = lock(&self.token_lock);
        let token = self.token.get_or_init(CancellationToken::new);
        if self.cancelled.load(Ordering::SeqCst) {
            token.cancel();
        }
        token
    }
}
