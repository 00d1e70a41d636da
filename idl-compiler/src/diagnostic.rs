//! Errors in `.tidl` files, located by byte spans and rendered the way rustc renders its own:
//!
//! ```text
//! error: unknown type `strng`
//!  --> services.tidl:5:14
//!   |
//! 5 |     rpc echo(strng) -> string;
//!   |              ^^^^^ did you mean `string`?
//! ```

use std::fmt::{self, Write as _};

/// Identifies a source file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub(crate) usize);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
}

impl Span {
    pub(crate) fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start, end }
    }
}

/// The source files of one compilation, for locating spans.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

#[derive(Debug, Clone)]
struct SourceFile {
    path: String,
    text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceMap {
    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        self.files.push(SourceFile { path: path.into(), text, line_starts });
        FileId(self.files.len() - 1)
    }

    /// The path a file was added with.
    pub fn path(&self, file: FileId) -> &str {
        &self.files[file.0].path
    }

    /// The text of a file.
    pub fn text(&self, file: FileId) -> &str {
        &self.files[file.0].text
    }

    /// Adds every file of `other`, and returns what to add to a [`FileId`] of `other` to get the
    /// same file's id here.
    pub(crate) fn append(&mut self, other: &SourceMap) -> usize {
        let offset = self.files.len();
        self.files.extend(other.files.iter().cloned());
        offset
    }

    /// The file added with exactly this path, if any.
    pub(crate) fn find(&self, path: &str) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path).map(FileId)
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let f = &self.files[file.0];
        let offset = floor_char_boundary(&f.text, offset.min(f.text.len()));
        let line = f.line_starts.partition_point(|&start| start <= offset) - 1;
        let col = f.text[f.line_starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of 1-based line `line`, without its line break.
    fn line_text(&self, file: FileId, line: usize) -> &str {
        let f = &self.files[file.0];
        let start = f.line_starts[line - 1];
        let end = f.line_starts.get(line).copied().unwrap_or(f.text.len());
        f.text[start..end].trim_end_matches(['\n', '\r'])
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A labelled span: the primary label is underlined with `^`, secondary ones with `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there (may be empty).
    pub message: String,
    /// Whether this is the error's own location.
    pub primary: bool,
}

/// Whether a diagnostic stops compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The input cannot be compiled.
    Error,
    /// The input compiles, but probably not into what was meant.
    Warning,
}

/// One error (or warning) in a `.tidl` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Whether it is an error or a warning.
    pub severity: Severity,
    /// The headline, without a trailing dot.
    pub message: String,
    /// The error's location first, then related locations.
    pub labels: Vec<Label>,
    /// `= help: ...` lines.
    pub help: Vec<String>,
}

impl Diagnostic {
    /// An error at `span` with headline `message`.
    pub(crate) fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            labels: vec![Label { span, message: String::new(), primary: true }],
            help: Vec::new(),
        }
    }

    /// A warning at `span` with headline `message`.
    pub(crate) fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(span, message) }
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sets the text under the primary span.
    pub(crate) fn label(mut self, message: impl Into<String>) -> Diagnostic {
        self.labels[0].message = message.into();
        self
    }

    /// Adds a related location.
    pub(crate) fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    /// Adds a `= help:` line.
    pub(crate) fn help(mut self, message: impl Into<String>) -> Diagnostic {
        self.help.push(message.into());
        self
    }

    /// The primary span.
    pub fn span(&self) -> Span {
        self.labels[0].span
    }

    /// Renders the diagnostic as rustc does, with source lines from `sources`.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        let _ = self.render_into(sources, &mut out);
        out
    }

    fn render_into(&self, sources: &SourceMap, out: &mut String) -> fmt::Result {
        let primary = self.span();
        // The gutter is as wide as the largest line number shown.
        let width = self
            .labels
            .iter()
            .map(|l| sources.line_col(l.span.file, l.span.start).0.to_string().len())
            .max()
            .unwrap_or(1);
        let pad = " ".repeat(width);
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(out, "{severity}: {}", cut(&self.message))?;
        // Labels grouped by file, the primary's file first; within a file, by position.
        let mut files: Vec<FileId> = vec![primary.file];
        for label in &self.labels {
            if !files.contains(&label.span.file) {
                files.push(label.span.file);
            }
        }
        for (i, file) in files.iter().enumerate() {
            let mut labels: Vec<&Label> = self.labels.iter().filter(|l| l.span.file == *file).collect();
            labels.sort_by_key(|l| (l.span.start, !l.primary));
            let anchor = if i == 0 { primary } else { labels[0].span };
            let (line, col) = sources.line_col(anchor.file, anchor.start);
            let arrow = if i == 0 { "-->" } else { ":::" };
            writeln!(out, "{pad}{arrow} {}:{line}:{col}", sources.path(anchor.file))?;
            writeln!(out, "{pad} |")?;
            let mut previous_line: Option<usize> = None;
            for label in labels {
                let (line, col) = sources.line_col(label.span.file, label.span.start);
                let text = expand_tabs(sources.line_text(label.span.file, line));
                let text = text.trim_end();
                let (indent, len) = underline(sources.line_text(label.span.file, line), col, label, sources);
                // A long line is shown as a window around the label, for each of its labels.
                let shown = Window::around(text, indent, len);
                if previous_line != Some(line) || shown.is_some() {
                    if previous_line.is_some_and(|p| line > p + 1) {
                        writeln!(out, "...")?;
                    }
                    match &shown {
                        Some(window) => writeln!(out, "{line:>width$} | {}", window.text)?,
                        None => writeln!(out, "{line:>width$} | {text}")?,
                    }
                }
                previous_line = Some(line);
                let (indent, len) = shown.map_or((indent, len), |window| (window.indent, window.len));
                let mark = if label.primary { "^" } else { "-" };
                let mut underline = format!("{pad} | {}{}", " ".repeat(indent), mark.repeat(len));
                if !label.message.is_empty() {
                    underline.push(' ');
                    underline.push_str(&cut(&label.message));
                }
                writeln!(out, "{underline}")?;
            }
        }
        for help in &self.help {
            writeln!(out, "{pad} |")?;
            writeln!(out, "{pad} = help: {}", cut(help))?;
        }
        Ok(())
    }
}

/// Where the underline of `label` starts (in display columns) and how long it is, on a line
/// whose text is `text` and where the span starts at 1-based character column `col`.
fn underline(text: &str, col: usize, label: &Label, sources: &SourceMap) -> (usize, usize) {
    let before: String = text.chars().take(col - 1).collect();
    let indent = expand_tabs(&before).chars().count();
    let span_text = &sources.text(label.span.file)[label.span.start.min(label.span.end)..label.span.end];
    // Underline to the end of the span or of its first line, at least one column.
    let first_line = span_text.split('\n').next().unwrap_or("");
    let len = expand_tabs(first_line).chars().count().max(1);
    (indent, len)
}

/// The longest message, label or help shown whole, in characters: a message that names what the
/// input spelled (a 1 MB identifier) shows its start and end.
const MAX_MESSAGE: usize = 400;

/// `message`, or its first and last characters around a note of how many were left out if it
/// is longer than [`MAX_MESSAGE`].
fn cut(message: &str) -> std::borrow::Cow<'_, str> {
    let chars = message.chars().count();
    if chars <= MAX_MESSAGE {
        return message.into();
    }
    let head: String = message.chars().take(MAX_MESSAGE - 100).collect();
    let tail: String = message.chars().skip(chars - 100).collect();
    format!("{head}... ({} characters left out) ...{tail}", chars - MAX_MESSAGE).into()
}

/// Source lines longer than this (in display columns) are shown as a window of this width.
const MAX_SHOWN: usize = 160;

/// Display columns a window shows before the label it is around.
const SHOWN_BEFORE: usize = 40;

/// The part of a long source line shown for one label, and where the label's underline falls
/// in it.
#[derive(Debug)]
struct Window {
    text: String,
    indent: usize,
    len: usize,
}

impl Window {
    /// The window of `line` (tabs expanded) around a label underlined from display column
    /// `indent` for `len` columns; `None` if the line is short enough to show whole.
    fn around(line: &str, indent: usize, len: usize) -> Option<Window> {
        let columns = line.chars().count();
        if columns <= MAX_SHOWN {
            return None;
        }
        let start = indent.saturating_sub(SHOWN_BEFORE).min(columns);
        let end = (start + MAX_SHOWN).min(columns);
        let before = if start > 0 { "..." } else { "" };
        let after = if end < columns { "..." } else { "" };
        let shown: String = line.chars().skip(start).take(end - start).collect();
        let indent = indent - start + before.len();
        // The underline stops where the window's text does.
        let len = len.min((before.len() + end - start).saturating_sub(indent)).max(1);
        Some(Window { text: format!("{before}{shown}{after}"), indent, len })
    }
}

fn expand_tabs(text: &str) -> String {
    text.replace('\t', "    ")
}

/// Renders several diagnostics, separated by blank lines, then a summary line counting the
/// errors (warnings are shown, not counted).
pub(crate) fn render_all(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    render_all_then(diagnostics, sources, "compile the .tidl input")
}

/// Renders several diagnostics, separated by blank lines, then a summary line saying that what
/// was asked (`action`, e.g. "format `a.tidl`") could not be done, counting the errors (warnings
/// are shown, not counted).
pub(crate) fn render_all_then(diagnostics: &[Diagnostic], sources: &SourceMap, action: &str) -> String {
    let mut out = render_each(diagnostics, sources);
    let n = diagnostics.iter().filter(|d| d.is_error()).count();
    let _ = writeln!(out, "error: could not {action} due to {n} previous error{}", if n == 1 { "" } else { "s" });
    out
}

/// The most diagnostics rendered at once; a note counts the rest.
const MAX_RENDERED: usize = 100;

/// Renders several diagnostics (at most [`MAX_RENDERED`]), each followed by a blank line, with
/// no summary.
pub(crate) fn render_each(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diagnostics.iter().take(MAX_RENDERED) {
        out.push_str(&d.render(sources));
        out.push('\n');
    }
    if diagnostics.len() > MAX_RENDERED {
        let _ = writeln!(out, "note: {} more diagnostics are not shown\n", diagnostics.len() - MAX_RENDERED);
    }
    out
}

/// Edit distance between two names, for "did you mean" suggestions: the optimal string
/// alignment distance (Levenshtein's, plus swapping two adjacent characters as one edit), so
/// `Plcae` is one edit from `Place`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two rows back (for swaps), the previous one, the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j - 1] + cost).min(previous[j] + 1).min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Names longer than this get no suggestion: the distance costs the product of two lengths.
const SUGGEST_MAX_LEN: usize = 128;

/// The candidate closest to `name`, if it is close enough to be a likely typo. Candidates whose
/// length alone puts them too far are not measured.
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if name.len() > SUGGEST_MAX_LEN {
        return None;
    }
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| c.len() <= SUGGEST_MAX_LEN && name.len().abs_diff(c.len()) <= (name.len().max(c.len()) / 3).max(1))
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_a_hundred_diagnostics_are_rendered() {
        let mut sources = SourceMap::default();
        let file = sources.add("a.tidl", "struct A {}\n");
        let many: Vec<Diagnostic> =
            (0..150).map(|i| Diagnostic::error(Span::new(file, 7, 8), format!("e{i}"))).collect();
        let out = render_all(&many, &sources);
        assert!(out.contains("error: e99\n") && !out.contains("error: e100\n"), "{out}");
        assert!(out.contains("note: 50 more diagnostics are not shown"), "{out}");
        assert!(out.ends_with("due to 150 previous errors\n"), "{out}");
    }

    #[test]
    fn a_name_too_long_to_measure_gets_no_suggestion_and_lengths_alone_rule_out_far_ones() {
        let long = "a".repeat(1_000_000);
        assert_eq!(suggest(&long, [long.as_str()]), None);
        assert_eq!(suggest("Pont", ["Point", "PointOfSaleTerminal"]), Some("Point"));
    }

    #[test]
    fn primary_and_secondary_labels_render_like_rustc() {
        let mut sources = SourceMap::default();
        let file = sources.add("a.tidl", "struct Point {}\n\n\nstruct Point {}\n");
        let d = Diagnostic::error(Span::new(file, 25, 30), "the name `Point` is defined twice")
            .label("redefined here")
            .secondary(Span::new(file, 7, 12), "first defined here")
            .help("rename one of them");
        assert_eq!(
            d.render(&sources),
            "error: the name `Point` is defined twice
 --> a.tidl:4:8
  |
1 | struct Point {}
  |        ----- first defined here
...
4 | struct Point {}
  |        ^^^^^ redefined here
  |
  = help: rename one of them
"
        );
    }

    #[test]
    fn tabs_and_multibyte_characters_keep_the_caret_aligned() {
        let mut sources = SourceMap::default();
        let file = sources.add("t.tidl", "\t/* é */ strng");
        let start = "\t/* é */ ".len();
        let d = Diagnostic::error(Span::new(file, start, start + 5), "unknown type `strng`");
        assert_eq!(
            d.render(&sources),
            "error: unknown type `strng`
 --> t.tidl:1:10
  |
1 |     /* é */ strng
  |             ^^^^^
"
        );
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_each_label() {
        let mut sources = SourceMap::default();
        let filler = "x".repeat(1_000_000);
        let text = format!("struct A {{ a: {filler} , b: strng }}\n");
        let start = text.find("strng").expect("the label");
        let file = sources.add("long.tidl", text.as_str());
        let d = Diagnostic::error(Span::new(file, start, start + 5), "unknown type `strng`")
            .secondary(Span::new(file, 15, 15 + filler.len()), "not a type either");
        let out = d.render(&sources);
        assert!(out.len() < 1_000, "{} bytes rendered", out.len());
        // A message naming a long identifier shows its start and end.
        let long = Diagnostic::error(Span::new(file, 15, 20), format!("unknown type `{filler}`"))
            .label(format!("`{filler}` is not defined"))
            .help(format!("define `{filler}`"));
        let rendered = long.render(&sources);
        assert!(rendered.len() < 3_000, "{} bytes rendered", rendered.len());
        assert!(rendered.starts_with("error: unknown type `xxx"), "{rendered}");
        let first = rendered.lines().next().unwrap_or_default();
        assert!(first.contains("xxx... (999615 characters left out) ...xxx") && first.ends_with("xxx`"), "{first}");
        let lines: Vec<&str> = out.lines().collect();
        // Each label gets its window: the line's start for the filler, its end for `strng`.
        let filler_line = lines.iter().position(|l| l.starts_with("1 | struct A { a: xxx")).expect(&out);
        assert!(lines[filler_line].ends_with("xxx..."), "{out}");
        // The filler's underline starts under it and stops where the window's text does.
        let dashes = format!("{}{} not a type either", " ".repeat(15), "-".repeat(MAX_SHOWN - 15));
        assert_eq!(lines[filler_line + 1], format!("  | {dashes}"), "{out}");
        let strng_line = lines.iter().position(|l| l.starts_with("1 | ...") && l.contains("strng")).expect(&out);
        let caret = lines[strng_line + 1];
        let column = |line: &str, what: &str| line.find(what).expect(what);
        assert_eq!(column(caret, "^^^^^"), column(lines[strng_line], "strng"), "{out}");
        assert!(!caret.contains("^^^^^^"), "{out}");
    }

    #[test]
    fn suggestions_find_close_names_only() {
        assert_eq!(suggest("strng", ["string", "bytes", "bool"]), Some("string"));
        assert_eq!(suggest("u33", ["u32", "u64", "i32"]), Some("u32"));
        assert_eq!(suggest("Widget", ["string", "Point"]), None);
        // A swapped pair of letters is one edit.
        assert_eq!(suggest("Plcae", ["Place", "Point"]), Some("Place"));
        assert_eq!(suggest("Ponit", ["Place", "Point"]), Some("Point"));
    }

    #[test]
    fn edit_distance_counts_a_swap_as_one_edit() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("Plcae", "Place"), 1);
        // Optimal string alignment: no substring is edited twice.
        assert_eq!(edit_distance("ca", "abc"), 3);
    }
}
