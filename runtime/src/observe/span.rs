//! The spans of calls, on both sides, and what ends them.

use super::{FullName, Outcome, Reason, TARGET};
use crate::context::Context;
use crate::error::{Code, Status};
use crate::method::Method;
use crate::transport::Peer;
use std::fmt;
use std::future::Future;
use tokio_util::task::TaskTracker;
use tracing::field::Empty;
use tracing::{Instrument, Span};

/// The server's side of a call being observed; the handler's task carries it.
pub(crate) struct ServerCall {
    /// Whether the task runs in the call's span (it is then the current span as the task ends).
    traced: bool,
    /// Until the call ends.
    #[cfg(feature = "metrics")]
    metrics: Option<super::metrics::CallMetrics>,
}

impl ServerCall {
    /// Starts observing the call of `method` whose context is `ctx`; its span, if anyone is
    /// interested in it, for the handler's task to run in.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    pub(crate) fn start(method: Method, ctx: &Context) -> (ServerCall, Option<Span>) {
        let span = server_span(&FullName(method), ctx.peer());
        let span = (!span.is_disabled()).then_some(span);
        #[cfg(feature = "otel")]
        if let Some(span) = &span {
            super::otel::set_parent(span, ctx.metadata());
        }
        let call = ServerCall {
            traced: span.is_some(),
            #[cfg(feature = "metrics")]
            metrics: Some(super::metrics::CallMetrics::start(method, super::Side::Server)),
        };
        (call, span)
    }

    /// Records how the call ended: with `outcome`, stopped early for a reason if `stopped`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
    pub(crate) fn end(mut self, outcome: Outcome<'_>, stopped: Option<Reason>) {
        // The task runs in the span, if it has one: no need to carry another handle on it.
        let span = if self.traced { Span::current() } else { Span::none() };
        if let Some(reason) = stopped {
            stopped_event(&span, reason);
        }
        record(&span, &outcome);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.take() {
            if let Some(reason) = stopped {
                metrics.stopped(reason);
            }
            metrics.end(&outcome);
        }
    }
}

/// A call's server span, named `name`, from `peer`; its outcome fields are recorded as it ends.
fn server_span(name: &dyn fmt::Display, peer: &Peer) -> Span {
    tracing::info_span!(
        target: TARGET,
        "rpc.server",
        otel.name = %name,
        otel.kind = "server",
        rpc.system.name = "tidl",
        rpc.method = %name,
        rpc.method_original = Empty,
        network.peer.address = address(peer).map(display),
        network.peer.port = port(peer),
        rpc.response.status_code = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// What a peer asked for in a call the server refused before any handler ran.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Asked<'a> {
    /// A method this server serves.
    Known(Method),
    /// A service and method as the peer named them, before the server looked them up (or for
    /// one it does not serve).
    Named(&'a str, &'a str),
}

/// What OpenTelemetry calls a method the instrumentation does not know: span names and metric
/// labels never come from what a peer sends, so a peer cannot grow their number.
pub(crate) const OTHER_METHOD: &str = "_OTHER";

impl ServerCall {
    /// Records a call the server answered with `status` without running a handler (shutting
    /// down, an unknown service or method, a limit, an incompatible schema, an argument that did
    /// not decode): its span, opened and closed at once, and its metrics. A call named only as
    /// the peer sent it is `_OTHER` in `rpc.method` and in metrics, with the name it was sent
    /// under in the span's `rpc.method_original`.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    pub(crate) fn refused(asked: Asked<'_>, peer: &Peer, metadata: &crate::Metadata, status: &Status) {
        let outcome = Outcome::Status(status.code(), status.message());
        let span = match asked {
            Asked::Known(method) => server_span(&FullName(method), peer),
            Asked::Named(service, method) => {
                let span = server_span(&OTHER_METHOD, peer);
                span.record("rpc.method_original", format_args!("{service}/{method}"));
                span
            }
        };
        if !span.is_disabled() {
            #[cfg(feature = "otel")]
            super::otel::set_parent(&span, metadata);
            record(&span, &outcome);
        }
        #[cfg(feature = "metrics")]
        {
            let method = match asked {
                Asked::Known(method) => method,
                Asked::Named(..) => Method::new("", OTHER_METHOD),
            };
            super::metrics::CallMetrics::start(method, super::Side::Server).end(&outcome);
        }
    }
}

#[cfg(feature = "metrics")]
impl Drop for ServerCall {
    fn drop(&mut self) {
        // The task was dropped before the call ended (its runtime shut down).
        if let Some(metrics) = self.metrics.take() {
            metrics.end(&Outcome::Status(Code::Cancelled, "the server's runtime stopped"));
        }
    }
}

/// Spawns the handler's `task` on `tracker`, in `span` if it has one: a call nobody traces
/// carries no span. If `inline`, polls it once here first, and spawns it only if it waits.
#[inline]
pub(crate) fn spawn<F>(tracker: &TaskTracker, task: F, span: Option<Span>, inline: bool)
where
    F: Future<Output = ()> + Send + 'static,
{
    match span {
        None if inline => spawn_unless_done(tracker, task),
        None => crate::sched::batch::spawn(tracker, task),
        Some(span) if inline => spawn_unless_done(tracker, task.instrument(span)),
        Some(span) => crate::sched::batch::spawn(tracker, task.instrument(span)),
    }
}

/// Polls `task` once, and spawns it on `tracker` if it is not done. The first poll registers a
/// waker that wakes nothing: the spawned task's first poll registers its own, as every future
/// must expect.
fn spawn_unless_done<F>(tracker: &TaskTracker, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut task = Box::pin(task);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if task.as_mut().poll(&mut cx).is_pending() {
        drop(tracker.spawn(task));
    }
}

/// The client's side of a call being observed; the pending call carries it until the call ends
/// or is dropped.
pub(crate) struct ClientCall {
    /// The call's span until it ends, if anyone is interested in it (boxed: a disabled span
    /// takes no room in every call).
    span: Option<Box<Span>>,
    /// Until the call ends.
    #[cfg(feature = "metrics")]
    metrics: Option<super::metrics::CallMetrics>,
}

impl fmt::Debug for ClientCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCall").field("span", &self.span).finish_non_exhaustive()
    }
}

impl ClientCall {
    /// Starts observing a call of `method` to `peer`, made in the current span.
    pub(crate) fn start(method: Method, peer: &Peer) -> ClientCall {
        let span = tracing::info_span!(
            target: TARGET,
            "rpc.client",
            otel.name = %FullName(method),
            otel.kind = "client",
            rpc.system.name = "tidl",
            rpc.method = %FullName(method),
            server.address = address(peer).map(display),
            server.port = port(peer),
            rpc.response.status_code = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
        );
        ClientCall {
            span: (!span.is_disabled()).then(|| Box::new(span)),
            #[cfg(feature = "metrics")]
            metrics: Some(super::metrics::CallMetrics::start(method, super::Side::Client)),
        }
    }

    /// Observes nothing: the placeholder of a call not yet handed its observer.
    pub(crate) fn none() -> ClientCall {
        ClientCall {
            span: None,
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    /// `metadata`, with the span's trace context added if the call may carry it (the server
    /// speaks 1.4, and it fits within `limit` bytes and the protocol's count of entries).
    #[cfg_attr(not(feature = "otel"), allow(unused_variables, clippy::unused_self))]
    pub(crate) fn propagate(
        &self,
        metadata: Option<crate::Metadata>,
        may_carry: bool,
        limit: usize,
    ) -> Option<crate::Metadata> {
        #[cfg(feature = "otel")]
        if let Some(span) = self.span.as_deref().filter(|_| may_carry) {
            return super::otel::inject(span, metadata, limit);
        }
        metadata
    }

    /// Records that the call was stopped early, for `reason`.
    pub(crate) fn stopped(&self, reason: Reason) {
        if let Some(span) = &self.span {
            stopped_event(span, reason);
        }
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.stopped(reason);
        }
    }

    /// Records that the call ended with `outcome`.
    pub(crate) fn end(&mut self, outcome: &Outcome<'_>) {
        self.finish(outcome);
    }

    /// Records that the call failed with `status` before it was sent.
    pub(crate) fn refused(mut self, status: &Status) {
        self.finish(&Outcome::Status(status.code(), status.message()));
    }

    /// Records that the call was detached: it runs on, and nobody takes its outcome. Its span
    /// ends here.
    pub(crate) fn detach(&mut self) {
        if let Some(span) = self.span.take() {
            tracing::info!(target: TARGET, parent: &*span, "call detached");
        }
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.take() {
            metrics.detach();
        }
    }

    /// Records `outcome`, once; the span ends here.
    fn finish(&mut self, outcome: &Outcome<'_>) {
        if let Some(span) = self.span.take() {
            record(&span, outcome);
        }
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.take() {
            metrics.end(outcome);
        }
    }
}

impl Drop for ClientCall {
    fn drop(&mut self) {
        // Dropped before its outcome was taken: the call was cancelled (and said why).
        self.finish(&Outcome::Status(Code::Cancelled, "the call was dropped before it ended"));
    }
}

/// The event that says a call was stopped early.
fn stopped_event(span: &Span, reason: Reason) {
    if span.is_disabled() {
        return;
    }
    match reason {
        Reason::Deadline => tracing::info!(target: TARGET, parent: span, "deadline exceeded"),
        reason => tracing::info!(target: TARGET, parent: span, reason = reason.name(), "call cancelled"),
    }
}

/// Records `outcome` in `span`.
fn record(span: &Span, outcome: &Outcome<'_>) {
    if span.is_disabled() {
        return;
    }
    span.record("rpc.response.status_code", outcome.name());
    if *outcome != Outcome::Ok {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(message) = outcome.message() {
        span.record("otel.status_description", message);
    }
}

/// The peer's address as a span shows it: its IP address, or its Unix socket's path.
struct Address<'a>(&'a Peer);

impl fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.socket_addr() {
            Some(addr) => addr.ip().fmt(f),
            None => match unix_path(self.0) {
                Some(path) => path.display().fmt(f),
                None => Ok(()),
            },
        }
    }
}

fn address(peer: &Peer) -> Option<Address<'_>> {
    (peer.socket_addr().is_some() || unix_path(peer).is_some()).then_some(Address(peer))
}

fn port(peer: &Peer) -> Option<u16> {
    peer.socket_addr().map(|addr| addr.port())
}

fn unix_path(peer: &Peer) -> Option<&std::path::Path> {
    match peer {
        #[cfg(unix)]
        Peer::Unix(unix) => unix.path(),
        #[cfg(feature = "tls")]
        Peer::Tls(tls) => unix_path(tls.transport()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no subscriber (and, with the feature, no metrics recorder), observing a call
    /// allocates nothing: its spans are disabled and its labels interned at first use.
    #[test]
    fn observing_a_call_with_nobody_listening_allocates_nothing() {
        let method = Method::new("S", "m");
        let peer = Peer::Tcp(([127, 0, 0, 1], 4000).into());
        let ctx = Context::background();
        let observe = || {
            let mut client = ClientCall::start(method, &peer);
            assert!(client.propagate(None, true, 8192).is_none());
            client.stopped(Reason::Caller);
            client.end(&Outcome::Status(Code::Cancelled, "cancelled"));
            drop(client);
            let (server, span) = ServerCall::start(method, &ctx);
            assert!(span.is_none(), "no subscriber: no span for the task");
            server.end(Outcome::Status(Code::DeadlineExceeded, "late"), Some(Reason::Deadline));
        };
        observe(); // interns the metrics' labels, with the feature
        let info = allocation_counter::measure(observe);
        assert_eq!(info.count_total, 0, "allocations when nobody listens");
    }
}
