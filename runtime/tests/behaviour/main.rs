//! The runtime's behaviour tests, one module per subject, in one test binary: linking the
//! runtime and its dependencies once instead of once per subject keeps CI's build short.
//! Two stay binaries of their own: `otel.rs` installs a process-wide subscriber, and
//! `memory.rs` counts allocations, which a subscriber another test installed would change
//! (tracing keeps a callsite's interest process-wide).
//!
//! Run one subject with its module as the filter, e.g.
//! `cargo test -p tidl-runtime --all-features --test behaviour -- deadlines::`.

mod common;
mod raw;

mod bad_input;
mod balance;
mod batch;
mod builtin;
mod cancellation;
mod chaos;
mod cpu_bound;
mod deadlines;
mod inline;
mod intercept;
mod keepalive;
mod limits;
mod metadata;
mod metrics;
mod payloads;
mod protocol;
mod schemas;
mod shutdown;
mod statuses;
mod storm;
mod stream_props;
mod streams;
mod tls;
mod tower_stacks;
mod tracing_spans;
mod transports;
