//! [`Call`]: a call in flight, to await or cancel.

use super::Client;
use super::in_flight::Reply;
use super::invoke::ReplyFuture;
use crate::codec;
use crate::error::{Code, Error, Status};
use crate::method::Method;
use crate::observe::{ClientCall, Outcome, Reason};
use crate::sync::lock;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A call in flight. Await it for the reply, or [`cancel`](Call::cancel) it.
///
/// The request was queued for sending when the call was made, whether or not the `Call` is ever
/// awaited. Resolves to `Ok(T)`, to `Err(Error::App(E))` with the method's declared error, or to
/// `Err(Error::Status(_))` for an RPC-layer failure.
///
/// The reply type is decoded owned and `'static` (as every type generated code uses is): a
/// `bytes` reply of 1 KiB or more is then handed over without a copy.
///
/// Dropping a pending `Call` cancels it, as `cancel()` does: this is what stops the server's work
/// when a caller gives up, for example under `tokio::time::timeout` or `select!`. To let a call
/// run on without waiting for it, [`detach`](Call::detach) it.
#[must_use = "a Call is cancelled when dropped; await it, or detach() it to let it run"]
pub struct Call<T, E = String> {
    state: State,
    _reply: PhantomData<fn() -> (T, E)>,
}

enum State {
    /// On a [`Client`]'s connection.
    Pending(Pending),
    /// From another [`Invoke`](crate::Invoke) implementation; `None` once cancelled (behind a
    /// lock so that `cancel` can drop it through a shared reference).
    Future(Method, Mutex<Option<ReplyFuture>>),
    Failed(Status),
    Done,
}

impl<T, E> Call<T, E> {
    pub(crate) fn pending(pending: Pending) -> Call<T, E> {
        Call { state: State::Pending(pending), _reply: PhantomData }
    }

    /// A call of `method` whose reply `reply` will give; dropping the call drops `reply`. For
    /// [`Invoke`](crate::Invoke) implementations.
    pub fn from_future(method: Method, reply: ReplyFuture) -> Call<T, E> {
        Call { state: State::Future(method, Mutex::new(Some(reply))), _reply: PhantomData }
    }

    /// A call that has already failed with `status`.
    pub fn failed(status: Status) -> Call<T, E> {
        Call { state: State::Failed(status), _reply: PhantomData }
    }

    /// Cancels the call: it resolves to `Cancelled`, and the server is told to stop the handler.
    /// Does nothing if the call has already completed.
    pub fn cancel(&self) {
        match &self.state {
            State::Pending(pending) => pending
                .cancel(Status::cancelled(format!("`{}` was cancelled by the caller", pending.method)), Reason::Caller),
            // Dropping the future cancels the call it carries.
            State::Future(_, reply) => drop(lock(reply).take()),
            State::Failed(_) | State::Done => {}
        }
    }

    /// Lets the call run to completion on the server without waiting for it; its reply will be
    /// discarded. The call still ends if the connection closes (when the last `Client` is
    /// dropped), or when its deadline passes on the server.
    pub fn detach(mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Pending(pending) => pending.forget(),
            State::Future(_, reply) => {
                // Driven to its end by a task of its own, if there is a runtime to run it.
                if let (Some(reply), Ok(runtime)) = (lock(&reply).take(), tokio::runtime::Handle::try_current()) {
                    runtime.spawn(reply);
                }
            }
            State::Failed(_) | State::Done => {}
        }
    }
}

impl<T, E> Call<T, E> {
    /// The call's outcome as it came, undecoded: for code whose types are known only at run
    /// time (see [`payload`](crate::payload)). Awaiting the `Call` itself decodes it.
    pub async fn into_reply(mut self) -> Reply {
        std::future::poll_fn(|cx| match &mut self.state {
            State::Pending(pending) => pending.poll_reply(cx),
            State::Future(method, reply) => match lock(reply).as_mut() {
                Some(reply) => reply.as_mut().poll(cx),
                None => {
                    Poll::Ready(Reply::Status(Status::cancelled(format!("`{method}` was cancelled by the caller"))))
                }
            },
            State::Failed(status) => Poll::Ready(Reply::Status(status.clone())),
            State::Done => Poll::Ready(Reply::Status(Status::internal("the call has already completed"))),
        })
        .await
    }
}

impl<T, E> fmt::Debug for Call<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Call");
        match &self.state {
            State::Pending(pending) => s.field("method", &pending.method).field("id", &pending.id),
            State::Future(method, _) => s.field("method", method),
            State::Failed(status) => s.field("failed", status),
            State::Done => s.field("done", &true),
        };
        s.finish()
    }
}

impl<T: DeserializeOwned + 'static, E: DeserializeOwned> Future for Call<T, E> {
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Call` is `Unpin`: its only self-referential parts are boxed.
        let this = self.get_mut();
        let (method, reply) = match &mut this.state {
            State::Pending(pending) => (pending.method, ready!(pending.poll_reply(cx))),
            State::Future(method, reply) => {
                let reply = match lock(reply).as_mut() {
                    Some(reply) => ready!(reply.as_mut().poll(cx)),
                    None => Reply::Status(Status::cancelled(format!("`{method}` was cancelled by the caller"))),
                };
                (*method, reply)
            }
            State::Failed(_) => {
                let State::Failed(status) = std::mem::replace(&mut this.state, State::Done) else {
                    unreachable!("matched Failed above")
                };
                return Poll::Ready(Err(Error::Status(status)));
            }
            State::Done => panic!("a tidl Call was polled after it completed"),
        };
        this.state = State::Done;
        Poll::Ready(decode(method, reply))
    }
}

/// The typed outcome of a call of `method` that ended with `reply`.
pub(crate) fn decode<T: DeserializeOwned + 'static, E: DeserializeOwned>(
    method: Method,
    reply: Reply,
) -> Result<T, Error<E>> {
    match reply {
        Reply::Ok(bytes) => {
            codec::decode_shared::<T>(&bytes, 0..bytes.len()).map_err(|e| undecodable(method, "reply", &e))
        }
        Reply::App(bytes) => match codec::decode::<E>(&bytes) {
            Ok(app) => Err(Error::App(app)),
            Err(e) => Err(undecodable(method, "error", &e)),
        },
        Reply::Status(status) => Err(Error::Status(status)),
    }
}

fn undecodable<E>(method: Method, what: &str, e: &str) -> Error<E> {
    Error::Status(Status::new(
        Code::Internal,
        format!(
            "the {what} from `{method}` did not decode ({e}); are client and server built from \
             the same .tidl?"
        ),
    ))
}

/// A call pending on a [`Client`]'s connection, with its own deadline timer and its parent's
/// cancellation. Cancels the call when dropped before it completes.
pub(crate) struct Pending {
    client: Client,
    id: u64,
    method: Method,
    /// Fires at the call's deadline (its own timeout or its parent's deadline).
    deadline: Option<(Pin<Box<Sleep>>, Option<Duration>)>,
    /// Fires when the handler call this call was made from is cancelled.
    parent: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Set once the reply was taken or the call forgotten: nothing to cancel on drop.
    over: bool,
    /// The call's span and metrics, until it ends.
    observed: ClientCall,
}

impl Pending {
    pub(crate) fn new(
        client: Client,
        id: u64,
        method: Method,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
        parent: Option<CancellationToken>,
    ) -> Pending {
        Pending {
            client,
            id,
            method,
            deadline: deadline.map(|d| (Box::pin(tokio::time::sleep_until(d)), timeout)),
            parent: parent.map(|token| Box::pin(token.cancelled_owned())),
            over: false,
            observed: ClientCall::none(),
        }
    }

    /// The call, observed by `observed` until it ends.
    pub(crate) fn observed(mut self, observed: ClientCall) -> Pending {
        self.observed = observed;
        self
    }

    /// Ends the call with `status` and tells the server, unless it has already completed;
    /// `reason` says why, in its span.
    fn cancel(&self, status: Status, reason: Reason) {
        if self.client.cancel(self.id, Some(status)) {
            self.observed.stopped(reason);
        }
    }

    /// Forgets the call without cancelling it: its reply, when it comes, is dropped.
    fn forget(mut self) {
        self.over = true;
        self.observed.detach();
        self.client.forget(self.id);
    }

    /// Polls for the reply; the call's deadline and its parent's cancellation end it early.
    pub(crate) fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Reply> {
        self.poll_timers(cx);
        self.poll_end(cx)
    }

    /// Ends the call early if its deadline has passed or its parent was cancelled (the reply
    /// then says so).
    pub(crate) fn poll_timers(&mut self, cx: &mut Context<'_>) {
        if let Some(parent) = &mut self.parent
            && parent.as_mut().poll(cx).is_ready()
        {
            self.parent = None;
            self.cancel(
                Status::cancelled(format!(
                    "`{}` was cancelled because the call it was made for was cancelled",
                    self.method
                )),
                Reason::Parent,
            );
        }
        if let Some((sleep, timeout)) = &mut self.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            let message = match timeout {
                Some(t) => format!("`{}` did not complete within its timeout of {t:?}", self.method),
                None => format!("`{}` did not complete before the deadline of the call it was made for", self.method),
            };
            self.deadline = None;
            self.cancel(Status::new(Code::DeadlineExceeded, message), Reason::Deadline);
        }
    }

    /// Polls for the reply alone.
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Reply> {
        let reply = ready!(self.client.poll_reply(self.id, cx));
        self.over = true;
        let reply = reply.unwrap_or_else(|| {
            Reply::Status(Status::unavailable(format!("the connection closed before `{}` completed", self.method)))
        });
        self.observed.end(&outcome(&reply));
        Poll::Ready(reply)
    }

    /// The call's id on its connection.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The client the call was made on.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The method called.
    pub(crate) fn method(&self) -> Method {
        self.method
    }

    /// Ends the call with `status` and tells the server, unless it has already completed;
    /// whether it was still pending.
    pub(crate) fn cancel_with(&self, status: Status) -> bool {
        self.client.cancel(self.id, Some(status))
    }

    /// The call's span and metrics.
    pub(crate) fn observer(&self) -> &ClientCall {
        &self.observed
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.over {
            return;
        }
        if self.client.cancel(self.id, None) {
            self.observed.stopped(Reason::Dropped);
        } else if let Some(reply) = self.client.take_reply(self.id) {
            // It had ended, and nobody took its outcome: that is its outcome still.
            self.observed.end(&outcome(&reply));
        }
    }
}

/// How a call that ended with `reply` ended, as its span and metrics record it.
fn outcome(reply: &Reply) -> Outcome<'_> {
    match reply {
        Reply::Ok(_) => Outcome::Ok,
        Reply::App(_) => Outcome::App,
        Reply::Status(status) => Outcome::Status(status.code(), status.message()),
    }
}

/// A [`Pending`] call as a future of its undecoded reply: what [`Client`]'s
/// [`Invoke::invoke`](crate::Invoke::invoke) returns.
pub(crate) struct RawCall(pub(crate) Pending);

impl Future for RawCall {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        self.get_mut().0.poll_reply(cx)
    }
}
