//! Declarations: registering every type and service name, with the collisions of their Rust
//! names (and of the names services generate), and the attributes of every declaration.

use super::scope::{BUILTINS, qualified, symbol_key};
use super::{Checker, Declared, Kind, Unit, node_key};
use crate::ast::{self, Item};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::Deprecated;
use crate::names::ServiceType;
use std::collections::HashMap;

impl<'a> Checker<'a> {
    /// Registers every type and service name, reporting redefinitions and collisions.
    pub(super) fn declare(&mut self, units: &[Unit<'a>]) {
        // Rust names in each generated module: those of declarations (with the `.tidl` name and
        // where it is declared), and those of the types generated for services (with the service,
        // what the type is, and where the service is declared).
        let mut declared: HashMap<(Vec<String>, String), (String, Span)> = HashMap::new();
        let mut generated: HashMap<(Vec<String>, String), (String, &'static str, Span)> = HashMap::new();
        for unit in units {
            let scope = self.scopes[&unit.file].clone();
            for item in &unit.ast.items {
                let name = item.name();
                let kind = match item {
                    Item::Struct(_) => Kind::Struct,
                    Item::Enum(_) => Kind::Enum,
                    Item::Alias(_) => Kind::Alias,
                    Item::Service(_) => Kind::Service,
                };
                self.check_attributes(
                    &item.meta().attributes,
                    match item {
                        Item::Struct(_) => &["frozen"],
                        Item::Enum(_) => &["open"],
                        _ => &[],
                    },
                );
                let Some(rust_name) = self.type_name(name) else { continue };
                if BUILTINS.iter().any(|(b, _)| *b == name.name) {
                    self.error(
                        Diagnostic::error(
                            name.span,
                            format!("`{}` is a built-in type and cannot be redefined", name.name),
                        )
                        .label("built-in name"),
                    );
                    continue;
                }
                let key = symbol_key(&scope.package, &name.name);
                if let Some(first) = self.symbols.get(&key) {
                    let first = first.span;
                    let what = qualified(&key.0, &key.1);
                    self.error(
                        Diagnostic::error(name.span, format!("`{what}` is already defined"))
                            .label("defined again here")
                            .secondary(first, "first defined here"),
                    );
                    continue;
                }
                // The types a service generates.
                let service_types: Vec<(String, &'static str)> = if kind == Kind::Service {
                    ServiceType::ALL.into_iter().map(|t| (t.name(&rust_name), t.what())).collect()
                } else {
                    Vec::new()
                };
                let module = &scope.module;
                let own = (module.clone(), rust_name.clone());
                // A generated name is only checked against declared ones: two services' generated
                // names are equal only if the services' own names are (no suffix ends another),
                // and that is a clash of declared names.
                let clash = if let Some((other, other_span)) = declared.get(&own) {
                    Some(same_rust_name(name, &rust_name, other, *other_span))
                } else if let Some((service, what, service_span)) = generated.get(&own) {
                    Some(taken_by_service(name, &rust_name, service, what, *service_span))
                } else {
                    service_types.iter().find_map(|(generated_name, what)| {
                        let (other, other_span) = declared.get(&(module.clone(), generated_name.clone()))?;
                        Some(needed_by_service(name, generated_name, what, other, *other_span))
                    })
                };
                if let Some(d) = clash {
                    self.error(d);
                    continue;
                }
                declared.insert(own, (name.name.clone(), name.span));
                for (generated_name, what) in service_types {
                    generated.insert((module.clone(), generated_name), (name.name.clone(), what, name.span));
                }
                self.symbols.insert(
                    key.clone(),
                    Declared {
                        key: key.clone(),
                        rust_name,
                        module: scope.module.clone(),
                        span: name.span,
                        file: unit.file,
                        kind,
                    },
                );
                if let Item::Alias(alias) = item {
                    let rust_name = &self.symbols[&key].rust_name;
                    self.alias_keys.insert(node_key(&scope.module, rust_name), key.clone());
                    self.aliases.insert(key, (alias, scope.clone()));
                }
            }
        }
    }

    /// Reports unknown or malformed attributes. `@deprecated` is allowed everywhere, the
    /// `extra` attributes (without arguments) here too.
    pub(super) fn check_attributes(&mut self, attributes: &[ast::Attribute], extra: &[&str]) {
        let mut seen = false;
        let mut seen_extra: Vec<&str> = Vec::new();
        for attribute in attributes {
            let name = attribute.name.name.as_str();
            if let Some(known) = extra.iter().find(|e| **e == name) {
                if seen_extra.contains(known) {
                    self.error(Diagnostic::error(attribute.span, format!("`@{name}` is given twice")));
                }
                seen_extra.push(known);
                if attribute.args.is_some() {
                    self.error(
                        Diagnostic::error(attribute.span, format!("`@{name}` takes no arguments"))
                            .help(format!("write `@{name}`")),
                    );
                }
                continue;
            }
            if matches!(name, "frozen" | "open" | "idempotent") {
                let what = match name {
                    "frozen" => "a struct",
                    "open" => "an enum",
                    _ => "a method",
                };
                self.error(
                    Diagnostic::error(attribute.name.span, format!("`@{name}` only applies to {what}"))
                        .help("remove it"),
                );
                continue;
            }
            if name != "deprecated" {
                self.error(
                    Diagnostic::error(attribute.name.span, format!("unknown attribute `@{}`", attribute.name.name))
                        .help(
                            "the attributes are `@deprecated(\"why, and what to use instead\")`, `@frozen` on a struct, `@open` on an enum and `@idempotent` on a method",
                        ),
                );
                continue;
            }
            if seen {
                self.error(Diagnostic::error(attribute.span, "`@deprecated` is given twice"));
            }
            seen = true;
            if attribute.args.as_ref().is_some_and(|args| args.len() > 1) {
                self.error(
                    Diagnostic::error(attribute.span, "`@deprecated` takes at most one argument, its note")
                        .help("write `@deprecated(\"use echo2\")`"),
                );
            }
        }
    }

    /// The `@deprecated` of a declaration, field, variant or method.
    pub(super) fn deprecated(meta: &ast::Meta) -> Option<Deprecated> {
        meta.attributes
            .iter()
            .find(|a| a.name.name == "deprecated")
            .map(|a| Deprecated { note: a.args.as_ref().and_then(|args| args.first().cloned()) })
    }
}

/// Two declarations whose names are the same in Rust: `name` (`rust_name` in Rust) and `other`.
fn same_rust_name(name: &ast::Ident, rust_name: &str, other: &str, other_span: Span) -> Diagnostic {
    Diagnostic::error(name.span, format!("`{other}` and `{}` would both be named `{rust_name}` in Rust", name.name))
        .label(format!("also `{rust_name}` in Rust"))
        .secondary(other_span, format!("`{other}` is declared here"))
        .help("rename one of them")
}

/// A declaration whose Rust name is one that `service` generates (its `what`).
fn taken_by_service(name: &ast::Ident, rust_name: &str, service: &str, what: &str, service_span: Span) -> Diagnostic {
    Diagnostic::error(
        name.span,
        format!("the name `{}` is taken by the {what} generated for service `{service}`", name.name),
    )
    .secondary(service_span, format!("service `{service}` generates `{rust_name}`"))
    .help("rename the type or the service")
}

/// A service (`name`) that would generate `generated_name` (its `what`), already declared as `other`.
fn needed_by_service(name: &ast::Ident, generated_name: &str, what: &str, other: &str, other_span: Span) -> Diagnostic {
    Diagnostic::error(
        name.span,
        format!(
            "service `{}` needs the name `{generated_name}` for its {what}, but `{other}` already has it",
            name.name
        ),
    )
    .secondary(other_span, format!("`{other}` is declared here"))
    .help("rename the type or the service")
}
