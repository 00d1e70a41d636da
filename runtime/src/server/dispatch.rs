//! Running a call: the [`Service`] trait generated servers implement, the [`Incoming`] request
//! they are handed, and the handler task that runs under the call's cancellation and deadline
//! and sends its outcome.
//!
//! A handler stops in one of four ways: it completes (its reply is sent); the client cancels it
//! (a cancel frame, a dropped `Call`, or the client's connection closing); its deadline passes
//! (the client is told `DeadlineExceeded`); or the server shuts down and the grace period ends
//! (the client is told `Unavailable`). In every case but completion the handler's future is
//! dropped at its next `.await`: the work stops, not just the waiting for it.

use super::connection::Conn;
use crate::codec;
use crate::conn::outbox::PushError;
use crate::context::{CallState, Context};
use crate::error::{Error, Status};
use crate::method::Method;
use crate::observe::{self, Asked};
use crate::sched::watchdog;
use crate::wire::{self, Header, Outcome};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use tokio::time::Instant;
use tokio_util::either::Either;

/// A service the server can run: implemented by the generated `<Name>Server` wrappers.
pub trait Service: Send + Sync + 'static {
    /// The service's name as declared in the `.tidl` file.
    fn name(&self) -> &'static str;

    /// Starts the call `request` of `method`, or hands the request back if the service has no
    /// such method.
    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming>;

    /// The wire shape of `method`, which clients' shapes are checked against (generated
    /// services answer; without one, calls are not checked).
    fn schema(&self, method: &str) -> Option<&'static crate::Schema> {
        let _ = method;
        None
    }

    /// The `.tidl` files the service was generated from, which
    /// [`ServerBuilder::reflection`](crate::ServerBuilder::reflection) serves (generated services
    /// answer; without them, reflection does not list the service).
    fn embedded_schema(&self) -> Option<&'static crate::schema::EmbeddedSchema> {
        None
    }
}

/// A request the server has read and is about to run; generated code hands it to
/// [`Incoming::spawn`] with the method's handler.
pub struct Incoming {
    pub(super) conn: Arc<Conn>,
    pub(super) id: u64,
    pub(super) payload: Bytes,
    pub(super) deadline: Option<Instant>,
    /// The call's state, recorded in the connection's table of calls in flight.
    pub(super) call: Arc<CallState>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming").field("id", &self.id).field("peer", &self.conn.name).finish_non_exhaustive()
    }
}

/// How a handler task ended.
pub(super) enum Ended<T, E> {
    Ok(T),
    App(E),
    /// Boxed: the task carries an `Ended` by value, and statuses are rare.
    Status(Box<Status>),
    Cancelled,
    DeadlineExceeded,
    Panicked(Box<dyn Any + Send>),
}

impl Incoming {
    pub(super) fn new(
        conn: Arc<Conn>,
        id: u64,
        payload: Bytes,
        deadline: Option<Instant>,
        call: Arc<CallState>,
    ) -> Incoming {
        Incoming { conn, id, payload, deadline, call }
    }

    /// Runs `handler` on the decoded argument in a task of its own, under the call's
    /// cancellation and deadline, and sends its result as the reply.
    pub fn spawn<A, T, E, F, Fut>(self, method: Method, handler: F)
    where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Context, A) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error<E>>> + Send + 'static,
    {
        let Incoming { conn, id, payload, deadline, call } = self;
        // Decoded here, on the connection's reader: the task then carries the value rather than
        // the frame, and the read buffer is free for reuse sooner.
        let arg = match codec::decode_shared::<A>(&payload, 0..payload.len()) {
            Ok(arg) => arg,
            Err(e) => {
                let status = Status::invalid_argument(format!("the argument of `{method}` did not decode: {e}"));
                tracing::debug!(peer = %conn.name, %method, "call refused: {}", status.message());
                conn.refuse(id, Asked::Known(method), call.metadata(), &status);
                drop(call);
                conn.in_flight.end(id);
                return;
            }
        };
        drop(payload);
        run(conn, id, method, deadline, call, move |ctx| handler(ctx, arg));
    }
}

/// Runs the handler that `start` makes from the call's context in a task of its own, under the
/// call's cancellation and deadline, and sends its result as the reply.
pub(super) fn run<T, E, F, Fut>(
    conn: Arc<Conn>,
    id: u64,
    method: Method,
    deadline: Option<Instant>,
    call: Arc<CallState>,
    start: F,
) where
    T: Serialize + Send + 'static,
    E: Serialize + Send + 'static,
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Error<E>>> + Send + 'static,
{
    let ctx = Context::for_call(call, method, deadline);
    let (observed, span) = observe::ServerCall::start(method, &ctx);
    let tracker = conn.server.tracker.clone();
    let inline = conn.server.config.inline_handlers;
    let interceptors = (!conn.server.interceptors.is_empty()).then(|| conn.server.interceptors.clone());
    #[cfg(feature = "tower")]
    let stack = conn.server.stack.clone();
    let task = async move {
        let call = ctx.state().clone();
        // Without interceptors or layers the handler's future is the task's own; with them, the
        // chain and the handler go in a box of their own, so that servers without any keep a
        // small task. Making the handler's future runs code of the service's (a hand-written
        // `Service` may panic there): the panic is caught, and raised again by the first poll of
        // a future made in its place, where it fails the call as a panic of the handler does.
        // (Caught here, in a plain closure, rather than around the call of this closure below: a
        // `catch_unwind` there made the task 128 bytes larger.)
        let start = move |ctx| -> Either<Fut, Boxed<T, E>> {
            let made = std::panic::catch_unwind(AssertUnwindSafe(move || -> Either<Fut, Boxed<T, E>> {
                match interceptors {
                    None => Either::Left(start(ctx)),
                    Some(interceptors) => Either::Right(Box::pin(intercepted(interceptors, ctx, start))),
                }
            }));
            made.unwrap_or_else(|panic| {
                let mut panic = Some(panic);
                Either::Right(Box::pin(std::future::poll_fn(move |_| -> Poll<Result<T, Error<E>>> {
                    match panic.take() {
                        Some(panic) => std::panic::resume_unwind(panic),
                        None => Poll::Pending,
                    }
                })) as Boxed<T, E>)
            })
        };
        // In a block of its own, so that the handler's future and its slot take no room in the
        // task while the reply waits for room in the outbox.
        let ended = {
            // The handler's future, in a slot of the task's, so that it is dropped in place as soon
            // as the call has ended, whatever ended it.
            let mut slot = std::pin::pin!(None);
            #[cfg(feature = "tower")]
            let work = match stack {
                None => start(ctx),
                Some(stack) => Either::Right(Box::pin(stack.run(ctx, start)) as Boxed<T, E>),
            };
            #[cfg(not(feature = "tower"))]
            let work = start(ctx);
            slot.set(Some(work));
            let ended = {
                // A panicking handler fails its own call with `Internal`; nothing else notices.
                let work = std::future::poll_fn(|cx| {
                    // Filled before it is polled, emptied after: never empty here.
                    let Some(mut work) = slot.as_mut().as_pin_mut() else { return Poll::Pending };
                    // Watched: a poll that runs for long gets another worker woken to poll for I/O.
                    let _polling = watchdog::Polling::enter();
                    match std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
                        Ok(Poll::Ready(Ok(reply))) => Poll::Ready(Ended::Ok(reply)),
                        Ok(Poll::Ready(Err(Error::App(e)))) => Poll::Ready(Ended::App(e)),
                        Ok(Poll::Ready(Err(Error::Status(status)))) => Poll::Ready(Ended::Status(Box::new(status))),
                        Ok(Poll::Pending) => Poll::Pending,
                        Err(panic) => Poll::Ready(Ended::Panicked(panic)),
                    }
                });
                // Boxed, and only for calls with a deadline: a timer is large, and most calls have none.
                let mut timer = deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
                // The wait for a cancel, made only once the handler has waited: registering with
                // the call's `Notify` takes its lock twice (to enable and to drop), which a
                // handler that answers at its first poll never needs. A cancel that came before
                // any poll is seen by the check that starts each one.
                let mut watch = std::pin::pin!(None);
                let mut work = std::pin::pin!(work);
                std::future::poll_fn(|cx| {
                    if call.is_cancelled() {
                        return Poll::Ready(Ended::Cancelled);
                    }
                    if let Some(timer) = &mut timer
                        && timer.as_mut().poll(cx).is_ready()
                    {
                        // Before the handler's future is dropped, so that what its drop does (and
                        // blocking work it started) sees the call cancelled.
                        call.cancel();
                        return Poll::Ready(Ended::DeadlineExceeded);
                    }
                    if let Poll::Ready(ended) = work.as_mut().poll(cx) {
                        return Poll::Ready(ended);
                    }
                    if watch.is_none() {
                        watch.set(Some(call.cancelled()));
                    }
                    match watch.as_mut().as_pin_mut().map(|watch| watch.poll(cx)) {
                        Some(Poll::Ready(())) => Poll::Ready(Ended::Cancelled),
                        _ => Poll::Pending,
                    }
                })
                .await
            };
            // A panic in the handler future's drop fails a call that had ended with the handler's
            // result, as a panic in its poll does; a cancelled call is answered by nobody, so
            // there the panic is only logged.
            match std::panic::catch_unwind(AssertUnwindSafe(|| slot.set(None))) {
                Err(panic)
                    if matches!(ended, Ended::Ok(_) | Ended::App(_) | Ended::Status(_)) && !call.is_cancelled() =>
                {
                    Ended::Panicked(panic)
                }
                Err(panic) => {
                    tracing::error!(peer = %conn.name, %method, panic = codec::panic_message(&*panic),
                        "a tidl handler's future panicked as it was dropped");
                    ended
                }
                Ok(()) => ended,
            }
        };
        let cancelled = call.is_cancelled();
        // Asked only of a cancelled call: the token takes a lock to answer.
        let stopping = (cancelled || matches!(ended, Ended::Cancelled)) && conn.server.stopping.is_cancelled();
        let (outcome, stopped) = ended.observed(cancelled, stopping);
        observed.end(outcome, stopped);
        // The reply is queued before the call is forgotten: a draining connection closes once no
        // call is left, and must not close before the last reply is queued. Only a reply can wait
        // (for room in the outbox), so only it is awaited here: what the task holds across that wait stays small.
        match ended {
            Ended::Ok(reply) if !call.is_cancelled() => reply_with(&conn, id, method, Outcome::Ok, reply).await,
            Ended::App(error) if !call.is_cancelled() => {
                reply_with(&conn, id, method, Outcome::AppError, error).await;
            }
            ended => end_without_reply(&conn, id, method, ended, &call),
        }
        // Dropped first: with no other reference left, the table keeps the state for reuse.
        drop(call);
        conn.in_flight.end(id);
    };
    observe::spawn(&tracker, task, span, inline);
}

/// The handler `start` makes, after the server's interceptors have let the call through; the
/// first refusal is the call's status.
async fn intercepted<T, E, F, Fut>(
    interceptors: Arc<[Arc<dyn super::intercept::Interceptor>]>,
    mut ctx: Context,
    start: F,
) -> Result<T, Error<E>>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<T, Error<E>>>,
{
    for interceptor in interceptors.iter() {
        interceptor.intercept(&mut ctx).await.map_err(Error::Status)?;
    }
    start(ctx).await
}

/// A handler's future behind interceptors or layers.
type Boxed<T, E> = std::pin::Pin<Box<dyn Future<Output = Result<T, Error<E>>> + Send>>;

/// Tells the caller how a call that ended without a reply ended, if anyone is still waiting.
fn end_without_reply<T, E>(conn: &Conn, id: u64, method: Method, ended: Ended<T, E>, call: &CallState) {
    let status = match ended {
        // The handler ended on its own after the call was cancelled (a send that failed because
        // of the cancel, say): nobody waits for its outcome.
        Ended::Ok(_) | Ended::App(_) => None,
        Ended::Status(_) if call.is_cancelled() => None,
        Ended::Status(status) => Some(*status),
        Ended::DeadlineExceeded => {
            // The task cancelled the call when the deadline passed, so blocking work the handler
            // started sees it through its context.
            Some(Status::deadline_exceeded(format!("`{method}` passed its deadline; the server stopped it")))
        }
        Ended::Cancelled if conn.server.stopping.is_cancelled() => Some(Status::unavailable(format!(
            "the server shut down and stopped `{method}` at the end of its grace period"
        ))),
        // Cancelled by the client, or its connection is gone: nobody is waiting.
        Ended::Cancelled => None,
        Ended::Panicked(panic) => {
            let detail = match codec::panic_message(&*panic) {
                "" => "no message",
                message => message,
            };
            tracing::error!(peer = %conn.name, %method, panic = detail, "a tidl handler panicked");
            Some(Status::internal(format!("the handler of `{method}` panicked: {detail}")))
        }
    };
    if let Some(status) = status {
        conn.send_status(id, &status);
    }
}

/// Queues the reply `value` of call `id`, waiting first if the client is not reading.
async fn reply_with<V: Serialize + Send>(conn: &Conn, id: u64, method: Method, outcome: Outcome<'_>, value: V) {
    let outbox = &conn.link.outbox;
    if !outbox.has_space() {
        // Rare: the client is not reading. Boxed, so every handler task does not carry the
        // space for waiting.
        Box::pin(outbox.wait_for_space()).await;
    }
    let header = Header::Response { id, outcome };
    let pushed = outbox
        .push(|buf, max| wire::write_frame(buf, max, &header, |buf, limit| codec::encode_into(&value, buf, limit)));
    if let Err(PushError::Frame(e)) = pushed {
        let status = match e {
            // The server's own fault, not the argument's.
            wire::WriteFailure::Invalid(e) => {
                Status::internal(format!("the reply of `{method}` could not be encoded: {e}"))
            }
            e => e.into_status(&format!("the reply of `{method}`"), "ServerConfig::max_frame_len"),
        };
        tracing::warn!(peer = %conn.name, %method, %status, "a tidl reply could not be sent");
        conn.send_status(id, &status);
    }
}
