//! Parsing: pest's grammar (`grammar.pest`) to the syntax tree in `ast.rs`.
//!
//! The file is parsed one declaration at a time. After a syntax error the parser reports it,
//! skips to the next line that starts a declaration, and goes on, so one run reports the syntax
//! errors of every declaration, not just the first.

use crate::ast::{Enum, Field, File, Ident, Item, Method, Service, Struct, TypeRef, Variant, VariantShape};
use crate::diagnostic::{Diagnostic, FileId, Span, suggest};
use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// Parses `text` (the contents of `file`), returning what could be parsed and every syntax error.
pub(crate) fn parse(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    pest::set_error_detail(true);
    let mut items = Vec::new();
    let mut diagnostics = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        match Grammar::parse(Rule::next_item, rest) {
            Ok(mut pairs) => {
                let Some(next) = pairs.next().and_then(|p| p.into_inner().next()) else { break };
                if next.as_rule() != Rule::item {
                    break;
                }
                let end = next.as_span().end();
                let builder = Builder { file, offset: pos };
                if let Some(item) = next.into_inner().next() {
                    items.push(builder.item(item));
                }
                pos += end;
            }
            Err(error) => {
                let at = match error.location {
                    InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
                };
                diagnostics.push(syntax_error(file, text, pos, at, &error));
                match resume_point(text, pos + at) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    (File { items }, diagnostics)
}

/// The start of the first line after `after` that looks like the start of a declaration: a
/// doc comment, or a word, at the very start of the line (declarations are not indented; what
/// is inside them is). A misspelt keyword counts, so its declaration gets its own error.
fn resume_point(text: &str, after: usize) -> Option<usize> {
    let mut line_start = text[after..].find('\n')? + after + 1;
    loop {
        let line = &text[line_start..];
        if line.starts_with("///") || line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Some(line_start);
        }
        line_start += line.find('\n')? + 1;
    }
}

fn syntax_error(file: FileId, text: &str, base: usize, at: usize, error: &pest::error::Error<Rule>) -> Diagnostic {
    let mut expected: Vec<String> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        expected.extend(positives.iter().filter_map(|rule| describe_rule(*rule)).map(str::to_owned));
    }
    if let Some(attempts) = error.parse_attempts() {
        for token in attempts.expected_tokens() {
            let token = token.to_string();
            // Character ranges (`a..z`) and `_` only spell out what "a name" means.
            if token == "_" || (token.chars().count() == 4 && token.contains("..")) {
                continue;
            }
            // Whitespace and comments may appear anywhere; listing them helps nobody.
            let trivia = token.trim().is_empty() || token.starts_with("//") || token.starts_with("/*");
            if !trivia {
                expected.push(format!("`{token}`"));
            }
        }
    }
    if expected.iter().any(|e| e == "a type") {
        // `(` only starts the type `()`.
        expected.retain(|e| e != "`(`");
    }
    expected.sort();
    expected.dedup();
    let offset = base + at;
    let (found, len) = found_at(&text[offset..]);
    let message = match expected.as_slice() {
        [] => format!("unexpected {found}"),
        [only] => format!("expected {only}, found {found}"),
        [init @ .., last] => format!("expected {} or {last}, found {found}", init.join(", ")),
    };
    let diagnostic = Diagnostic::error(Span::new(file, offset, offset + len), message);
    // A misspelt keyword: say which one.
    let word = &text[offset..offset + len];
    let keywords = expected.iter().filter_map(|e| e.strip_prefix('`')?.strip_suffix('`')).filter(|k| is_keyword(k));
    match suggest(word, keywords) {
        Some(keyword) if !word.is_empty() && word != keyword => diagnostic.label(format!("did you mean `{keyword}`?")),
        _ => diagnostic,
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
    for punct in ["///", "->", "//"] {
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
    matches!(word, "service" | "struct" | "enum" | "rpc" | "throws")
}

/// Turns pairs into syntax tree nodes, shifting spans by the offset of the parsed slice.
struct Builder {
    file: FileId,
    offset: usize,
}

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.offset + s.start(), self.offset + s.end())
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident { name: pair.as_str().to_owned(), span: self.span(pair) }
    }

    fn docs(pair: Pair<'_, Rule>) -> Vec<String> {
        pair.into_inner()
            .filter_map(|doc| doc.into_inner().next())
            .map(|text| text.as_str().trim_end().to_owned())
            .collect()
    }

    fn item(&self, pair: Pair<'_, Rule>) -> Item {
        match pair.as_rule() {
            Rule::service => Item::Service(self.service(pair)),
            Rule::struct_decl => Item::Struct(self.struct_decl(pair)),
            _ => Item::Enum(self.enum_decl(pair)),
        }
    }

    fn service(&self, pair: Pair<'_, Rule>) -> Service {
        let mut docs = Vec::new();
        let mut name = None;
        let mut methods = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = Self::docs(p),
                Rule::ident => name = Some(self.ident(&p)),
                Rule::method => methods.push(self.method(p)),
                _ => {}
            }
        }
        Service { docs, name: self.expect_name(name), methods }
    }

    fn method(&self, pair: Pair<'_, Rule>) -> Method {
        let mut docs = Vec::new();
        let mut name = None;
        let (mut arg, mut reply, mut error) = (None, None, None);
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = Self::docs(p),
                Rule::ident => name = Some(self.ident(&p)),
                Rule::arg_type => arg = self.inner_type(p),
                Rule::reply_type => reply = self.inner_type(p),
                Rule::throws => error = self.inner_type(p),
                _ => {}
            }
        }
        Method { docs, name: self.expect_name(name), arg, reply, error }
    }

    /// The `type_ref` inside a wrapper rule (`arg_type`, `reply_type`, `throws`).
    fn inner_type(&self, pair: Pair<'_, Rule>) -> Option<TypeRef> {
        pair.into_inner().find(|p| p.as_rule() == Rule::type_ref).map(|p| self.type_ref(p))
    }

    fn struct_decl(&self, pair: Pair<'_, Rule>) -> Struct {
        let mut docs = Vec::new();
        let mut name = None;
        let mut fields = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = Self::docs(p),
                Rule::ident => name = Some(self.ident(&p)),
                Rule::field => fields.push(self.field(p)),
                _ => {}
            }
        }
        Struct { docs, name: self.expect_name(name), fields }
    }

    fn field(&self, pair: Pair<'_, Rule>) -> Field {
        let mut docs = Vec::new();
        let mut name = None;
        let mut ty = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = Self::docs(p),
                Rule::ident => name = Some(self.ident(&p)),
                Rule::type_ref => ty = Some(self.type_ref(p)),
                _ => {}
            }
        }
        let name = self.expect_name(name);
        let ty = ty.unwrap_or(TypeRef::Unit(name.span));
        Field { docs, name, ty }
    }

    fn enum_decl(&self, pair: Pair<'_, Rule>) -> Enum {
        let mut docs = Vec::new();
        let mut name = None;
        let mut variants = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = Self::docs(p),
                Rule::ident => name = Some(self.ident(&p)),
                Rule::variant => variants.push(self.variant(p)),
                _ => {}
            }
        }
        Enum { docs, name: self.expect_name(name), variants }
    }

    fn variant(&self, pair: Pair<'_, Rule>) -> Variant {
        let mut docs = Vec::new();
        let mut name = None;
        let mut shape = VariantShape::Unit;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::docs => docs = Self::docs(p),
                Rule::ident => name = Some(self.ident(&p)),
                Rule::tuple_fields => shape = VariantShape::Tuple(p.into_inner().map(|t| self.type_ref(t)).collect()),
                Rule::struct_fields => shape = VariantShape::Struct(p.into_inner().map(|f| self.field(f)).collect()),
                _ => {}
            }
        }
        Variant { docs, name: self.expect_name(name), shape }
    }

    fn type_ref(&self, pair: Pair<'_, Rule>) -> TypeRef {
        let span = self.span(&pair);
        let Some(inner) = pair.into_inner().next() else {
            return TypeRef::Unit(span);
        };
        match inner.as_rule() {
            Rule::named_type => {
                let mut parts = inner.into_inner();
                let name = parts.next().map(|p| self.ident(&p));
                let args =
                    parts.next().map(|args| args.into_inner().map(|t| self.type_ref(t)).collect()).unwrap_or_default();
                TypeRef::Named { name: self.expect_name(name), args, span }
            }
            _ => TypeRef::Unit(span),
        }
    }

    fn expect_name(&self, name: Option<Ident>) -> Ident {
        // The grammar requires a name wherever this is called.
        name.unwrap_or_else(|| Ident { name: String::new(), span: Span::new(self.file, self.offset, self.offset) })
    }
}
