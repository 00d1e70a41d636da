//! Resolution: written types to model types, through built-ins, declarations and aliases.

use super::scope::{BUILTINS, Lookup, Scope, qualified};
use super::{Checker, Kind};
use crate::ast::TypeRef;
use crate::diagnostic::{Diagnostic, Span};
use crate::model::Ty;

/// The longest array the language accepts (serde's arrays stop at 32).
const MAX_ARRAY_LEN: u64 = 32;

impl<'a> Checker<'a> {
    /// The resolved target of the alias `key`, resolving it (and reporting a cycle) if needed.
    pub(super) fn alias_target(&mut self, key: &(String, String)) -> Option<Ty> {
        if let Some(target) = self.alias_targets.get(key) {
            return Some(target.clone());
        }
        let (alias, scope) = self.aliases.get(key).cloned()?;
        if let Some(start) = self.resolving.iter().position(|k| k == key) {
            let mut chain: Vec<String> = self.resolving[start..].iter().map(|(p, n)| qualified(p, n)).collect();
            chain.push(qualified(&key.0, &key.1));
            let d = Diagnostic::error(
                alias.name.span,
                format!("the type alias `{}` refers to itself", alias.name.name),
            )
            .label(format!("cycle: {}", chain.join(" -> ")))
            .help("an alias must name a type that does not lead back to it; use a struct to build a recursive type");
            self.error(d);
            self.alias_targets.insert(key.clone(), Ty::Error);
            return Some(Ty::Error);
        }
        if self.resolving.len() >= crate::parser::MAX_NESTING {
            // Too deep to follow on the stack; `check_alias_depth` reports the chain. Nothing is
            // recorded: the alias is resolved when its own declaration is checked, from an empty
            // stack, so the chains `check_alias_depth` measures are the real ones whatever the
            // declaration order.
            return Some(Ty::Error);
        }
        self.resolving.push(key.clone());
        let target = self.resolve(&alias.ty, &scope, None);
        self.resolving.pop();
        self.alias_targets.entry(key.clone()).or_insert_with(|| target.clone());
        Some(self.alias_targets[key].clone())
    }

    /// Resolves a written type; unknown names are reported and resolve to [`Ty::Error`], which
    /// every later check accepts, so checking continues without further errors about them. Every
    /// `list` element type is recorded in `lists`, when given, for a later check.
    pub(super) fn resolve(&mut self, ty: &TypeRef, scope: &Scope, mut lists: Option<&mut Vec<(Span, Ty)>>) -> Ty {
        let (path, args, span) = match ty {
            TypeRef::Unit(_) => return Ty::Unit,
            // A misplaced `stream` is reported by `check_stream_places`; a method's own streams are
            // taken off before resolving. Either way what remains is the item type.
            TypeRef::Stream { inner, .. } => return self.resolve(inner, scope, lists),
            TypeRef::Array { element, len, len_span, .. } => {
                let element = self.resolve(element, scope, lists);
                return match len {
                    Some(n) if (1..=MAX_ARRAY_LEN).contains(n) => Ty::Array(Box::new(element), *n),
                    Some(0) => {
                        self.error(Diagnostic::error(*len_span, "an array must have at least one element"));
                        Ty::Error
                    }
                    _ => {
                        self.error(
                            Diagnostic::error(*len_span, format!("arrays can have at most {MAX_ARRAY_LEN} elements"))
                                .help("use `bytes` or `list<T>` for longer sequences"),
                        );
                        Ty::Error
                    }
                };
            }
            TypeRef::Named { path, args, span } => (path, args, *span),
        };
        let name = &path[path.len() - 1];
        let builtin = if path.len() == 1 { BUILTINS.iter().find(|(b, _)| *b == name.name) } else { None };
        let (expected_args, declared) = match builtin {
            Some((_, n)) => (*n, None),
            None => match self.lookup(path, scope) {
                Lookup::Found(d) if d.kind == Kind::Service => {
                    self.error(
                        Diagnostic::error(span, format!("`{}` is a service, not a type", name.name))
                            .secondary(d.span, "the service is declared here"),
                    );
                    return Ty::Error;
                }
                Lookup::Found(d) => (0, Some(d)),
                Lookup::NotImported(d) => {
                    let file = self.sources.path(d.file);
                    let from = self.sources.path(scope.file);
                    let help = match self.import_path(from, file) {
                        Some(import) => format!("add `import \"{import}\";` to `{from}`"),
                        None => format!(
                            "no relative path from `{from}` reaches `{file}`: add its directory as an include \
                             directory and import it from there"
                        ),
                    };
                    self.error(
                        Diagnostic::error(
                            span,
                            format!("`{}` is declared in `{file}`, which this file does not import", name.name),
                        )
                        .secondary(d.span, "declared here")
                        .help(help),
                    );
                    return Ty::Error;
                }
                Lookup::Unknown => {
                    self.unknown_type(path, span, scope);
                    return Ty::Error;
                }
            },
        };
        if args.len() != expected_args {
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            let message = if expected_args == 0 {
                format!("`{}` takes no type arguments", name.name)
            } else {
                format!(
                    "`{}` takes {expected_args} type argument{}, but {} {} given",
                    name.name,
                    plural(expected_args),
                    args.len(),
                    if args.len() == 1 { "was" } else { "were" }
                )
            };
            let usage = match name.name.as_str() {
                "list" => "write `list<T>`",
                "option" => "write `option<T>`",
                "map" => "write `map<K, V>`",
                _ => "",
            };
            let d = Diagnostic::error(span, message);
            self.error(if usage.is_empty() { d } else { d.help(usage) });
            return Ty::Error;
        }
        if let Some(d) = declared {
            return match d.kind {
                Kind::Alias => {
                    // Resolve it now, to report a cycle where the alias is used.
                    self.alias_target(&d.key);
                    Ty::Alias { module: d.module, name: d.rust_name }
                }
                _ => Ty::Named { module: d.module, name: d.rust_name, boxed: false },
            };
        }
        let mut resolved: Vec<Ty> = args.iter().map(|a| self.resolve(a, scope, lists.as_deref_mut())).collect();
        match name.name.as_str() {
            "bool" => Ty::Bool,
            "i8" => Ty::I8,
            "i16" => Ty::I16,
            "i32" => Ty::I32,
            "i64" => Ty::I64,
            "u8" => Ty::U8,
            "u16" => Ty::U16,
            "u32" => Ty::U32,
            "u64" => Ty::U64,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "list" => {
                let element = resolved.remove(0);
                if let Some(lists) = lists {
                    lists.push((args[0].span(), element.clone()));
                }
                Ty::List(Box::new(element))
            }
            "option" => Ty::Option(Box::new(resolved.remove(0))),
            _ => {
                let value = resolved.remove(1);
                let key = resolved.remove(0);
                let hashable = matches!(
                    self.expand(&key),
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
                        | Ty::String
                        | Ty::Bytes
                );
                if !hashable {
                    self.error(
                        Diagnostic::error(args[0].span(), "this type cannot be a map key")
                            .label("not `bool`, an integer, `string` or `bytes`")
                            .help("map keys must be `bool`, an integer type, `string` or `bytes`"),
                    );
                }
                Ty::Map(Box::new(key), Box::new(value))
            }
        }
    }
}
