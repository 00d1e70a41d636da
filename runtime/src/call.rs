//! [`Call`]: a call in flight, to await or cancel.

use crate::client::{Client, Method, Reply};
use crate::codec;
use crate::error::{Code, Error, Status};
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A call in flight. Await it for the reply, or [`cancel`](Call::cancel) it.
///
/// The request was queued for sending when the call was made, whether or not the `Call` is ever
/// awaited. Resolves to `Ok(T)`, to `Err(Error::App(E))` with the method's declared error, or to
/// `Err(Error::Status(_))` for an RPC-layer failure.
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
    Pending(Pending),
    Failed(Status),
    Done,
}

struct Pending {
    client: Client,
    id: u64,
    reply: oneshot::Receiver<Reply>,
    method: Method,
    /// Fires at the call's deadline (its own timeout or its parent's deadline).
    deadline: Option<(Pin<Box<Sleep>>, Option<Duration>)>,
    /// Fires when the handler call this call was made from is cancelled.
    parent: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl<T, E> Call<T, E> {
    pub(crate) fn pending(
        client: Client,
        id: u64,
        reply: oneshot::Receiver<Reply>,
        method: Method,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
        parent: Option<CancellationToken>,
    ) -> Call<T, E> {
        let pending = Pending {
            client,
            id,
            reply,
            method,
            deadline: deadline.map(|d| (Box::pin(tokio::time::sleep_until(d)), timeout)),
            parent: parent.map(|token| Box::pin(token.cancelled_owned())),
        };
        Call { state: State::Pending(pending), _reply: PhantomData }
    }

    pub(crate) fn failed(status: Status) -> Call<T, E> {
        Call { state: State::Failed(status), _reply: PhantomData }
    }

    /// Cancels the call: it resolves to `Cancelled`, and a cancel frame tells the server to stop
    /// the handler. Does nothing if the call has already completed.
    pub fn cancel(&self) {
        if let State::Pending(pending) = &self.state {
            let status = Status::cancelled(format!("`{}` was cancelled by the caller", pending.method));
            pending.client.cancel(pending.id, Some(status));
        }
    }

    /// Lets the call run to completion on the server without waiting for it; its reply will be
    /// discarded. The call still ends if the connection closes (when the last `Client` is
    /// dropped), or when its deadline passes on the server.
    pub fn detach(mut self) {
        if let State::Pending(pending) = std::mem::replace(&mut self.state, State::Done) {
            pending.client.forget(pending.id);
        }
    }
}

impl<T, E> Drop for Call<T, E> {
    fn drop(&mut self) {
        if let State::Pending(pending) = &self.state {
            pending.client.cancel(pending.id, None);
        }
    }
}

impl<T, E> fmt::Debug for Call<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Call");
        match &self.state {
            State::Pending(pending) => s.field("method", &pending.method).field("id", &pending.id),
            State::Failed(status) => s.field("failed", status),
            State::Done => s.field("done", &true),
        };
        s.finish()
    }
}

impl<T: DeserializeOwned, E: DeserializeOwned> Future for Call<T, E> {
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Call` is `Unpin`: its only self-referential parts are boxed.
        let this = self.get_mut();
        let pending = match &mut this.state {
            State::Pending(pending) => pending,
            State::Failed(_) => {
                let State::Failed(status) = std::mem::replace(&mut this.state, State::Done) else {
                    unreachable!("matched Failed above")
                };
                return Poll::Ready(Err(Error::Status(status)));
            }
            State::Done => panic!("a tidl Call was polled after it completed"),
        };
        if let Some(parent) = &mut pending.parent
            && parent.as_mut().poll(cx).is_ready()
        {
            {
                pending.parent = None;
                let status = Status::cancelled(format!(
                    "`{}` was cancelled because the call it was made for was cancelled",
                    pending.method
                ));
                pending.client.cancel(pending.id, Some(status));
            }
        }
        if let Some((sleep, timeout)) = &mut pending.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            {
                let message = match timeout {
                    Some(t) => format!("`{}` did not complete within its timeout of {t:?}", pending.method),
                    None => {
                        format!("`{}` did not complete before the deadline of the call it was made for", pending.method)
                    }
                };
                pending.deadline = None;
                pending.client.cancel(pending.id, Some(Status::new(Code::DeadlineExceeded, message)));
            }
        }
        let reply = ready!(Pin::new(&mut pending.reply).poll(cx));
        let method = pending.method;
        this.state = State::Done;
        Poll::Ready(match reply {
            Ok(Reply::Ok(bytes)) => codec::decode::<T>(&bytes).map_err(|e| undecodable(method, "reply", &e)),
            Ok(Reply::App(bytes)) => match codec::decode::<E>(&bytes) {
                Ok(app) => Err(Error::App(app)),
                Err(e) => Err(undecodable(method, "error", &e)),
            },
            Ok(Reply::Status(status)) => Err(Error::Status(status)),
            Err(_) => {
                Err(Error::Status(Status::unavailable(format!("the connection closed before `{method}` completed"))))
            }
        })
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
