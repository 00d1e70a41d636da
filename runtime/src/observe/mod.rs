//! Observability: a [`tracing`] span per call on both sides, W3C trace context carried in the
//! call's metadata (feature `otel`), and metrics on the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`).
//!
//! # Spans
//!
//! Every call gets an `INFO` span on each side, with target [`TARGET`], named `rpc.client` or
//! `rpc.server`, and fields after OpenTelemetry's semantic conventions for RPC:
//!
//! | field | value |
//! |---|---|
//! | `otel.name` | the fully qualified method, `pkg.Service/method` (what OpenTelemetry names the span) |
//! | `otel.kind` | `client` or `server` |
//! | `rpc.system.name` | `tidl` |
//! | `rpc.method` | the fully qualified method, as `otel.name` |
//! | `server.address`, `server.port` | client side: the server's IP address (or Unix socket path) and port |
//! | `network.peer.address`, `network.peer.port` | server side: the client's IP address (or Unix socket path) and port |
//! | `rpc.response.status_code` | when the call ends: `OK`, `APP_ERROR` (the method's declared error) or the [`Code`] of its status in gRPC's spelling (`CANCELLED`, `DEADLINE_EXCEEDED`, `NOT_FOUND`, ...) |
//! | `otel.status_code` | `ERROR` when the call did not end `OK` (left unset otherwise) |
//! | `otel.status_description` | the status's message, for a call that ended with a status |
//!
//! A tracing span's name is fixed where it is declared, so the method is in `otel.name`, which
//! tracing-opentelemetry uses as the OpenTelemetry span's name. The server's span is entered
//! whenever the handler runs, so what the handler logs is inside it, and a call the handler
//! makes (to another service) gets a client span whose parent is the server's span. A client's
//! span ends when the call's outcome arrives, when the call is detached (an event, `call
//! detached`, says so; no status code is recorded), or when the [`Call`](crate::Call) is dropped
//! before (as `CANCELLED`).
//!
//! Stopping a call early is an `INFO` event in its span: `call cancelled` with a `reason`
//! (client side: `caller` for [`Call::cancel`](crate::Call::cancel), `dropped` for a `Call`
//! dropped before it ended, `parent` when the handler call it was made for was cancelled;
//! server side: `client` when the client cancelled or its connection closed, `shutdown` when
//! the server's grace period ended), or `deadline exceeded`.
//!
//! Without a subscriber interested in [`TARGET`] at `INFO`, the spans are disabled: creating
//! one is a check of a cached flag, allocates nothing, and the handler's task carries no span.
//!
//! # OpenTelemetry (feature `otel`)
//!
//! With the `otel` feature and a `tracing_opentelemetry` layer, a client injects its span's
//! context into the call's metadata through OpenTelemetry's global text-map propagator
//! (`opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new())` gives
//! W3C `traceparent` and `tracestate`), and a server extracts it and makes it the parent of its
//! span: a trace follows a call across services. [`Metadata`](crate::Metadata) implements
//! OpenTelemetry's `Injector` and `Extractor`. The context is not sent to a server that speaks a
//! protocol older than 1.4 (which has no metadata), nor when it would take the call's metadata
//! over its limit: the call goes out without it rather than fail.
//!
//! # Metrics (feature `metrics`)
//!
//! The module `metrics` (with the feature) lists the names, labels and units.

use crate::error::Code;
use crate::method::Method;
use std::fmt;

#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "otel")]
mod otel;
mod span;

pub(crate) use span::{Asked, ClientCall, ServerCall, spawn};

/// The target of the spans and events of calls: filter on it to see them
/// (`RUST_LOG=tidl_runtime::rpc=info`, or `tidl_runtime=info` for everything tidl logs at `INFO`).
pub const TARGET: &str = "tidl_runtime::rpc";

/// Which side of a call is observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Client,
    Server,
}

impl Side {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// A count of the bytes one connection read or wrote, for the metrics (nothing without the
/// `metrics` feature). Registered once per connection.
pub(crate) struct ByteCount {
    #[cfg(feature = "metrics")]
    counter: ::metrics::Counter,
}

impl ByteCount {
    /// The count of bytes read.
    #[cfg(feature = "metrics")]
    pub(crate) const RECEIVED: &str = metrics::BYTES_RECEIVED;
    /// The count of bytes read.
    #[cfg(not(feature = "metrics"))]
    pub(crate) const RECEIVED: &str = "";
    /// The count of bytes written.
    #[cfg(feature = "metrics")]
    pub(crate) const SENT: &str = metrics::BYTES_SENT;
    /// The count of bytes written.
    #[cfg(not(feature = "metrics"))]
    pub(crate) const SENT: &str = "";

    /// The count `name` of a connection on `side`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(name: &'static str, side: Side) -> ByteCount {
        ByteCount {
            #[cfg(feature = "metrics")]
            counter: metrics::bytes(name, side),
        }
    }

    /// Counts `n` bytes more.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables, clippy::unused_self))]
    pub(crate) fn add(&self, n: usize) {
        #[cfg(feature = "metrics")]
        self.counter.increment(n as u64);
    }
}

/// Why a call was stopped before it ended on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    /// Client: `Call::cancel` (or `Streaming::cancel`).
    Caller,
    /// Client: the `Call` was dropped while pending.
    Dropped,
    /// Client: the handler call it was made for was cancelled.
    Parent,
    /// Server: the client cancelled it, or its connection closed.
    Client,
    /// Server: the grace period of a shutdown ended.
    Shutdown,
    /// Either side: the deadline passed.
    Deadline,
}

impl Reason {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const ALL: [Reason; 6] =
        [Reason::Caller, Reason::Dropped, Reason::Parent, Reason::Client, Reason::Shutdown, Reason::Deadline];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Reason::Caller => "caller",
            Reason::Dropped => "dropped",
            Reason::Parent => "parent",
            Reason::Client => "client",
            Reason::Shutdown => "shutdown",
            Reason::Deadline => "deadline",
        }
    }
}

/// How a call ended, as spans and metrics report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome<'a> {
    /// A reply.
    Ok,
    /// The method's declared error.
    App,
    /// A status, with its message.
    Status(Code, &'a str),
}

/// Every value of `rpc.response.status_code`, `OK` and `APP_ERROR` first, then the codes in the
/// order of their numbers.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const STATUS_CODES: usize = 18;

impl Outcome<'_> {
    /// The value of `rpc.response.status_code`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::App => "APP_ERROR",
            Outcome::Status(code, _) => code_name(*code),
        }
    }

    /// The outcome's place among the [`STATUS_CODES`].
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn index(&self) -> usize {
        match self {
            Outcome::Ok => 0,
            Outcome::App => 1,
            Outcome::Status(code, _) => 1 + usize::from(code.as_u16()),
        }
    }

    /// The name of the outcome at `index` among the [`STATUS_CODES`].
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn name_at(index: usize) -> &'static str {
        match index {
            0 => "OK",
            1 => "APP_ERROR",
            n => code_name(Code::from_u16(u16::try_from(n - 1).unwrap_or(u16::MAX))),
        }
    }

    /// The status's message, for an outcome that is one.
    pub(crate) fn message(&self) -> Option<&str> {
        match self {
            Outcome::Status(_, message) => Some(message),
            Outcome::Ok | Outcome::App => None,
        }
    }
}

/// A code in gRPC's spelling, as OpenTelemetry's conventions write status codes.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Displays a method fully qualified, as OpenTelemetry writes it: `pkg.Service/method` (a
/// service's wire name includes its package).
#[derive(Clone, Copy)]
pub(crate) struct FullName(pub(crate) Method);

impl fmt::Display for FullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.service(), self.0.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_spelled_as_grpc_spells_them_and_indexed_densely() {
        assert_eq!(Outcome::Ok.name(), "OK");
        assert_eq!(Outcome::App.name(), "APP_ERROR");
        assert_eq!(Outcome::Status(Code::DeadlineExceeded, "").name(), "DEADLINE_EXCEEDED");
        for n in 1..=16u16 {
            let outcome = Outcome::Status(Code::from_u16(n), "");
            assert!(outcome.index() < STATUS_CODES);
            assert_eq!(Outcome::name_at(outcome.index()), outcome.name());
        }
        assert_eq!(FullName(Method::new("shop.Store", "buy")).to_string(), "shop.Store/buy");
    }
}
