//! Property tests of the parser and the formatter: random schemas, written with random layout
//! and comments, parse; formatting keeps their meaning and their comments, is idempotent and
//! follows the layout rules that can be checked line by line; and no input at all makes the
//! parser, the checker or the formatter panic or hang (formatting it, when it parses, keeps its
//! meaning and is idempotent).

use crate::ast::erase_spans;
use crate::diagnostic::FileId;
use crate::{Config, Source, format, parser};
use proptest::prelude::*;

/// A token of a generated file.
#[derive(Debug, Clone)]
enum Tok {
    Word(String),
    Punct(&'static str),
    Str(String),
    Doc(String),
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_]{0,6}".prop_filter("not a keyword", |n| !crate::names::is_tidl_keyword(n))
}

fn ty() -> impl Strategy<Value = Vec<Tok>> {
    let leaf = prop_oneof![
        Just(vec![Tok::Punct("("), Tok::Punct(")")]),
        prop::sample::select(vec!["bool", "u8", "i64", "f64", "string", "bytes"])
            .prop_map(|p| vec![Tok::Word(p.into())]),
        (name(), prop::option::of(name())).prop_map(|(a, b)| match b {
            Some(b) => vec![Tok::Word(a), Tok::Punct("."), Tok::Word(b)],
            None => vec![Tok::Word(a)],
        }),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|t| [vec![Tok::Word("list".into()), Tok::Punct("<")], t, vec![Tok::Punct(">")]].concat()),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| [
                vec![Tok::Word("map".into()), Tok::Punct("<")],
                k,
                vec![Tok::Punct(",")],
                v,
                vec![Tok::Punct(">")]
            ]
            .concat()),
            (inner, 1u8..=32).prop_map(|(t, n)| [
                vec![Tok::Punct("[")],
                t,
                vec![Tok::Punct(";"), Tok::Word(n.to_string()), Tok::Punct("]")]
            ]
            .concat()),
        ]
    })
}

fn meta() -> impl Strategy<Value = Vec<Tok>> {
    (prop::collection::vec("[ a-z.,]{0,12}", 0..2), prop::option::of(prop::option::of("[a-z ]{0,8}"))).prop_map(
        |(docs, deprecated)| {
            let mut out: Vec<Tok> = docs.into_iter().map(|d| Tok::Doc(format!("///{d}"))).collect();
            match deprecated {
                None => {}
                Some(None) => out.extend([Tok::Punct("@"), Tok::Word("deprecated".into())]),
                Some(Some(note)) => out.extend([
                    Tok::Punct("@"),
                    Tok::Word("deprecated".into()),
                    Tok::Punct("("),
                    Tok::Str(format!("\"{note}\"")),
                    Tok::Punct(")"),
                ]),
            }
            out
        },
    )
}

fn fields() -> impl Strategy<Value = Vec<Tok>> {
    (prop::collection::vec((meta(), name(), ty()), 0..4), any::<bool>()).prop_map(|(fields, trailing)| {
        let n = fields.len();
        let mut out = Vec::new();
        for (i, (meta, name, ty)) in fields.into_iter().enumerate() {
            out.extend(meta);
            out.extend([Tok::Word(name), Tok::Punct(":")]);
            out.extend(ty);
            if i + 1 < n || trailing {
                out.push(Tok::Punct(","));
            }
        }
        out
    })
}

fn item() -> impl Strategy<Value = Vec<Tok>> {
    let variant = (meta(), name(), 0u8..3, fields(), prop::collection::vec(ty(), 1..3)).prop_map(
        |(meta, name, shape, fields, types)| {
            let mut out = meta;
            out.push(Tok::Word(name));
            match shape {
                0 => {}
                1 => {
                    out.push(Tok::Punct("{"));
                    out.extend(fields);
                    out.push(Tok::Punct("}"));
                }
                _ => {
                    out.push(Tok::Punct("("));
                    for (i, t) in types.into_iter().enumerate() {
                        if i > 0 {
                            out.push(Tok::Punct(","));
                        }
                        out.extend(t);
                    }
                    out.push(Tok::Punct(")"));
                }
            }
            out
        },
    );
    let method = (meta(), name(), prop::option::of(ty()), prop::option::of(ty()), prop::option::of(ty())).prop_map(
        |(meta, name, arg, reply, error)| {
            let mut out = meta;
            out.extend([Tok::Word("rpc".into()), Tok::Word(name), Tok::Punct("(")]);
            out.extend(arg.unwrap_or_default());
            out.push(Tok::Punct(")"));
            if let Some(reply) = reply {
                out.push(Tok::Punct("->"));
                out.extend(reply);
            }
            if let Some(error) = error {
                out.push(Tok::Word("throws".into()));
                out.extend(error);
            }
            out.push(Tok::Punct(";"));
            out
        },
    );
    prop_oneof![
        (meta(), name(), fields()).prop_map(|(meta, name, fields)| {
            [meta, vec![Tok::Word("struct".into()), Tok::Word(name), Tok::Punct("{")], fields, vec![Tok::Punct("}")]]
                .concat()
        }),
        (meta(), name(), prop::collection::vec(variant, 0..3)).prop_map(|(meta, name, variants)| {
            let mut out = [meta, vec![Tok::Word("enum".into()), Tok::Word(name), Tok::Punct("{")]].concat();
            for (i, v) in variants.into_iter().enumerate() {
                if i > 0 {
                    out.push(Tok::Punct(","));
                }
                out.extend(v);
            }
            out.push(Tok::Punct("}"));
            out
        }),
        (meta(), name(), ty()).prop_map(|(meta, name, ty)| {
            [meta, vec![Tok::Word("type".into()), Tok::Word(name), Tok::Punct("=")], ty, vec![Tok::Punct(";")]].concat()
        }),
        (meta(), name(), prop::collection::vec(method, 0..3)).prop_map(|(meta, name, methods)| {
            [
                meta,
                vec![Tok::Word("service".into()), Tok::Word(name), Tok::Punct("{")],
                methods.concat(),
                vec![Tok::Punct("}")],
            ]
            .concat()
        }),
        "[a-z]{1,8}".prop_map(|path| vec![
            Tok::Word("import".into()),
            Tok::Str(format!("\"{path}.tidl\"")),
            Tok::Punct(";")
        ]),
    ]
}

/// A whole file's tokens: maybe a package, then items.
fn file_tokens() -> impl Strategy<Value = Vec<Tok>> {
    (prop::option::of(prop::collection::vec(name(), 1..3)), prop::collection::vec(item(), 0..5)).prop_map(
        |(package, items)| {
            let mut out = Vec::new();
            if let Some(package) = package {
                out.push(Tok::Word("package".into()));
                for (i, segment) in package.into_iter().enumerate() {
                    if i > 0 {
                        out.push(Tok::Punct("."));
                    }
                    out.push(Tok::Word(segment));
                }
                out.push(Tok::Punct(";"));
            }
            out.extend(items.concat());
            out
        },
    )
}

/// Writes tokens with layout chosen by `layout`: how much whitespace between tokens, and where
/// comments go (never between a token pair that would then mean something else).
fn render(tokens: &[Tok], layout: &[u8]) -> String {
    let mut out = String::new();
    let mut choices = layout.iter().copied().cycle();
    for (i, tok) in tokens.iter().enumerate() {
        let choice = choices.next().unwrap_or(0);
        // A dotted name is written without spaces (`geo.Point`).
        let dotted = matches!(tok, Tok::Punct(".")) || matches!(tokens.get(i.wrapping_sub(1)), Some(Tok::Punct(".")));
        if i > 0 && !dotted {
            let previous_is_line = matches!(tokens[i - 1], Tok::Doc(_));
            out.push_str(match choice % 6 {
                _ if previous_is_line => "\n",
                0 | 1 => " ",
                2 => "\n",
                3 => "\n\n  ",
                4 if !matches!(tokens[i - 1], Tok::Word(_)) || !matches!(tok, Tok::Word(_)) => "",
                _ => "\t ",
            });
            if choice % 11 == 7 && !matches!(tok, Tok::Doc(_)) {
                out.push_str("/* note */ ");
            }
            if choice % 17 == 3 && !matches!(tok, Tok::Doc(_)) {
                out.push_str("/*n*/");
            }
            if choice % 13 == 5 && !matches!(tok, Tok::Doc(_)) {
                out.push_str("// remark\n");
            }
        }
        match tok {
            Tok::Word(w) | Tok::Str(w) | Tok::Doc(w) => out.push_str(w),
            Tok::Punct(p) => out.push_str(p),
        }
    }
    out.push('\n');
    out
}

fn comments(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['/', '"']) {
        rest = &rest[i..];
        if rest.starts_with('"') {
            rest = rest[1..].find('"').map_or("", |end| &rest[end + 2..]);
        } else if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            found.push(rest[..end].trim_end());
            rest = &rest[end..];
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            found.push(&rest[..end]);
            rest = &rest[end..];
        } else {
            rest = &rest[1..];
        }
    }
    found
}

/// What is wrong with the layout of formatted text, if anything: a blank line before a `}`, a
/// member on the line of a `{` after a comment, a comma on a line of its own, or a space between
/// a bracket and a block comment inside it.
fn layout_problem(formatted: &str) -> Option<String> {
    let lines: Vec<&str> = formatted.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let text = line.trim();
        if text.starts_with('}') && i > 0 && lines[i - 1].trim().is_empty() {
            return Some(format!("a blank line before line {}", i + 1));
        }
        if text == "," {
            return Some(format!("a lone comma on line {}", i + 1));
        }
        if let Some(after) = line.find("{ /*").and_then(|at| line[at..].find("*/").map(|end| &line[at + end + 2..])) {
            let after = after.trim();
            if !after.is_empty() && !after.starts_with(['}', '/']) {
                return Some(format!("a member after a comment after `{{` on line {}", i + 1));
            }
        }
        for bad in ["( /*", "< /*", "[ /*", "*/ )", "*/ >", "*/ ]", "*/ ,", "*/ ;"] {
            if line.contains(bad) {
                return Some(format!("`{bad}` on line {}", i + 1));
            }
        }
    }
    None
}

fn parse_clean(text: &str) -> crate::ast::File {
    let (mut ast, errors) = parser::parse(FileId(0), text);
    let rendered: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
    assert!(errors.is_empty(), "{rendered:?} in:\n{text}");
    erase_spans(&mut ast);
    ast
}

proptest! {
    // 256 cases, or as many as `PROPTEST_CASES` says: the default configuration reads it.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn formatting_keeps_meaning_and_comments_and_is_idempotent(
        tokens in file_tokens(),
        layout in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let text = render(&tokens, &layout);
        let original = parse_clean(&text);
        let formatted = format::format(&text);
        prop_assert_eq!(&parse_clean(&formatted), &original, "meaning changed:\n{}\n---\n{}", text, formatted);
        prop_assert_eq!(format::format(&formatted), formatted.clone(), "not idempotent");
        prop_assert_eq!(comments(&formatted), comments(&text), "comments changed:\n{}\n---\n{}", text, formatted);
        prop_assert_eq!(layout_problem(&formatted), None, "in:\n{}\n---\n{}", text, formatted);
    }

    #[test]
    fn arbitrary_text_gives_diagnostics_not_panics(text in "\\PC{0,200}") {
        let _ = Config::new().generate(&[Source { path: "x.tidl", text: &text }]);
        let _ = crate::format("x.tidl", &text);
    }

    #[test]
    fn near_miss_text_gives_diagnostics_not_panics(
        text in prop::collection::vec(
            prop::sample::select(vec![
                "service", "struct", "enum", "type", "rpc", "throws", "package", "import", "stream", "@",
                "deprecated", "A", "b", "list", "map", "option", "<", ">", "(", ")", "{", "}", "[", "]", ";",
                ",", ":", "=", ".", "->", "32", "0", "\"x.tidl\"", "///d\n", "//c\n", "/*", "*/", " ", "\n",
            ]),
            0..60,
        ).prop_map(|parts| parts.concat()),
    ) {
        let _ = Config::new().generate(&[Source { path: "x.tidl", text: &text }]);
        if let Ok(formatted) = crate::format("x.tidl", &text) {
            prop_assert_eq!(parse_clean(&formatted), parse_clean(&text));
            prop_assert_eq!(format::format(&formatted), formatted.clone(), "not idempotent:\n{}", text);
        }
    }
}
