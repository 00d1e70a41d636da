//! [`Balancer`]: calls spread over many [`Endpoint`]s by tower's power-of-two-choices balancer,
//! the load of an endpoint being its calls in flight (feature `balance`).
//!
//! The set of endpoints comes from a stream of tower [`Change`]s: a fixed list
//! ([`Balancer::from_addrs`]), or any stream a user supplies (a registry's watch, a channel). An endpoint that loses its connection is not ready while it reconnects, so the
//! balancer sends nothing to it, and takes it back when it is connected again: a failed endpoint
//! is retried, never forgotten. A call a server refused unstarted (it was shutting down), or an
//! idempotent call whose connection was lost under it, is sent again through the balancer, so it
//! goes to another endpoint (see `retry.rs`).

use super::Client;
use super::call::Call;
use super::endpoint::Endpoint;
use super::endpoint::EndpointConfig;
use super::in_flight::Reply;
use super::invoke::{Invoke, ReplyFuture, Request, streams_through_picked_client};
use super::options::CallOptions;
use super::retry::{self, RetryBudget};
use super::streaming::{RequestSink, Streaming};
use crate::error::{Code, Status};
use crate::method::Method;
use crate::sync::lock;
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::time::Instant;
use tower::balance::p2c::Balance;
use tower::discover::Change;
use tower::load::Load;
use tower::{BoxError, Service};

/// An [`Endpoint`] as a tower [`Service`] with a [`Load`]: ready while it has a connection
/// (pending, never failed, while it reconnects), loaded by its calls in flight.
pub struct EndpointService {
    endpoint: Endpoint,
    /// Completes when the endpoint's state changes, while it is not ready.
    changed: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl fmt::Debug for EndpointService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointService").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl From<Endpoint> for EndpointService {
    fn from(endpoint: Endpoint) -> EndpointService {
        EndpointService { endpoint, changed: None }
    }
}

impl Service<Request> for EndpointService {
    type Response = Reply;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.endpoint.start();
        loop {
            if self.endpoint.client().is_some_and(|c| c.is_open()) {
                self.changed = None;
                return Poll::Ready(Ok(()));
            }
            let changed = self.changed.get_or_insert_with(|| self.endpoint.state_changed());
            match changed.as_mut().poll(cx) {
                Poll::Ready(()) => self.changed = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let client = self.endpoint.client();
        Box::pin(async move {
            match client {
                Some(client) => Ok(client.invoke(request).await),
                None => Ok(Reply::Status(Status::unavailable("the endpoint lost its connection").unstarted())),
            }
        })
    }
}

impl Load for EndpointService {
    type Metric = usize;

    fn load(&self) -> usize {
        self.endpoint.calls_in_flight()
    }
}

type Discovered = Pin<Box<dyn Stream<Item = Result<Change<String, EndpointService>, BoxError>> + Send>>;

/// The endpoints a discovery stream inserted, for streams (which start at once and so cannot
/// wait for the balancer).
type Known = Arc<Mutex<Vec<(String, Endpoint)>>>;

/// Turns a stream of endpoint changes into the balancer's, recording the endpoints.
struct Discover<S> {
    changes: Pin<Box<S>>,
    known: Known,
}

impl<S, E> Stream for Discover<S>
where
    S: Stream<Item = Result<Change<String, Endpoint>, E>> + Send,
    E: Into<BoxError>,
{
    type Item = Result<Change<String, EndpointService>, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Poll::Ready(match std::task::ready!(this.changes.as_mut().poll_next(cx)) {
            None => None,
            Some(Err(e)) => Some(Err(e.into())),
            Some(Ok(Change::Insert(key, endpoint))) => {
                let mut known = lock(&this.known);
                known.retain(|(k, _)| *k != key);
                known.push((key.clone(), endpoint.clone()));
                Some(Ok(Change::Insert(key, EndpointService::from(endpoint))))
            }
            Some(Ok(Change::Remove(key))) => {
                lock(&this.known).retain(|(k, _)| *k != key);
                Some(Ok(Change::Remove(key)))
            }
        })
    }
}

/// A fixed list of changes, then nothing more (the stream never ends, so the balancer keeps
/// its endpoints).
struct Fixed(VecDeque<Change<String, Endpoint>>);

impl Stream for Fixed {
    type Item = Result<Change<String, Endpoint>, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.pop_front() {
            Some(change) => Poll::Ready(Some(Ok(change))),
            None => Poll::Pending,
        }
    }
}

/// Calls spread over many endpoints: an [`Invoke`], so generated clients use it as they use a
/// [`Client`] (`balancer.example().echo(..)`). Cheap to clone; clones share the endpoints.
///
/// ```no_run
/// # async fn run() {
/// use tidl_runtime::{Balancer, EndpointConfig};
/// let balancer = Balancer::from_addrs(["10.0.0.1:23333", "10.0.0.2:23333"], &EndpointConfig::default());
/// # }
/// ```
#[derive(Clone)]
pub struct Balancer {
    balance: Arc<tokio::sync::Mutex<Balance<Discovered, Request>>>,
    known: Known,
    wait_for_ready: bool,
    budget: Arc<RetryBudget>,
    /// Set while the caller holding the balancer waits for an endpoint to connect.
    starved: Arc<AtomicBool>,
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<String> = lock(&self.known).iter().map(|(k, _)| k.clone()).collect();
        f.debug_struct("Balancer").field("endpoints", &known).finish_non_exhaustive()
    }
}

impl Balancer {
    /// A balancer over the endpoints that `changes` inserts (and until it removes them). Any
    /// stream will do: a registry's watch, a channel. Discovery and connecting start on the
    /// first call (or [`ready`](Balancer::ready)). Calls wait for a connected endpoint unless
    /// they say otherwise ([`CallOptions::wait_for_ready`]).
    pub fn new<S, E>(changes: S) -> Balancer
    where
        S: Stream<Item = Result<Change<String, Endpoint>, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let known = Known::default();
        let discover: Discovered = Box::pin(Discover { changes: Box::pin(changes), known: known.clone() });
        Balancer {
            balance: Arc::new(tokio::sync::Mutex::new(Balance::new(discover))),
            known,
            wait_for_ready: true,
            budget: Arc::default(),
            starved: Arc::default(),
        }
    }

    /// A balancer over the TCP servers at `addrs`, each an [`Endpoint`] with `config`.
    pub fn from_addrs(addrs: impl IntoIterator<Item = impl Into<String>>, config: &EndpointConfig) -> Balancer {
        let wait_for_ready = config.wait_for_ready;
        let changes = addrs
            .into_iter()
            .map(|addr| {
                let addr = addr.into();
                Change::Insert(addr.clone(), Endpoint::new(addr, config.clone()))
            })
            .collect();
        Balancer { wait_for_ready, ..Balancer::new(Fixed(changes)) }
    }

    /// The endpoints the balancer knows, by key.
    pub fn endpoints(&self) -> Vec<(String, Endpoint)> {
        lock(&self.known).clone()
    }

    /// Completes once an endpoint is connected (discovery and connecting start on the first
    /// call, or here): useful before starting streams, which do not wait.
    pub async fn ready(&self) -> Result<(), Status> {
        self.pick(None, true).await.map(drop)
    }

    /// Sends `request` to a ready endpoint, waiting for one, and again to another if it may be
    /// sent again, within the call's deadline.
    async fn send(self, request: Request, options: CallOptions) -> Reply {
        let deadline = retry::deadline(&options, None);
        let wait = options.get_wait_for_ready().unwrap_or(self.wait_for_ready);
        self.budget.deposit();
        let mut sends = 0;
        loop {
            let attempt = retry::attempt(&request, &options, deadline);
            let reply = match self.pick(deadline, wait).await {
                Ok(mut balance) => {
                    let call = balance.call(attempt);
                    drop(balance);
                    match call.await {
                        Ok(reply) => reply,
                        Err(e) => Reply::Status(Status::unavailable(format!("the balancer failed: {e}"))),
                    }
                }
                Err(status) => return Reply::Status(status),
            };
            sends += 1;
            if !retry::should_retry(&reply, &request, sends, &self.budget) {
                return reply;
            }
        }
    }

    /// Waits until the balancer has a ready endpoint and picks one (the less loaded of two).
    async fn pick(
        &self,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<tokio::sync::OwnedMutexGuard<Balance<Discovered, Request>>, Status> {
        let none_ready = || Status::unavailable("no endpoint of the balancer is connected").unstarted();
        // A caller that holds the lock while no endpoint is ready makes a caller that does not
        // wait fail at once, instead of queueing behind it.
        if !wait && self.starved.load(Ordering::Acquire) {
            return Err(none_ready());
        }
        let picking = async {
            let mut balance = self.balance.clone().lock_owned().await;
            let ready = poll_fn(|cx| {
                let poll = balance.poll_ready(cx);
                if poll.is_pending() {
                    self.starved.store(true, Ordering::Release);
                }
                poll
            })
            .await;
            self.starved.store(false, Ordering::Release);
            ready.map(|()| balance)
        };
        let result = if !wait {
            // One look: ready now, or not.
            let mut picking = std::pin::pin!(picking);
            match poll_fn(|cx| Poll::Ready(picking.as_mut().poll(cx))).await {
                Poll::Ready(result) => result,
                Poll::Pending => {
                    self.starved.store(false, Ordering::Release);
                    return Err(none_ready());
                }
            }
        } else if let Some(deadline) = deadline {
            match tokio::time::timeout_at(deadline, picking).await {
                Ok(result) => result,
                Err(_) => {
                    self.starved.store(false, Ordering::Release);
                    return Err(Status::new(
                        Code::DeadlineExceeded,
                        "the deadline passed while waiting for an endpoint of the balancer to connect",
                    ));
                }
            }
        } else {
            picking.await
        };
        result.map_err(|e| Status::unavailable(format!("the balancer failed: {e}")))
    }

    /// The connected endpoint with the fewest calls in flight, for a stream.
    fn least_loaded(&self, method: Method) -> Result<Client, Status> {
        lock(&self.known)
            .iter()
            .filter_map(|(_, e)| e.client().filter(Client::is_open))
            .min_by_key(Client::calls_in_flight)
            .ok_or_else(|| {
                Status::unavailable(format!(
                    "`{method}` is a stream, and no endpoint of the balancer is connected now (streams do \
                     not wait for one: await Balancer::ready() first)"
                ))
                .unstarted()
            })
    }
}

impl Invoke for Balancer {
    /// Sends the request to the less loaded of two ready endpoints, waiting for one if none is
    /// ready, and again through the balancer if a server refused it unstarted.
    fn invoke(&self, request: Request) -> ReplyFuture {
        let this = self.clone();
        Box::pin(async move {
            let options = request.options().clone();
            retry::unless_parent_cancelled(&options.clone(), this.send(request, options)).await
        })
    }

    streams_through_picked_client!(least_loaded);
}
