//! Packages: each file's `package` declaration, checked, its Rust module, and the scope the
//! file's names are looked up from.

use super::scope::Scope;
use super::{Checker, Unit};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::PackageDef;
use std::collections::HashMap;

impl<'a> Checker<'a> {
    /// Each file's package, checked, and the documentation of every package.
    pub(super) fn packages(&mut self, units: &[Unit<'a>]) -> Vec<PackageDef> {
        let mut defs: Vec<PackageDef> = Vec::new();
        // Rust module paths, and the package that first produced each.
        let mut modules: HashMap<Vec<String>, (String, Span)> = HashMap::new();
        for unit in units {
            let mut package = Vec::new();
            let mut module = Vec::new();
            for (i, decl) in unit.ast.packages.iter().enumerate() {
                if i > 0 {
                    let first = &unit.ast.packages[0];
                    self.error(
                        Diagnostic::error(decl.span, "a file can only have one `package` declaration")
                            .secondary(first.span, "the file's package is declared here"),
                    );
                    continue;
                }
                if decl.late {
                    self.error(
                        Diagnostic::error(decl.span, "`package` must come before every import and declaration")
                            .help("move it to the top of the file"),
                    );
                }
                for attribute in &decl.meta.attributes {
                    self.error(Diagnostic::error(attribute.span, "a package cannot have attributes"));
                }
                let names: Vec<Option<String>> = decl.path.iter().map(|segment| self.module_name(segment)).collect();
                if names.iter().any(Option::is_none) {
                    continue;
                }
                package = decl.path.iter().map(|s| s.name.clone()).collect();
                module = names.into_iter().flatten().collect();
                let tidl_name = package.join(".");
                match modules.get(&module) {
                    Some((other, other_span)) if *other != tidl_name => {
                        self.error(
                            Diagnostic::error(
                                decl.span,
                                format!(
                                    "packages `{other}` and `{tidl_name}` would both be the Rust module `{}`",
                                    module.join("::")
                                ),
                            )
                            .secondary(*other_span, format!("`{other}` is declared here"))
                            .help("rename one of the packages"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        modules.insert(module.clone(), (tidl_name.clone(), decl.span));
                    }
                }
                match defs.iter_mut().find(|d| d.module == module) {
                    Some(def) if def.docs.is_empty() => def.docs.clone_from(&decl.meta.docs),
                    Some(_) => {}
                    None => defs.push(PackageDef { module: module.clone(), tidl_name, docs: decl.meta.docs.clone() }),
                }
            }
            let visible = std::iter::once(unit.file).chain(unit.imports.iter().copied()).collect();
            self.scopes.insert(
                unit.file,
                Scope { file: unit.file, package, module, visible, missing_import: unit.missing_import },
            );
        }
        defs
    }
}
