//! A change as the walk records it, before its verdict is known: what changed, where, how it
//! affects readers, and every use of the type it is in.

use super::{Finding, Location, Spans, Verdict};
use crate::diagnostic::{SourceMap, Span};

/// Who writes a message, and so who reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Written by clients, read by servers: arguments and client-stream items.
    Request,
    /// Written by servers, read by clients: replies, errors and server-stream items.
    Response,
}

/// One use of a type: how it flows and where (`the argument of `Users.create``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Use {
    pub(super) flow: Flow,
    pub(super) what: String,
}

/// How a change affects readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Whether a new reader reads an old writer, and an old reader a new writer.
    Reads { old_to_new: bool, new_to_old: bool },
    /// A verdict of its own (methods and services added or removed).
    Fixed(Verdict),
}

/// A change, with its uses gathered over the walk.
#[derive(Debug, Clone)]
pub(super) struct Change {
    pub(super) message: String,
    pub(super) old: Option<(Span, String)>,
    pub(super) new: Option<(Span, String)>,
    /// What is read, for the explanation: "`User`", "the reply of `Users.get`".
    pub(super) subject: String,
    pub(super) effect: Effect,
    pub(super) warning: bool,
    /// Why, in a sentence of its own (said before the uses).
    pub(super) reason: Option<String>,
    pub(super) uses: Vec<Use>,
}

impl Change {
    /// A change judged by how it reads, found through `use_`.
    pub(super) fn reads(message: String, subject: &str, old_to_new: bool, new_to_old: bool, use_: &Use) -> Change {
        Change {
            message,
            old: None,
            new: None,
            subject: subject.to_owned(),
            effect: Effect::Reads { old_to_new, new_to_old },
            warning: false,
            reason: None,
            uses: vec![use_.clone()],
        }
    }

    /// A change with a verdict of its own, and why.
    pub(super) fn fixed(message: String, verdict: Verdict, reason: String) -> Change {
        Change {
            message,
            old: None,
            new: None,
            subject: String::new(),
            effect: Effect::Fixed(verdict),
            warning: false,
            reason: Some(reason),
            uses: Vec::new(),
        }
    }

    pub(super) fn at_old(mut self, span: Span, label: impl Into<String>) -> Change {
        self.old = Some((span, label.into()));
        self
    }

    pub(super) fn at_new(mut self, span: Span, label: impl Into<String>) -> Change {
        self.new = Some((span, label.into()));
        self
    }

    /// Sets whether new readers read old writers, and old readers new writers.
    pub(super) fn reads_as(mut self, old_to_new: bool, new_to_old: bool) -> Change {
        self.effect = Effect::Reads { old_to_new, new_to_old };
        self
    }

    pub(super) fn warning(mut self) -> Change {
        self.warning = true;
        self
    }

    pub(super) fn reason(mut self, reason: impl Into<String>) -> Change {
        self.reason = Some(reason.into());
        self
    }

    /// Whether `other` is this change found again (through another use).
    pub(super) fn same(&self, other: &Change) -> bool {
        self.message == other.message && self.old == other.old && self.new == other.new
    }

    /// The change's verdict over all its uses.
    fn verdict(&self) -> Verdict {
        let (old_to_new, new_to_old) = match self.effect {
            Effect::Fixed(verdict) => return verdict,
            Effect::Reads { old_to_new, new_to_old } => (old_to_new, new_to_old),
        };
        self.uses.iter().fold(Verdict::Safe, |v, u| {
            v.and(match (old_to_new, new_to_old, u.flow) {
                (true, true, _) => Verdict::Safe,
                (false, false, _) => Verdict::Breaking,
                // Only new readers read old writers: readers first.
                (true, false, Flow::Request) | (false, true, Flow::Response) => Verdict::ServersFirst,
                (true, false, Flow::Response) | (false, true, Flow::Request) => Verdict::ClientsFirst,
            })
        })
    }

    /// Why the change has its verdict: the reason, who reads what changed, what fails.
    fn why(&self) -> String {
        let mut why = self.reason.clone().unwrap_or_default();
        if self.uses.is_empty() {
            return why;
        }
        let by = |flow: Flow| -> Vec<&str> {
            let mut uses: Vec<&str> = self.uses.iter().filter(|u| u.flow == flow).map(|u| u.what.as_str()).collect();
            uses.dedup();
            uses
        };
        let (servers, clients) = (by(Flow::Request), by(Flow::Response));
        let mut readers = Vec::new();
        if !servers.is_empty() {
            readers.push(format!("by servers in {}", list(&servers)));
        }
        if !clients.is_empty() {
            readers.push(format!("by clients in {}", list(&clients)));
        }
        if !why.is_empty() {
            why.push_str("; ");
        }
        why.push_str(&format!("{} is read {}", self.subject, readers.join(", and ")));
        if let Effect::Reads { old_to_new, new_to_old } = self.effect {
            let mut fails = Vec::new();
            for (ok, reader, writer) in [(old_to_new, "new", "old"), (new_to_old, "old", "new")] {
                if !ok && !servers.is_empty() {
                    fails.push(format!("{reader} servers cannot read what {writer} clients send"));
                }
                if !ok && !clients.is_empty() {
                    fails.push(format!("{reader} clients cannot read what {writer} servers send"));
                }
            }
            if !fails.is_empty() {
                why.push_str(": ");
                why.push_str(&fails.join(", and "));
            }
        }
        why
    }

    /// The change as reported, located with `sources`.
    pub(super) fn finding(self, sources: &SourceMap) -> Finding {
        let locate = |span: &Option<(Span, String)>| {
            span.as_ref().map(|(span, _)| {
                let (line, column) = sources.line_col(span.file, span.start);
                Location { path: sources.path(span.file).to_owned(), line, column }
            })
        };
        Finding {
            verdict: self.verdict(),
            warning: self.warning,
            why: self.why(),
            old: locate(&self.old),
            new: locate(&self.new),
            message: self.message,
            spans: Spans { old: self.old, new: self.new },
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
