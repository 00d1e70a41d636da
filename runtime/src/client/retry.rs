//! When [`Endpoint`](crate::Endpoint) and the balancer send a failed call again, and the budget
//! that keeps retries from multiplying the load of a struggling fleet.
//!
//! A call is sent again when it provably never started (the server refused it unstarted, or it
//! was never sent), or when it failed with `Unavailable` (the connection was lost under it) and
//! running it twice is harmless: its method is `@idempotent`, or the caller said so
//! ([`CallOptions::idempotent`](crate::CallOptions::idempotent)). Nothing else is retried:
//! not a deadline, not a cancel, not an answer from a handler.

use super::in_flight::Reply;
use super::invoke::Request;
use super::options::CallOptions;
use crate::error::{Code, Status};
use crate::sync::lock;
use std::sync::Mutex;
use std::time::Instant;

/// Sends of one call at most (the first and two more).
pub(crate) const MAX_SENDS: u32 = 3;

/// Retries may add at most this share of the calls made (as tower's and gRPC's budgets do)...
const RETRY_RATIO: f64 = 0.2;
/// ...plus this many per second, so that a quiet client can still retry.
const MIN_PER_SECOND: f64 = 10.0;
/// Tokens saved up at most.
const MAX_TOKENS: f64 = 100.0;

/// A token bucket: each call adds [`RETRY_RATIO`] of a token, time adds [`MIN_PER_SECOND`] a
/// second, each retry takes one.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    state: Mutex<(f64, Instant)>,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget { state: Mutex::new((MIN_PER_SECOND, Instant::now())) }
    }
}

impl RetryBudget {
    /// A call was made.
    pub(crate) fn deposit(&self) {
        let mut state = lock(&self.state);
        state.0 = (state.0 + RETRY_RATIO).min(MAX_TOKENS);
    }

    /// Takes a token for a retry, if there is one.
    pub(crate) fn withdraw(&self) -> bool {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * MIN_PER_SECOND;
        state.0 = (state.0 + refill).min(MAX_TOKENS);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// When a call made with `options` must have ended: its own timeout, else `default_timeout`,
/// and never after the deadline of the handler call it belongs to.
pub(crate) fn deadline(
    options: &CallOptions,
    default_timeout: Option<std::time::Duration>,
) -> Option<tokio::time::Instant> {
    let own = options.get_timeout().or(default_timeout).map(|t| tokio::time::Instant::now() + t);
    let parent = options.get_context().and_then(crate::Context::deadline_instant);
    match (own, parent) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Runs `work` until it ends, or until the handler call the options belong to is cancelled
/// (then `Cancelled`, the call never having been sent by this attempt... or abandoned).
pub(crate) async fn unless_parent_cancelled<F: std::future::Future<Output = Reply>>(
    options: &CallOptions,
    work: F,
) -> Reply {
    match options.get_context() {
        Some(parent) => tokio::select! {
            biased;
            () = parent.token().cancelled() => Reply::Status(Status::cancelled("the call it belongs to was cancelled")),
            reply = work => reply,
        },
        None => work.await,
    }
}

/// The next send of `request`: with the time left before `deadline` as its timeout.
pub(crate) fn attempt(request: &Request, options: &CallOptions, deadline: Option<tokio::time::Instant>) -> Request {
    match deadline {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            request.clone().with_options(options.clone().timeout(left))
        }
        None => request.clone(),
    }
}

/// Whether `reply`, after `sends` sends of `request`, should be sent again.
pub(crate) fn should_retry(reply: &Reply, request: &Request, sends: u32, budget: &RetryBudget) -> bool {
    let Reply::Status(status) = reply else { return false };
    if sends >= MAX_SENDS {
        return false;
    }
    let idempotent =
        request.options().get_idempotent() || request.method().schema().is_some_and(|schema| schema.idempotent);
    let may_retry = status.is_unstarted() || (idempotent && status.code() == Code::Unavailable);
    may_retry && budget.withdraw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_fifth_of_the_calls_plus_a_floor() {
        let budget = RetryBudget::default();
        // The floor: ten tokens to start with.
        let floor = (0..100).filter(|_| budget.withdraw()).count();
        assert!((10..=11).contains(&floor), "{floor}");
        for _ in 0..100 {
            budget.deposit();
        }
        let more = (0..100).filter(|_| budget.withdraw()).count();
        assert!((20..=21).contains(&more), "{more}");
    }
}
