//! Recursion: types that contain themselves are boxed, types that can only ever contain
//! themselves are reported, and so are lists of types that take no space on the wire.

use super::{Checker, node_key};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::{Decl, DeclKind, Model, Shape, StructDef, Ty};
use std::collections::{HashMap, HashSet};

impl<'a> Checker<'a> {
    /// A `list` of a type that encodes to zero bytes would let a peer claim billions of
    /// elements in a tiny frame; such lists are rejected.
    pub(super) fn check_list_elements(&mut self, model: &Model, lists: &[(Span, Ty)], aliases: &HashMap<String, Ty>) {
        let structs: HashMap<String, &StructDef> = model
            .decls
            .iter()
            .filter_map(|d| match &d.kind {
                DeclKind::Struct(s) => Some((node_key(&d.module, &s.name), s)),
                _ => None,
            })
            .collect();
        for (span, element) in lists {
            if encodes_to_nothing(element, &structs, aliases, &mut HashSet::new()) {
                self.error(
                    Diagnostic::error(*span, "list elements must take up space on the wire")
                        .label("this type encodes to zero bytes")
                        .help(
                            "a peer could claim billions of such elements in a tiny message; \
                             send a count (`u64`) instead",
                        ),
                );
            }
        }
    }

    /// Boxes references that make a type contain itself, and reports types that can only ever
    /// contain themselves (and so can have no value).
    ///
    /// A by-value reference from declaration A to B closes a loop exactly when A and B are in
    /// the same strongly connected component of the "holds by value" graph; one pass of
    /// Tarjan's algorithm finds them all.
    pub(super) fn check_recursion(&mut self, model: &mut Model, aliases: &HashMap<String, Ty>) {
        // Edges: declaration -> declarations it holds by value (not behind a list or map).
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut edges: Vec<Vec<String>> = Vec::new();
        for decl in &model.decls {
            let Some((name, tys)) = contained(decl) else { continue };
            let mut targets = Vec::new();
            for ty in tys {
                by_value_names(ty, &mut targets);
            }
            index.insert(node_key(&decl.module, name), edges.len());
            edges.push(targets);
        }
        let graph: Vec<Vec<usize>> =
            edges.iter().map(|targets| targets.iter().filter_map(|t| index.get(t).copied()).collect()).collect();
        let component = strongly_connected_components(&graph);
        // In a loop: a component of several declarations, or one that holds itself.
        let looped = |node: usize| {
            graph[node].contains(&node) || component.iter().filter(|c| **c == component[node]).count() > 1
        };
        let same_component = |from: &str, to: &str| -> bool {
            match (index.get(from), index.get(to)) {
                (Some(a), Some(b)) => component[*a] == component[*b],
                _ => false,
            }
        };
        for decl in &mut model.decls {
            let module = decl.module.clone();
            let (owner, tys): (String, Vec<&mut Ty>) = match &mut decl.kind {
                DeclKind::Struct(s) => (s.name.clone(), s.fields.iter_mut().map(|f| &mut f.ty).collect()),
                DeclKind::Enum(e) => {
                    (e.name.clone(), e.variants.iter_mut().flat_map(|v| shape_types_mut(&mut v.shape)).collect())
                }
                DeclKind::Alias(a) => (a.name.clone(), vec![&mut a.target]),
                DeclKind::Service(_) => continue,
            };
            let owner = node_key(&module, &owner);
            for ty in tys {
                box_cycles(ty, &owner, &same_component);
            }
        }
        // Which types can have a value at all: a least fixpoint.
        let mut inhabited: HashSet<String> = HashSet::new();
        loop {
            let before = inhabited.len();
            for decl in &model.decls {
                let (name, ok) = match &decl.kind {
                    DeclKind::Struct(s) => (&s.name, s.fields.iter().all(|f| has_value(&f.ty, &inhabited, aliases, 0))),
                    DeclKind::Enum(e) => (
                        &e.name,
                        e.variants.is_empty()
                            || e.variants
                                .iter()
                                .any(|v| shape_types(&v.shape).all(|t| has_value(t, &inhabited, aliases, 0))),
                    ),
                    _ => continue,
                };
                if ok {
                    inhabited.insert(node_key(&decl.module, name));
                }
            }
            if inhabited.len() == before {
                break;
            }
        }
        for decl in &model.decls {
            let name = match &decl.kind {
                DeclKind::Struct(s) => &s.name,
                DeclKind::Enum(e) => &e.name,
                _ => continue,
            };
            let key = node_key(&decl.module, name);
            if !inhabited.contains(&key) && index.get(&key).is_some_and(|n| looped(*n)) {
                let short = decl.tidl_path.rsplit('.').next().unwrap_or(&decl.tidl_path).to_owned();
                let span = self
                    .symbols
                    .values()
                    .find(|d| d.module == decl.module && d.rust_name == *name && d.file == decl.file)
                    .map(|d| d.span);
                if let Some(span) = span {
                    self.error(
                        Diagnostic::error(span, format!("`{short}` can never have a value"))
                            .label("it always contains itself")
                            .help("put the recursive field inside `option<...>` or `list<...>`, or add a variant that does not recurse"),
                    );
                }
            }
        }
    }
}

/// The strongly connected component of every node (Tarjan's algorithm, iterative so a long
/// chain of declarations cannot overflow the stack).
fn strongly_connected_components(graph: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = graph.len();
    let (mut order, mut low, mut component) = (vec![UNSEEN; n], vec![0; n], vec![UNSEEN; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut next_order, mut next_component) = (Vec::new(), 0, 0);
    for root in 0..n {
        if order[root] != UNSEEN {
            continue;
        }
        // Frames: (node, index of the next edge to follow).
        let mut frames = vec![(root, 0)];
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut edge)) = frames.last_mut() {
            if let Some(&next) = graph[node].get(*edge) {
                *edge += 1;
                if order[next] == UNSEEN {
                    order[next] = next_order;
                    low[next] = next_order;
                    next_order += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    frames.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(order[next]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == order[node] {
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component[member] = next_component;
                    if member == node {
                        break;
                    }
                }
                next_component += 1;
            }
        }
    }
    component
}

/// The name and contained types of a struct, enum or alias.
fn contained(decl: &Decl) -> Option<(&String, Vec<&Ty>)> {
    match &decl.kind {
        DeclKind::Struct(s) => Some((&s.name, s.fields.iter().map(|f| &f.ty).collect())),
        DeclKind::Enum(e) => Some((&e.name, e.variants.iter().flat_map(|v| shape_types(&v.shape)).collect())),
        DeclKind::Alias(a) => Some((&a.name, vec![&a.target])),
        DeclKind::Service(_) => None,
    }
}

fn shape_types(shape: &Shape) -> Box<dyn Iterator<Item = &Ty> + '_> {
    match shape {
        Shape::Unit => Box::new(std::iter::empty()),
        Shape::Tuple(types) => Box::new(types.iter()),
        Shape::Struct(fields) => Box::new(fields.iter().map(|f| &f.ty)),
    }
}

fn shape_types_mut(shape: &mut Shape) -> Vec<&mut Ty> {
    match shape {
        Shape::Unit => Vec::new(),
        Shape::Tuple(types) => types.iter_mut().collect(),
        Shape::Struct(fields) => fields.iter_mut().map(|f| &mut f.ty).collect(),
    }
}

/// Keys of declarations held by value in `ty` (through options and arrays, not lists or maps).
fn by_value_names(ty: &Ty, out: &mut Vec<String>) {
    match ty {
        Ty::Named { module, name, .. } | Ty::Alias { module, name, .. } => out.push(node_key(module, name)),
        Ty::Option(inner) | Ty::Array(inner, _) => by_value_names(inner, out),
        _ => {}
    }
}

/// Marks by-value references to structs and enums that lead back to `owner` as boxed. Alias
/// references are never boxed: the alias's own target is.
fn box_cycles(ty: &mut Ty, owner: &str, same_component: &dyn Fn(&str, &str) -> bool) {
    match ty {
        Ty::Named { module, name, boxed } => {
            let key = node_key(module, name);
            *boxed = key == owner || same_component(&key, owner);
        }
        Ty::Option(inner) | Ty::Array(inner, _) => box_cycles(inner, owner, same_component),
        _ => {}
    }
}

/// Whether `ty` can have a value, given the declarations known to; `depth` bounds the walk
/// through aliases (whose chains are bounded anyway).
fn has_value(ty: &Ty, inhabited: &HashSet<String>, aliases: &HashMap<String, Ty>, depth: usize) -> bool {
    match ty {
        Ty::Named { module, name, .. } => inhabited.contains(&node_key(module, name)),
        Ty::Alias { module, name } => {
            depth > crate::parser::MAX_NESTING
                || aliases.get(&node_key(module, name)).is_none_or(|t| has_value(t, inhabited, aliases, depth + 1))
        }
        Ty::Array(inner, _) => has_value(inner, inhabited, aliases, depth + 1),
        _ => true,
    }
}

/// Whether every value of `ty` encodes to zero bytes (`()`, empty structs, arrays of them).
pub(super) fn encodes_to_nothing(
    ty: &Ty,
    structs: &HashMap<String, &StructDef>,
    aliases: &HashMap<String, Ty>,
    visiting: &mut HashSet<String>,
) -> bool {
    match ty {
        Ty::Unit => true,
        Ty::Array(target, _) => encodes_to_nothing(target, structs, aliases, visiting),
        Ty::Alias { module, name } => {
            let key = node_key(module, name);
            match aliases.get(&key) {
                // `visiting` doubles as the depth of the walk, which long alias chains bound.
                Some(target) if visiting.len() <= 2 * crate::parser::MAX_NESTING && visiting.insert(key.clone()) => {
                    let zero = encodes_to_nothing(target, structs, aliases, visiting);
                    visiting.remove(&key);
                    zero
                }
                _ => false,
            }
        }
        Ty::Named { module, name, .. } => {
            let key = node_key(module, name);
            match structs.get(&key) {
                Some(s) if visiting.insert(key.clone()) => {
                    let zero = s.fields.iter().all(|f| encodes_to_nothing(&f.ty, structs, aliases, visiting));
                    visiting.remove(&key);
                    zero
                }
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::strongly_connected_components;

    #[test]
    fn components_group_exactly_the_nodes_on_a_loop() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 3, 4 alone.
        let c = strongly_connected_components(&[vec![1], vec![2], vec![0, 3], vec![3], vec![]]);
        assert!(c[0] == c[1] && c[1] == c[2]);
        assert!(c[3] != c[0] && c[4] != c[0] && c[4] != c[3]);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let chain: Vec<Vec<usize>> =
            (0..200_000).map(|i| if i + 1 < 200_000 { vec![i + 1] } else { vec![0] }).collect();
        let c = strongly_connected_components(&chain);
        assert!(c.iter().all(|x| *x == c[0]));
    }
}
