//! `tidl compat`: compares two versions of a schema and judges every change that reaches the
//! wire by the rollout it needs (see `docs/LANGUAGE.md`, "Evolving a schema").
//!
//! [`walk`] pairs services, methods and, through their types, structs and enums ([`members`],
//! with [`align`] pairing fields and variants by position:
//! names are not on the wire) and records each change once, with every use of the type it is
//! in; [`types`] holds the reader/writer rule each change is judged by; [`report`] renders.

mod align;
mod change;
mod members;
#[cfg(test)]
mod proptests;
mod report;
mod types;
mod walk;

use crate::diagnostic::{SourceMap, Span};
use crate::model::Model;
use std::fmt;

/// How old and new versions of a schema can be rolled out, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Old and new clients and servers work together in any combination.
    Safe,
    /// Safe if every server is upgraded before any client is.
    ServersFirst,
    /// Safe if every client is upgraded before any server is.
    ClientsFirst,
    /// No upgrade order keeps old and new versions working together.
    Breaking,
}

impl Verdict {
    /// The verdict of several changes rolled out together: the worst, except that one change
    /// needing servers first and another clients first cannot both be satisfied (breaking).
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::ServersFirst, Verdict::ClientsFirst) | (Verdict::ClientsFirst, Verdict::ServersFirst) => {
                Verdict::Breaking
            }
            _ => self.max(other),
        }
    }

    /// `safe`, `servers-first`, `clients-first` or `breaking` (as in the JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::ServersFirst => "servers-first",
            Verdict::ClientsFirst => "clients-first",
            Verdict::Breaking => "breaking",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place in a `.tidl` file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The file, as it was given (or found, for imports).
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// One change between the two versions, and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The rollout this change needs, over every use of what changed.
    pub verdict: Verdict,
    /// Whether it is worth a look although it is safe on the wire (a default changed, a field
    /// renamed, a variant old readers see as `Unknown`).
    pub warning: bool,
    /// What changed: "field `email` was added to struct `User` without a default".
    pub message: String,
    /// Why it has its verdict: who reads what changed, and what goes wrong.
    pub why: String,
    /// Where it is in the old version, if it is there.
    pub old: Option<Location>,
    /// Where it is in the new version, if it is there.
    pub new: Option<Location>,
    spans: Spans,
}

/// Where a finding points, in the report's source map, and what it says there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Spans {
    old: Option<(Span, String)>,
    new: Option<(Span, String)>,
}

/// What `tidl compat` found: every change, in the order of the services, methods and types
/// that show it. See [`Config::compat`](crate::Config::compat).
#[derive(Debug, Clone)]
pub struct CompatReport {
    findings: Vec<Finding>,
    sources: SourceMap,
}

impl CompatReport {
    /// Every change found (none if the two versions are the same on the wire).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The verdict of rolling out every change: [`Verdict::Safe`] if there is none.
    pub fn verdict(&self) -> Verdict {
        self.findings.iter().fold(Verdict::Safe, |v, f| v.and(f.verdict))
    }

    /// The findings rendered the way the compiler renders diagnostics, each pointing into both
    /// versions, then a summary.
    pub fn render(&self) -> String {
        report::render(self)
    }

    /// The findings as one JSON object, for CI: `{"verdict": .., "findings": [..]}`.
    pub fn to_json(&self) -> String {
        report::to_json(self)
    }
}

/// Compares two checked versions, each with the files it was read from.
pub(crate) fn compare(old: &Model, old_sources: &SourceMap, new: &Model, new_sources: &SourceMap) -> CompatReport {
    let mut sources = old_sources.clone();
    let offset = sources.append(new_sources);
    let old = types::Side::new(old, 0);
    let new = types::Side::new(new, offset);
    let changes = walk::walk(&old, &new);
    let findings = changes.into_iter().map(|c| c.finding(&sources)).collect();
    CompatReport { findings, sources }
}
