//! Validation: the syntax trees of a compilation (several files, linked by imports) to the
//! [`Model`], reporting every problem found.
//!
//! Each check adds diagnostics and carries on, so one run reports all the errors of all the
//! files. The model is only used when there were none.
//!
//! Names are resolved like this: a plain name (`Point`) is looked up in the file's own package,
//! then in each enclosing package (`a.b`, then `a`, then the root); a dotted name (`geo.Point`)
//! is looked up the same way, relative to each of these packages (`a.b.geo.Point`, then
//! `a.geo.Point`, then `geo.Point`). Either way only declarations in the file itself and in the
//! files it imports directly count.

mod aliases;
mod declarations;
mod definitions;
mod errors;
mod hints;
mod naming;
mod packages;
mod recursion;
mod resolution;
mod scope;
mod services;
mod streams;

use crate::ast;
use crate::diagnostic::{Diagnostic, FileId, SourceMap, Span};
use crate::model::{DeclKind, Model, Ty};
use scope::Scope;
use std::collections::HashMap;

/// One parsed file of a compilation, and the files it imports directly.
#[derive(Debug)]
pub(crate) struct Unit<'a> {
    pub(crate) file: FileId,
    pub(crate) ast: &'a ast::File,
    pub(crate) imports: Vec<FileId>,
    /// Whether one of its imports could not be found (and was reported). Unknown names in such a
    /// file are not reported: the missing file probably declares them.
    pub(crate) missing_import: bool,
}

/// Checks every file of a compilation and builds its model. `include_dirs` are the include
/// directories, normalised like the loader's paths, for the imports that errors suggest.
pub(crate) fn validate(units: &[Unit<'_>], sources: &SourceMap, include_dirs: &[String]) -> (Model, Vec<Diagnostic>) {
    let mut checker = Checker {
        sources,
        include_dirs,
        diagnostics: Vec::new(),
        symbols: HashMap::new(),
        scopes: HashMap::new(),
        alias_targets: HashMap::new(),
        alias_keys: HashMap::new(),
        aliases: HashMap::new(),
        resolving: Vec::new(),
        stream_items: Vec::new(),
    };
    let packages = checker.packages(units);
    checker.declare(units);
    let mut decls = Vec::new();
    let mut lists = Vec::new();
    for unit in units {
        checker.check_stream_places(unit.ast);
    }
    for unit in units {
        let scope = checker.scopes[&unit.file].clone();
        for item in &unit.ast.items {
            if let Some(decl) = checker.decl(item, &scope, &mut lists) {
                decls.push(decl);
            }
        }
    }
    checker.check_alias_depth();
    let mut model = Model { decls, packages };
    let aliases: HashMap<String, Ty> = model
        .decls
        .iter()
        .filter_map(|d| match &d.kind {
            DeclKind::Alias(a) => Some((node_key(&d.module, &a.name), a.target.clone())),
            _ => None,
        })
        .collect();
    let zero_sized = recursion::zero_sized_structs(&model, &aliases);
    checker.check_list_elements(&lists, &zero_sized, &aliases);
    checker.check_stream_items(&zero_sized, &aliases);
    checker.check_recursion(&mut model, &aliases);
    errors::mark_error_types(&mut model, &aliases);
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(Diagnostic::span);
    diagnostics.dedup();
    (model, diagnostics)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Struct,
    Enum,
    Alias,
    Service,
}

/// A declared name.
#[derive(Debug, Clone)]
struct Declared {
    /// Its symbol key: package and name as written.
    key: (String, String),
    rust_name: String,
    module: Vec<String>,
    span: Span,
    file: FileId,
    kind: Kind,
}

struct Checker<'a> {
    sources: &'a SourceMap,
    /// Include directories, normalised like the loader's paths.
    include_dirs: &'a [String],
    diagnostics: Vec<Diagnostic>,
    /// Declared names by (package, name), both as written.
    symbols: HashMap<(String, String), Declared>,
    scopes: HashMap<FileId, Scope>,
    /// Resolved alias targets by symbol key.
    alias_targets: HashMap<(String, String), Ty>,
    /// The symbol key of every alias, by the alias's Rust module and name (what `Ty::Alias` holds).
    alias_keys: HashMap<String, (String, String)>,
    /// Every alias, by symbol key, with the scope to resolve it in.
    aliases: HashMap<(String, String), (&'a ast::Alias, Scope)>,
    /// Aliases being resolved, innermost last, to detect cycles.
    resolving: Vec<(String, String)>,
    /// The item types of the methods' streams, where written, for a later check.
    stream_items: Vec<(Span, Ty)>,
}

impl Checker<'_> {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}

/// A key naming a declaration across modules.
fn node_key(module: &[String], name: &str) -> String {
    if module.is_empty() { name.to_owned() } else { format!("{}::{name}", module.join("::")) }
}
