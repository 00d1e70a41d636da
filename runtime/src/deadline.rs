//! A call's deadline: from the caller's own timeout and the deadline of the handler call it is
//! made for, to one instant, and to and from its wire form (microseconds left, relative to when
//! the server reads the request, so the two clocks never need to agree).

use std::time::Duration;
use tokio::time::Instant;

/// When a call must complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Never.
    None,
    /// At `at`, which is `micros` microseconds from now: what the request tells the server.
    At { at: Instant, micros: u64 },
    /// Already passed: the call must not start.
    Passed,
}

impl Deadline {
    /// The earlier of `timeout` from now and `parent`. Only calls with a deadline read the clock.
    pub(crate) fn of_call(timeout: Option<Duration>, parent: Option<Instant>) -> Deadline {
        if timeout.is_none() && parent.is_none() {
            return Deadline::None;
        }
        let now = Instant::now();
        let own = timeout.and_then(|t| now.checked_add(t));
        let at = match (own, parent) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            // A timeout too large to represent: no deadline.
            (None, None) => return Deadline::None,
        };
        if at <= now {
            return Deadline::Passed;
        }
        let micros = at.duration_since(now).as_micros();
        Deadline::At { at, micros: u64::try_from(micros).unwrap_or(u64::MAX) }
    }

    /// The instant, if there is one.
    pub(crate) fn instant(self) -> Option<Instant> {
        match self {
            Deadline::At { at, .. } => Some(at),
            Deadline::None | Deadline::Passed => None,
        }
    }

    /// What the request carries: microseconds left.
    pub(crate) fn wire(self) -> Option<u64> {
        match self {
            Deadline::At { micros, .. } => Some(micros),
            Deadline::None | Deadline::Passed => None,
        }
    }
}

/// The deadline of a request that arrived now carrying `timeout_micros`; a deadline too far to
/// represent is none.
pub(crate) fn from_wire(timeout_micros: Option<u64>) -> Option<Instant> {
    timeout_micros.and_then(|t| Instant::now().checked_add(Duration::from_micros(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_earlier_of_own_timeout_and_parent_deadline_wins() {
        let now = Instant::now();
        let parent = now + Duration::from_secs(2);
        assert_eq!(Deadline::of_call(None, None), Deadline::None);
        assert_eq!(
            Deadline::of_call(Some(Duration::from_secs(1)), Some(parent)).instant(),
            Some(now + Duration::from_secs(1))
        );
        assert_eq!(Deadline::of_call(Some(Duration::from_secs(5)), Some(parent)).wire(), Some(2_000_000));
        assert_eq!(Deadline::of_call(None, Some(now)), Deadline::Passed);
        assert_eq!(Deadline::of_call(Some(Duration::MAX), None), Deadline::None);
    }
}
