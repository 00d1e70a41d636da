//! Metrics of calls and connections, emitted through the [`metrics`] facade (feature `metrics`).
//!
//! `metrics` is to metrics what `log` and `tracing` are to logs and spans: the library emits,
//! and the application chooses where the numbers go by installing a recorder (a Prometheus
//! exporter such as `metrics-exporter-prometheus`, OpenTelemetry through a bridge such as
//! `metrics-exporter-opentelemetry`, or its own). Without a recorder every update goes to a
//! no-op: tidl does not allocate for it (label sets are built once per method), and the
//! numbers cost a few calls that do nothing. Without the feature nothing is compiled in.
//! Install the recorder before starting servers and clients: the byte counters of a connection
//! are registered when it opens.
//!
//! | name | kind | unit | labels |
//! |---|---|---|---|
//! | [`CALLS_STARTED`] `tidl.calls.started` | counter | calls | `rpc.method`, `side` |
//! | [`CALLS_FINISHED`] `tidl.calls.finished` | counter | calls | `rpc.method`, `side`, `rpc.response.status_code` |
//! | [`CALLS_IN_FLIGHT`] `tidl.calls.in_flight` | gauge | calls | `rpc.method`, `side` |
//! | [`CALLS_STOPPED`] `tidl.calls.stopped` | counter | calls | `rpc.method`, `side`, `reason` |
//! | [`SERVER_DURATION`] `rpc.server.call.duration` | histogram | seconds | `rpc.method`, `rpc.response.status_code` |
//! | [`CLIENT_DURATION`] `rpc.client.call.duration` | histogram | seconds | `rpc.method`, `rpc.response.status_code` |
//! | [`BYTES_RECEIVED`] `tidl.bytes.received` | counter | bytes | `side` |
//! | [`BYTES_SENT`] `tidl.bytes.sent` | counter | bytes | `side` |
//!
//! `rpc.method` is the fully qualified method (`pkg.Service/method`); `side` is `client` or
//! `server`; `rpc.response.status_code` is as in the spans (`OK`, `APP_ERROR`, or a code:
//! `CANCELLED`, `DEADLINE_EXCEEDED`, ...; see [`observe`](super)); `reason` says why a call
//! was stopped early: `caller`, `dropped`, `parent`, `deadline` on the client, `client`,
//! `shutdown`, `deadline` on the server. The durations follow OpenTelemetry's RPC metrics. The
//! byte counters count what each side's connections read and wrote, frames and handshakes.
//!
//! A server counts the calls that reach a handler (those its interceptors refuse included);
//! a call it refuses before that (no such method, too many calls, an argument that does not
//! decode) is counted by the client alone. A client counts every call it starts, those that
//! fail before they are sent included. A detached call ([`Call::detach`](crate::Call::detach))
//! is counted as started, and not as finished.

use super::{FullName, Outcome, Reason, STATUS_CODES, Side};
use metrics::{Counter, Key, Label, Unit};
use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};
use tokio::time::Instant;

/// Calls started (counter; labels `rpc.method`, `side`).
pub const CALLS_STARTED: &str = "tidl.calls.started";
/// Calls finished (counter; labels `rpc.method`, `side`, `rpc.response.status_code`).
pub const CALLS_FINISHED: &str = "tidl.calls.finished";
/// Calls running (gauge; labels `rpc.method`, `side`).
pub const CALLS_IN_FLIGHT: &str = "tidl.calls.in_flight";
/// Calls stopped before they ended on their own: cancelled, dropped, past their deadline, or
/// stopped by a shutdown (counter; labels `rpc.method`, `side`, `reason`).
pub const CALLS_STOPPED: &str = "tidl.calls.stopped";
/// How long the server took over calls, from the request to the outcome, in seconds
/// (histogram; labels `rpc.method`, `rpc.response.status_code`).
pub const SERVER_DURATION: &str = "rpc.server.call.duration";
/// How long calls took as the client saw them, from the start to the outcome, in seconds
/// (histogram; labels `rpc.method`, `rpc.response.status_code`).
pub const CLIENT_DURATION: &str = "rpc.client.call.duration";
/// Bytes read from connections (counter; label `side`).
pub const BYTES_RECEIVED: &str = "tidl.bytes.received";
/// Bytes written to connections (counter; label `side`).
pub const BYTES_SENT: &str = "tidl.bytes.sent";

/// Describes every metric (its unit and what it counts) to the installed recorder, for
/// exporters that show descriptions (Prometheus' `# HELP`). Optional; call it once, after
/// installing the recorder.
pub fn describe() {
    metrics::describe_counter!(CALLS_STARTED, Unit::Count, "tidl calls started");
    metrics::describe_counter!(CALLS_FINISHED, Unit::Count, "tidl calls finished, by status code");
    metrics::describe_gauge!(CALLS_IN_FLIGHT, Unit::Count, "tidl calls running");
    metrics::describe_counter!(CALLS_STOPPED, Unit::Count, "tidl calls cancelled or past their deadline, by reason");
    metrics::describe_histogram!(SERVER_DURATION, Unit::Seconds, "duration of tidl calls on the server");
    metrics::describe_histogram!(CLIENT_DURATION, Unit::Seconds, "duration of tidl calls on the client");
    metrics::describe_counter!(BYTES_RECEIVED, Unit::Bytes, "bytes read from tidl connections");
    metrics::describe_counter!(BYTES_SENT, Unit::Bytes, "bytes written to tidl connections");
}

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The label sets of one method on one side, built once and kept for the process's life (a
/// program has a fixed set of methods), so that no update allocates.
struct Labels {
    side: Side,
    /// `rpc.method`, `side`.
    method: &'static [Label],
    /// `rpc.method`, `side`, `rpc.response.status_code`, by outcome index.
    finished: Vec<&'static [Label]>,
    /// `rpc.method`, `rpc.response.status_code`, by outcome index.
    duration: Vec<&'static [Label]>,
    /// `rpc.method`, `side`, `reason`, in the order of [`Reason::ALL`].
    stopped: Vec<&'static [Label]>,
}

type Interned = HashMap<(&'static str, &'static str, Side), &'static Labels>;

static LABELS: LazyLock<RwLock<Interned>> = LazyLock::new(|| RwLock::new(HashMap::new()));

fn leak(labels: Vec<Label>) -> &'static [Label] {
    Box::leak(labels.into_boxed_slice())
}

/// The label sets of `method` on `side`.
fn labels(method: crate::method::Method, side: Side) -> &'static Labels {
    let key = (method.service(), method.name(), side);
    if let Some(labels) = LABELS.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return labels;
    }
    let mut interned = LABELS.write().unwrap_or_else(PoisonError::into_inner);
    interned.entry(key).or_insert_with(|| {
        // A method named by the peer only (see `span::OTHER_METHOD`) is `_OTHER`, with no service.
        let name = if method.service().is_empty() { method.name().to_owned() } else { FullName(method).to_string() };
        let method = || Label::new("rpc.method", name.clone());
        let side_label = || Label::from_static_parts("side", side.name());
        let code = |i| Label::from_static_parts("rpc.response.status_code", Outcome::name_at(i));
        Box::leak(Box::new(Labels {
            side,
            method: leak(vec![method(), side_label()]),
            finished: (0..STATUS_CODES).map(|i| leak(vec![method(), side_label(), code(i)])).collect(),
            duration: (0..STATUS_CODES).map(|i| leak(vec![method(), code(i)])).collect(),
            stopped: Reason::ALL
                .iter()
                .map(|r| leak(vec![method(), side_label(), Label::from_static_parts("reason", r.name())]))
                .collect(),
        }))
    })
}

fn counter(name: &'static str, labels: &'static [Label]) -> Counter {
    let key = Key::from_static_parts(name, labels);
    metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA))
}

fn gauge(name: &'static str, labels: &'static [Label]) -> metrics::Gauge {
    let key = Key::from_static_parts(name, labels);
    metrics::with_recorder(|recorder| recorder.register_gauge(&key, &METADATA))
}

fn histogram(name: &'static str, labels: &'static [Label]) -> metrics::Histogram {
    let key = Key::from_static_parts(name, labels);
    metrics::with_recorder(|recorder| recorder.register_histogram(&key, &METADATA))
}

/// The metrics of one call, from its start until [`end`](CallMetrics::end) or
/// [`detach`](CallMetrics::detach) (whoever holds it ends it when dropped).
pub(crate) struct CallMetrics {
    labels: &'static Labels,
    started: Instant,
}

impl CallMetrics {
    /// Counts a call of `method` on `side` as started and in flight.
    pub(crate) fn start(method: crate::method::Method, side: Side) -> CallMetrics {
        let labels = labels(method, side);
        counter(CALLS_STARTED, labels.method).increment(1);
        gauge(CALLS_IN_FLIGHT, labels.method).increment(1.0);
        CallMetrics { labels, started: Instant::now() }
    }

    /// Counts the call as stopped early, for `reason`.
    pub(crate) fn stopped(&self, reason: Reason) {
        let index = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        counter(CALLS_STOPPED, self.labels.stopped[index]).increment(1);
    }

    /// Counts the call as ended with `outcome`, after the time it took.
    pub(crate) fn end(self, outcome: &Outcome<'_>) {
        let labels = self.labels;
        gauge(CALLS_IN_FLIGHT, labels.method).decrement(1.0);
        let index = outcome.index();
        counter(CALLS_FINISHED, labels.finished[index]).increment(1);
        let duration = match labels.side {
            Side::Client => CLIENT_DURATION,
            Side::Server => SERVER_DURATION,
        };
        histogram(duration, labels.duration[index]).record(self.started.elapsed().as_secs_f64());
    }

    /// Counts the call as no longer in flight, without an outcome.
    pub(crate) fn detach(self) {
        gauge(CALLS_IN_FLIGHT, self.labels.method).decrement(1.0);
    }
}

static SIDE_LABELS: [[Label; 1]; 2] =
    [[Label::from_static_parts("side", "client")], [Label::from_static_parts("side", "server")]];

/// The byte counter `name` of connections on `side`, registered once per connection.
pub(crate) fn bytes(name: &'static str, side: Side) -> Counter {
    let labels: &'static [Label] = match side {
        Side::Client => &SIDE_LABELS[0],
        Side::Server => &SIDE_LABELS[1],
    };
    counter(name, labels)
}
