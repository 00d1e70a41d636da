//! Error types: the structs and enums that methods throw, which get a `Display` impl, and a
//! warning for thrown types that can have none.

use super::{Checker, node_key};
use crate::ast::TypeRef;
use crate::diagnostic::Diagnostic;
use crate::model::{DeclKind, Model, Ty};
use std::collections::{HashMap, HashSet};

impl Checker<'_> {
    /// Warns when a method throws a type without `Display` (`()`, `bytes`, a list, map, option
    /// or array): `tidl_runtime::Error<E>` is a `std::error::Error` only when `E: Display`, so
    /// such a call's error cannot go through `?` into `Box<dyn Error>`. Structs and enums get a
    /// `Display`; Rust's orphan rule forbids one for `Vec` and the like.
    pub(super) fn check_error_type(&mut self, written: &TypeRef, resolved: &Ty) {
        let displayable = matches!(
            self.expand(resolved),
            Ty::Error
                | Ty::Bool
                | Ty::I8
                | Ty::I16
                | Ty::I32
                | Ty::I64
                | Ty::U8
                | Ty::U16
                | Ty::U32
                | Ty::U64
                | Ty::F32
                | Ty::F64
                | Ty::String
                | Ty::Named { .. }
        );
        if displayable {
            return;
        }
        let span = written.span();
        let text = self.sources.text(span.file)[span.start..span.end].split_whitespace().collect::<Vec<_>>().join(" ");
        self.error(
            Diagnostic::warning(span, format!("`{text}` cannot be shown as an error message"))
                .label("has no `Display`, so the call's `tidl_runtime::Error` is not a `std::error::Error`")
                .help(
                    "`?` cannot turn the call's error into a `Box<dyn std::error::Error>`; throw a `struct` or an \
                     `enum` (they get a `Display`), a `string` or a number",
                ),
        );
    }
}

/// Flags structs and enums used as a method's error type, which get a `Display` impl.
pub(super) fn mark_error_types(model: &mut Model, aliases: &HashMap<String, Ty>) {
    let expand = |ty: &Ty| -> Option<String> {
        let mut ty = ty;
        for _ in 0..=crate::parser::MAX_NESTING {
            match ty {
                Ty::Named { module, name, .. } => return Some(node_key(module, name)),
                Ty::Alias { module, name } => ty = aliases.get(&node_key(module, name))?,
                _ => return None,
            }
        }
        None
    };
    let errors: HashSet<String> = model
        .decls
        .iter()
        .filter_map(|d| match &d.kind {
            DeclKind::Service(s) => Some(s),
            _ => None,
        })
        .flat_map(|s| s.methods.iter())
        .filter_map(|m| expand(&m.error))
        .collect();
    for decl in &mut model.decls {
        let module = decl.module.clone();
        match &mut decl.kind {
            DeclKind::Struct(s) => s.is_error = errors.contains(&node_key(&module, &s.name)),
            DeclKind::Enum(e) => e.is_error = errors.contains(&node_key(&module, &e.name)),
            _ => {}
        }
    }
}
