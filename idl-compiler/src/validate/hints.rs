//! Hints: what an unknown name probably means ("did you mean"), and the import that would make
//! a name visible.

use super::scope::{BUILTINS, Lookup, Scope};
use super::{Checker, Declared, Kind};
use crate::ast;
use crate::diagnostic::{Diagnostic, Span, suggest};

/// Names from other languages, and the `.tidl` type they probably mean.
const FOREIGN_NAMES: &[(&str, &str)] = &[
    ("String", "string"),
    ("str", "string"),
    ("Vec", "list"),
    ("HashMap", "map"),
    ("BTreeMap", "map"),
    ("Option", "option"),
    ("int", "i32"),
    ("long", "i64"),
    ("float", "f32"),
    ("double", "f64"),
    ("boolean", "bool"),
    ("usize", "u64"),
    ("isize", "i64"),
];

impl<'a> Checker<'a> {
    /// The path to write in an import in the file `from` that the loader resolves to `file`
    /// (both as the compilation names them): relative to the first include directory that holds
    /// `file` (unless a file of the compilation would be found first under that path), else
    /// relative to `from`'s directory. `None` if neither is known to work.
    pub(super) fn import_path(&self, from: &str, file: &str) -> Option<String> {
        let from_dir = match from.rfind('/') {
            Some(0) => "/",
            Some(i) => &from[..i],
            None => "",
        };
        // The loader tries `from`'s directory first, then each include directory in order.
        let mut earlier = vec![from_dir];
        for dir in self.include_dirs {
            if let Some(import) = path_under(dir, file) {
                let shadowed = earlier.iter().any(|d| {
                    let candidate = crate::loader::normalize(&std::path::Path::new(d).join(&import));
                    candidate != file && self.sources.find(&candidate).is_some()
                });
                if !shadowed {
                    return Some(import);
                }
            }
            earlier.push(dir);
        }
        relative_path(from_dir, file)
    }

    /// The shortest (possibly dotted) name that finds `declared` from `scope`, if any does: its
    /// package's segments after those it shares with the scope's package (`orders.Order` for
    /// `shop.orders.Order` in package `shop`), or more of them if that finds another type.
    fn shortest_name(&self, declared: &Declared, scope: &Scope) -> Option<String> {
        let (package, name) = &declared.key;
        let package: Vec<String> =
            if package.is_empty() { Vec::new() } else { package.split('.').map(str::to_owned).collect() };
        let common = scope.package.iter().zip(&package).take_while(|(a, b)| a == b).count();
        (0..=common).rev().find_map(|start| match self.lookup_name(&package[start..], name, scope) {
            Lookup::Found(found) if found.key == declared.key => {
                Some(package[start..].iter().chain([name]).cloned().collect::<Vec<_>>().join("."))
            }
            _ => None,
        })
    }

    pub(super) fn unknown_type(&mut self, path: &[ast::Ident], span: Span, scope: &Scope) {
        if scope.missing_import {
            // The missing file probably declares it; its import is reported already.
            return;
        }
        let name = &path[path.len() - 1];
        if path.len() > 1 {
            let written: Vec<String> = path[..path.len() - 1].iter().map(|i| i.name.clone()).collect();
            // The package the name most likely means: the innermost one that exists.
            // A package exists if a file declares it, even one whose declarations are all broken.
            let exists = |p: &str| {
                self.symbols.keys().any(|(known, _)| known == p)
                    || self.scopes.values().any(|s| s.package.join(".") == p)
            };
            let package_name = (0..=scope.package.len())
                .rev()
                .map(|n| scope.package[..n].iter().chain(&written).cloned().collect::<Vec<_>>().join("."))
                .find(|p| exists(p))
                .unwrap_or_else(|| written.join("."));
            let known = exists(&package_name);
            let message = if known {
                format!("package `{package_name}` has no type `{}`", name.name)
            } else {
                format!("there is no package `{package_name}`")
            };
            let mut d = Diagnostic::error(span, message);
            let in_package = self
                .symbols
                .iter()
                .filter(|((p, _), d)| *p == package_name && d.kind != Kind::Service)
                .map(|((_, n), _)| n.as_str());
            if let Some(meant) = suggest(&name.name, in_package) {
                // As written (`orders.Order` for `orders.Ordr`) if that finds it, else in full.
                let found = matches!(
                    self.lookup_name(&written, meant, scope),
                    Lookup::Found(f) | Lookup::NotImported(f) if f.key.0 == package_name
                );
                let package = if found { written.join(".") } else { package_name.clone() };
                d = d.label(format!("did you mean `{package}.{meant}`?"));
            }
            self.error(d);
            return;
        }
        let mut d = Diagnostic::error(span, format!("unknown type `{}`", name.name));
        let visible: Vec<&Declared> =
            self.symbols.values().filter(|d| d.kind != Kind::Service && scope.visible.contains(&d.file)).collect();
        let candidates = BUILTINS.iter().map(|(b, _)| *b).chain(visible.iter().map(|d| d.key.1.as_str()));
        // A close name, written so that it is found from here: a type in a package that the
        // lookup does not search (a sibling's, or one under this file's) needs a dotted name.
        let meant = suggest(&name.name, candidates).and_then(|meant| {
            if BUILTINS.iter().any(|(b, _)| *b == meant) {
                return Some(meant.to_owned());
            }
            visible
                .iter()
                .filter(|d| d.key.1 == meant)
                .filter_map(|d| self.shortest_name(d, scope))
                .min_by(|a, b| (a.len(), a).cmp(&(b.len(), b)))
        });
        if let Some((_, meant)) = FOREIGN_NAMES.iter().find(|(foreign, _)| *foreign == name.name) {
            d = d.label(format!("did you mean `{meant}`?"));
        } else if let Some(meant) = meant {
            d = d.label(format!("did you mean `{meant}`?"));
        } else {
            d = d.help(
                "the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, \
                 `bytes`, `list<T>`, `option<T>`, `map<K, V>` and `[T; N]`; others must be declared with \
                 `struct`, `enum` or `type`",
            );
        }
        self.error(d);
    }
}

/// `file`'s path relative to the directory `dir` if it is inside it (both normalised like the
/// loader's paths; `""` is the current directory).
fn path_under(dir: &str, file: &str) -> Option<String> {
    let rest = match dir {
        "" => Some(file).filter(|f| !f.starts_with('/') && *f != ".." && !f.starts_with("../")),
        "/" => file.strip_prefix('/'),
        _ => file.strip_prefix(dir).and_then(|rest| rest.strip_prefix('/')),
    };
    rest.filter(|r| !r.is_empty()).map(str::to_owned)
}

/// The path from the directory `dir` to `file` (both normalised like the loader's paths), if it
/// can be worked out without knowing the current directory.
fn relative_path(dir: &str, file: &str) -> Option<String> {
    if file.starts_with('/') && !dir.starts_with('/') {
        // `dir.join(file)` is `file`.
        return Some(file.to_owned());
    }
    if dir.starts_with('/') && !file.starts_with('/') {
        return None;
    }
    let dir: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let target: Vec<&str> = file.split('/').filter(|s| !s.is_empty()).collect();
    let common = dir.iter().zip(&target).take_while(|(a, b)| a == b).count();
    // Going up out of a `..` means knowing the name of the directory it leads to.
    if dir[common..].contains(&"..") {
        return None;
    }
    let ups = std::iter::repeat_n("..", dir.len() - common);
    Some(ups.chain(target[common..].iter().copied()).collect::<Vec<_>>().join("/"))
}

#[cfg(test)]
mod tests {
    use super::{path_under, relative_path};

    #[test]
    fn import_paths_are_worked_out_lexically_or_not_at_all() {
        assert_eq!(relative_path("app", "lib/point.tidl").as_deref(), Some("../lib/point.tidl"));
        assert_eq!(relative_path("", "lib/point.tidl").as_deref(), Some("lib/point.tidl"));
        assert_eq!(relative_path("../other", "../inc/b.tidl").as_deref(), Some("../inc/b.tidl"));
        assert_eq!(relative_path("/a/b", "/a/c/d.tidl").as_deref(), Some("../c/d.tidl"));
        assert_eq!(relative_path("x", "/abs/d.tidl").as_deref(), Some("/abs/d.tidl"));
        // Up from `..` or from `/` to a relative path needs the current directory's name.
        assert_eq!(relative_path("../other", "inc/b.tidl"), None);
        assert_eq!(relative_path("/a", "inc/b.tidl"), None);

        assert_eq!(path_under("inc", "inc/sub/b.tidl").as_deref(), Some("sub/b.tidl"));
        assert_eq!(path_under("inc", "include/b.tidl"), None);
        assert_eq!(path_under("", "b.tidl").as_deref(), Some("b.tidl"));
        assert_eq!(path_under("", "../b.tidl"), None);
        assert_eq!(path_under("/", "/b.tidl").as_deref(), Some("b.tidl"));
        assert_eq!(path_under("../v", "../v/b.tidl").as_deref(), Some("b.tidl"));
    }
}
