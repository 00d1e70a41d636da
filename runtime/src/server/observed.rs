//! How a handler task's ending is observed: the outcome its span and metrics record, and
//! whether something stopped the call early.

use super::dispatch::Ended;
use crate::error::Code;
use crate::observe::{Outcome, Reason};

impl<T, E> Ended<T, E> {
    /// The outcome of a call that ended so, after a cancel if `cancelled`, while the server
    /// stops if `stopping`; with why it was stopped early, if it was.
    pub(super) fn observed(&self, cancelled: bool, stopping: bool) -> (Outcome<'_>, Option<Reason>) {
        let cancel = if stopping { Reason::Shutdown } else { Reason::Client };
        match self {
            // Ended on its own once cancelled (a send that failed because of the cancel, say).
            Ended::Ok(_) | Ended::App(_) | Ended::Status(_) if cancelled => {
                (Outcome::Status(Code::Cancelled, "the call was cancelled"), Some(cancel))
            }
            Ended::Ok(_) => (Outcome::Ok, None),
            Ended::App(_) => (Outcome::App, None),
            Ended::Status(status) => (Outcome::Status(status.code(), status.message()), None),
            // What the client is told (see `end_without_reply`).
            Ended::Cancelled if stopping => {
                (Outcome::Status(Code::Unavailable, "the server shut down and stopped the call"), Some(cancel))
            }
            Ended::Cancelled => (Outcome::Status(Code::Cancelled, "the client cancelled the call"), Some(cancel)),
            Ended::DeadlineExceeded => {
                (Outcome::Status(Code::DeadlineExceeded, "the call passed its deadline"), Some(Reason::Deadline))
            }
            Ended::Panicked(_) => (Outcome::Status(Code::Internal, "the handler panicked"), None),
        }
    }
}
