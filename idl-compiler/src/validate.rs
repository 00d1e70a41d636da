//! Validation: the syntax tree to the [`Model`], reporting every problem found.
//!
//! Each check adds diagnostics and carries on, so one run reports all of a file's errors. The
//! model is only used when there were none.

use crate::ast::{self, Item, TypeRef, VariantShape};
use crate::diagnostic::{Diagnostic, SourceMap, Span, suggest};
use crate::model::{Decl, EnumDef, FieldDef, MethodDef, Model, ServiceDef, Shape, StructDef, Ty, VariantDef};
use heck::{ToSnakeCase, ToUpperCamelCase};
use std::collections::{HashMap, HashSet};

/// Built-in type names and how many type arguments each takes.
const BUILTINS: &[(&str, usize)] = &[
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

/// Names from other languages, and the `.tidl` type they probably mean.
const FOREIGN_NAMES: &[(&str, &str)] = &[
    ("String", "string"),
    ("str", "string"),
    ("Vec", "list"),
    ("HashMap", "map"),
    ("BTreeMap", "map"),
    ("Option", "option"),
    ("int", "i32"),
    ("long", "i64"),
    ("float", "f32"),
    ("double", "f64"),
    ("boolean", "bool"),
    ("usize", "u64"),
    ("isize", "i64"),
];

/// Rust keywords that `r#` can escape.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn", "else", "enum",
    "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move",
    "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Rust words that cannot be names at all, not even as raw identifiers.
const RUST_RESERVED: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Methods of generated `<Service>Client` types; a `.tidl` method may not take these names.
const CLIENT_METHODS: &[&str] = &["new", "timeout", "context", "with_options"];

/// Methods every generated client already has through the standard traits it implements (or
/// that are in the prelude); a method or accessor of the same name would shadow or clash.
const TRAIT_METHODS: &[&str] = &[
    "borrow",
    "borrow_mut",
    "clone",
    "clone_from",
    "clone_into",
    "fmt",
    "from",
    "into",
    "to_owned",
    "try_from",
    "try_into",
    "type_id",
];

/// Methods of `tidl_runtime::Client`; a service's accessor (`client.example()`) may not take these.
const RUNTIME_CLIENT_METHODS: &[&str] = &["call", "dial", "dial_with", "new", "ready", "with_config"];

/// Checks a parsed file and builds its model.
pub(crate) fn validate(file: &ast::File, sources: &SourceMap) -> (Model, Vec<Diagnostic>) {
    let mut checker = Checker { sources, diagnostics: Vec::new(), types: HashMap::new() };
    checker.declare(file);
    let mut decls = Vec::new();
    let mut lists = Vec::new();
    for item in &file.items {
        match item {
            Item::Struct(s) => decls.push(Decl::Struct(checker.struct_def(s, &mut lists))),
            Item::Enum(e) => decls.push(Decl::Enum(checker.enum_def(e, &mut lists))),
            Item::Service(s) => decls.push(Decl::Service(checker.service_def(s, &mut lists))),
        }
    }
    let mut model = Model { decls };
    checker.check_list_elements(&model, &lists);
    checker.check_recursion(file, &mut model);
    mark_error_types(&mut model);
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(Diagnostic::span);
    (model, diagnostics)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Struct,
    Enum,
    Service,
}

/// What a Rust name in the generated module comes from.
#[derive(Debug, Clone)]
enum Origin {
    /// A type or service declared under this `.tidl` name.
    Declared(String),
    /// A type generated for a service.
    Generated { service: String, what: &'static str },
}

/// A declared name.
#[derive(Debug, Clone)]
struct Declared {
    rust_name: String,
    span: Span,
    kind: Kind,
}

struct Checker<'a> {
    sources: &'a SourceMap,
    diagnostics: Vec<Diagnostic>,
    /// Declared types and services by their `.tidl` name.
    types: HashMap<String, Declared>,
}

impl Checker<'_> {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Registers every type and service name, reporting redefinitions and collisions.
    fn declare(&mut self, file: &ast::File) {
        // Rust names in the generated module: what produced each, and where.
        let mut rust_names: HashMap<String, (Origin, Span)> = HashMap::new();
        for item in &file.items {
            let (name, kind) = match item {
                Item::Struct(s) => (&s.name, Kind::Struct),
                Item::Enum(e) => (&e.name, Kind::Enum),
                Item::Service(s) => (&s.name, Kind::Service),
            };
            let Some(rust_name) = self.type_name(name) else { continue };
            if BUILTINS.iter().any(|(b, _)| *b == name.name) {
                self.error(
                    Diagnostic::error(name.span, format!("`{}` is a built-in type and cannot be redefined", name.name))
                        .label("built-in name"),
                );
                continue;
            }
            if let Some(first) = self.types.get(&name.name) {
                let first = first.span;
                self.error(
                    Diagnostic::error(name.span, format!("the name `{}` is defined twice", name.name))
                        .label("redefined here")
                        .secondary(first, "first defined here"),
                );
                continue;
            }
            // This declaration's Rust names: its own, and for a service the generated types.
            let mut generated: Vec<(String, Origin)> = vec![(rust_name.clone(), Origin::Declared(name.name.clone()))];
            if kind == Kind::Service {
                for (suffix, what) in
                    [("Client", "client"), ("Server", "server"), ("ClientExt", "client extension trait")]
                {
                    generated
                        .push((format!("{rust_name}{suffix}"), Origin::Generated { service: name.name.clone(), what }));
                }
            }
            let mut clash = false;
            for (generated_name, origin) in &generated {
                let Some((other, other_span)) = rust_names.get(generated_name) else { continue };
                let d = match (origin, other) {
                    (Origin::Declared(this), Origin::Declared(other)) => Diagnostic::error(
                        name.span,
                        format!("`{other}` and `{this}` would both be named `{generated_name}` in Rust"),
                    )
                    .label(format!("also `{generated_name}` in Rust"))
                    .secondary(*other_span, format!("`{other}` is declared here"))
                    .help("rename one of them"),
                    (Origin::Declared(this), Origin::Generated { service, what }) => Diagnostic::error(
                        name.span,
                        format!("the name `{this}` is taken by the {what} generated for service `{service}`"),
                    )
                    .secondary(*other_span, format!("service `{service}` generates `{generated_name}`"))
                    .help("rename the type or the service"),
                    (Origin::Generated { service, what }, Origin::Declared(other)) => Diagnostic::error(
                        name.span,
                        format!("service `{service}` needs the name `{generated_name}` for its {what}, but `{other}` already has it"),
                    )
                    .secondary(*other_span, format!("`{other}` is declared here"))
                    .help("rename the type or the service"),
                    (Origin::Generated { service, what }, Origin::Generated { service: other, .. }) => Diagnostic::error(
                        name.span,
                        format!("services `{other}` and `{service}` would both generate `{generated_name}` (the {what})"),
                    )
                    .secondary(*other_span, format!("service `{other}` is declared here"))
                    .help("rename one of the services"),
                };
                self.error(d);
                clash = true;
                break;
            }
            if clash {
                continue;
            }
            for (generated_name, origin) in generated {
                rust_names.insert(generated_name, (origin, name.span));
            }
            self.types.insert(name.name.clone(), Declared { rust_name, span: name.span, kind });
        }
    }

    /// The Rust name of a type or service, or `None` (reported) if it cannot have one.
    fn type_name(&mut self, name: &ast::Ident) -> Option<String> {
        if RUST_RESERVED.contains(&name.name.as_str()) {
            self.reserved(name);
            return None;
        }
        let rust = name.name.to_upper_camel_case();
        if rust.is_empty() || rust == "Self" {
            self.reserved(name);
            return None;
        }
        if rust.starts_with(|c: char| c.is_ascii_digit()) {
            self.starts_with_digit(name, &rust);
            return None;
        }
        Some(rust)
    }

    /// The Rust name of a field or method, or `None` (reported) if it cannot have one.
    fn value_name(&mut self, name: &ast::Ident) -> Option<String> {
        if RUST_RESERVED.contains(&name.name.as_str()) {
            self.reserved(name);
            return None;
        }
        let rust = name.name.to_snake_case();
        if rust.is_empty() || RUST_RESERVED.contains(&rust.as_str()) {
            self.reserved(name);
            return None;
        }
        if rust.starts_with(|c: char| c.is_ascii_digit()) {
            self.starts_with_digit(name, &rust);
            return None;
        }
        Some(if RUST_KEYWORDS.contains(&rust.as_str()) { format!("r#{rust}") } else { rust })
    }

    fn starts_with_digit(&mut self, name: &ast::Ident, rust: &str) {
        self.error(
            Diagnostic::error(name.span, format!("`{}` cannot be used as a name", name.name))
                .label(format!("would be `{rust}` in Rust, which starts with a digit"))
                .help("names must start with a letter once leading underscores are dropped"),
        );
    }

    fn reserved(&mut self, name: &ast::Ident) {
        self.error(
            Diagnostic::error(name.span, format!("`{}` cannot be used as a name", name.name))
                .label("reserved in Rust")
                .help("`self`, `Self`, `super`, `crate` and `_` cannot name anything in generated Rust code"),
        );
    }

    fn docs(docs: &[String]) -> Vec<String> {
        docs.to_vec()
    }

    fn fields(&mut self, owner: &str, fields: &[ast::Field], lists: &mut Vec<(Span, Ty)>) -> Vec<FieldDef> {
        let mut out = Vec::new();
        let mut seen: HashMap<String, (String, Span)> = HashMap::new();
        for field in fields {
            let ty = self.resolve(&field.ty, lists);
            let Some(name) = self.value_name(&field.name) else { continue };
            if let Some((first, first_span)) = seen.get(&name) {
                let message = if *first == field.name.name {
                    format!("the field `{}` is defined twice in `{owner}`", field.name.name)
                } else {
                    format!("the fields `{first}` and `{}` would both be named `{name}` in Rust", field.name.name)
                };
                self.error(
                    Diagnostic::error(field.name.span, message)
                        .label("defined again here")
                        .secondary(*first_span, "first defined here"),
                );
                continue;
            }
            seen.insert(name.clone(), (field.name.name.clone(), field.name.span));
            out.push(FieldDef { name, tidl_name: field.name.name.clone(), docs: Self::docs(&field.docs), ty });
        }
        out
    }

    fn struct_def(&mut self, s: &ast::Struct, lists: &mut Vec<(Span, Ty)>) -> StructDef {
        let name = self.rust_type_name(&s.name);
        let fields = self.fields(&s.name.name, &s.fields, lists);
        StructDef { name, docs: Self::docs(&s.docs), fields, is_error: false }
    }

    fn rust_type_name(&self, name: &ast::Ident) -> String {
        self.types.get(&name.name).map_or_else(|| name.name.to_upper_camel_case(), |d| d.rust_name.clone())
    }

    fn enum_def(&mut self, e: &ast::Enum, lists: &mut Vec<(Span, Ty)>) -> EnumDef {
        let name = self.rust_type_name(&e.name);
        let mut variants = Vec::new();
        let mut seen: HashMap<String, (String, Span)> = HashMap::new();
        for v in &e.variants {
            let shape = match &v.shape {
                VariantShape::Unit => Shape::Unit,
                VariantShape::Tuple(types) => Shape::Tuple(types.iter().map(|t| self.resolve(t, lists)).collect()),
                VariantShape::Struct(fields) => {
                    Shape::Struct(self.fields(&format!("{}::{}", e.name.name, v.name.name), fields, lists))
                }
            };
            let Some(vname) = self.type_name(&v.name) else { continue };
            if let Some((first, first_span)) = seen.get(&vname) {
                let message = if *first == v.name.name {
                    format!("the variant `{}` is defined twice in `{}`", v.name.name, e.name.name)
                } else {
                    format!("the variants `{first}` and `{}` would both be named `{vname}` in Rust", v.name.name)
                };
                self.error(
                    Diagnostic::error(v.name.span, message)
                        .label("defined again here")
                        .secondary(*first_span, "first defined here"),
                );
                continue;
            }
            seen.insert(vname.clone(), (v.name.name.clone(), v.name.span));
            variants.push(VariantDef { name: vname, docs: Self::docs(&v.docs), shape });
        }
        EnumDef { name, docs: Self::docs(&e.docs), variants, is_error: false }
    }

    fn service_def(&mut self, s: &ast::Service, lists: &mut Vec<(Span, Ty)>) -> ServiceDef {
        let name = self.rust_type_name(&s.name);
        let accessor = name.to_snake_case();
        if RUNTIME_CLIENT_METHODS.contains(&accessor.as_str()) || TRAIT_METHODS.contains(&accessor.as_str()) {
            self.error(
                Diagnostic::error(
                    s.name.span,
                    format!("a service named `{}` cannot have a client accessor", s.name.name),
                )
                .label(format!("would add `{accessor}()` to `Client`, which already has a method of that name"))
                .help("rename the service"),
            );
        }
        let accessor = if RUST_KEYWORDS.contains(&accessor.as_str()) { format!("r#{accessor}") } else { accessor };
        let mut methods = Vec::new();
        let mut seen: HashMap<String, (String, Span)> = HashMap::new();
        for m in &s.methods {
            let arg = m.arg.as_ref().map_or(Ty::Unit, |t| self.resolve(t, lists));
            let reply = m.reply.as_ref().map_or(Ty::Unit, |t| self.resolve(t, lists));
            let error = m.error.as_ref().map_or(Ty::String, |t| self.resolve(t, lists));
            let Some(mname) = self.value_name(&m.name) else { continue };
            if CLIENT_METHODS.contains(&mname.as_str()) || TRAIT_METHODS.contains(&mname.as_str()) {
                let reserved = CLIENT_METHODS.iter().chain(TRAIT_METHODS).copied().collect::<Vec<_>>().join(", ");
                self.error(
                    Diagnostic::error(m.name.span, format!("a method cannot be named `{}`", m.name.name))
                        .label(format!("`{mname}` is a method of every generated client"))
                        .help(format!("the reserved method names are: {reserved}")),
                );
                continue;
            }
            if let Some((first, first_span)) = seen.get(&mname) {
                let message = if *first == m.name.name {
                    format!("the method `{}` is defined twice in service `{}`", m.name.name, s.name.name)
                } else {
                    format!("the methods `{first}` and `{}` would both be named `{mname}` in Rust", m.name.name)
                };
                self.error(
                    Diagnostic::error(m.name.span, message)
                        .label("defined again here")
                        .secondary(*first_span, "first defined here"),
                );
                continue;
            }
            seen.insert(mname.clone(), (m.name.name.clone(), m.name.span));
            let signature = self.signature(m);
            methods.push(MethodDef {
                name: mname,
                wire_name: m.name.name.clone(),
                docs: Self::docs(&m.docs),
                arg,
                reply,
                error,
                signature,
            });
        }
        ServiceDef { name, wire_name: s.name.name.clone(), accessor, docs: Self::docs(&s.docs), methods }
    }

    /// The method's declaration as written, whitespace normalised: `echo(string) -> string`.
    fn signature(&self, m: &ast::Method) -> String {
        let text = |t: &TypeRef| {
            let span = t.span();
            self.sources.text(span.file)[span.start..span.end].split_whitespace().collect::<Vec<_>>().join(" ")
        };
        let mut out = format!("{}({})", m.name.name, m.arg.as_ref().map(text).unwrap_or_default());
        if let Some(reply) = &m.reply {
            out.push_str(" -> ");
            out.push_str(&text(reply));
        }
        if let Some(error) = &m.error {
            out.push_str(" throws ");
            out.push_str(&text(error));
        }
        out
    }

    /// Resolves a written type; unknown names are reported and resolve to `()` so checking can
    /// continue. Every `list` element type is recorded in `lists` for a later check.
    fn resolve(&mut self, ty: &TypeRef, lists: &mut Vec<(Span, Ty)>) -> Ty {
        let (name, args, span) = match ty {
            TypeRef::Unit(_) => return Ty::Unit,
            TypeRef::Named { name, args, span } => (name, args, *span),
        };
        let builtin = BUILTINS.iter().find(|(b, _)| *b == name.name);
        let expected_args = match (builtin, self.types.get(&name.name)) {
            (Some((_, n)), _) => *n,
            (None, Some(d)) if d.kind == Kind::Service => {
                self.error(
                    Diagnostic::error(name.span, format!("`{}` is a service, not a type", name.name))
                        .secondary(d.span, "the service is declared here"),
                );
                return Ty::Unit;
            }
            (None, Some(_)) => 0,
            (None, None) => {
                self.unknown_type(name);
                return Ty::Unit;
            }
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
            return Ty::Unit;
        }
        let mut resolved: Vec<Ty> = args.iter().map(|a| self.resolve(a, lists)).collect();
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
                lists.push((args[0].span(), element.clone()));
                Ty::List(Box::new(element))
            }
            "option" => Ty::Option(Box::new(resolved.remove(0))),
            "map" => {
                let value = resolved.remove(1);
                let key = resolved.remove(0);
                let hashable = matches!(
                    key,
                    Ty::Bool
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
            _ => {
                let rust_name = self.types.get(&name.name).map_or_else(String::new, |d| d.rust_name.clone());
                Ty::Named { name: rust_name, boxed: false }
            }
        }
    }

    fn unknown_type(&mut self, name: &ast::Ident) {
        let mut d = Diagnostic::error(name.span, format!("unknown type `{}`", name.name));
        let declared: Vec<&str> =
            self.types.iter().filter(|(_, d)| d.kind != Kind::Service).map(|(n, _)| n.as_str()).collect();
        let candidates = BUILTINS.iter().map(|(b, _)| *b).chain(declared);
        if let Some((_, meant)) = FOREIGN_NAMES.iter().find(|(foreign, _)| *foreign == name.name) {
            d = d.label(format!("did you mean `{meant}`?"));
        } else if let Some(meant) = suggest(&name.name, candidates) {
            d = d.label(format!("did you mean `{meant}`?"));
        } else {
            d = d.help(
                "the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, \
                 `bytes`, `list<T>`, `option<T>` and `map<K, V>`; others must be declared with `struct` or `enum`",
            );
        }
        self.error(d);
    }

    /// A `list` of a type that encodes to zero bytes would let a peer claim billions of
    /// elements in a tiny frame; such lists are rejected.
    fn check_list_elements(&mut self, model: &Model, lists: &[(Span, Ty)]) {
        let structs: HashMap<&str, &StructDef> = model
            .decls
            .iter()
            .filter_map(|d| match d {
                Decl::Struct(s) => Some((s.name.as_str(), s)),
                _ => None,
            })
            .collect();
        for (span, element) in lists {
            if encodes_to_nothing(element, &structs, &mut HashSet::new()) {
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

    /// Boxes fields that make a type contain itself, and reports types that can only ever
    /// contain themselves (and so can have no value).
    fn check_recursion(&mut self, file: &ast::File, model: &mut Model) {
        // Edges: type -> types it holds by value (not behind a list or map).
        let mut edges: HashMap<String, Vec<String>> = HashMap::new();
        for decl in &model.decls {
            let (name, tys) = match decl {
                Decl::Struct(s) => (&s.name, s.fields.iter().map(|f| &f.ty).collect::<Vec<_>>()),
                Decl::Enum(e) => (&e.name, e.variants.iter().flat_map(|v| shape_types(&v.shape)).collect()),
                Decl::Service(_) => continue,
            };
            let mut targets = Vec::new();
            for ty in tys {
                by_value_names(ty, &mut targets);
            }
            edges.insert(name.clone(), targets);
        }
        let reaches = |from: &str, to: &str| -> bool {
            let mut stack = vec![from.to_owned()];
            let mut seen = HashSet::new();
            while let Some(n) = stack.pop() {
                for next in edges.get(&n).into_iter().flatten() {
                    if next == to {
                        return true;
                    }
                    if seen.insert(next.clone()) {
                        stack.push(next.clone());
                    }
                }
            }
            false
        };
        for decl in &mut model.decls {
            let (owner, tys): (String, Vec<&mut Ty>) = match decl {
                Decl::Struct(s) => (s.name.clone(), s.fields.iter_mut().map(|f| &mut f.ty).collect()),
                Decl::Enum(e) => {
                    (e.name.clone(), e.variants.iter_mut().flat_map(|v| shape_types_mut(&mut v.shape)).collect())
                }
                Decl::Service(_) => continue,
            };
            for ty in tys {
                box_cycles(ty, &owner, &reaches);
            }
        }
        // Which types can have a value at all: a least fixpoint.
        let mut inhabited: HashSet<String> = HashSet::new();
        loop {
            let before = inhabited.len();
            for decl in &model.decls {
                let ok = match decl {
                    Decl::Struct(s) => s.fields.iter().all(|f| has_value(&f.ty, &inhabited)),
                    Decl::Enum(e) => {
                        e.variants.is_empty()
                            || e.variants.iter().any(|v| shape_types(&v.shape).all(|t| has_value(t, &inhabited)))
                    }
                    Decl::Service(_) => continue,
                };
                if ok && let Decl::Struct(StructDef { name, .. }) | Decl::Enum(EnumDef { name, .. }) = decl {
                    inhabited.insert(name.clone());
                }
            }
            if inhabited.len() == before {
                break;
            }
        }
        for item in &file.items {
            let name = match item {
                Item::Struct(s) => &s.name,
                Item::Enum(e) => &e.name,
                Item::Service(_) => continue,
            };
            let Some(declared) = self.types.get(&name.name) else { continue };
            let rust = declared.rust_name.clone();
            if !inhabited.contains(&rust) && reaches(&rust, &rust) {
                self.error(
                    Diagnostic::error(name.span, format!("`{}` can never have a value", name.name))
                        .label("it always contains itself")
                        .help("put the recursive field inside `option<...>` or `list<...>`, or add a variant that does not recurse"),
                );
            }
        }
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

/// Names of declared types held by value in `ty` (through options, not lists or maps).
fn by_value_names(ty: &Ty, out: &mut Vec<String>) {
    match ty {
        Ty::Named { name, .. } => out.push(name.clone()),
        Ty::Option(inner) => by_value_names(inner, out),
        _ => {}
    }
}

/// Marks by-value references to types that lead back to `owner` as boxed.
fn box_cycles(ty: &mut Ty, owner: &str, reaches: &dyn Fn(&str, &str) -> bool) {
    match ty {
        Ty::Named { name, boxed } => *boxed = name == owner || reaches(name, owner),
        Ty::Option(inner) => box_cycles(inner, owner, reaches),
        _ => {}
    }
}

fn has_value(ty: &Ty, inhabited: &HashSet<String>) -> bool {
    match ty {
        Ty::Named { name, .. } => inhabited.contains(name),
        _ => true,
    }
}

fn encodes_to_nothing<'a>(ty: &'a Ty, structs: &HashMap<&str, &'a StructDef>, visiting: &mut HashSet<&'a str>) -> bool {
    match ty {
        Ty::Unit => true,
        Ty::Named { name, .. } => match structs.get(name.as_str()) {
            Some(s) if visiting.insert(name.as_str()) => {
                let zero = s.fields.iter().all(|f| encodes_to_nothing(&f.ty, structs, visiting));
                visiting.remove(name.as_str());
                zero
            }
            _ => false,
        },
        _ => false,
    }
}

/// Flags structs and enums used as a method's error type, which get a `Display` impl.
fn mark_error_types(model: &mut Model) {
    let errors: HashSet<String> = model
        .decls
        .iter()
        .filter_map(|d| match d {
            Decl::Service(s) => Some(s),
            _ => None,
        })
        .flat_map(|s| s.methods.iter())
        .filter_map(|m| match &m.error {
            Ty::Named { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    for decl in &mut model.decls {
        match decl {
            Decl::Struct(s) => s.is_error = errors.contains(&s.name),
            Decl::Enum(e) => e.is_error = errors.contains(&e.name),
            Decl::Service(_) => {}
        }
    }
}
