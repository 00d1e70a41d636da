//! Where names are looked up from, and the lookup itself: a file's package, the packages
//! enclosing it, and the files it can see.

use super::{Checker, Declared};
use crate::ast;
use crate::diagnostic::FileId;
use std::collections::HashSet;

/// Built-in type names and how many type arguments each takes.
pub(super) const BUILTINS: &[(&str, usize)] = &[
    ("bool", 0),
    ("i8", 0),
    ("i16", 0),
    ("i32", 0),
    ("i64", 0),
    ("u8", 0),
    ("u16", 0),
    ("u32", 0),
    ("u64", 0),
    ("f32", 0),
    ("f64", 0),
    ("string", 0),
    ("bytes", 0),
    ("list", 1),
    ("option", 1),
    ("map", 2),
];

/// Where names are looked up from: a file, its package, and the files it can see.
#[derive(Debug, Clone)]
pub(super) struct Scope {
    pub(super) file: FileId,
    /// The package's segments as written (empty for no package).
    pub(super) package: Vec<String>,
    /// The package's Rust module path.
    pub(super) module: Vec<String>,
    /// The file itself and the files it imports directly.
    pub(super) visible: HashSet<FileId>,
    /// Whether an import of the file could not be found: unknown names are then not reported.
    pub(super) missing_import: bool,
}

/// How the pieces of the symbol key are written: `a.b` and `Point`.
pub(super) fn symbol_key(package: &[String], name: &str) -> (String, String) {
    (package.join("."), name.to_owned())
}

/// A qualified `.tidl` name for messages: `a.b.Point`, or `Point` in the root package.
pub(super) fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() { name.to_owned() } else { format!("{package}.{name}") }
}

/// The result of looking a name up.
pub(super) enum Lookup {
    Found(Declared),
    /// Declared in a file the looking file does not import.
    NotImported(Declared),
    Unknown,
}

impl<'a> Checker<'a> {
    /// Looks a (possibly dotted) name up from `scope`: in the file's package first, then in each
    /// enclosing package, out to the root. `inventory.Sku` written in package `shop` finds
    /// `shop.inventory.Sku` before `inventory.Sku`.
    pub(super) fn lookup(&self, path: &[ast::Ident], scope: &Scope) -> Lookup {
        let Some((name, written)) = path.split_last() else { return Lookup::Unknown };
        let written: Vec<String> = written.iter().map(|i| i.name.clone()).collect();
        self.lookup_name(&written, &name.name, scope)
    }

    /// [`lookup`](Self::lookup) of the name `name` after the package segments `written`.
    pub(super) fn lookup_name(&self, written: &[String], name: &str, scope: &Scope) -> Lookup {
        let mut hidden = None;
        for n in (0..=scope.package.len()).rev() {
            let candidate: Vec<String> = scope.package[..n].iter().chain(written).cloned().collect();
            if let Some(declared) = self.symbols.get(&symbol_key(&candidate, name)) {
                if scope.visible.contains(&declared.file) {
                    return Lookup::Found(declared.clone());
                }
                hidden.get_or_insert_with(|| declared.clone());
            }
        }
        match hidden {
            Some(declared) => Lookup::NotImported(declared),
            None => Lookup::Unknown,
        }
    }
}
