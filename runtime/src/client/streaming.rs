//! Streaming calls on the client: [`Streaming`], the items a server streams back, and
//! [`RequestSink`], the items the client streams to the server.
//!
//! A streaming call is a call whose request or reply (or both) is a stream of items; it starts
//! with a request frame as a unary call does and ends with the server's response frame, its
//! final outcome. Items travel in `Item` frames within the credit the receiver grants (see
//! `conn/stream.rs`). Dropping a [`Streaming`] cancels the call, and the server drops its
//! handler; dropping a [`RequestSink`] only says that no more items come (a half-close).

use super::Client;
use super::call::{Pending, decode};
use super::in_flight::Reply;
use crate::conn::outbox::PushError;
use crate::conn::stream::{Stream, Taken, Taker};
use crate::error::{Code, Error, Status};
use crate::method::Method;
use crate::observe::Reason;
use crate::wire::Header;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

/// The items a server streams back for one call, then its final outcome.
///
/// Yields `Ok(item)` for each item as it arrives, then ends (`None`) if the call succeeded, or
/// yields one `Err` with the method's declared error or a [`Status`] and then ends. Take items
/// with [`message`](Streaming::message) or [`next`](Streaming::next), or use it as a
/// `futures::Stream`. The server sends only as far ahead as this side has taken (about one window
/// of items), so a slow consumer slows the producer instead of filling memory. Items are decoded
/// owned and `'static`, as every type generated code uses is.
///
/// Dropping it before the end cancels the call, as [`cancel`](Streaming::cancel) does: the
/// server drops the handler.
#[must_use = "a Streaming is cancelled when dropped"]
pub struct Streaming<T, E = String> {
    state: State,
    _items: PhantomData<fn() -> (T, E)>,
}

#[allow(
    clippy::large_enum_variant,
    reason = "a stream lives in `Open`; boxing it would cost an allocation per stream, and `Failed` is rare"
)]
enum State {
    Open {
        pending: Pending,
        stream: Arc<Stream>,
        taker: Taker,
        /// The final outcome, received while items were still to be taken.
        end: Option<Reply>,
    },
    Failed(Status),
    Done,
}

/// Items a consumer may take between two looks at its call's timers.
const TIMERS_EVERY: u64 = 32;

/// Items a consumer takes for each unit of tokio's cooperative budget it spends.
const COOP_EVERY: u64 = 8;

impl<T, E> Streaming<T, E> {
    pub(crate) fn open(pending: Pending, stream: Arc<Stream>) -> Streaming<T, E> {
        Streaming { state: State::Open { pending, stream, taker: Taker::default(), end: None }, _items: PhantomData }
    }

    /// A streaming call that has already failed with `status`.
    pub fn failed(status: Status) -> Streaming<T, E> {
        Streaming { state: State::Failed(status), _items: PhantomData }
    }

    /// Cancels the call: it ends with `Cancelled`, items not yet taken are dropped, and the
    /// server is told to stop the handler. Does nothing once the call has ended.
    pub fn cancel(&self) {
        if let State::Open { pending, stream, .. } = &self.state {
            // Ended first, so that no item arrives after the clear; cleared only if the call was
            // still running (once its outcome has arrived, the items before it are kept).
            if pending.cancel_with(Status::cancelled(format!("`{}` was cancelled by the caller", pending.method()))) {
                pending.observer().stopped(Reason::Caller);
                stream.clear();
            }
        }
    }
}

impl<T, E> Streaming<T, E> {
    /// The next item as it came, undecoded: `Some(Ok(payload))` for each item, then `None` if
    /// the call succeeded, or once `Some(Err(reply))` with its undecoded [`Reply::App`] or its
    /// [`Reply::Status`], and `None` after that. For code whose types are known only at run
    /// time (see [`payload`](crate::payload)); [`next`](Streaming::next) decodes.
    pub async fn next_payload(&mut self) -> Option<Result<Bytes, Reply>> {
        std::future::poll_fn(|cx| {
            self.poll_next_raw(cx).map(|next| match next? {
                Next::Item(Taken { .. }) => {
                    let State::Open { pending, taker, .. } = &self.state else {
                        unreachable!("an item is only taken from an open stream")
                    };
                    if let Some(bytes) = taker.grant() {
                        pending.client().send_header(&Header::Credit { id: pending.id(), bytes });
                    }
                    Some(Ok(taker.item_bytes()))
                }
                Next::End(_, Reply::Ok(_)) => None,
                Next::End(_, reply) => Some(Err(reply)),
                Next::Failed(status) => Some(Err(Reply::Status(status))),
            })
        })
        .await
    }

    /// The next item, or how the call ended, undecoded (`None` once that has been told). Takes
    /// part in tokio's cooperative budget: a consumer of a fast stream steps aside now and then.
    #[inline(always)]
    fn poll_next_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next>> {
        // One unit of the budget per `COOP_EVERY` items: a fast stream still steps aside every
        // thousand items or so, without a look at the budget for each one.
        if let State::Open { taker, .. } = &self.state
            && taker.count() % COOP_EVERY != 0
        {
            return self.poll_next_uncounted(cx);
        }
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let next = self.poll_next_uncounted(cx);
        if next.is_ready() {
            coop.made_progress();
        }
        next
    }

    /// [`poll_next_raw`](Self::poll_next_raw) outside the cooperative budget.
    #[inline(always)]
    fn poll_next_uncounted(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next>> {
        let State::Open { pending, stream, taker, end } = &mut self.state else {
            return match std::mem::replace(&mut self.state, State::Done) {
                State::Failed(status) => Poll::Ready(Some(Next::Failed(status))),
                _ => Poll::Ready(None),
            };
        };
        // The call's timers (deadline, parent's cancel) are looked at every few items while
        // items are ready, and always before waiting: a consumer of a fast stream notices its
        // deadline within a few items, without paying a timer's poll for each one.
        let timers_due = end.is_none() && taker.count() % TIMERS_EVERY == 0;
        if timers_due {
            pending.poll_timers(cx);
        }
        if let Poll::Ready(Some(taken)) = taker.poll_take(stream, cx) {
            return Poll::Ready(Some(Next::Item(taken)));
        }
        if end.is_none() && !timers_due {
            pending.poll_timers(cx);
        }
        if end.is_none() {
            match pending.poll_end(cx) {
                Poll::Ready(reply) => {
                    // An item may have arrived between the two looks: take it first.
                    if let Poll::Ready(Some(taken)) = taker.poll_take(stream, cx) {
                        *end = Some(reply);
                        return Poll::Ready(Some(Next::Item(taken)));
                    }
                    *end = Some(reply);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        let method = pending.method();
        let Some(reply) = end.take() else { return Poll::Pending };
        self.state = State::Done;
        Poll::Ready(Some(Next::End(method, reply)))
    }
}

/// What a streaming call has next, undecoded.
enum Next {
    Item(Taken),
    /// The call's outcome.
    End(Method, Reply),
    /// The call failed before it started.
    Failed(Status),
}

impl<T: DeserializeOwned + 'static, E: DeserializeOwned> Streaming<T, E> {
    /// The next item: `Ok(Some(item))`, `Ok(None)` once the call has ended successfully, or the
    /// error it ended with.
    pub async fn message(&mut self) -> Result<Option<T>, Error<E>> {
        // Polls the item itself rather than awaiting `next`: one future fewer per item.
        std::future::poll_fn(|cx| self.poll_item(cx).map(Option::transpose)).await
    }

    /// The next item (`Some(Ok(item))`), the error the call ended with (`Some(Err(_))`), or
    /// `None` once it has ended.
    pub async fn next(&mut self) -> Option<Result<T, Error<E>>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error<E>>>> {
        Poll::Ready(match ready!(self.poll_next_raw(cx)) {
            None => None,
            Some(Next::Item(Taken { .. })) => {
                let State::Open { pending, stream, taker, .. } = &self.state else {
                    unreachable!("an item is only taken from an open stream")
                };
                Some(take(pending, stream, taker))
            }
            Some(Next::End(_, Reply::Ok(_))) => None,
            Some(Next::End(method, reply)) => decode::<(), E>(method, reply).err().map(Err),
            Some(Next::Failed(status)) => Some(Err(Error::Status(status))),
        })
    }
}

/// Decodes a taken item, granting credit back if a batch is due; a bad item cancels the call.
fn take<T: DeserializeOwned + 'static, E>(pending: &Pending, stream: &Stream, taker: &Taker) -> Result<T, Error<E>> {
    if let Some(bytes) = taker.grant() {
        pending.client().send_header(&Header::Credit { id: pending.id(), bytes });
    }
    taker.decode::<T>().map_err(|e| {
        let status = Status::new(
            Code::Internal,
            format!(
                "item {} from `{}` did not decode ({e}); are client and server built from the same .tidl?",
                taker.index(),
                pending.method()
            ),
        );
        if pending.cancel_with(status.clone()) {
            stream.clear();
        }
        Error::Status(status)
    })
}

impl<T: DeserializeOwned + 'static, E: DeserializeOwned> futures_core::Stream for Streaming<T, E> {
    type Item = Result<T, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // `Streaming` is `Unpin`: its only self-referential parts are boxed.
        self.get_mut().poll_item(cx)
    }
}

impl<T, E> fmt::Debug for Streaming<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Streaming");
        match &self.state {
            State::Open { pending, .. } => s.field("method", &pending.method()).field("id", &pending.id()),
            State::Failed(status) => s.field("failed", status),
            State::Done => s.field("done", &true),
        };
        s.finish()
    }
}

/// Where a client puts the items it streams to the server in one call.
///
/// [`send`](RequestSink::send) waits while the server has not granted room for more (it grants
/// as its handler takes items), and fails once the call has ended. Dropping the sink, or
/// [`close`](RequestSink::close), tells the server that no more items come: its handler's
/// source then ends. Dropping it does not cancel the call. Items are `'static`, as every type
/// generated code uses is.
#[must_use = "a RequestSink half-closes the call when dropped"]
pub struct RequestSink<T> {
    open: Option<SinkOpen>,
    _items: PhantomData<fn(T)>,
}

struct SinkOpen {
    client: Client,
    id: u64,
    stream: Arc<Stream>,
    method: Method,
}

impl<T> RequestSink<T> {
    pub(crate) fn open(client: Client, id: u64, stream: Arc<Stream>, method: Method) -> RequestSink<T> {
        RequestSink { open: Some(SinkOpen { client, id, stream, method }), _items: PhantomData }
    }

    /// A sink of a call that never started: every send fails.
    pub fn closed() -> RequestSink<T> {
        RequestSink { open: None, _items: PhantomData }
    }

    /// Tells the server that no more items come. Later sends fail.
    pub fn close(&mut self) {
        if let Some(open) = self.open.take()
            && !open.stream.is_finished()
        {
            open.client.send_header(&Header::HalfClose { id: open.id });
        }
    }
}

impl<T: Serialize + 'static> RequestSink<T> {
    /// Sends `item`, once the server has room for it. Fails if the call has ended (the server
    /// answered, the call was cancelled or the connection was lost: the call's own outcome says
    /// which), if the sink was closed, or if the item is larger than the maximum frame length.
    pub async fn send(&mut self, item: T) -> Result<(), Status> {
        // Takes part in tokio's cooperative budget: a sender of many items in a row steps aside
        // now and then.
        tokio::task::coop::consume_budget().await;
        let Some(open) = &self.open else {
            return Err(Status::failed_precondition("the request stream was closed; no more items can be sent"));
        };
        if !open.stream.wait_for_credit().await {
            return Err(Status::cancelled(format!(
                "`{}` has ended; its outcome says why, and items sent now are not read",
                open.method
            )));
        }
        // Credit is the server's word; what waits in this client's queue is bounded here too
        // (a server may grant without end and read nothing).
        open.client.outbox().wait_below(open.client.queue_limit()).await;
        match open.stream.send_item(open.client.outbox(), open.id, &item) {
            Ok(()) => Ok(()),
            Err(PushError::Closed) => {
                Err(Status::unavailable(format!("the connection closed before `{}` ended", open.method)))
            }
            Err(PushError::Frame(e)) => {
                Err(e.into_status(&format!("an item for `{}`", open.method), "ClientConfig::max_frame_len"))
            }
        }
    }

    /// Sends every item of `items` in turn, then closes the sink.
    pub async fn send_all<S>(&mut self, items: S) -> Result<(), Status>
    where
        S: futures_core::Stream<Item = T>,
    {
        let mut items = std::pin::pin!(items);
        while let Some(item) = std::future::poll_fn(|cx| items.as_mut().poll_next(cx)).await {
            self.send(item).await?;
        }
        self.close();
        Ok(())
    }
}

impl<T> Drop for RequestSink<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> fmt::Debug for RequestSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.open {
            Some(open) => f.debug_struct("RequestSink").field("method", &open.method).field("id", &open.id).finish(),
            None => f.debug_struct("RequestSink").field("closed", &true).finish(),
        }
    }
}
