//! With the `metrics` feature, calls and connections are counted through the `metrics` facade:
//! calls started and finished by method, side and code, their durations, the calls in flight,
//! the calls stopped early by reason, and the bytes each side read and wrote.
//!
//! Each test runs client and server on one thread, under a `DebuggingRecorder` of its own (a
//! thread-local recorder), so tests running at once do not count each other's calls.

#![cfg(feature = "metrics")]

use crate::common;

use common::{Probe, call, call_with, connected, status};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tidl_runtime::observe::metrics::{
    BYTES_RECEIVED, BYTES_SENT, CALLS_FINISHED, CALLS_IN_FLIGHT, CALLS_STARTED, CALLS_STOPPED, CLIENT_DURATION,
    SERVER_DURATION,
};
use tidl_runtime::{Call, CallOptions, Code, Error};

/// A metric's kind, name and labels (sorted).
type Id = (MetricKind, String, Vec<(String, String)>);

/// What the recorder has seen so far, added up (a snapshot resets counters and gauges).
struct Seen {
    snapshotter: Snapshotter,
    counters: HashMap<Id, u64>,
    gauges: HashMap<Id, f64>,
    histograms: HashMap<Id, Vec<f64>>,
}

impl Seen {
    fn take(&mut self) -> &Seen {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<_> = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            labels.sort();
            let id = (kind, key.name().to_owned(), labels);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(id).or_default() += n,
                DebugValue::Gauge(x) => *self.gauges.entry(id).or_default() += x.into_inner(),
                DebugValue::Histogram(xs) => self.histograms.entry(id).or_default().extend(xs.iter().map(|x| x.0)),
            }
        }
        self
    }

    fn id(kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Id {
        let mut labels: Vec<_> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        labels.sort();
        (kind, name.to_owned(), labels)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters.get(&Seen::id(MetricKind::Counter, name, labels)).copied().unwrap_or(0)
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.gauges.get(&Seen::id(MetricKind::Gauge, name, labels)).copied().unwrap_or(0.0)
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> &[f64] {
        self.histograms.get(&Seen::id(MetricKind::Histogram, name, labels)).map_or(&[], Vec::as_slice)
    }
}

/// Runs `test` on a one-thread runtime under a recorder of its own.
fn recorded<F: Future<Output = ()>>(test: impl FnOnce(Seen) -> F) {
    let recorder = DebuggingRecorder::new();
    let seen = Seen {
        snapshotter: recorder.snapshotter(),
        counters: HashMap::new(),
        gauges: HashMap::new(),
        histograms: HashMap::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    metrics::with_local_recorder(&recorder, || runtime.block_on(test(seen)));
}

#[test]
fn calls_are_counted_by_method_side_and_code_with_their_durations() {
    recorded(|mut seen| async move {
        let (client, _server) = connected(Probe::default()).await;
        for _ in 0..3 {
            assert_eq!(call::<_, String>(&client, "echo", "hi").await, Ok("hi".to_owned()));
        }
        let failed: Result<(), Error> = call(&client, "fail", &("not_found", "no such thing")).await;
        assert_eq!(status(failed).code(), Code::NotFound);

        let seen = seen.take();
        for side in ["client", "server"] {
            let echo = [("rpc.method", "Probe/echo"), ("side", side)];
            assert_eq!(seen.counter(CALLS_STARTED, &echo), 3, "{side}");
            assert_eq!(seen.gauge(CALLS_IN_FLIGHT, &echo), 0.0, "{side}: none left running");
            let ok = [("rpc.method", "Probe/echo"), ("side", side), ("rpc.response.status_code", "OK")];
            assert_eq!(seen.counter(CALLS_FINISHED, &ok), 3, "{side}");
            let fail = [("rpc.method", "Probe/fail"), ("side", side)];
            assert_eq!(seen.counter(CALLS_STARTED, &fail), 1, "{side}");
            let not_found = [("rpc.method", "Probe/fail"), ("side", side), ("rpc.response.status_code", "NOT_FOUND")];
            assert_eq!(seen.counter(CALLS_FINISHED, &not_found), 1, "{side}");
        }
        for duration in [CLIENT_DURATION, SERVER_DURATION] {
            let seconds = seen.histogram(duration, &[("rpc.method", "Probe/echo"), ("rpc.response.status_code", "OK")]);
            assert_eq!(seconds.len(), 3, "{duration}");
            assert!(seconds.iter().all(|s| *s > 0.0 && *s < 10.0), "{duration} in seconds: {seconds:?}");
        }

        // What one side wrote, the other read: all but the hello, which the read loop does not see.
        const HELLO: u64 = 8;
        let sent = seen.counter(BYTES_SENT, &[("side", "client")]);
        assert!(sent > 4 * HELLO, "requests were counted: {sent}");
        assert_eq!(seen.counter(BYTES_RECEIVED, &[("side", "server")]) + HELLO, sent);
        let sent = seen.counter(BYTES_SENT, &[("side", "server")]);
        assert_eq!(seen.counter(BYTES_RECEIVED, &[("side", "client")]) + HELLO, sent);
    });
}

#[test]
fn calls_refused_before_any_handler_runs_are_counted_with_their_code() {
    recorded(|mut seen| async move {
        let (client, _server) = connected(Probe::default()).await;
        let unknown: Result<(), Error> = call(&client, "nope", &()).await;
        assert_eq!(status(unknown).code(), Code::Unimplemented);
        let undecodable: Result<String, Error> = call(&client, "echo", &42u64).await;
        assert_eq!(status(undecodable).code(), Code::InvalidArgument);

        let seen = seen.take();
        // A method the server does not serve is `_OTHER`: labels never come from the peer.
        let other = [("rpc.method", "_OTHER"), ("side", "server")];
        assert_eq!(seen.counter(CALLS_STARTED, &other), 1);
        assert_eq!(seen.gauge(CALLS_IN_FLIGHT, &other), 0.0);
        let unimplemented =
            [("rpc.method", "_OTHER"), ("side", "server"), ("rpc.response.status_code", "UNIMPLEMENTED")];
        assert_eq!(seen.counter(CALLS_FINISHED, &unimplemented), 1);
        let invalid =
            [("rpc.method", "Probe/echo"), ("side", "server"), ("rpc.response.status_code", "INVALID_ARGUMENT")];
        assert_eq!(seen.counter(CALLS_FINISHED, &invalid), 1);
        assert_eq!(
            seen.histogram(SERVER_DURATION, &[("rpc.method", "_OTHER"), ("rpc.response.status_code", "UNIMPLEMENTED")])
                .len(),
            1
        );
    });
}

#[test]
fn calls_in_flight_are_counted_until_they_end() {
    recorded(|mut seen| async move {
        let probe = Probe::default();
        let (client, _server) = connected(probe.clone()).await;
        let running: Call<()> = call(&client, "sleep", &60_000u64);
        probe.wait("the handler to start", |s| s.started == 1).await;
        for side in ["client", "server"] {
            let sleep = [("rpc.method", "Probe/sleep"), ("side", side)];
            assert_eq!(seen.take().gauge(CALLS_IN_FLIGHT, &sleep), 1.0, "{side}");
        }
        running.cancel();
        assert_eq!(status(running.await).code(), Code::Cancelled);
        probe.wait("the handler to be dropped", |s| s.dropped == 1).await;
        for side in ["client", "server"] {
            let sleep = [("rpc.method", "Probe/sleep"), ("side", side)];
            assert_eq!(seen.take().gauge(CALLS_IN_FLIGHT, &sleep), 0.0, "{side}");
        }
    });
}

#[test]
fn calls_stopped_early_are_counted_with_why() {
    recorded(|mut seen| async move {
        let probe = Probe::default();
        let (client, _server) = connected(probe.clone()).await;

        let cancelled: Call<()> = call(&client, "sleep", &60_000u64);
        probe.wait("the first handler to start", |s| s.started == 1).await;
        cancelled.cancel();
        assert_eq!(status(cancelled.await).code(), Code::Cancelled);
        probe.wait("the first handler to be dropped", |s| s.dropped == 1).await;

        let dropped: Call<()> = call(&client, "sleep", &60_000u64);
        probe.wait("the second handler to start", |s| s.started == 2).await;
        drop(dropped);
        probe.wait("the second handler to be dropped", |s| s.dropped == 2).await;

        let options = CallOptions::default().timeout(Duration::from_millis(20));
        let late: Result<(), Error> = call_with(&client, "sleep", &60_000u64, &options).await;
        assert_eq!(status(late).code(), Code::DeadlineExceeded);

        let seen = seen.take();
        let stopped = |side, reason| {
            seen.counter(CALLS_STOPPED, &[("rpc.method", "Probe/sleep"), ("side", side), ("reason", reason)])
        };
        assert_eq!(stopped("client", "caller"), 1);
        assert_eq!(stopped("client", "dropped"), 1);
        assert_eq!(stopped("client", "deadline"), 1);
        assert!(stopped("server", "client") >= 2, "the two cancels (and maybe the late call's)");
        let finished = |side, code| {
            seen.counter(
                CALLS_FINISHED,
                &[("rpc.method", "Probe/sleep"), ("side", side), ("rpc.response.status_code", code)],
            )
        };
        assert_eq!(finished("client", "CANCELLED"), 2);
        assert_eq!(finished("client", "DEADLINE_EXCEEDED"), 1);
        assert_eq!(finished("client", "OK"), 0);
    });
}
