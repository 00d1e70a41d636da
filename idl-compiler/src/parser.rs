//! Parsing: pest's grammar (`grammar.pest`) to the syntax tree in `ast.rs`.
//!
//! The file is parsed one declaration at a time. After a syntax error the parser reports it,
//! skips to the next line that starts a declaration, and goes on, so one run reports the syntax
//! errors of every declaration, not just the first.
//!
//! A syntax error that is a missing token (`;`, `,`, `}`, ...) is shown rustc-style, just after
//! the last good token, and if adding that one token makes the declaration parse, the repaired
//! declaration is kept: what refers to it is checked as usual. A declaration that cannot be
//! repaired is left out, and its name recorded in [`File::broken`] so that its uses are not
//! reported as unknown names as well.

use crate::ast::{
    Alias, Attribute, DefaultValue, Enum, Field, File, Ident, Import, Item, Literal, Meta, Method, Package, Service,
    Struct, TypeRef, Variant, VariantShape,
};
use crate::diagnostic::{Diagnostic, FileId, Span, suggest};
use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::iterators::Pairs;
use pest_derive::Parser;
use std::sync::{Mutex, PoisonError};

#[derive(Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// The deepest brackets may nest. Far beyond any real schema, and well within what the parser,
/// the checker and code generation can recurse through on a build script's stack.
pub(crate) const MAX_NESTING: usize = 64;

/// Parses `text` (the contents of `file`), returning what could be parsed and every syntax error.
pub(crate) fn parse(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    if let Some(at) = too_deep(text) {
        let d = Diagnostic::error(
            Span::new(file, at, at + 1),
            format!("brackets nest more than {MAX_NESTING} levels deep here"),
        )
        .help("no schema needs this much nesting; give the inner types names of their own with `type` or `struct`");
        return (File::default(), vec![d]);
    }
    // Tracking what was expected costs time on every parse; it is only needed for an error,
    // so a failing declaration is parsed a second time with it on.
    let mut parsed = File::default();
    let mut diagnostics = Vec::new();
    let mut pos = 0;
    loop {
        let builder = Builder { file, offset: pos };
        if let Ok(pairs) = Grammar::parse(Rule::next_item, &text[pos..]) {
            match builder.next_item(pairs, &mut parsed) {
                Some(end) => {
                    pos += end;
                    continue;
                }
                None => break,
            }
        }
        let Some(error) = SyntaxError::find(text, pos) else { break };
        diagnostics.push(error.diagnostic(file, text));
        // With the missing token added the declaration may parse: then it is used as if it had
        // been written so, and nothing that refers to it reports an error of its own.
        if let Some(end) = error.fix.as_ref().and_then(|fix| {
            let pairs = Grammar::parse(Rule::next_item, &fix.repaired).ok()?;
            builder.next_item(pairs, &mut parsed)
        }) {
            pos += end;
            continue;
        }
        if let Some(name) = broken_name(file, text, pos) {
            parsed.broken.push(name);
        }
        match resume_point(text, error.resume_after()) {
            Some(next) => pos = next,
            None => break,
        }
    }
    (parsed, diagnostics)
}

/// The name a declaration with a syntax error at `pos` would have declared, if it gets that far.
fn broken_name(file: FileId, text: &str, pos: usize) -> Option<Ident> {
    let head = Grammar::parse(Rule::decl_head, &text[pos..]).ok()?.next()?;
    let builder = Builder { file, offset: pos };
    head.into_inner().find(|p| p.as_rule() == Rule::ident).map(|p| builder.ident(&p))
}

/// A syntax error: where the parser stopped, what it expected there, and what fixes it.
struct SyntaxError {
    /// Where the parser stopped (a byte offset in the whole text).
    at: usize,
    /// What would have been accepted there, in words, sorted.
    expected: Vec<String>,
    /// The last token before `at` (start and end), if the failing declaration has one.
    last_token: Option<(usize, usize)>,
    /// A token that, added right after `last_token`, makes the declaration parse.
    fix: Option<Fix>,
}

/// A missing token and the failing declaration's text with it added.
struct Fix {
    token: char,
    /// The text from the start of the failing declaration to the end of the file, with the
    /// byte after the last token (whitespace) replaced by the missing token, so that every offset
    /// stays the same.
    repaired: String,
}

impl Fix {
    /// Whether the repaired declaration parses and gets past `at` (where the original stopped),
    /// or ends where another declaration starts: `}` added in `struct A { x: i32 y }` makes
    /// `struct A { x: i32 }` parse, but what follows it (`y }`) does not.
    fn works(&self, at: usize) -> bool {
        let Some(end) = Grammar::parse(Rule::next_item, &self.repaired)
            .ok()
            .and_then(|mut pairs| pairs.next()?.into_inner().next())
            .filter(|item| item.as_rule() == Rule::item)
            .map(|item| item.as_span().end())
        else {
            return false;
        };
        end > at || Grammar::parse(Rule::item_start, &self.repaired[end..]).is_ok()
    }
}

/// How many parses on this process want pest's error detail. pest keeps that setting in one
/// flag for the whole process, so a parse that turned it off when done would take it away from
/// a detailed parse running on another thread (parallel tests; a tool compiling files on several
/// threads), whose error would then say only "unexpected ...". The flag stays on while any
/// [`ErrorDetail`] lives.
static DETAILED_PARSES: Mutex<usize> = Mutex::new(0);

/// pest's error detail, on while this lives.
struct ErrorDetail;

impl ErrorDetail {
    fn on() -> Self {
        let mut parses = DETAILED_PARSES.lock().unwrap_or_else(PoisonError::into_inner);
        *parses += 1;
        pest::set_error_detail(true);
        ErrorDetail
    }
}

impl Drop for ErrorDetail {
    fn drop(&mut self) {
        let mut parses = DETAILED_PARSES.lock().unwrap_or_else(PoisonError::into_inner);
        *parses -= 1;
        if *parses == 0 {
            pest::set_error_detail(false);
        }
    }
}

/// Tokens the parser may report missing, in the order they are tried as fixes.
const FIXES: [char; 10] = [';', ',', ')', ']', '>', '}', ':', '=', '{', '('];

impl SyntaxError {
    /// Parses the declaration at `pos` again with error tracking on, and describes the error.
    fn find(text: &str, pos: usize) -> Option<SyntaxError> {
        let rest = &text[pos..];
        let detailed = {
            let _detail = ErrorDetail::on();
            Grammar::parse(Rule::next_item, rest)
        };
        let error = detailed.err()?;
        let (at, mut expected) = expected(&error, rest);
        let at = (pos + at).min(text.len());
        let last_token = last_token(text, pos, at);
        // `<` can only follow `list`, `map` and `option`.
        if last_token.is_some_and(|(start, end)| !matches!(&text[start..end], "list" | "map" | "option")) {
            expected.retain(|e| e != "`<`");
        }
        let mut error = SyntaxError { at, expected, last_token, fix: None };
        if let Some((_, end)) = error.last_token.filter(|_| error.missing_token()) {
            let replaced = end - pos;
            if rest.as_bytes().get(replaced).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
                error.fix = FIXES
                    .iter()
                    .filter(|token| error.expected.contains(&format!("`{token}`")))
                    .map(|&token| {
                        let repaired = format!("{}{token}{}", &rest[..replaced], &rest[replaced + 1..]);
                        Fix { token, repaired }
                    })
                    .find(|fix| fix.works(at - pos));
            }
        }
        Some(error)
    }

    /// Whether the error is best shown as a token missing after the last good one, rustc-style:
    /// the parser skipped whitespace or comments after that token and wanted punctuation.
    fn missing_token(&self) -> bool {
        self.last_token.is_some_and(|(_, end)| end < self.at)
            && self.expected.iter().any(|e| e.starts_with('`') && !e[1..].starts_with(|c: char| c.is_alphabetic()))
    }

    /// Where to look for the next declaration from: after the last token that belongs to the
    /// failing one (the error may be at the start of the next line's declaration).
    fn resume_after(&self) -> usize {
        self.last_token.map_or(self.at, |(_, end)| end)
    }

    fn diagnostic(&self, file: FileId, text: &str) -> Diagnostic {
        if let Some(d) = crate::habits::rust_path(file, text, self.at) {
            return d;
        }
        let (found, len) = found_at(&text[self.at..]);
        // A keyword run into the name after it (`serviceExample`): the name starts right where
        // the keyword ends, with no space between.
        let before = &text[..self.at];
        let glued = ["service", "struct", "enum", "rpc", "type", "package", "import", "throws", "stream"]
            .into_iter()
            .find(|k| {
                before.ends_with(k)
                    && before[..before.len() - k.len()].chars().last().is_none_or(|c| !c.is_alphanumeric() && c != '_')
            });
        if let Some(keyword) =
            glued.filter(|_| text[self.at..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        {
            let name = &text[self.at..self.at + len];
            let start = self.at - keyword.len();
            return Diagnostic::error(
                Span::new(file, start, self.at + len),
                format!("`{keyword}{name}` is not a keyword: `{keyword}` needs a space before its name"),
            )
            .label(format!("help: write `{keyword} {name}`"));
        }
        let message = match self.expected.as_slice() {
            [] => format!("unexpected {found}"),
            [only] => format!("expected {only}, found {found}"),
            [init @ .., last] => format!("expected {} or {last}, found {found}", init.join(", ")),
        };
        let found_span = Span::new(file, self.at, self.at + len);
        // A misspelt keyword: say which one.
        let word = &text[self.at..self.at + len];
        let keywords =
            self.expected.iter().filter_map(|e| e.strip_prefix('`')?.strip_suffix('`')).filter(|k| is_keyword(k));
        if let Some(keyword) = suggest(word, keywords).filter(|k| !word.is_empty() && word != *k) {
            return Diagnostic::error(found_span, message).label(format!("did you mean `{keyword}`?"));
        }
        match self.last_token {
            Some((_, end)) if self.missing_token() => {
                let after = Span::new(file, end, end);
                let label = match &self.fix {
                    Some(fix) => format!("help: add `{}` here", fix.token),
                    None => format!("expected {} after this", or_list(&self.expected)),
                };
                let d = Diagnostic::error(after, message).label(label);
                if len == 0 { d } else { d.secondary(found_span, "unexpected token") }
            }
            _ => Diagnostic::error(found_span, message),
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Where the parser stopped in `text` (the text it was given), and what it expected there, in
/// words.
fn expected(error: &pest::error::Error<Rule>, text: &str) -> (usize, Vec<String>) {
    let location = match error.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    let positives = || -> Vec<String> {
        match &error.variant {
            ErrorVariant::ParsingError { positives, .. } => {
                positives.iter().filter_map(|rule| describe_rule(*rule)).map(str::to_owned).collect()
            }
            ErrorVariant::CustomError { .. } => Vec::new(),
        }
    };
    let mut expected: Vec<String> = Vec::new();
    // pest tracks two things: the rules tried at the furthest position any rule was tried
    // (`positives`), and the tokens tried at the furthest position any token was tried (the
    // parse attempts). The two positions differ when, say, an optional `<...>` was tried after a
    // name and a `;` further on: the tokens are the ones to report, at their position.
    let at = match error.parse_attempts() {
        Some(attempts) => {
            let mut name = false;
            for token in attempts.expected_tokens() {
                let token = token.to_string();
                // Character ranges (`a..z`) and `_` only spell out what "a name" means.
                if token == "_" || (token.chars().count() == 4 && token.contains("..")) {
                    name = true;
                    continue;
                }
                // `@` only starts an optional attribute; whitespace and comments may appear
                // anywhere. Listing them helps nobody.
                let trivia = token.trim().is_empty() || token.starts_with("//") || token.starts_with("/*");
                if !trivia && token != "@" && token != "BUILTIN_RULE" {
                    expected.push(format!("`{token}`"));
                }
            }
            let at = attempts.max_position;
            let word_start = text[..at].trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
            if expected.is_empty() && name && word_start < at {
                // Only more letters of the word before `at` would do: a keyword where a name
                // belongs (`!keyword` tried the letters after it). The error is the whole word.
                expected = if location == word_start { positives() } else { Vec::new() };
                word_start
            } else {
                if attempts.max_position == location {
                    expected.extend(positives());
                }
                // Right after a word, the letters only continue it.
                if name && word_start == at && !expected.iter().any(|e| e == "a name" || e == "a type") {
                    expected.push("a name".to_owned());
                }
                at
            }
        }
        None => {
            expected.extend(positives());
            location
        }
    };
    if expected.iter().any(|e| e == "a type") {
        // `(`, `[` and `stream` only start kinds of type.
        expected.retain(|e| !matches!(e.as_str(), "`(`" | "`[`" | "`stream`"));
    }
    if expected.iter().any(|e| e.starts_with("a default value")) {
        // Every other token listed only starts a default.
        expected.retain(|e| e.starts_with("a default value"));
    }
    if expected.iter().any(|e| e == "a string in double quotes") {
        expected.retain(|e| e != "`\"`");
    }
    // A dot could continue a dotted name, but suggesting one helps nobody.
    expected.retain(|e| e != "`.`");
    expected.sort();
    expected.dedup();
    (at, expected)
}

/// The last token in `text[from..to]` (its start and end), skipping whitespace and comments as
/// the grammar does.
fn last_token(text: &str, from: usize, to: usize) -> Option<(usize, usize)> {
    let mut last = None;
    let mut i = from;
    while i < to {
        let rest = &text[i..to];
        if rest.starts_with("////") || (rest.starts_with("//") && !rest.starts_with("///")) {
            i += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        if let Some(comment) = rest.strip_prefix("/*") {
            i += comment.find("*/").map_or(rest.len(), |end| end + 4);
            continue;
        }
        let Some(first) = rest.chars().next() else { break };
        if first.is_whitespace() {
            i += first.len_utf8();
            continue;
        }
        let len = if rest.starts_with("///") {
            rest.find('\n').unwrap_or(rest.len())
        } else if first == '"' {
            let mut escaped = false;
            rest.char_indices()
                .skip(1)
                .find(|&(_, c)| {
                    let end = (c == '"' && !escaped) || c == '\n';
                    escaped = c == '\\' && !escaped;
                    end
                })
                .map_or(rest.len(), |(j, c)| j + c.len_utf8())
        } else if first.is_alphanumeric() || first == '_' {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len())
        } else if rest.starts_with("->") {
            2
        } else {
            first.len_utf8()
        };
        last = Some((i, i + len));
        i += len;
    }
    last
}

/// Where brackets (`{`, `(`, `<`, `[`) first nest deeper than [`MAX_NESTING`], outside comments
/// and strings (and not counting the `>` of `->`).
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += text[i..].find('\n').unwrap_or(text.len() - i);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += text[i + 2..].find("*/").map_or(text.len() - i, |end| end + 4);
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'>') => i += 2,
            b'{' | b'(' | b'<' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
                i += 1;
            }
            b'}' | b')' | b'>' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The start of the first line after `after` that looks like the start of a declaration: a
/// doc comment, or a word, at the very start of the line (declarations are not indented; what
/// is inside them is). A misspelt keyword counts, so its declaration gets its own error.
fn resume_point(text: &str, after: usize) -> Option<usize> {
    let mut line_start = text[after..].find('\n')? + after + 1;
    loop {
        let line = &text[line_start..];
        if line.starts_with("///") || line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '@') {
            return Some(line_start);
        }
        line_start += line.find('\n')? + 1;
    }
}

/// What the parser was looking for, in words; `None` for rules that only add noise.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::ident => "a name",
        Rule::type_ref | Rule::named_type => "a type",
        Rule::end_of_input => "the end of the file",
        Rule::kw_service => "`service`",
        Rule::kw_rpc => "`rpc`",
        Rule::kw_throws => "`throws`",
        Rule::kw_struct => "`struct`",
        Rule::kw_enum => "`enum`",
        Rule::kw_type => "`type`",
        Rule::kw_package => "`package`",
        Rule::kw_import => "`import`",
        Rule::string_literal => "a string in double quotes",
        Rule::integer | Rule::signed_integer | Rule::float_literal => "a number",
        Rule::default_value => "a default value (a number, a string, `true`, `false`, `[]` or `{}`)",
        _ => return None,
    })
}

/// Describes the token at the start of `rest` and its length in bytes.
fn found_at(rest: &str) -> (String, usize) {
    let Some(first) = rest.chars().next() else {
        return ("the end of the file".to_owned(), 0);
    };
    if first.is_alphanumeric() || first == '_' {
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let kind = if word.chars().all(|c| c.is_ascii_digit()) {
            "number"
        } else if is_keyword(&word) {
            "keyword"
        } else {
            "name"
        };
        let len = word.len();
        return (format!("{kind} `{word}`"), len);
    }
    if rest.starts_with("///") && !rest.starts_with("////") {
        return ("a doc comment".to_owned(), 3);
    }
    for punct in ["->", "//"] {
        if rest.starts_with(punct) {
            return (format!("`{punct}`"), punct.len());
        }
    }
    if first.is_whitespace() {
        return ("a line break".to_owned(), first.len_utf8());
    }
    (format!("`{first}`"), first.len_utf8())
}

fn is_keyword(word: &str) -> bool {
    crate::names::is_tidl_keyword(word)
}

/// Turns pairs into syntax tree nodes, shifting spans by the offset of the parsed slice.
struct Builder {
    file: FileId,
    offset: usize,
}

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        // A rule ending in an optional part that is absent keeps the whitespace skipped before
        // it; a span never should.
        let trimmed = pair.as_str().trim_end().len();
        Span::new(self.file, self.offset + s.start(), self.offset + s.start() + trimmed)
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident { name: pair.as_str().to_owned(), span: self.span(pair) }
    }

    /// Adds the declaration `pairs` hold (a `next_item`) to `file`; returns where it ends, or
    /// `None` at the end of the input.
    fn next_item(&self, mut pairs: Pairs<'_, Rule>, file: &mut File) -> Option<usize> {
        let next = pairs.next()?.into_inner().next()?;
        if next.as_rule() != Rule::item {
            return None;
        }
        let end = next.as_span().end();
        if let Some(item) = next.into_inner().next() {
            self.top_level(item, file);
        }
        Some(end)
    }

    fn top_level(&self, pair: Pair<'_, Rule>, file: &mut File) {
        let late = !file.items.is_empty() || !file.imports.is_empty() || !file.packages.is_empty();
        match pair.as_rule() {
            Rule::package_decl => {
                let span = self.span(&pair);
                let mut meta = Meta::default();
                let mut path = Vec::new();
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::meta => meta = self.meta(p),
                        Rule::qualified_name => path = self.qualified_name(p),
                        _ => {}
                    }
                }
                file.packages.push(Package { meta, path, span, late });
            }
            Rule::import_decl => {
                let span = self.span(&pair);
                let path = pair.into_inner().find(|p| p.as_rule() == Rule::string_literal).map(|p| unquote(p.as_str()));
                file.imports.push(Import { path: path.unwrap_or_default(), span });
            }
            Rule::service => file.items.push(Item::Service(self.service(pair))),
            Rule::struct_decl => file.items.push(Item::Struct(self.struct_decl(pair))),
            Rule::enum_decl => file.items.push(Item::Enum(self.enum_decl(pair))),
            _ => file.items.push(Item::Alias(self.alias(pair))),
        }
    }

    fn qualified_name(&self, pair: Pair<'_, Rule>) -> Vec<Ident> {
        pair.into_inner().filter(|p| p.as_rule() == Rule::ident).map(|p| self.ident(&p)).collect()
    }

    fn meta(&self, pair: Pair<'_, Rule>) -> Meta {
        let mut meta = Meta::default();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::doc_comment => {
                    if let Some(text) = p.into_inner().next() {
                        meta.docs.push(text.as_str().trim_end().to_owned());
                    }
                }
                Rule::attribute => meta.attributes.push(self.attribute(p)),
                _ => {}
            }
        }
        meta
    }

    fn attribute(&self, pair: Pair<'_, Rule>) -> Attribute {
        let span = self.span(&pair);
        let mut name = None;
        let mut args = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(&p)),
                Rule::attribute_args => {
                    args = Some(p.into_inner().map(|s| unquote(s.as_str())).collect());
                }
                _ => {}
            }
        }
        Attribute { name: self.expect_name(name), args, span }
    }

    /// The doc comments, attributes and name of a declaration, field, variant or method; every
    /// other child goes to `other`.
    fn named<'i>(&self, pair: Pair<'i, Rule>, mut other: impl FnMut(Pair<'i, Rule>)) -> (Meta, Ident) {
        let mut meta = Meta::default();
        let mut name = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::meta => meta = self.meta(p),
                Rule::ident => name = Some(self.ident(&p)),
                _ => other(p),
            }
        }
        (meta, self.expect_name(name))
    }

    fn service(&self, pair: Pair<'_, Rule>) -> Service {
        let mut methods = Vec::new();
        let (meta, name) = self.named(pair, |p| {
            if p.as_rule() == Rule::method {
                methods.push(self.method(p));
            }
        });
        Service { meta, name, methods }
    }

    fn method(&self, pair: Pair<'_, Rule>) -> Method {
        let (mut arg, mut reply, mut error) = (None, None, None);
        let (meta, name) = self.named(pair, |p| match p.as_rule() {
            Rule::arg_type => arg = self.inner_type(p),
            Rule::reply_type => reply = self.inner_type(p),
            Rule::throws => error = self.inner_type(p),
            _ => {}
        });
        Method { meta, name, arg, reply, error }
    }

    /// The `type_ref` inside a wrapper rule (`arg_type`, `reply_type`, `throws`).
    fn inner_type(&self, pair: Pair<'_, Rule>) -> Option<TypeRef> {
        pair.into_inner().find(|p| p.as_rule() == Rule::type_ref).map(|p| self.type_ref(p))
    }

    fn struct_decl(&self, pair: Pair<'_, Rule>) -> Struct {
        let mut fields = Vec::new();
        let (meta, name) = self.named(pair, |p| {
            if p.as_rule() == Rule::field {
                fields.push(self.field(p));
            }
        });
        Struct { meta, name, fields }
    }

    /// A field, or an alias: a name and a type.
    fn named_type(&self, pair: Pair<'_, Rule>) -> (Meta, Ident, TypeRef) {
        let mut ty = None;
        let (meta, name) = self.named(pair, |p| {
            if p.as_rule() == Rule::type_ref {
                ty = Some(self.type_ref(p));
            }
        });
        let ty = ty.unwrap_or(TypeRef::Unit(name.span));
        (meta, name, ty)
    }

    fn field(&self, pair: Pair<'_, Rule>) -> Field {
        let default = pair.clone().into_inner().find(|p| p.as_rule() == Rule::default_value).map(|p| self.default(p));
        let (meta, name, ty) = self.named_type(pair);
        Field { meta, name, ty, default }
    }

    fn default(&self, pair: Pair<'_, Rule>) -> DefaultValue {
        let span = self.span(&pair);
        let value = match pair.into_inner().next() {
            Some(p) => match p.as_rule() {
                Rule::float_literal => Literal::Float(p.as_str().to_owned()),
                Rule::signed_integer => Literal::Integer(p.as_str().parse::<i128>().ok()),
                Rule::string_literal => Literal::String(unquote(p.as_str())),
                Rule::bool_literal => Literal::Bool(p.as_str() == "true"),
                Rule::empty_map => Literal::EmptyMap,
                _ => Literal::EmptyList,
            },
            None => Literal::EmptyList,
        };
        DefaultValue { value, span }
    }

    fn enum_decl(&self, pair: Pair<'_, Rule>) -> Enum {
        let mut variants = Vec::new();
        let (meta, name) = self.named(pair, |p| {
            if p.as_rule() == Rule::variant {
                variants.push(self.variant(p));
            }
        });
        Enum { meta, name, variants }
    }

    fn variant(&self, pair: Pair<'_, Rule>) -> Variant {
        let mut shape = VariantShape::Unit;
        let (meta, name) = self.named(pair, |p| match p.as_rule() {
            Rule::tuple_fields => shape = VariantShape::Tuple(p.into_inner().map(|t| self.type_ref(t)).collect()),
            Rule::struct_fields => shape = VariantShape::Struct(p.into_inner().map(|f| self.field(f)).collect()),
            _ => {}
        });
        Variant { meta, name, shape }
    }

    fn alias(&self, pair: Pair<'_, Rule>) -> Alias {
        let (meta, name, ty) = self.named_type(pair);
        Alias { meta, name, ty }
    }

    fn type_ref(&self, pair: Pair<'_, Rule>) -> TypeRef {
        let span = self.span(&pair);
        let Some(inner) = pair.into_inner().next() else {
            return TypeRef::Unit(span);
        };
        match inner.as_rule() {
            Rule::named_type => {
                let mut path = Vec::new();
                let mut args = Vec::new();
                for p in inner.into_inner() {
                    match p.as_rule() {
                        Rule::qualified_name => path = self.qualified_name(p),
                        Rule::type_args => args = p.into_inner().map(|t| self.type_ref(t)).collect(),
                        _ => {}
                    }
                }
                if path.is_empty() {
                    path.push(self.expect_name(None));
                }
                TypeRef::Named { path, args, span }
            }
            Rule::array_type => {
                let mut element = None;
                let mut len = None;
                let mut len_span = span;
                for p in inner.into_inner() {
                    match p.as_rule() {
                        Rule::type_ref => element = Some(self.type_ref(p)),
                        Rule::integer => {
                            len_span = self.span(&p);
                            len = p.as_str().parse::<u64>().ok();
                        }
                        _ => {}
                    }
                }
                let element = Box::new(element.unwrap_or(TypeRef::Unit(span)));
                TypeRef::Array { element, len, len_span, span }
            }
            Rule::stream_type => {
                let inner = inner.into_inner().find(|p| p.as_rule() == Rule::type_ref).map(|p| self.type_ref(p));
                TypeRef::Stream { inner: Box::new(inner.unwrap_or(TypeRef::Unit(span))), span }
            }
            _ => TypeRef::Unit(span),
        }
    }

    fn expect_name(&self, name: Option<Ident>) -> Ident {
        // The grammar requires a name wherever this is called.
        name.unwrap_or_else(|| Ident { name: String::new(), span: Span::new(self.file, self.offset, self.offset) })
    }
}

/// The contents of a string literal, its escapes (`\"`, `\\`) undone.
pub(crate) fn unquote(literal: &str) -> String {
    let inner = literal.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(literal);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else {
            out.push(c);
        }
    }
    out
}
