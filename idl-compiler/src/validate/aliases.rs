//! Aliases: the length of alias chains, and what an alias stands for.

use super::{Checker, node_key};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::Ty;
use std::collections::HashMap;

impl<'a> Checker<'a> {
    /// Reports chains of aliases longer than [`MAX_NESTING`](crate::parser::MAX_NESTING): an
    /// alias may lead through at most `MAX_NESTING - 1` others. The alias whose chain (itself and
    /// the aliases it leads through) is exactly `MAX_NESTING + 1` long is reported, so each chain
    /// is reported once, where it crosses the limit, whatever the declaration order.
    pub(super) fn check_alias_depth(&mut self) {
        let max = crate::parser::MAX_NESTING;
        let by_node = &self.alias_keys;
        let mut edges: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
        for (key, target) in &self.alias_targets {
            let mut refs = Vec::new();
            alias_refs(target, &mut refs);
            edges.insert(key.clone(), refs.iter().filter_map(|r| by_node.get(r).cloned()).collect());
        }
        // Longest chain below each alias, by an iterative post-order walk (chains are acyclic:
        // a cycle resolved to `Error`).
        let mut depth: HashMap<(String, String), usize> = HashMap::new();
        let mut keys: Vec<&(String, String)> = edges.keys().collect();
        keys.sort();
        for root in keys {
            let mut stack = vec![(root.clone(), false)];
            while let Some((key, expanded)) = stack.pop() {
                if depth.contains_key(&key) {
                    continue;
                }
                let below = edges.get(&key).map(Vec::as_slice).unwrap_or_default();
                if expanded {
                    let d = 1 + below.iter().filter_map(|b| depth.get(b)).max().copied().unwrap_or(0);
                    depth.insert(key, d);
                } else {
                    stack.push((key.clone(), true));
                    stack.extend(below.iter().filter(|b| !depth.contains_key(*b)).map(|b| (b.clone(), false)));
                }
            }
        }
        let mut deep: Vec<(Span, String)> = depth
            .iter()
            .filter(|(_, d)| **d == max + 1)
            .filter_map(|(key, _)| self.aliases.get(key).map(|(alias, _)| (alias.name.span, alias.name.name.clone())))
            .collect();
        deep.sort();
        for (span, name) in deep {
            self.error(
                Diagnostic::error(span, format!("the type alias `{name}` is too deeply nested"))
                    .label(format!("it leads through {max} other aliases"))
                    .help(format!(
                        "an alias may lead through at most {} others; refer to a type further down directly",
                        max - 1
                    )),
            );
        }
    }

    /// `ty` with aliases at its top replaced by what they stand for.
    pub(super) fn expand(&self, ty: &Ty) -> Ty {
        let mut ty = ty.clone();
        // Alias chains are bounded (MAX_NESTING) and acyclic (cycles resolve to `Error`).
        for _ in 0..=crate::parser::MAX_NESTING {
            let Ty::Alias { module, name } = &ty else { break };
            let key = self.alias_keys.get(&node_key(module, name));
            ty = key.and_then(|key| self.alias_targets.get(key)).cloned().unwrap_or(Ty::Error);
        }
        ty
    }
}

/// Node keys of every alias `ty` mentions, anywhere in it.
fn alias_refs(ty: &Ty, out: &mut Vec<String>) {
    match ty {
        Ty::Alias { module, name } => out.push(node_key(module, name)),
        Ty::List(inner) | Ty::Option(inner) | Ty::Array(inner, _) => alias_refs(inner, out),
        Ty::Map(key, value) => {
            alias_refs(key, out);
            alias_refs(value, out);
        }
        _ => {}
    }
}
