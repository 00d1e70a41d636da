//! [`Context`]: what a handler knows about the call it is running.

use crate::cancel::Cancellation;
use crate::error::{Code, Status};
use crate::method::Method;
use crate::sched::YieldOnce;
use crate::transport::Peer;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a handler knows about the call it is running: whether it has been cancelled, when its
/// deadline passes, which method it is and who called.
///
/// The server stops a cancelled handler by dropping its future at its next `.await`, so most
/// handlers never look at the context. Two kinds do:
///
/// - **A handler that computes without awaiting** calls [`checkpoint`](Context::checkpoint)
///   every millisecond or so of work (`ctx.checkpoint().await?`): it returns an error as soon as
///   the call is cancelled or past its deadline, and in between lets the connection's other
///   work (reading the cancel itself among it) run. A handler that computes for long runs the
///   work on tokio's blocking pool with [`run_blocking`](Context::run_blocking) and checks
///   [`is_cancelled`](Context::is_cancelled) there.
/// - **A handler that calls another service** passes its context on
///   (`client.example().context(&ctx)`), so the inner call inherits the deadline and is
///   cancelled with the outer one; `?` on the inner call's error forwards its status.
///
/// ```
/// use tidl_runtime::{Context, Error};
///
/// async fn sum_of_squares(ctx: Context, n: u64) -> Result<u64, Error> {
///     let mut sum = 0u64;
///     for i in 0..n {
///         if i % 100_000 == 0 {
///             ctx.checkpoint().await?; // stops here once the caller has cancelled
///         }
///         sum = sum.wrapping_add(i * i);
///     }
///     Ok(sum)
/// }
/// ```
///
/// Cloning is cheap (a reference count).
#[derive(Clone, Debug)]
pub struct Context {
    call: Arc<CallState>,
    /// The method being called, in the context of a call the server runs. (Here rather than in
    /// the shared state, where setting it after the call was admitted took a `OnceLock`, about
    /// 1.5 % of a busy server's time.)
    method: Option<Method>,
    deadline: Option<Instant>,
    /// The metadata as an interceptor or a layer changed it, if one did: the handler sees this
    /// instead of what the caller sent.
    metadata: Option<Arc<crate::Metadata>>,
}

/// The part of a call's context shared by its handler and the server's bookkeeping.
#[derive(Debug)]
pub(crate) struct CallState {
    cancellation: Cancellation,
    /// A copy (cheap: an address, or Unix credentials and a shared path), so that a call does not
    /// share a reference count with its connection.
    peer: Peer,
    /// What the caller sent with the call.
    metadata: crate::Metadata,
}

impl CallState {
    /// The state of a call from `peer`, as the server admits it.
    pub(crate) fn new(peer: Peer, metadata: crate::Metadata) -> CallState {
        CallState { cancellation: Cancellation::default(), peer, metadata }
    }

    /// Cancels the call: its handler is stopped, and its context says so.
    pub(crate) fn cancel(&self) {
        self.cancellation.cancel();
    }

    /// Completes when the call is cancelled.
    pub(crate) async fn cancelled(&self) {
        self.cancellation.cancelled().await;
    }

    /// Whether the call has been cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// What the caller sent with the call.
    pub(crate) fn metadata(&self) -> &crate::Metadata {
        &self.metadata
    }
}

impl Context {
    /// A context that is never cancelled and has no deadline, for calls made outside a handler.
    pub fn background() -> Context {
        Context {
            call: Arc::new(CallState::new(Peer::Unknown, crate::Metadata::new())),
            method: None,
            deadline: None,
            metadata: None,
        }
    }

    /// A context cancelled by `token` and expiring at `deadline`, for calls made outside a
    /// handler that should stop together.
    pub fn new(token: CancellationToken, deadline: Option<std::time::Instant>) -> Context {
        Context {
            call: Arc::new(CallState {
                cancellation: Cancellation::with_token(token),
                peer: Peer::Unknown,
                metadata: crate::Metadata::new(),
            }),
            method: None,
            deadline: deadline.map(Instant::from_std),
            metadata: None,
        }
    }

    /// The context of a call of `method` the server runs.
    pub(crate) fn for_call(call: Arc<CallState>, method: Method, deadline: Option<Instant>) -> Context {
        Context { call, method: Some(method), deadline, metadata: None }
    }

    /// The call's shared state.
    pub(crate) fn state(&self) -> &Arc<CallState> {
        &self.call
    }

    /// The deadline as tokio's clock sees it.
    pub(crate) fn deadline_instant(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the call has been cancelled or its deadline has passed.
    pub fn is_cancelled(&self) -> bool {
        self.call.cancellation.is_cancelled() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Completes when the call is cancelled or its deadline passes.
    pub async fn cancelled(&self) {
        match self.deadline {
            Some(deadline) => {
                tokio::select! {
                    () = self.call.cancellation.cancelled() => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            None => self.call.cancellation.cancelled().await,
        }
    }

    /// `Err` with the status to end the call with once it has been cancelled (`Cancelled`) or
    /// has passed its deadline (`DeadlineExceeded`), else `Ok`. Lets a handler that notices it
    /// should stop return at once with `?`, inventing no application error.
    pub fn check(&self) -> Result<(), Status> {
        if self.call.cancellation.is_cancelled() {
            return Err(Status::cancelled(format!("{} was cancelled", self.what())));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Status::new(Code::DeadlineExceeded, format!("{} passed its deadline", self.what())));
        }
        Ok(())
    }

    /// The awaitable checkpoint of a handler that computes without awaiting: returns `Err` (as
    /// [`check`](Context::check) does) once the call is cancelled or past its deadline; else
    /// steps aside for a moment, so that other tasks run (the reading of this call's cancel among
    /// them, even on a one-thread runtime), and returns `Ok`.
    ///
    /// Costs a trip through the scheduler, well under a microsecond: call it every millisecond
    /// or so of work, not on every iteration of a tight loop.
    pub async fn checkpoint(&self) -> Result<(), Status> {
        self.check()?;
        YieldOnce::default().await;
        self.check()
    }

    /// Runs `work` on tokio's blocking pool with a clone of this context, and returns what it
    /// returns. For long computations: the handler's worker stays free, and `work` checks
    /// [`is_cancelled`](Context::is_cancelled) (or [`check`](Context::check)) to stop early,
    /// because a thread cannot be stopped from outside. When the call is cancelled the handler
    /// is dropped at once; `work` sees the cancel at its next check.
    ///
    /// A panic in `work` is a panic of the handler (the call fails with `Internal`).
    pub async fn run_blocking<R, F>(&self, work: F) -> R
    where
        F: FnOnce(Context) -> R + Send + 'static,
        R: Send + 'static,
    {
        let ctx = self.clone();
        match tokio::task::spawn_blocking(move || work(ctx)).await {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down, and this handler with it.
            Err(_) => std::future::pending().await,
        }
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline.map(Instant::into_std)
    }

    /// The time left until the deadline (zero once it has passed), if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The method being called, for the context of a call the server runs.
    pub fn method(&self) -> Option<Method> {
        self.method
    }

    /// Who made the call: its TCP address, its Unix credentials, or [`Peer::Unknown`] for a
    /// context made outside the server.
    pub fn peer(&self) -> &Peer {
        &self.call.peer
    }

    /// The metadata the caller sent with the call (empty if none, or for a context made outside
    /// the server).
    pub fn metadata(&self) -> &crate::Metadata {
        match &self.metadata {
            Some(changed) => changed,
            None => &self.call.metadata,
        }
    }

    /// The metadata, to change: what a server [`Interceptor`](crate::Interceptor) or layer does
    /// to pass what it learned (a verified user, say) to the handler. Changes are seen through
    /// this context and its later clones, never by the caller; the first change copies the
    /// metadata the caller sent.
    pub fn metadata_mut(&mut self) -> &mut crate::Metadata {
        let call = &self.call;
        Arc::make_mut(self.metadata.get_or_insert_with(|| Arc::new(call.metadata.clone())))
    }

    /// A token that fires when the call is cancelled (not when the deadline passes; see
    /// [`cancelled`](Context::cancelled) for both), for code that works with tokio-util's
    /// `CancellationToken`. Made on first use.
    pub fn token(&self) -> &CancellationToken {
        self.call.cancellation.token()
    }

    /// Names the call in messages.
    fn what(&self) -> String {
        match &self.method {
            Some(method) => format!("`{method}`"),
            None => "the call".to_owned(),
        }
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

    fn call() -> Arc<CallState> {
        let call = CallState::new(Peer::Unknown, crate::Metadata::new());
        Arc::new(call)
    }

    #[tokio::test]
    async fn cancelling_wakes_waiters_and_tokens_made_before_or_after() {
        let state = call();
        let ctx = Context::for_call(state.clone(), Method::new("S", "m"), None);
        let before = ctx.token().clone();
        let waiter = tokio::spawn({
            let ctx = ctx.clone();
            async move { ctx.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(!ctx.is_cancelled() && !before.is_cancelled());
        state.cancel();
        waiter.await.expect("woken");
        assert!(ctx.is_cancelled() && before.is_cancelled());
        assert_eq!(ctx.check(), Err(Status::cancelled("`S.m` was cancelled")));
        // A context that made no token before the cancel gets a cancelled one.
        let later = call();
        later.cancel();
        assert!(Context::for_call(later, Method::new("S", "m"), None).token().is_cancelled());
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
        assert_eq!(ctx.checkpoint().await.map_err(|s| s.code()), Err(Code::Cancelled));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_as_cancelled() {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let ctx = Context::new(CancellationToken::new(), Some(deadline));
        assert!(!ctx.is_cancelled());
        assert_eq!(ctx.checkpoint().await, Ok(()));
        ctx.cancelled().await;
        assert!(ctx.is_cancelled());
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
        assert_eq!(ctx.check().map_err(|s| s.code()), Err(Code::DeadlineExceeded));
    }

    #[tokio::test]
    async fn a_checkpoint_lets_other_tasks_run_on_a_one_thread_runtime() {
        let ctx = Context::background();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn({
            let ran = ran.clone();
            async move { ran.store(true, std::sync::atomic::Ordering::SeqCst) }
        });
        ctx.checkpoint().await.expect("not cancelled");
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst), "the other task ran at the checkpoint");
    }

    #[tokio::test]
    async fn blocking_work_sees_the_cancel() {
        let state = call();
        let ctx = Context::for_call(state.clone(), Method::new("S", "m"), None);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let work = tokio::spawn(async move {
            ctx.run_blocking(move |ctx| {
                let _ = started_tx.send(());
                while !ctx.is_cancelled() {
                    std::thread::yield_now();
                }
                ctx.check()
            })
            .await
        });
        started_rx.await.expect("started");
        state.cancel();
        let result = work.await.expect("joined");
        assert_eq!(result.map_err(|s| s.code()), Err(Code::Cancelled));
    }
}
