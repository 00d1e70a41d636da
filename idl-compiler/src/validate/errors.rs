//! Error types: the structs and enums that methods throw, which get a `Display` impl.

use super::node_key;
use crate::model::{DeclKind, Model, Ty};
use std::collections::{HashMap, HashSet};

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
