//! `tidl list` and `tidl describe`: a server's services, methods and types, written as `.tidl`
//! declarations with their doc comments (types by their full names: `shop.Order`).

use super::remote::{self, Cancel, Exit, Out};
use super::{DescribeArgs, Io, ListArgs, OK, SchemaArgs, TlsArgs, USAGE};
use crate::diagnostic::suggest;
use crate::dynamic::{Schema, Unit};
use crate::model::{Decl, DeclKind, Deprecated, FieldDef, Literal, MethodDef, MethodKind, ServiceDef, Shape, Ty};
use std::fmt::Write as _;

/// `tidl list`: every service (or the one named), with its methods.
pub(super) async fn list(io: Io<'_>, args: ListArgs, mut cancel: Cancel<'_>) -> u8 {
    let mut out = Out { stdout: io.stdout, stderr: io.stderr };
    let schema = match fetch(&mut out, &mut cancel, &args.addr, &args.tls, &args.schema).await {
        Ok(schema) => schema,
        Err(exit) => return exit,
    };
    let services: Vec<_> =
        schema.services().filter(|(_, _, s)| args.service.as_ref().is_none_or(|name| s.wire_name == *name)).collect();
    if let Some(name) = &args.service
        && services.is_empty()
    {
        return unknown(&mut out, &schema, name, "service");
    }
    let mut text = String::new();
    for (i, (unit, decl, service)) in services.into_iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        service_block(&mut text, unit, decl, service, &service.methods.iter().collect::<Vec<_>>(), false);
    }
    let _ = out.stdout.write_all(super::remote::printable(&text).as_bytes());
    OK
}

/// `tidl describe`: a method, service or type, then every type it uses.
pub(super) async fn describe(io: Io<'_>, args: DescribeArgs, mut cancel: Cancel<'_>) -> u8 {
    let mut out = Out { stdout: io.stdout, stderr: io.stderr };
    let schema = match fetch(&mut out, &mut cancel, &args.addr, &args.tls, &args.schema).await {
        Ok(schema) => schema,
        Err(exit) => return exit,
    };
    let name = args.name.as_str();
    let mut text = String::new();
    let mut used = Vec::new();
    let unit;
    if let Ok(method) = schema.method(name) {
        unit = method.unit;
        let decl = schema.services().find(|(_, _, s)| std::ptr::eq(*s, method.service)).map(|(_, d, _)| d);
        if let Some(decl) = decl {
            service_block(&mut text, unit, decl, method.service, &[method.method], true);
        }
        used.extend([&method.method.arg, &method.method.reply, &method.method.error]);
    } else if let Some((u, decl, service)) = schema.services().find(|(_, _, s)| s.wire_name == name) {
        unit = u;
        let methods: Vec<&MethodDef> = service.methods.iter().collect();
        service_block(&mut text, unit, decl, service, &methods, true);
        used.extend(service.methods.iter().flat_map(|m| [&m.arg, &m.reply, &m.error]));
    } else if let Some((u, decl)) = schema
        .units()
        .find_map(|u| u.model.decls.iter().find(|d| d.tidl_path == name && !is_service(d)).map(|d| (u, d)))
    {
        unit = u;
        let ty = named(decl);
        used.push(&ty);
        return finish(&mut out, unit, &used, String::new());
    } else {
        return unknown(&mut out, &schema, name, "method, service or type");
    }
    finish(&mut out, unit, &used, text)
}

/// Writes `text`, then the declarations of every type `roots` use.
fn finish(out: &mut Out<'_>, unit: &Unit, roots: &[&Ty], mut text: String) -> u8 {
    for decl in used_types(unit, roots) {
        if !text.is_empty() {
            text.push('\n');
        }
        declaration(&mut text, unit, decl);
    }
    let _ = out.stdout.write_all(super::remote::printable(&text).as_bytes());
    OK
}

/// The schema: the files given, or the server's.
async fn fetch(
    out: &mut Out<'_>,
    cancel: &mut Cancel<'_>,
    addr: &str,
    tls: &TlsArgs,
    args: &SchemaArgs,
) -> Result<Schema, Exit> {
    if !args.schema.is_empty() {
        return remote::from_files(out, args);
    }
    let client = remote::connect(out, cancel, addr, tls, None).await?;
    remote::schema(out, cancel, args, &client, addr, remote::SCHEMA_TIMEOUT).await
}

/// A usage error for a name that is not there, with the closest there is.
fn unknown(out: &mut Out<'_>, schema: &Schema, name: &str, what: &str) -> u8 {
    let mut names: Vec<String> = Vec::new();
    for (_, _, s) in schema.services() {
        names.push(s.wire_name.clone());
        names.extend(s.methods.iter().map(|m| format!("{}.{}", s.wire_name, m.wire_name)));
    }
    if what != "service" {
        names.extend(
            schema.units().flat_map(|u| u.model.decls.iter().filter(|d| !is_service(d)).map(|d| d.tidl_path.clone())),
        );
    }
    let mut message = format!("error: there is no {what} `{name}`");
    if let Some(near) = suggest(name, names.iter().map(String::as_str)) {
        let _ = write!(message, "; did you mean `{near}`?");
    }
    let services: Vec<&str> = schema.services().map(|(_, _, s)| s.wire_name.as_str()).collect();
    let _ = write!(message, " The services are: {}", services.join(", "));
    let _ = writeln!(out.stderr, "{message}");
    USAGE
}

fn is_service(decl: &Decl) -> bool {
    matches!(decl.kind, DeclKind::Service(_))
}

/// A reference to the struct, enum or alias `decl` declares.
fn named(decl: &Decl) -> Ty {
    let name = match &decl.kind {
        DeclKind::Struct(s) => s.name.clone(),
        DeclKind::Enum(e) => e.name.clone(),
        DeclKind::Alias(a) => return Ty::Alias { module: decl.module.clone(), name: a.name.clone() },
        DeclKind::Service(_) => String::new(),
    };
    Ty::Named { module: decl.module.clone(), name, boxed: false }
}

/// A service with `methods`, as declared; with `full`, types by their full names (as `describe`
/// lists them after), else as written in the method's declaration.
fn service_block(
    text: &mut String,
    unit: &Unit,
    decl: &Decl,
    service: &ServiceDef,
    methods: &[&MethodDef],
    full: bool,
) {
    docs(text, &decl.docs, "");
    deprecated(text, decl.deprecated.as_ref(), "");
    let _ = writeln!(text, "service {} {{", service.wire_name);
    for m in methods {
        docs(text, &m.docs, "    ");
        deprecated(text, m.deprecated.as_ref(), "    ");
        if m.idempotent {
            text.push_str("    @idempotent\n");
        }
        let signature = if full { signature(unit, m) } else { m.signature.clone() };
        let _ = writeln!(text, "    rpc {signature};");
    }
    text.push_str("}\n");
}

/// A method's signature with types by their full names.
fn signature(unit: &Unit, m: &MethodDef) -> String {
    let stream = |yes: bool| if yes { "stream " } else { "" };
    let (streams_in, streams_out) = match m.kind {
        MethodKind::Unary => (false, false),
        MethodKind::ServerStreaming => (false, true),
        MethodKind::ClientStreaming => (true, false),
        MethodKind::Bidi => (true, true),
    };
    let arg = if m.arg == Ty::Unit && !streams_in { String::new() } else { unit.type_name(&m.arg) };
    let mut out = format!("{}({}{arg})", m.wire_name, stream(streams_in));
    if streams_out || m.reply != Ty::Unit {
        let _ = write!(out, " -> {}{}", stream(streams_out), unit.type_name(&m.reply));
    }
    if m.error != Ty::String {
        let _ = write!(out, " throws {}", unit.type_name(&m.error));
    }
    out
}

/// The declarations `roots` use, each once, in the order first met (each walked before the
/// next type after it). Walked with a stack of its own: a chain of declarations, each holding
/// the next, is as long as the schema a server sends makes it.
fn used_types<'u>(unit: &'u Unit, roots: &[&'u Ty]) -> Vec<&'u Decl> {
    /// The declarations `ty` names, in order.
    fn named_in<'u>(unit: &'u Unit, ty: &'u Ty, met: &mut Vec<&'u Decl>) {
        match ty {
            Ty::List(e) | Ty::Option(e) | Ty::Array(e, _) => named_in(unit, e, met),
            Ty::Map(k, v) => {
                named_in(unit, k, met);
                named_in(unit, v, met);
            }
            Ty::Named { module, name, .. } | Ty::Alias { module, name } => met.extend(unit.decl(module, name)),
            _ => {}
        }
    }
    /// The declarations the types of `decl` name, in order.
    fn named_by<'u>(unit: &'u Unit, decl: &'u Decl) -> Vec<&'u Decl> {
        let mut met = Vec::new();
        match &decl.kind {
            DeclKind::Struct(s) => s.fields.iter().for_each(|f| named_in(unit, &f.ty, &mut met)),
            DeclKind::Enum(e) => {
                for v in &e.variants {
                    match &v.shape {
                        Shape::Unit => {}
                        Shape::Tuple(types) => types.iter().for_each(|t| named_in(unit, t, &mut met)),
                        Shape::Struct(fields) => fields.iter().for_each(|f| named_in(unit, &f.ty, &mut met)),
                    }
                }
            }
            DeclKind::Alias(a) => named_in(unit, &a.target, &mut met),
            DeclKind::Service(_) => {}
        }
        met
    }
    let mut met = Vec::new();
    for ty in roots {
        named_in(unit, ty, &mut met);
    }
    let mut seen: Vec<&'u Decl> = Vec::new();
    let mut known: std::collections::HashSet<*const Decl> = std::collections::HashSet::new();
    let mut stack = vec![met.into_iter()];
    while let Some(walk) = stack.last_mut() {
        let Some(decl) = walk.next() else {
            stack.pop();
            continue;
        };
        if known.insert(std::ptr::from_ref(decl)) {
            seen.push(decl);
            stack.push(named_by(unit, decl).into_iter());
        }
    }
    seen
}

/// A struct, enum or alias as declared, with its full name.
fn declaration(text: &mut String, unit: &Unit, decl: &Decl) {
    docs(text, &decl.docs, "");
    deprecated(text, decl.deprecated.as_ref(), "");
    let name = &decl.tidl_path;
    match &decl.kind {
        DeclKind::Struct(s) => {
            if s.frozen {
                text.push_str("@frozen\n");
            }
            if s.fields.is_empty() {
                let _ = writeln!(text, "struct {name} {{}}");
                return;
            }
            let _ = writeln!(text, "struct {name} {{");
            for f in &s.fields {
                field(text, unit, f, "    ");
            }
            text.push_str("}\n");
        }
        DeclKind::Enum(e) => {
            if e.open {
                text.push_str("@open\n");
            }
            let _ = writeln!(text, "enum {name} {{");
            for v in &e.variants {
                docs(text, &v.docs, "    ");
                deprecated(text, v.deprecated.as_ref(), "    ");
                let _ = match &v.shape {
                    Shape::Unit => writeln!(text, "    {},", v.name),
                    Shape::Tuple(types) => {
                        let types: Vec<String> = types.iter().map(|t| unit.type_name(t)).collect();
                        writeln!(text, "    {}({}),", v.name, types.join(", "))
                    }
                    Shape::Struct(fields) => {
                        let _ = writeln!(text, "    {} {{", v.name);
                        for f in fields {
                            field(text, unit, f, "        ");
                        }
                        writeln!(text, "    }},")
                    }
                };
            }
            text.push_str("}\n");
        }
        DeclKind::Alias(a) => {
            let _ = writeln!(text, "type {name} = {};", unit.type_name(&a.target));
        }
        DeclKind::Service(_) => {}
    }
}

fn field(text: &mut String, unit: &Unit, f: &FieldDef, indent: &str) {
    docs(text, &f.docs, indent);
    deprecated(text, f.deprecated.as_ref(), indent);
    let _ = write!(text, "{indent}{}: {}", f.tidl_name, unit.type_name(&f.ty));
    if let Some(default) = f.default.as_ref().filter(|d| **d != Literal::None) {
        let _ = write!(text, " = {default}");
    }
    text.push_str(",\n");
}

fn docs(text: &mut String, lines: &[String], indent: &str) {
    for line in lines {
        let _ = writeln!(text, "{indent}///{line}");
    }
}

fn deprecated(text: &mut String, deprecated: Option<&Deprecated>, indent: &str) {
    match deprecated {
        None => {}
        Some(Deprecated { note: None }) => {
            let _ = writeln!(text, "{indent}@deprecated");
        }
        Some(Deprecated { note: Some(note) }) => {
            let _ = writeln!(text, "{indent}@deprecated({note:?})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;
    use crate::dynamic::Schema;
    use std::fmt::Write;

    fn decls_used(text: &str) -> Vec<String> {
        let schema = Schema::from_files(&[Source { path: "t.tidl", text }]).unwrap();
        let (unit, _, service) = schema.services().next().unwrap();
        let roots: Vec<&Ty> = service.methods.iter().map(|m| &m.arg).collect();
        used_types(unit, &roots).iter().map(|d| d.tidl_path.clone()).collect()
    }

    #[test]
    fn types_are_listed_once_in_the_order_first_met_each_walked_before_the_next() {
        let used = decls_used(
            "struct A { b: B, d: D, again: B }\nstruct B { c: C }\nstruct C { v: u32 }\nstruct D { a: option<A> }\n\
             service S { rpc get(A) -> u32; }",
        );
        assert_eq!(used, ["A", "B", "C", "D"]);
    }

    #[test]
    fn a_chain_of_twenty_thousand_types_is_walked_on_a_small_stack() {
        let mut text = String::new();
        for i in 0..19_999 {
            writeln!(text, "struct S{i} {{ a: S{} }}", i + 1).unwrap();
        }
        text.push_str("struct S19999 { v: u32 }\nservice Chain { rpc get(S0) -> u32; }\n");
        let schema = Schema::from_files(&[Source { path: "t.tidl", text: &text }]).unwrap();
        let used = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn_scoped(scope, || {
                    let (unit, _, service) = schema.services().next().unwrap();
                    used_types(unit, &[&service.methods[0].arg]).len()
                })
                .unwrap()
                .join()
                .expect("walking the chain overflowed its stack")
        });
        assert_eq!(used, 20_000);
    }
}
