//! Habits from Rust that `.tidl` spells differently, recognised where the parser stops, so the
//! error says what to write instead of only what was expected.

use crate::diagnostic::{Diagnostic, FileId, Span};

/// A Rust path (`geo::Point`) whose `::` at `offset` stopped the parser: a `.tidl` path is
/// written with dots (`geo.Point`). `None` if the text there is not such a path.
pub(crate) fn rust_path(file: FileId, text: &str, offset: usize) -> Option<Diagnostic> {
    if !text.get(offset..)?.starts_with("::") {
        return None;
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let path_char = |c: char| name_char(c) || c == ':' || c == '.';
    let start = text[..offset].rfind(|c: char| !path_char(c)).map_or(0, |i| i + 1);
    let end = text[offset..].find(|c: char| !path_char(c)).map_or(text.len(), |i| offset + i);
    let dotted = text[start..end].replace("::", ".");
    let well_formed = dotted.split('.').all(|segment| {
        segment.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && segment.chars().all(name_char)
    });
    if start == offset || !well_formed {
        return None;
    }
    Some(
        Diagnostic::error(Span::new(file, start, end), "`.tidl` paths are written with `.`, not `::`")
            .label(format!("did you mean `{dotted}`?")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_paths_are_recognised_only_where_the_parser_stopped_at_a_double_colon() {
        let text = "rpc f(geo::Point) -> a.b::C;";
        let d = rust_path(FileId(0), text, 9).expect("a Rust path");
        assert_eq!(d.labels[0].message, "did you mean `geo.Point`?");
        assert_eq!((d.span().start, d.span().end), (6, 16));
        let d = rust_path(FileId(0), text, 24).expect("a mixed path");
        assert_eq!(d.labels[0].message, "did you mean `a.b.C`?");
        assert!(rust_path(FileId(0), text, 8).is_none());
        assert!(rust_path(FileId(0), "f(::x)", 2).is_none());
        assert!(rust_path(FileId(0), "f(a::)", 3).is_none());
    }
}
