//! Streaming calls on the server: the [`Sink`] a handler sends its items into, the [`Source`] it
//! takes the client's items from, and how generated servers start streaming handlers.
//!
//! A streaming handler is still one future the runtime owns: cancel, deadline and disconnect
//! drop it exactly as they drop a unary handler. Its items travel within the credit the
//! receiver grants (see `conn/stream.rs`); the call ends with the handler's result.

use super::connection::Conn;
use super::dispatch::{Incoming, run};
use crate::codec;
use crate::conn::outbox::PushError;
use crate::conn::stream::{Stream, Taker};
use crate::context::{CallState, Context};
use crate::error::{Error, Status};
use crate::method::Method;
use crate::observe::Asked;
use crate::wire::Header;
use crate::wire::handshake::STREAMS_MINOR;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

/// Where a streaming handler sends its items to the caller.
///
/// [`send`](Sink::send) waits while the caller has not taken enough of the items already sent
/// (about one window), so a slow consumer slows the handler instead of filling memory; it fails
/// with `Cancelled` once the call is cancelled. A single item is sent at once, never held back.
/// Items are `'static`, as every type generated code uses is.
pub struct Sink<T> {
    conn: Arc<Conn>,
    id: u64,
    stream: Arc<Stream>,
    call: Arc<CallState>,
    method: Method,
    _items: PhantomData<fn(T)>,
}

impl<T> Sink<T> {
    fn new(conn: Arc<Conn>, id: u64, stream: Arc<Stream>, call: Arc<CallState>, method: Method) -> Sink<T> {
        Sink { conn, id, stream, call, method, _items: PhantomData }
    }
}

impl<T: Serialize + 'static> Sink<T> {
    /// Sends `item` to the caller, once it has room for it. Takes part in tokio's cooperative
    /// budget: a handler that sends many items in a row steps aside now and then, so the
    /// connection's reader (and a cancel it brings) is not held up.
    pub async fn send(&mut self, item: T) -> Result<(), Status> {
        tokio::task::coop::consume_budget().await;
        self.ready().await?;
        match self.stream.send_item(&self.conn.link.outbox, self.id, &item) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Sends every item of `items` in turn, in order, and returns once the stream has ended; stops
    /// at the first that fails. Items the stream has ready go out together: up to
    /// [`SEND_BATCH`](Self::SEND_BATCH) of them are queued under one lock of the connection, one
    /// credit update and one wake of its writer, so a ready stream of small items costs far less
    /// per item than a loop of [`send`](Sink::send). An item is still never held back to wait for
    /// another: a batch is what the stream has ready when asked.
    pub async fn send_all<S>(&mut self, items: S) -> Result<(), Status>
    where
        S: futures_core::Stream<Item = T>,
    {
        let mut items = std::pin::pin!(items);
        let mut batch: Vec<T> = Vec::new();
        let mut ended = false;
        loop {
            if batch.is_empty() && !ended {
                // Waits for one item, then takes what else is ready, up to a batch.
                ended = std::future::poll_fn(|cx| {
                    while batch.len() < Self::SEND_BATCH {
                        match items.as_mut().poll_next(cx) {
                            Poll::Ready(Some(item)) => batch.push(item),
                            Poll::Ready(None) => return Poll::Ready(true),
                            Poll::Pending if batch.is_empty() => return Poll::Pending,
                            Poll::Pending => break,
                        }
                    }
                    Poll::Ready(false)
                })
                .await;
            }
            if batch.is_empty() {
                return Ok(());
            }
            tokio::task::coop::consume_budget().await;
            self.ready().await?;
            let credit = self.stream.credit();
            let (sent, bytes, failed) = self.conn.link.outbox.push_items(self.id, &batch, credit);
            self.stream.spend(bytes);
            batch.drain(..sent);
            if let Some(e) = failed {
                return Err(self.failed(e));
            }
        }
    }

    /// The most items [`send_all`](Sink::send_all) queues at once.
    pub const SEND_BATCH: usize = 64;

    /// Completes once an item may be sent: the caller has room for one, and the connection's
    /// outbox is below its high-water mark; fails with `Cancelled` once the call is cancelled.
    async fn ready(&self) -> Result<(), Status> {
        // The common case, credit and no cancel, costs two atomic loads.
        let has_credit = if self.call.is_cancelled() {
            false
        } else if self.stream.has_credit() {
            true
        } else {
            tokio::select! {
                biased;
                () = self.call.cancelled() => false,
                credit = self.stream.wait_for_credit() => credit,
            }
        };
        if !has_credit {
            return Err(Status::cancelled(format!("`{}` was cancelled; the caller takes no more items", self.method)));
        }
        let outbox = &self.conn.link.outbox;
        if !outbox.has_space() {
            // The client is not reading its socket at all.
            Box::pin(outbox.wait_for_space()).await;
        }
        Ok(())
    }

    /// The status a failed push of an item ends the handler's sending with.
    fn failed(&self, error: PushError) -> Status {
        match error {
            PushError::Closed => Status::cancelled(format!("the connection of `{}` is closing", self.method)),
            PushError::Frame(e) => {
                e.into_status(&format!("an item of `{}`", self.method), "ServerConfig::max_frame_len")
            }
        }
    }
}

impl<T> fmt::Debug for Sink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink").field("method", &self.method).field("id", &self.id).finish_non_exhaustive()
    }
}

/// Where a streaming handler takes the items the caller streams to it.
///
/// [`next`](Source::next) gives the items in order, and `None` once the caller has said it sends
/// no more (a half-close). Taking items grants the caller room for more. An item that does not
/// decode gives an `InvalidArgument` status naming its index: return it (`?`) to fail the call.
pub struct Source<T> {
    conn: Arc<Conn>,
    id: u64,
    stream: Arc<Stream>,
    taker: Taker,
    method: Method,
    _items: PhantomData<fn() -> T>,
}

impl<T> Source<T> {
    fn new(conn: Arc<Conn>, id: u64, stream: Arc<Stream>, method: Method) -> Source<T> {
        Source { conn, id, stream, taker: Taker::default(), method, _items: PhantomData }
    }
}

impl<T: DeserializeOwned + 'static> Source<T> {
    /// The next item, an error if it does not decode, or `None` after the last one. Takes part
    /// in tokio's cooperative budget.
    pub async fn next(&mut self) -> Option<Result<T, Status>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// The next item (`Ok(None)` after the last one), or an error if it does not decode.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        // Polls the item itself rather than awaiting `next`: one future fewer per item.
        std::future::poll_fn(|cx| self.poll_item(cx).map(Option::transpose)).await
    }

    fn poll_item(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T, Status>>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let item = self.poll_item_uncounted(cx);
        if item.is_ready() {
            coop.made_progress();
        }
        item
    }

    /// [`poll_item`](Self::poll_item) outside the cooperative budget.
    fn poll_item_uncounted(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T, Status>>> {
        let Some(_taken) = std::task::ready!(self.taker.poll_take(&self.stream, cx)) else {
            return Poll::Ready(None);
        };
        if let Some(bytes) = self.taker.grant() {
            let _ = self.conn.link.outbox.push_header(&Header::Credit { id: self.id, bytes });
        }
        Poll::Ready(Some(self.taker.decode::<T>().map_err(|e| {
            Status::invalid_argument(format!("item {} of `{}` did not decode: {e}", self.taker.index(), self.method))
        })))
    }
}

impl<T: DeserializeOwned + 'static> futures_core::Stream for Source<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source").field("method", &self.method).field("id", &self.id).finish_non_exhaustive()
    }
}

impl Incoming {
    /// Runs a server-streaming `handler` (argument in, items out through its [`Sink`]) in a task
    /// of its own, as [`spawn`](Incoming::spawn) runs a unary one.
    pub fn spawn_server_stream<A, T, E, F, Fut>(self, method: Method, handler: F)
    where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Context, A, Sink<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error<E>>> + Send + 'static,
    {
        let Some(stream) = self.open_stream(method) else { return };
        let Incoming { conn, id, payload, deadline, call } = self;
        let arg = match codec::decode_shared::<A>(&payload, 0..payload.len()) {
            Ok(arg) => arg,
            Err(e) => {
                let status = Status::invalid_argument(format!("the argument of `{method}` did not decode: {e}"));
                conn.refuse(id, Asked::Known(method), call.metadata(), &status);
                drop(call);
                conn.in_flight.end(id);
                return;
            }
        };
        drop(payload);
        let sink_conn = conn.clone();
        run(conn, id, method, deadline, call, move |ctx| {
            let sink = Sink::new(sink_conn, id, stream, ctx.state().clone(), method);
            handler(ctx, arg, sink)
        });
    }

    /// Runs a client-streaming `handler` (items in through its [`Source`], one reply out) in a
    /// task of its own.
    pub fn spawn_client_stream<I, R, E, F, Fut>(self, method: Method, handler: F)
    where
        I: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Context, Source<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<R, Error<E>>> + Send + 'static,
    {
        let Some(stream) = self.open_stream(method) else { return };
        let Incoming { conn, id, deadline, call, .. } = self;
        let source = Source::new(conn.clone(), id, stream.clone(), method);
        run(conn, id, method, deadline, call, move |ctx| handler(ctx, source));
    }

    /// Runs a bidirectional `handler` (items in through its [`Source`], items out through its
    /// [`Sink`]) in a task of its own.
    pub fn spawn_bidi<I, T, E, F, Fut>(self, method: Method, handler: F)
    where
        I: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Context, Source<I>, Sink<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error<E>>> + Send + 'static,
    {
        let Some(stream) = self.open_stream(method) else { return };
        let Incoming { conn, id, deadline, call, .. } = self;
        let source = Source::new(conn.clone(), id, stream.clone(), method);
        let sink_conn = conn.clone();
        run(conn, id, method, deadline, call, move |ctx| {
            let sink = Sink::new(sink_conn, id, stream, ctx.state().clone(), method);
            handler(ctx, source, sink)
        });
    }

    /// The stream of a streaming call about to start, its opening credit granted; `None` (the
    /// caller told why) if the connection cannot carry streams or has as many open as it may.
    fn open_stream(&self, method: Method) -> Option<Arc<Stream>> {
        let conn = &self.conn;
        if conn.minor < STREAMS_MINOR {
            let status = Status::unimplemented(format!(
                "`{method}` is a streaming method, and this client speaks tidl protocol 1.{}, which has no \
                 streams (1.{STREAMS_MINOR} added them)",
                conn.minor
            ));
            conn.refuse(self.id, Asked::Known(method), self.call.metadata(), &status);
            conn.in_flight.end(self.id);
            return None;
        }
        let limit = conn.server.config.max_concurrent_streams;
        if conn.in_flight.streams() >= limit {
            let status = Status::resource_exhausted(format!(
                "`{method}` was refused: this connection already has {limit} streams open, the limit \
                 (ServerConfig::max_concurrent_streams)"
            ));
            tracing::debug!(peer = %conn.name, "call refused: {}", status.message());
            conn.refuse(self.id, Asked::Known(method), self.call.metadata(), &status);
            conn.in_flight.end(self.id);
            return None;
        }
        let stream = Arc::new(Stream::new(conn.server.config.stream_window));
        conn.in_flight.set_stream(self.id, stream.clone());
        if let Some(bytes) = stream.opening_grant() {
            let _ = conn.link.outbox.push_header(&Header::Credit { id: self.id, bytes });
        }
        Some(stream)
    }
}
