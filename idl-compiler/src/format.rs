//! `tidl fmt`: the canonical layout of a `.tidl` file.
//!
//! The formatter works on tokens, not on the syntax tree, so every comment survives where it
//! was and only whitespace and trailing commas change: the tokens of the output are the tokens
//! of the input, in the same order (less trailing commas inside brackets and one-line variant
//! bodies, plus trailing commas in field and variant lists; a `,` or `;` that followed a line
//! comment, or a comment on a line of its own, is written before that comment). It only runs on
//! files that parse.
//!
//! The layout: four-space indentation; one field, variant or method per line; a trailing comma
//! after the last field or variant, right after it (before a comment that follows it); one blank
//! line between declarations (none between consecutive imports); blank lines inside a body kept,
//! at most one, but never right after `{` or right before `}`; doc comments and attributes on
//! lines of their own; a comment that followed code on its line stays there, and if the line
//! ended there (after `{`, `,`, `;` or an attribute) the next member still starts a new line. A
//! block comment within a line has a space on each side, except right after `(`, `<` or `[`
//! and right before `)`, `>`, `]`, `,`, `;` or `:` (`map</* key */ string, u8 /* value */>`). A
//! body with nothing but such comments stays on one line (`struct Empty { /* none yet */ }`).

/// A lexical token of a `.tidl` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A name, keyword or number.
    Word,
    /// A string literal.
    Str,
    /// Punctuation: one of `{}()<>[];,:=.@` or `->`.
    Punct,
    /// A `///` line.
    Doc,
    /// A `//` line comment.
    LineComment,
    /// A `/* */` comment.
    BlockComment,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    /// Line breaks between the previous token and this one.
    breaks: usize,
}

fn lex(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut breaks = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            breaks += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let rest = &text[i..];
        let kind = if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
            if rest.starts_with("///") && !rest.starts_with("////") { Kind::Doc } else { Kind::LineComment }
        } else if let Some(body) = rest.strip_prefix("/*") {
            i += body.find("*/").map_or(rest.len(), |end| end + 4);
            Kind::BlockComment
        } else if c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            Kind::Str
        } else if c.is_ascii_alphanumeric()
            || c == b'_'
            || (c == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            // A name, or a number (a negative one with its sign).
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Kind::Word
        } else if rest.starts_with("->") {
            i += 2;
            Kind::Punct
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            Kind::Punct
        };
        tokens.push(Token { kind, text: text[start..i].trim_end(), breaks });
        breaks = 0;
    }
    tokens
}

/// What a `{` opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// A service body: methods, each ending in `;`.
    Service,
    /// Fields or variants, separated by commas.
    List,
    /// A short struct-like variant's fields, kept on one line: `Rect { w: u32, h: u32 }`.
    Inline,
}

/// The widest a struct-like variant's fields may be to stay on the variant's line.
const INLINE_WIDTH: usize = 60;

/// Whether the fields from `rest` (just after a `{`) to the matching `}` are short and plain
/// enough to stay on one line.
fn fits_inline(rest: &[Token<'_>]) -> bool {
    let mut width = 0;
    for token in rest {
        match (token.kind, token.text) {
            (Kind::Doc | Kind::LineComment | Kind::BlockComment, _) | (Kind::Punct, "@" | "{") => return false,
            (Kind::Punct, "}") => return width > 0 && width <= INLINE_WIDTH,
            (_, text) => width += text.len() + 1,
        }
    }
    false
}

struct Printer {
    out: String,
    indent: usize,
    /// Open brackets: `{` with its kind, or `(`, `<`, `[`.
    stack: Vec<(char, Option<Block>)>,
    /// Whether nothing has been written on the current line yet.
    line_start: bool,
    /// A line break is due before the next token (unless that token is a comment that belongs
    /// at the end of the current line).
    pending: bool,
    /// The last token that was not a comment.
    last: Option<(Kind, String)>,
    /// Where in `out` the last token that was not a comment ends (a trailing comma goes there).
    code_end: usize,
    /// Whether the last thing written is a block comment that the current line goes on after.
    after_comment: bool,
    /// Whether the current line ends with a line comment (or a doc comment).
    line_comment: bool,
    /// The top-level statement that ended last (`import`, or something else).
    previous_item: Option<String>,
    /// The first word of the current top-level statement.
    current_item: Option<String>,
    /// Where an attribute (`@name` or `@name(...)`) is being written; its line ends with it.
    attribute: Attribute,
}

/// Progress through an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attribute {
    None,
    /// After `@`: the name comes next.
    Name,
    /// After the name: `(` may come next.
    Args,
    /// Inside the parentheses, which opened at this bracket depth.
    InArgs(usize),
}

/// Formats `text`, which must parse.
pub(crate) fn format(text: &str) -> String {
    print(&lex(text), text.len())
}

/// Formats `text`, which must parse, leaving out its ordinary comments (`//` and `/* */`): its
/// declarations and their doc comments, in the canonical layout. What reflection serves.
pub(crate) fn format_without_comments(text: &str) -> String {
    let mut tokens = Vec::new();
    let mut breaks = 0;
    for token in lex(text) {
        // The line breaks around a comment left out stay, so blank lines are kept as before.
        breaks += token.breaks;
        if !matches!(token.kind, Kind::LineComment | Kind::BlockComment) {
            tokens.push(Token { breaks, ..token });
            breaks = 0;
        }
    }
    print(&tokens, text.len())
}

/// The canonical layout of `tokens`, lexed from a text of `len` bytes that parses.
fn print(tokens: &[Token<'_>], len: usize) -> String {
    let mut p = Printer {
        out: String::with_capacity(len + len / 8),
        indent: 0,
        stack: Vec::new(),
        line_start: true,
        pending: false,
        last: None,
        code_end: 0,
        after_comment: false,
        line_comment: false,
        previous_item: None,
        current_item: None,
        attribute: Attribute::None,
    };
    for (i, token) in tokens.iter().enumerate() {
        let rest = &tokens[i + 1..];
        let next = rest.iter().find(|t| !matches!(t.kind, Kind::LineComment | Kind::BlockComment));
        p.token(token, next, tokens.get(i.wrapping_sub(1)), rest);
    }
    let mut out = p.out.trim_end().to_owned();
    out.push('\n');
    out
}

impl Printer {
    fn newline(&mut self) {
        if !self.line_start {
            self.pending = true;
        }
    }

    fn flush(&mut self) {
        if self.pending {
            self.out.push('\n');
            self.line_start = true;
            self.pending = false;
            self.after_comment = false;
            self.line_comment = false;
        }
    }

    fn blank_line(&mut self) {
        self.newline();
        self.flush();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn write(&mut self, text: &str, space_before: bool) {
        self.flush();
        if self.line_start {
            self.out.push_str(&"    ".repeat(self.indent));
            self.line_start = false;
        } else if self.after_comment {
            // After an inline block comment, a space, except before what closes or separates.
            if !matches!(text, ")" | ">" | "]" | "," | ";" | ":") {
                self.out.push(' ');
            }
        } else if space_before {
            self.out.push(' ');
        }
        self.after_comment = false;
        self.out.push_str(text);
    }

    /// Inside `()`, `<>`, `[]` or a one-line variant body: commas are followed by a space.
    fn in_brackets(&self) -> bool {
        self.stack.last().is_some_and(|(c, b)| *c != '{' || *b == Some(Block::Inline))
    }

    fn last_is(&self, text: &str) -> bool {
        self.last.as_ref().is_some_and(|(_, t)| t == text)
    }

    /// Starts a line for a token that begins a new member or statement, keeping one blank line
    /// if the source had any.
    fn start_line(&mut self, token: &Token<'_>) {
        if self.stack.is_empty() && self.current_item.is_none() && self.previous_item.is_some() {
            let word = first_word(token);
            let imports = self.previous_item.as_deref() == Some("import") && word.as_deref() == Some("import");
            if imports && token.breaks < 2 {
                self.newline();
            } else {
                self.blank_line();
            }
            return;
        }
        // Blank lines are kept between members, not after `{` or before `}`.
        if token.breaks >= 2 && !self.last_is("{") && token.text != "}" && !self.out.is_empty() {
            self.blank_line();
            return;
        }
        self.newline();
    }

    fn token(&mut self, token: &Token<'_>, next: Option<&Token<'_>>, previous: Option<&Token<'_>>, rest: &[Token<'_>]) {
        match token.kind {
            Kind::LineComment | Kind::BlockComment => {
                // (Not after a line comment, which only a line break ends.)
                let trailing =
                    token.breaks == 0 && previous.is_some() && (self.pending || !self.line_start) && !self.line_comment;
                // Whether a line break was due (after `{`, `,`, `;` or an attribute): then it still
                // is after the comment, and what follows goes on the next line.
                let line_ended = self.pending;
                if trailing {
                    // It stays at the end of the line it followed, after a space unless it comes
                    // right after `(`, `<` or `[`.
                    self.pending = false;
                    self.line_start = false;
                    if !self.out.ends_with(['(', '<', '[']) {
                        self.out.push(' ');
                    }
                    self.out.push_str(token.text);
                } else {
                    self.start_line(token);
                    self.write(token.text, false);
                    if self.stack.is_empty() && self.current_item.is_none() {
                        self.current_item = Some(String::new());
                    }
                }
                if token.kind == Kind::LineComment || !trailing || line_ended {
                    self.line_comment = token.kind == Kind::LineComment;
                    self.newline();
                } else {
                    self.after_comment = true;
                }
                return;
            }
            Kind::Doc => {
                self.start_line(token);
                self.write(token.text, false);
                self.line_comment = true;
                self.newline();
                self.note_item_start(token);
                return;
            }
            _ => {}
        }
        let text = token.text;
        if self.pending || self.line_start {
            self.start_line(token);
        }
        self.note_item_start(token);
        match (token.kind, text) {
            (Kind::Punct, "{") => {
                let in_list = self.stack.last().is_some_and(|(_, b)| *b == Some(Block::List));
                let block = match self.last.as_ref() {
                    Some((Kind::Word, _)) if self.statement_word() == Some("service") => Block::Service,
                    _ if in_list && fits_inline(rest) => Block::Inline,
                    _ => Block::List,
                };
                self.write("{", true);
                self.stack.push(('{', Some(block)));
                self.set_last(token);
                if empty_body(rest) || block == Block::Inline {
                    return;
                }
                self.indent += 1;
                self.newline();
            }
            (Kind::Punct, "}") => {
                let opened = self.stack.pop();
                if opened.is_some_and(|(_, b)| b == Some(Block::Inline)) {
                    self.write("}", true);
                } else if self.last_is("{") && !self.pending && !self.line_start {
                    // `{}`, or `{ /* comment */ }`.
                    self.write("}", false);
                } else {
                    if opened.is_some_and(|(_, b)| b == Some(Block::List)) && !self.last_is(",") && !self.last_is("{") {
                        // Right after the last member, before any comment that follows it.
                        self.out.insert(self.code_end, ',');
                    }
                    self.indent = self.indent.saturating_sub(1);
                    self.newline();
                    self.write("}", false);
                }
                self.set_last(token);
                if self.stack.is_empty() && next.is_none_or(|n| n.text != ";") {
                    self.end_item();
                }
            }
            (Kind::Punct, ",") => {
                if self.in_brackets() {
                    // A trailing comma inside brackets, or a one-line body, goes.
                    if !next.is_some_and(|n| matches!(n.text, ")" | ">" | "]" | "}")) {
                        self.separator(token);
                    }
                } else {
                    self.separator(token);
                    self.newline();
                }
            }
            (Kind::Punct, ";") => {
                if self.stack.last().is_some_and(|(c, _)| *c == '[') {
                    self.separator(token);
                } else if !self.stack.is_empty() {
                    self.separator(token);
                    self.newline();
                } else {
                    let at = self.code_end;
                    if at < self.out.len() && self.line_comment && !self.out[at..].contains('\n') {
                        // Before the line comment that followed the statement on its line. (Not
                        // before a comment on a line of its own, which would then come after
                        // the statement, and get a blank line before it when formatted again.)
                        self.out.insert(at, ';');
                    } else {
                        self.write(";", false);
                    }
                    self.set_last(token);
                    self.newline();
                    if self.stack.is_empty() {
                        self.end_item();
                    }
                }
            }
            (Kind::Punct, open @ ("(" | "<" | "[")) => {
                let space = match open {
                    "(" | "<" => !matches!(self.last, Some((Kind::Word, _))) && !self.after_opening(),
                    _ => !self.after_opening() && !self.line_start,
                };
                if self.attribute == Attribute::Args {
                    self.attribute = Attribute::InArgs(self.stack.len());
                }
                self.write(open, space);
                self.stack.push((open.chars().next().unwrap_or('('), None));
                self.set_last(token);
            }
            (Kind::Punct, close @ (")" | ">" | "]")) => {
                self.stack.pop();
                self.write(close, false);
                self.set_last(token);
                if self.attribute == Attribute::InArgs(self.stack.len()) {
                    self.attribute = Attribute::None;
                    self.newline();
                }
            }
            (Kind::Punct, "@") => {
                self.write("@", !self.line_start);
                self.attribute = Attribute::Name;
                self.set_last(token);
            }
            (Kind::Punct, punct @ (":" | ".")) => {
                self.write(punct, false);
                self.set_last(token);
            }
            _ => {
                let space = !self.after_opening() && !self.last_is(".") && self.attribute != Attribute::Name;
                self.write(text, space);
                self.set_last(token);
                if self.attribute == Attribute::Name {
                    if next.is_some_and(|n| n.text == "(") {
                        self.attribute = Attribute::Args;
                    } else {
                        self.attribute = Attribute::None;
                        self.newline();
                    }
                }
            }
        }
    }

    /// Writes a `,` or `;` (not one that ends a top-level statement) after the code it follows:
    /// if a line comment, or a comment on a line of its own, came in between, the separator goes
    /// before it.
    fn separator(&mut self, token: &Token<'_>) {
        let at = self.code_end;
        let comment_ended_line = at < self.out.len() && (self.pending || self.out[at..].contains('\n'));
        if comment_ended_line {
            self.out.insert_str(at, token.text);
            self.set_last(token);
            self.code_end = at + token.text.len();
        } else {
            self.write(token.text, false);
            self.set_last(token);
        }
    }

    fn after_opening(&self) -> bool {
        matches!(self.last.as_ref(), Some((Kind::Punct, t)) if matches!(t.as_str(), "(" | "<" | "["))
    }

    fn set_last(&mut self, token: &Token<'_>) {
        self.last = Some((token.kind, token.text.to_owned()));
        self.code_end = self.out.len();
    }

    /// The word that started the current statement at this level (`service`, `struct`, ...).
    fn statement_word(&self) -> Option<&str> {
        if self.stack.is_empty() { self.current_item.as_deref() } else { None }
    }

    fn note_item_start(&mut self, token: &Token<'_>) {
        // An attribute's name is not what the statement is.
        let in_attribute = self.attribute != Attribute::None;
        if self.stack.is_empty() && !in_attribute && self.current_item.as_deref().is_none_or(str::is_empty) {
            match token.kind {
                Kind::Word if !matches!(token.text, "_") => self.current_item = Some(token.text.to_owned()),
                _ if self.current_item.is_none() => self.current_item = Some(String::new()),
                _ => {}
            }
        }
    }

    fn end_item(&mut self) {
        self.previous_item = self.current_item.take();
        self.newline();
    }
}

/// Whether the body after a `{` is empty but for block comments on the brace's line: it is
/// written on that line (`{}`, `{ /* none */ }`).
fn empty_body(rest: &[Token<'_>]) -> bool {
    for token in rest {
        match token.kind {
            Kind::BlockComment if token.breaks == 0 => {}
            Kind::Punct => return token.text == "}",
            _ => return false,
        }
    }
    false
}

fn first_word(token: &Token<'_>) -> Option<String> {
    (token.kind == Kind::Word).then(|| token.text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_a_messy_file() {
        let messy = "package   shop.orders ;\nimport \"geo.tidl\";   import \"money.tidl\";\n\n\n/// An order.\n@deprecated( \"use Order2\" ) struct Order{id:u64,items : list< Item , >, // what was bought\n\n\nnote:option<string>}\nenum Status{Open,Closed( i64 ,),Held{reason:string}}\ntype Ids=list<u64>;\ntype Hash = [u8;32];\nservice Orders{ /// Gets one.\nrpc get(u64)->Order throws string;rpc list();}\n";
        let expected = "package shop.orders;

import \"geo.tidl\";
import \"money.tidl\";

/// An order.
@deprecated(\"use Order2\")
struct Order {
    id: u64,
    items: list<Item>, // what was bought

    note: option<string>,
}

enum Status {
    Open,
    Closed(i64),
    Held { reason: string },
}

type Ids = list<u64>;

type Hash = [u8; 32];

service Orders {
    /// Gets one.
    rpc get(u64) -> Order throws string;
    rpc list();
}
";
        assert_eq!(format(messy), expected);
        assert_eq!(format(expected), expected, "idempotent");
    }

    /// Formats `text`, checks that formatting again changes nothing, and returns the result.
    fn formatted(text: &str) -> String {
        let once = format(text);
        assert_eq!(format(&once), once, "not idempotent");
        once
    }

    #[test]
    fn a_comment_after_an_opening_brace_stays_there_and_members_start_below() {
        assert_eq!(formatted("struct S { /* c */ y: u8, z: u8 }"), "struct S { /* c */\n    y: u8,\n    z: u8,\n}\n");
        assert_eq!(formatted("struct S { x: u8, /* c */ y: u8 }"), "struct S {\n    x: u8, /* c */\n    y: u8,\n}\n");
        assert_eq!(formatted("@deprecated /* why */ struct X {}"), "@deprecated /* why */\nstruct X {}\n");
        assert_eq!(formatted("struct S { /* none */ }"), "struct S { /* none */ }\n");
        assert_eq!(formatted("struct S {\n// none\n}"), "struct S {\n    // none\n}\n");
    }

    #[test]
    fn inline_block_comments_are_spaced_except_inside_brackets() {
        assert_eq!(
            formatted("struct S { m: map</* k */ string, u8> }"),
            "struct S {\n    m: map</* k */ string, u8>,\n}\n"
        );
        assert_eq!(
            formatted("service S { rpc a(/* none */)/* r */; rpc b(u8/* x */) -> [u8 /* e */ ; 4]; }"),
            "service S {\n    rpc a(/* none */) /* r */;\n    rpc b(u8 /* x */) -> [u8 /* e */; 4];\n}\n"
        );
        assert_eq!(formatted("type A = list /* c */<u8>;"), "type A = list /* c */ <u8>;\n");
        assert_eq!(formatted("struct S { x /* c */ : u8 }"), "struct S {\n    x /* c */: u8,\n}\n");
    }

    #[test]
    fn streams_keep_one_space_after_stream() {
        let messy = "service Feed {\n  rpc watch( Filter )->stream   Event ;\nrpc up(stream\n  Chunk)->Summary throws E;\n    rpc chat(stream Msg)->stream Msg;}\n";
        let expected = "service Feed {\n    rpc watch(Filter) -> stream Event;\n    rpc up(stream Chunk) -> Summary throws E;\n    rpc chat(stream Msg) -> stream Msg;\n}\n";
        assert_eq!(formatted(messy), expected);
        assert_eq!(formatted(expected), expected);
    }

    #[test]
    fn no_blank_line_before_a_closing_brace() {
        assert_eq!(formatted("struct S { y: u8,\n\n}"), "struct S {\n    y: u8,\n}\n");
        assert_eq!(formatted("struct S { y: u8 // c\n\n}"), "struct S {\n    y: u8, // c\n}\n");
        assert_eq!(formatted("service X { rpc a();\n\n// end\n\n}"), "service X {\n    rpc a();\n\n    // end\n}\n");
    }

    #[test]
    fn separators_go_right_after_the_code_they_follow() {
        // An added trailing comma, and a written one after a comment that ends its line.
        assert_eq!(formatted("struct S { y: u8 /* c */ }"), "struct S {\n    y: u8, /* c */\n}\n");
        assert_eq!(formatted("struct S { y: u8\n\n// c\n}"), "struct S {\n    y: u8,\n\n    // c\n}\n");
        assert_eq!(formatted("struct S { y: u8 // c\n, z: u8 }"), "struct S {\n    y: u8, // c\n    z: u8,\n}\n");
        assert_eq!(formatted("service S { rpc a()\n// c\n; }"), "service S {\n    rpc a();\n    // c\n}\n");
        assert_eq!(formatted("type A = u8 // c\n;"), "type A = u8; // c\n");
    }

    #[test]
    fn keeps_comments_where_they_are() {
        let text = "// A file comment.\n\n/* block */ struct A {} // trailing\n// Before B.\nstruct B {\n    // inside\n    x: i32, /* after x */\n}\n";
        let expected = "// A file comment.\n\n/* block */\nstruct A {} // trailing\n\n// Before B.\nstruct B {\n    // inside\n    x: i32, /* after x */\n}\n";
        assert_eq!(format(text), expected);
        assert_eq!(format(expected), expected);
    }
}
