//! OpenTelemetry trace context in a call's metadata: [`Metadata`] as the carrier of
//! OpenTelemetry's propagators, injected from the client's span and extracted into the
//! server's.

use crate::metadata::Metadata;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Metadata carries OpenTelemetry's context out: a key set replaces every entry of that key.
impl Injector for Metadata {
    fn set(&mut self, key: &str, value: String) {
        self.remove(key);
        self.insert(key, value);
    }
}

/// Metadata carries OpenTelemetry's context in: the first text value of a key is its value.
impl Extractor for Metadata {
    fn get(&self, key: &str) -> Option<&str> {
        self.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.iter().map(|(key, _)| key).collect()
    }
}

/// Makes the trace context in `metadata`, if it has one the global propagator can read, the
/// parent of `span` (a server's span, not yet started).
pub(super) fn set_parent(span: &Span, metadata: &Metadata) {
    if metadata.is_empty() {
        return;
    }
    // Extracted into an empty context, not the thread's current one: a request without a trace
    // context starts a trace of its own.
    let cx = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(&opentelemetry::Context::new(), metadata)
    });
    if cx.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer, when there is no trace to join.
        let _ = span.set_parent(cx);
    }
}

/// `metadata` with the trace context of `span` (a client's span) added, if it has one and the
/// result stays within `limit` bytes and the protocol's count of entries; else `metadata`.
pub(super) fn inject(span: &Span, metadata: Option<Metadata>, limit: usize) -> Option<Metadata> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return metadata;
    }
    let mut trace = Metadata::new();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&cx, &mut trace));
    if trace.is_empty() {
        return metadata;
    }
    // The caller's own entries come first, so a trace context set by hand wins.
    let merged = match &metadata {
        None => trace,
        Some(metadata) => metadata.merged(&trace),
    };
    if merged.size() > limit || merged.len() > crate::wire::MAX_METADATA_ENTRIES {
        tracing::debug!(
            "a call went out without its trace context: it would have taken the call's metadata over its limit"
        );
        return metadata;
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn metadata_carries_a_w3c_trace_context_both_ways() {
        let propagator = opentelemetry_sdk::propagation::TraceContextPropagator::new();
        let span = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "value")]).expect("a valid trace state"),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(span.clone());
        let mut metadata = Metadata::new();
        metadata.insert("traceparent", "stale");
        propagator.inject_context(&cx, &mut metadata);
        assert_eq!(
            metadata.get_str("traceparent"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "replaced, not added"
        );
        assert_eq!(metadata.get_all("traceparent").count(), 1);
        assert_eq!(metadata.get_str("tracestate"), Some("vendor=value"));
        let extracted = propagator.extract(&metadata);
        assert_eq!(extracted.span().span_context(), &span);
    }
}
