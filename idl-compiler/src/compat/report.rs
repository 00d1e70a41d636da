//! Rendering a [`CompatReport`]: for people, the way the compiler renders diagnostics; for CI,
//! as JSON.

use super::{CompatReport, Finding, Location, Verdict};
use crate::diagnostic::Diagnostic;
use std::fmt::Write as _;

/// The headline's prefix: how bad the finding is, rustc-style.
fn level(finding: &Finding) -> &'static str {
    match (finding.verdict, finding.warning) {
        (Verdict::Breaking, _) => "error[breaking]",
        (Verdict::ServersFirst, _) => "warning[servers-first]",
        (Verdict::ClientsFirst, _) => "warning[clients-first]",
        (Verdict::Safe, true) => "warning[safe]",
        (Verdict::Safe, false) => "note[safe]",
    }
}

/// What to do about a verdict.
fn advice(verdict: Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Safe => None,
        Verdict::ServersFirst => Some("upgrade every server before any client"),
        Verdict::ClientsFirst => Some("upgrade every client before any server"),
        Verdict::Breaking => Some("no upgrade order keeps old and new versions working together"),
    }
}

fn render_finding(report: &CompatReport, finding: &Finding) -> String {
    let spans = &finding.spans;
    let (primary, secondary) = match (&spans.new, &spans.old) {
        (Some(new), old) => (new, old.as_ref()),
        (None, Some(old)) => (old, None),
        (None, None) => return format!("{}: {}\n  = note: {}\n", level(finding), finding.message, finding.why),
    };
    let mut d = Diagnostic::error(primary.0, &finding.message).label(&primary.1);
    if let Some((span, label)) = secondary {
        d = d.secondary(*span, label);
    }
    // The renderer's `= help:` lines, marked to become notes.
    if !finding.why.is_empty() {
        d = d.help(format!("\u{0}{}", finding.why));
    }
    if let Some(advice) = advice(finding.verdict) {
        d = d.help(advice);
    }
    let rendered = d.render(&report.sources).replacen("error", level(finding), 1);
    // The note and the help that follows it go together, without a gutter line between them.
    let lines: Vec<&str> = rendered.lines().collect();
    let mut out = String::with_capacity(rendered.len());
    for (i, line) in lines.iter().enumerate() {
        let between = |at: usize, text: &str| lines.get(at).is_some_and(|l| l.trim_start().starts_with(text));
        if line.trim() == "|" && i > 0 && between(i - 1, "= help: \u{0}") && between(i + 1, "= help: ") {
            continue;
        }
        out.push_str(&line.replace("= help: \u{0}", "= note: "));
        out.push('\n');
    }
    out
}

/// Every finding, then a summary of the changes and the verdict.
pub(super) fn render(report: &CompatReport) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        out.push_str(&render_finding(report, finding));
        out.push('\n');
    }
    out.push_str(&summary(report));
    out
}

/// "3 changes: 2 safe (1 warning), 1 breaking" and the verdict, or "no wire changes".
fn summary(report: &CompatReport) -> String {
    let findings = &report.findings;
    if findings.is_empty() {
        return "no wire changes\n".into();
    }
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    let warnings = findings.iter().filter(|f| f.warning).count();
    let mut parts = Vec::new();
    for (verdict, name) in [
        (Verdict::Safe, "safe"),
        (Verdict::ServersFirst, "servers first"),
        (Verdict::ClientsFirst, "clients first"),
        (Verdict::Breaking, "breaking"),
    ] {
        let n = count(verdict);
        if n > 0 {
            parts.push(format!("{n} {name}"));
        }
    }
    let n = findings.len();
    let mut out = format!("{n} change{}: {}", if n == 1 { "" } else { "s" }, parts.join(", "));
    if warnings > 0 {
        let _ = write!(out, " ({warnings} warning{})", if warnings == 1 { "" } else { "s" });
    }
    let verdict = match report.verdict() {
        Verdict::Safe => "safe: old and new clients and servers work together in any order",
        Verdict::ServersFirst => "safe if every server is upgraded before any client",
        Verdict::ClientsFirst => "safe if every client is upgraded before any server",
        Verdict::Breaking => "breaking: no upgrade order keeps old and new versions working together",
    };
    let _ = writeln!(out, "\nverdict: {verdict}");
    out
}

/// The report as JSON: the verdict, then one object per finding.
pub(super) fn to_json(report: &CompatReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{{\n  \"verdict\": \"{}\",", report.verdict());
    out.push_str("  \"findings\": [");
    for (i, f) in report.findings.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(
            out,
            "    {{\"verdict\": \"{}\", \"warning\": {}, \"message\": {}, \"why\": {}, \"old\": {}, \"new\": {}}}",
            f.verdict,
            f.warning,
            string(&f.message),
            string(&f.why),
            location(f.old.as_ref()),
            location(f.new.as_ref()),
        );
    }
    out.push_str(if report.findings.is_empty() { "]\n}\n" } else { "\n  ]\n}\n" });
    out
}

fn location(location: Option<&Location>) -> String {
    match location {
        None => "null".into(),
        Some(l) => format!("{{\"path\": {}, \"line\": {}, \"column\": {}}}", string(&l.path), l.line, l.column),
    }
}

/// A JSON string literal.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
