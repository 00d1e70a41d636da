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

use crate::ast::{self, Item, TypeRef, VariantShape};
use crate::diagnostic::{Diagnostic, FileId, SourceMap, Span, suggest};
use crate::model::{
    AliasDef, Decl, DeclKind, Deprecated, EnumDef, FieldDef, MethodDef, Model, PackageDef, ServiceDef, Shape,
    StructDef, Ty, VariantDef,
};
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

/// The longest array the language accepts (serde's arrays stop at 32).
const MAX_ARRAY_LEN: u64 = 32;

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
    };
    let packages = checker.packages(units);
    checker.declare(units);
    let mut decls = Vec::new();
    let mut lists = Vec::new();
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
    checker.check_list_elements(&model, &lists, &aliases);
    checker.check_recursion(&mut model, &aliases);
    mark_error_types(&mut model, &aliases);
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

/// Where names are looked up from: a file, its package, and the files it can see.
#[derive(Debug, Clone)]
struct Scope {
    file: FileId,
    /// The package's segments as written (empty for no package).
    package: Vec<String>,
    /// The package's Rust module path.
    module: Vec<String>,
    /// The file itself and the files it imports directly.
    visible: HashSet<FileId>,
    /// Whether an import of the file could not be found: unknown names are then not reported.
    missing_import: bool,
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
}

/// How the pieces of the symbol key are written: `a.b` and `Point`.
fn symbol_key(package: &[String], name: &str) -> (String, String) {
    (package.join("."), name.to_owned())
}

/// A qualified `.tidl` name for messages: `a.b.Point`, or `Point` in the root package.
fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() { name.to_owned() } else { format!("{package}.{name}") }
}

impl<'a> Checker<'a> {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Each file's package, checked, and the documentation of every package.
    fn packages(&mut self, units: &[Unit<'a>]) -> Vec<PackageDef> {
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

    /// Registers every type and service name, reporting redefinitions and collisions.
    fn declare(&mut self, units: &[Unit<'a>]) {
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
                self.check_attributes(&item.meta().attributes);
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
                    [("Client", "client"), ("Server", "server"), ("ClientExt", "client extension trait")]
                        .into_iter()
                        .map(|(suffix, what)| (format!("{rust_name}{suffix}"), what))
                        .collect()
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

    /// The Rust name of a field, method or module, or `None` (reported) if it cannot have one.
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

    fn module_name(&mut self, segment: &ast::Ident) -> Option<String> {
        self.value_name(segment)
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

    /// Reports unknown or malformed attributes.
    fn check_attributes(&mut self, attributes: &[ast::Attribute]) {
        let mut seen = false;
        for attribute in attributes {
            if attribute.name.name != "deprecated" {
                self.error(
                    Diagnostic::error(attribute.name.span, format!("unknown attribute `@{}`", attribute.name.name))
                        .help(
                            "the only attribute is `@deprecated`, or `@deprecated(\"why, and what to use instead\")`",
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
    fn deprecated(meta: &ast::Meta) -> Option<Deprecated> {
        meta.attributes
            .iter()
            .find(|a| a.name.name == "deprecated")
            .map(|a| Deprecated { note: a.args.as_ref().and_then(|args| args.first().cloned()) })
    }

    fn decl(&mut self, item: &'a Item, scope: &Scope, lists: &mut Vec<(Span, Ty)>) -> Option<Decl> {
        let name = item.name();
        let key = symbol_key(&scope.package, &name.name);
        // Only the declaration that registered the name is built (not a duplicate).
        let declared = self.symbols.get(&key).filter(|d| d.span == name.span)?.clone();
        let meta = item.meta();
        let kind = match item {
            Item::Struct(s) => {
                let fields = self.fields(&qualified(&key.0, &key.1), &s.fields, scope, lists);
                DeclKind::Struct(StructDef { name: declared.rust_name.clone(), fields, is_error: false })
            }
            Item::Enum(e) => DeclKind::Enum(self.enum_def(e, &declared.rust_name, &key, scope, lists)),
            Item::Alias(a) => {
                let target = self.alias_target(&key).unwrap_or(Ty::Error);
                self.collect_lists(&a.ty, &target, lists);
                DeclKind::Alias(AliasDef { name: declared.rust_name.clone(), target })
            }
            Item::Service(s) => DeclKind::Service(self.service_def(s, &declared.rust_name, scope, lists)),
        };
        Some(Decl {
            file: scope.file,
            module: scope.module.clone(),
            tidl_path: qualified(&key.0, &key.1),
            docs: meta.docs.clone(),
            deprecated: Self::deprecated(meta),
            kind,
        })
    }

    /// Records the `list` element types of an alias target, which was resolved without a
    /// `lists` collector.
    fn collect_lists(&self, written: &TypeRef, resolved: &Ty, lists: &mut Vec<(Span, Ty)>) {
        match (written, resolved) {
            (TypeRef::Named { args, .. }, Ty::List(element)) if args.len() == 1 => {
                lists.push((args[0].span(), (**element).clone()));
                self.collect_lists(&args[0], element, lists);
            }
            (TypeRef::Named { args, .. }, Ty::Option(inner)) if args.len() == 1 => {
                self.collect_lists(&args[0], inner, lists);
            }
            (TypeRef::Named { args, .. }, Ty::Map(key, value)) if args.len() == 2 => {
                self.collect_lists(&args[0], key, lists);
                self.collect_lists(&args[1], value, lists);
            }
            (TypeRef::Array { element: written, .. }, Ty::Array(element, _)) => {
                self.collect_lists(written, element, lists);
            }
            _ => {}
        }
    }

    fn fields(
        &mut self,
        owner: &str,
        fields: &[ast::Field],
        scope: &Scope,
        lists: &mut Vec<(Span, Ty)>,
    ) -> Vec<FieldDef> {
        let mut out = Vec::new();
        let mut seen: HashMap<String, (String, Span)> = HashMap::new();
        for field in fields {
            self.check_attributes(&field.meta.attributes);
            let ty = self.resolve(&field.ty, scope, Some(lists));
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
            out.push(FieldDef {
                name,
                tidl_name: field.name.name.clone(),
                docs: field.meta.docs.clone(),
                deprecated: Self::deprecated(&field.meta),
                ty,
            });
        }
        out
    }

    fn enum_def(
        &mut self,
        e: &ast::Enum,
        rust_name: &str,
        key: &(String, String),
        scope: &Scope,
        lists: &mut Vec<(Span, Ty)>,
    ) -> EnumDef {
        let owner = qualified(&key.0, &key.1);
        let mut variants = Vec::new();
        let mut seen: HashMap<String, (String, Span)> = HashMap::new();
        for v in &e.variants {
            self.check_attributes(&v.meta.attributes);
            let shape = match &v.shape {
                VariantShape::Unit => Shape::Unit,
                VariantShape::Tuple(types) => {
                    Shape::Tuple(types.iter().map(|t| self.resolve(t, scope, Some(lists))).collect())
                }
                VariantShape::Struct(fields) => {
                    // The variant's path, as in `Config::field_attribute`: `shapes.Shape.Rect`.
                    Shape::Struct(self.fields(&format!("{owner}.{}", v.name.name), fields, scope, lists))
                }
            };
            let Some(vname) = self.type_name(&v.name) else { continue };
            if let Some((first, first_span)) = seen.get(&vname) {
                let message = if *first == v.name.name {
                    format!("the variant `{}` is defined twice in `{owner}`", v.name.name)
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
            variants.push(VariantDef {
                name: vname,
                docs: v.meta.docs.clone(),
                deprecated: Self::deprecated(&v.meta),
                shape,
            });
        }
        EnumDef { name: rust_name.to_owned(), variants, is_error: false }
    }

    fn service_def(
        &mut self,
        s: &ast::Service,
        rust_name: &str,
        scope: &Scope,
        lists: &mut Vec<(Span, Ty)>,
    ) -> ServiceDef {
        let accessor = rust_name.to_snake_case();
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
            self.check_attributes(&m.meta.attributes);
            let arg = m.arg.as_ref().map_or(Ty::Unit, |t| self.resolve(t, scope, Some(lists)));
            let reply = m.reply.as_ref().map_or(Ty::Unit, |t| self.resolve(t, scope, Some(lists)));
            let error = m.error.as_ref().map_or(Ty::String, |t| self.resolve(t, scope, Some(lists)));
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
                docs: m.meta.docs.clone(),
                deprecated: Self::deprecated(&m.meta),
                arg,
                reply,
                error,
                signature,
            });
        }
        ServiceDef {
            name: rust_name.to_owned(),
            wire_name: qualified(&scope.package.join("."), &s.name.name),
            accessor,
            methods,
        }
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

    /// The resolved target of the alias `key`, resolving it (and reporting a cycle) if needed.
    fn alias_target(&mut self, key: &(String, String)) -> Option<Ty> {
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

    /// Reports chains of aliases longer than [`MAX_NESTING`](crate::parser::MAX_NESTING): an
    /// alias may lead through at most `MAX_NESTING - 1` others. The alias whose chain (itself and
    /// the aliases it leads through) is exactly `MAX_NESTING + 1` long is reported, so each chain
    /// is reported once, where it crosses the limit, whatever the declaration order.
    fn check_alias_depth(&mut self) {
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
    fn expand(&self, ty: &Ty) -> Ty {
        let mut ty = ty.clone();
        // Alias chains are bounded (MAX_NESTING) and acyclic (cycles resolve to `Error`).
        for _ in 0..=crate::parser::MAX_NESTING {
            let Ty::Alias { module, name } = &ty else { break };
            let key = self.alias_keys.get(&node_key(module, name));
            ty = key.and_then(|key| self.alias_targets.get(key)).cloned().unwrap_or(Ty::Error);
        }
        ty
    }

    /// Looks a (possibly dotted) name up from `scope`: in the file's package first, then in each
    /// enclosing package, out to the root. `inventory.Sku` written in package `shop` finds
    /// `shop.inventory.Sku` before `inventory.Sku`.
    fn lookup(&self, path: &[ast::Ident], scope: &Scope) -> Lookup {
        let Some((name, written)) = path.split_last() else { return Lookup::Unknown };
        let written: Vec<String> = written.iter().map(|i| i.name.clone()).collect();
        self.lookup_name(&written, &name.name, scope)
    }

    /// [`lookup`](Self::lookup) of the name `name` after the package segments `written`.
    fn lookup_name(&self, written: &[String], name: &str, scope: &Scope) -> Lookup {
        let mut hidden = None;
        for n in (0..=scope.package.len()).rev() {
            let candidate: Vec<String> = scope.package[..n].iter().chain(written).cloned().collect();
            if let Some(declared) = self.symbols.get(&symbol_key(&candidate, name)) {
                if scope.visible.contains(&declared.file) {
                    return Lookup::Found(declared.clone());
                }
                hidden.get_or_insert_with(|| declared.clone());
            }
        }
        match hidden {
            Some(declared) => Lookup::NotImported(declared),
            None => Lookup::Unknown,
        }
    }

    /// Resolves a written type; unknown names are reported and resolve to [`Ty::Error`], which
    /// every later check accepts, so checking continues without further errors about them. Every
    /// `list` element type is recorded in `lists`, when given, for a later check.
    fn resolve(&mut self, ty: &TypeRef, scope: &Scope, mut lists: Option<&mut Vec<(Span, Ty)>>) -> Ty {
        let (path, args, span) = match ty {
            TypeRef::Unit(_) => return Ty::Unit,
            TypeRef::Stream { inner, span } => {
                self.error(
                    Diagnostic::error(*span, "streams are not supported yet")
                        .label("`stream` is reserved for streaming methods, which a later version will add")
                        .help("send a `list<T>` for now"),
                );
                return self.resolve(inner, scope, lists);
            }
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

    /// The path to write in an import in the file `from` that the loader resolves to `file`
    /// (both as the compilation names them): relative to the first include directory that holds
    /// `file` (unless a file of the compilation would be found first under that path), else
    /// relative to `from`'s directory. `None` if neither is known to work.
    fn import_path(&self, from: &str, file: &str) -> Option<String> {
        let from_dir = match from.rfind('/') {
            Some(0) => "/",
            Some(i) => &from[..i],
            None => "",
        };
        // The loader tries `from`'s directory first, then each include directory in order.
        let mut earlier = vec![from_dir];
        for dir in self.include_dirs {
            if let Some(import) = path_under(dir, file) {
                let shadowed = earlier.iter().any(|d| {
                    let candidate = crate::loader::normalize(&std::path::Path::new(d).join(&import));
                    candidate != file && self.sources.find(&candidate).is_some()
                });
                if !shadowed {
                    return Some(import);
                }
            }
            earlier.push(dir);
        }
        relative_path(from_dir, file)
    }

    /// The shortest (possibly dotted) name that finds `declared` from `scope`, if any does: its
    /// package's segments after those it shares with the scope's package (`orders.Order` for
    /// `shop.orders.Order` in package `shop`), or more of them if that finds another type.
    fn shortest_name(&self, declared: &Declared, scope: &Scope) -> Option<String> {
        let (package, name) = &declared.key;
        let package: Vec<String> =
            if package.is_empty() { Vec::new() } else { package.split('.').map(str::to_owned).collect() };
        let common = scope.package.iter().zip(&package).take_while(|(a, b)| a == b).count();
        (0..=common).rev().find_map(|start| match self.lookup_name(&package[start..], name, scope) {
            Lookup::Found(found) if found.key == declared.key => {
                Some(package[start..].iter().chain([name]).cloned().collect::<Vec<_>>().join("."))
            }
            _ => None,
        })
    }

    fn unknown_type(&mut self, path: &[ast::Ident], span: Span, scope: &Scope) {
        if scope.missing_import {
            // The missing file probably declares it; its import is reported already.
            return;
        }
        let name = &path[path.len() - 1];
        if path.len() > 1 {
            let written: Vec<String> = path[..path.len() - 1].iter().map(|i| i.name.clone()).collect();
            // The package the name most likely means: the innermost one that exists.
            let package_name = (0..=scope.package.len())
                .rev()
                .map(|n| scope.package[..n].iter().chain(&written).cloned().collect::<Vec<_>>().join("."))
                .find(|p| self.symbols.keys().any(|(known, _)| known == p))
                .unwrap_or_else(|| written.join("."));
            let known = self.symbols.keys().any(|(p, _)| *p == package_name);
            let message = if known {
                format!("package `{package_name}` has no type `{}`", name.name)
            } else {
                format!("there is no package `{package_name}`")
            };
            let mut d = Diagnostic::error(span, message);
            let in_package = self
                .symbols
                .iter()
                .filter(|((p, _), d)| *p == package_name && d.kind != Kind::Service)
                .map(|((_, n), _)| n.as_str());
            if let Some(meant) = suggest(&name.name, in_package) {
                // As written (`orders.Order` for `orders.Ordr`) if that finds it, else in full.
                let found = matches!(
                    self.lookup_name(&written, meant, scope),
                    Lookup::Found(f) | Lookup::NotImported(f) if f.key.0 == package_name
                );
                let package = if found { written.join(".") } else { package_name.clone() };
                d = d.label(format!("did you mean `{package}.{meant}`?"));
            }
            self.error(d);
            return;
        }
        let mut d = Diagnostic::error(span, format!("unknown type `{}`", name.name));
        let visible: Vec<&Declared> =
            self.symbols.values().filter(|d| d.kind != Kind::Service && scope.visible.contains(&d.file)).collect();
        let candidates = BUILTINS.iter().map(|(b, _)| *b).chain(visible.iter().map(|d| d.key.1.as_str()));
        // A close name, written so that it is found from here: a type in a package that the
        // lookup does not search (a sibling's, or one under this file's) needs a dotted name.
        let meant = suggest(&name.name, candidates).and_then(|meant| {
            if BUILTINS.iter().any(|(b, _)| *b == meant) {
                return Some(meant.to_owned());
            }
            visible
                .iter()
                .filter(|d| d.key.1 == meant)
                .filter_map(|d| self.shortest_name(d, scope))
                .min_by(|a, b| (a.len(), a).cmp(&(b.len(), b)))
        });
        if let Some((_, meant)) = FOREIGN_NAMES.iter().find(|(foreign, _)| *foreign == name.name) {
            d = d.label(format!("did you mean `{meant}`?"));
        } else if let Some(meant) = meant {
            d = d.label(format!("did you mean `{meant}`?"));
        } else {
            d = d.help(
                "the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, \
                 `bytes`, `list<T>`, `option<T>`, `map<K, V>` and `[T; N]`; others must be declared with \
                 `struct`, `enum` or `type`",
            );
        }
        self.error(d);
    }

    /// A `list` of a type that encodes to zero bytes would let a peer claim billions of
    /// elements in a tiny frame; such lists are rejected.
    fn check_list_elements(&mut self, model: &Model, lists: &[(Span, Ty)], aliases: &HashMap<String, Ty>) {
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
    fn check_recursion(&mut self, model: &mut Model, aliases: &HashMap<String, Ty>) {
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

/// The result of looking a name up.
enum Lookup {
    Found(Declared),
    /// Declared in a file the looking file does not import.
    NotImported(Declared),
    Unknown,
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

/// `file`'s path relative to the directory `dir` if it is inside it (both normalised like the
/// loader's paths; `""` is the current directory).
fn path_under(dir: &str, file: &str) -> Option<String> {
    let rest = match dir {
        "" => Some(file).filter(|f| !f.starts_with('/') && *f != ".." && !f.starts_with("../")),
        "/" => file.strip_prefix('/'),
        _ => file.strip_prefix(dir).and_then(|rest| rest.strip_prefix('/')),
    };
    rest.filter(|r| !r.is_empty()).map(str::to_owned)
}

/// The path from the directory `dir` to `file` (both normalised like the loader's paths), if it
/// can be worked out without knowing the current directory.
fn relative_path(dir: &str, file: &str) -> Option<String> {
    if file.starts_with('/') && !dir.starts_with('/') {
        // `dir.join(file)` is `file`.
        return Some(file.to_owned());
    }
    if dir.starts_with('/') && !file.starts_with('/') {
        return None;
    }
    let dir: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let target: Vec<&str> = file.split('/').filter(|s| !s.is_empty()).collect();
    let common = dir.iter().zip(&target).take_while(|(a, b)| a == b).count();
    // Going up out of a `..` means knowing the name of the directory it leads to.
    if dir[common..].contains(&"..") {
        return None;
    }
    let ups = std::iter::repeat_n("..", dir.len() - common);
    Some(ups.chain(target[common..].iter().copied()).collect::<Vec<_>>().join("/"))
}

/// A key naming a declaration across modules.
fn node_key(module: &[String], name: &str) -> String {
    if module.is_empty() { name.to_owned() } else { format!("{}::{name}", module.join("::")) }
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

fn encodes_to_nothing(
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

/// Flags structs and enums used as a method's error type, which get a `Display` impl.
fn mark_error_types(model: &mut Model, aliases: &HashMap<String, Ty>) {
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

#[cfg(test)]
mod tests {
    use super::{path_under, relative_path, strongly_connected_components};

    #[test]
    fn import_paths_are_worked_out_lexically_or_not_at_all() {
        assert_eq!(relative_path("app", "lib/point.tidl").as_deref(), Some("../lib/point.tidl"));
        assert_eq!(relative_path("", "lib/point.tidl").as_deref(), Some("lib/point.tidl"));
        assert_eq!(relative_path("../other", "../inc/b.tidl").as_deref(), Some("../inc/b.tidl"));
        assert_eq!(relative_path("/a/b", "/a/c/d.tidl").as_deref(), Some("../c/d.tidl"));
        assert_eq!(relative_path("x", "/abs/d.tidl").as_deref(), Some("/abs/d.tidl"));
        // Up from `..` or from `/` to a relative path needs the current directory's name.
        assert_eq!(relative_path("../other", "inc/b.tidl"), None);
        assert_eq!(relative_path("/a", "inc/b.tidl"), None);

        assert_eq!(path_under("inc", "inc/sub/b.tidl").as_deref(), Some("sub/b.tidl"));
        assert_eq!(path_under("inc", "include/b.tidl"), None);
        assert_eq!(path_under("", "b.tidl").as_deref(), Some("b.tidl"));
        assert_eq!(path_under("", "../b.tidl"), None);
        assert_eq!(path_under("/", "/b.tidl").as_deref(), Some("b.tidl"));
        assert_eq!(path_under("../v", "../v/b.tidl").as_deref(), Some("b.tidl"));
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
