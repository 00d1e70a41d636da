//! Recursion: types that contain themselves are boxed, types that can only ever contain
//! themselves are reported, and so are lists of types that take no space on the wire.

use super::{Checker, node_key};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::{Decl, DeclKind, Model, Shape, Ty};
use std::collections::{HashMap, HashSet};

impl<'a> Checker<'a> {
    /// A `list` of a type that encodes to zero bytes would let a peer claim billions of
    /// elements in a tiny frame; such lists are rejected.
    pub(super) fn check_list_elements(
        &mut self,
        lists: &[(Span, Ty)],
        zero_sized: &HashSet<String>,
        aliases: &HashMap<String, Ty>,
    ) {
        for (span, element) in lists {
            if encodes_to_nothing(element, zero_sized, aliases) {
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
        // Which types can have a value at all.
        let inhabited = inhabited(model, aliases);
        let mut component_sizes: HashMap<usize, usize> = HashMap::new();
        for c in &component {
            *component_sizes.entry(*c).or_default() += 1;
        }
        // In a loop: a component of several declarations, or one that holds itself.
        let looped = |node: usize| graph[node].contains(&node) || component_sizes.get(&component[node]) > Some(&1);
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

/// Follows `ty` through aliases and arrays (a chain of aliases is bounded by the validator, and
/// an array's element type by the parser's nesting limit): the type it comes down to, or `None`
/// if an alias is unknown or the walk goes on past those limits.
fn through_aliases_and_arrays<'t>(mut ty: &'t Ty, aliases: &'t HashMap<String, Ty>) -> Option<&'t Ty> {
    for _ in 0..=4 * crate::parser::MAX_NESTING {
        match ty {
            Ty::Array(inner, _) => ty = inner,
            Ty::Alias { module, name } => ty = aliases.get(&node_key(module, name))?,
            _ => return Some(ty),
        }
    }
    None
}

/// The structs and enums that can have a value at all: a struct once all its fields can, an
/// enum once it has no variants or one whose values all can. A list, map, option or primitive
/// always has a value; an array or alias as its element or target does.
fn inhabited(model: &Model, aliases: &HashMap<String, Ty>) -> HashSet<String> {
    // The declaration a type needs a value of, if any (an unknown alias is reported elsewhere).
    let needs = |ty: &Ty| match through_aliases_and_arrays(ty, aliases) {
        Some(Ty::Named { module, name, .. }) => Some(node_key(module, name)),
        _ => None,
    };
    let nodes: Vec<_> = model
        .decls
        .iter()
        .filter_map(|decl| {
            let (name, groups) = match &decl.kind {
                DeclKind::Struct(s) => (&s.name, vec![s.fields.iter().filter_map(|f| needs(&f.ty)).collect()]),
                DeclKind::Enum(e) if e.variants.is_empty() => (&e.name, vec![Vec::new()]),
                DeclKind::Enum(e) => {
                    (&e.name, e.variants.iter().map(|v| shape_types(&v.shape).filter_map(needs).collect()).collect())
                }
                _ => return None,
            };
            Some((node_key(&decl.module, name), groups))
        })
        .collect();
    least_fixpoint(&nodes)
}

/// The structs every value of which encodes to zero bytes: those whose fields are all `()`,
/// arrays of such, or such structs (an enum always writes its variant).
pub(super) fn zero_sized_structs(model: &Model, aliases: &HashMap<String, Ty>) -> HashSet<String> {
    let nodes: Vec<_> = model
        .decls
        .iter()
        .filter_map(|decl| {
            let DeclKind::Struct(s) = &decl.kind else { return None };
            let mut needs = Vec::new();
            for field in &s.fields {
                match through_aliases_and_arrays(&field.ty, aliases) {
                    Some(Ty::Unit) => {}
                    Some(Ty::Named { module, name, .. }) => needs.push(node_key(module, name)),
                    // A field that takes space: the struct never is zero-sized.
                    _ => return Some((node_key(&decl.module, &s.name), Vec::new())),
                }
            }
            Some((node_key(&decl.module, &s.name), vec![needs]))
        })
        .collect();
    least_fixpoint(&nodes)
}

/// Whether every value of `ty` encodes to zero bytes (`()`, a zero-sized struct, arrays of
/// them), given [`zero_sized_structs`].
pub(super) fn encodes_to_nothing(ty: &Ty, zero_sized: &HashSet<String>, aliases: &HashMap<String, Ty>) -> bool {
    match through_aliases_and_arrays(ty, aliases) {
        Some(Ty::Unit) => true,
        Some(Ty::Named { module, name, .. }) => zero_sized.contains(&node_key(module, name)),
        _ => false,
    }
}

/// A least fixpoint over declarations, each given as its key and groups of keys it needs: a
/// declaration holds once every key of one of its groups holds (a declaration with no groups
/// never does). Solved by counting each group's unmet needs, in time linear in the needs: passes
/// over every declaration until nothing changed took one pass per link of a chain.
fn least_fixpoint(nodes: &[(String, Vec<Vec<String>>)]) -> HashSet<String> {
    let mut unmet: Vec<Vec<usize>> = nodes.iter().map(|(_, groups)| groups.iter().map(Vec::len).collect()).collect();
    let mut waiting: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    let mut ready = Vec::new();
    for (node, (_, groups)) in nodes.iter().enumerate() {
        for (group, needs) in groups.iter().enumerate() {
            if needs.is_empty() {
                ready.push(node);
            }
            for need in needs {
                waiting.entry(need.as_str()).or_default().push((node, group));
            }
        }
    }
    let mut holds = HashSet::new();
    while let Some(node) = ready.pop() {
        let key = &nodes[node].0;
        if !holds.insert(key.clone()) {
            continue;
        }
        for &(other, group) in waiting.get(key.as_str()).into_iter().flatten() {
            unmet[other][group] -= 1;
            if unmet[other][group] == 0 {
                ready.push(other);
            }
        }
    }
    holds
}

#[cfg(test)]
mod tests {
    use super::strongly_connected_components;
    use crate::Config;
    use std::fmt::Write;

    /// `struct {prefix}0 { a: {prefix}1 }` ... up to `{prefix}{links - 1}`, which is `last`.
    fn chain(prefix: &str, links: usize, last: &str) -> String {
        let mut text = String::new();
        for i in 0..links - 1 {
            writeln!(text, "struct {prefix}{i} {{ a: {prefix}{} }}", i + 1).unwrap();
        }
        writeln!(text, "struct {prefix}{} {{ {last} }}", links - 1).unwrap();
        text
    }

    #[test]
    fn a_long_chain_of_structs_is_judged_by_its_last_link() {
        // Zero-sized all the way down: not a list's element type.
        let text = chain("Z", 5_000, "") + "struct Many { zs: list<Z0> }\n";
        let err = Config::checked_text(&text).unwrap_err();
        assert_eq!(err.matches("list elements must take up space on the wire").count(), 1, "{err}");
        // A last link that only contains itself: it, and only it (the others are not in the
        // loop), is reported.
        let err = Config::checked_text(&chain("S", 5_000, "a: S4999")).unwrap_err();
        assert_eq!(err.matches("can never have a value").count(), 1, "{err}");
        assert!(err.contains("`S4999` can never have a value"), "{err}");
        // A last link with a value: every struct of the chain has one.
        assert!(Config::checked_text(&(chain("S", 5_000, "v: u32") + "struct Many { ss: list<S0> }\n")).is_ok());
    }

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
