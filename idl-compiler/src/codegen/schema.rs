//! Each method's schema descriptor and fingerprint (docs/PROTOCOL.md, "Schemas and
//! fingerprints"): the canonical wire shape of its argument, reply and error, without names,
//! which the runtime sends to the server once per connection so that peers built from
//! incompatible schemas refuse each other's calls instead of misreading them.
//!
//! The format, read by `tidl_runtime`'s `schema.rs`: a format byte (1), the method kind
//! (0 unary, 1 server streaming, 2 client streaming, 3 bidirectional), the three root types, then
//! the structs and enums they use, numbered in the order they are first met.
//!
//! - type: a tag byte: 0 `()`, 1 bool, 2-5 i8-i64, 6-9 u8-u64, 10 f32, 11 f64, 12 string, 13
//!   bytes; 14 list T; 15 map K V; 16 option T; 17 array (LEB128 length) T; 18 a definition
//!   (LEB128 index).
//! - definition: 0x20 frozen struct (count, types), 0x21 evolvable struct (count, then per field a
//!   has-default byte and its type), 0x22 closed enum / 0x23 open enum (count, then per variant
//!   its count of values and their types).

use crate::model::{Decl, DeclKind, MethodDef, MethodKind, Model, Shape, Ty};
use std::collections::HashMap;

/// The structs, enums and aliases of a model, by module and name.
pub(super) struct Schemas<'m> {
    decls: HashMap<String, &'m Decl>,
}

impl<'m> Schemas<'m> {
    pub(super) fn new(model: &'m Model) -> Schemas<'m> {
        let decls = model
            .decls
            .iter()
            .filter_map(|d| {
                let name = match &d.kind {
                    DeclKind::Struct(s) => &s.name,
                    DeclKind::Enum(e) => &e.name,
                    DeclKind::Alias(a) => &a.name,
                    DeclKind::Service(_) => return None,
                };
                Some((key(&d.module, name), d))
            })
            .collect();
        Schemas { decls }
    }

    /// The descriptor of `method`.
    pub(super) fn descriptor(&self, method: &MethodDef) -> Vec<u8> {
        let roots = [&method.arg, &method.reply, &method.error];
        let mut b = Builder { schemas: self, order: Vec::new(), index: HashMap::new() };
        b.number(&roots);
        let kind = match method.kind {
            MethodKind::Unary => 0,
            MethodKind::ServerStreaming => 1,
            MethodKind::ClientStreaming => 2,
            MethodKind::Bidi => 3,
        };
        let mut out = vec![1, kind];
        for t in roots {
            b.ty(t, &mut out);
        }
        varint(b.order.len() as u64, &mut out);
        for decl in &b.order {
            b.def(decl, &mut out);
        }
        out
    }
}

/// The 64-bit FNV-1a hash of a descriptor.
pub(super) fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// A declaration's key: its module path and name.
fn key(module: &[String], name: &str) -> String {
    format!("{}::{name}", module.join("::"))
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

struct Builder<'s, 'm> {
    schemas: &'s Schemas<'m>,
    /// The structs and enums, in the order first met: a walk of the roots that, at each
    /// definition met for the first time, walks that definition's types before going on.
    order: Vec<&'m Decl>,
    /// Each one's index in `order`.
    index: HashMap<String, usize>,
}

impl<'m> Builder<'_, 'm> {
    /// Numbers the structs and enums `roots` use in the order first met, without recursing from
    /// one definition into the next (a chain of definitions, each holding the next, is as long as
    /// a file makes it): a stack of the definitions still to walk stands in for the call stack.
    fn number(&mut self, roots: &[&Ty]) {
        let mut met = Vec::new();
        for t in roots {
            self.named_in(t, &mut met);
        }
        let mut stack = vec![met.into_iter()];
        while let Some(walk) = stack.last_mut() {
            let Some((key, decl)) = walk.next() else {
                stack.pop();
                continue;
            };
            if self.index.contains_key(&key) {
                continue;
            }
            self.index.insert(key, self.order.len());
            self.order.push(decl);
            let mut met = Vec::new();
            for t in def_types(decl) {
                self.named_in(t, &mut met);
            }
            stack.push(met.into_iter());
        }
    }

    /// The structs and enums `t` names, in order, with aliases walked through (their chains are
    /// bounded by the validator, and types' nesting by the parser).
    fn named_in(&self, t: &Ty, met: &mut Vec<(String, &'m Decl)>) {
        match t {
            Ty::List(e) | Ty::Option(e) | Ty::Array(e, _) => self.named_in(e, met),
            Ty::Map(k, v) => {
                self.named_in(k, met);
                self.named_in(v, met);
            }
            Ty::Named { module, name, .. } | Ty::Alias { module, name } => {
                let key = key(module, name);
                if let Some(decl) = self.schemas.decls.get(&key) {
                    match &decl.kind {
                        DeclKind::Alias(a) => self.named_in(&a.target, met),
                        _ => met.push((key, *decl)),
                    }
                }
            }
            _ => {}
        }
    }

    fn ty(&self, t: &Ty, out: &mut Vec<u8>) {
        let tag = match t {
            Ty::Unit | Ty::Error => 0,
            Ty::Bool => 1,
            Ty::I8 => 2,
            Ty::I16 => 3,
            Ty::I32 => 4,
            Ty::I64 => 5,
            Ty::U8 => 6,
            Ty::U16 => 7,
            Ty::U32 => 8,
            Ty::U64 => 9,
            Ty::F32 => 10,
            Ty::F64 => 11,
            Ty::String => 12,
            Ty::Bytes => 13,
            Ty::List(e) => {
                out.push(14);
                return self.ty(e, out);
            }
            Ty::Map(k, v) => {
                out.push(15);
                self.ty(k, out);
                return self.ty(v, out);
            }
            Ty::Option(e) => {
                out.push(16);
                return self.ty(e, out);
            }
            Ty::Array(e, len) => {
                out.push(17);
                varint(*len, out);
                return self.ty(e, out);
            }
            Ty::Named { module, name, .. } | Ty::Alias { module, name } => {
                return self.named(module, name, out);
            }
        };
        out.push(tag);
    }

    fn named(&self, module: &[String], name: &str, out: &mut Vec<u8>) {
        let key = key(module, name);
        let Some(&decl) = self.schemas.decls.get(&key) else {
            out.push(0);
            return;
        };
        if let DeclKind::Alias(a) = &decl.kind {
            return self.ty(&a.target, out);
        }
        // Numbered by `number`, which met every definition this walk meets.
        let index = self.index.get(&key).copied().unwrap_or_default();
        out.push(18);
        varint(index as u64, out);
    }

    fn def(&self, decl: &Decl, out: &mut Vec<u8>) {
        match &decl.kind {
            DeclKind::Struct(s) if s.frozen => {
                out.push(0x20);
                varint(s.fields.len() as u64, out);
                for f in &s.fields {
                    self.ty(&f.ty, out);
                }
            }
            DeclKind::Struct(s) => {
                out.push(0x21);
                varint(s.fields.len() as u64, out);
                for f in &s.fields {
                    out.push(u8::from(f.default.is_some()));
                    self.ty(&f.ty, out);
                }
            }
            DeclKind::Enum(e) => {
                out.push(if e.open { 0x23 } else { 0x22 });
                varint(e.variants.len() as u64, out);
                for v in &e.variants {
                    let types: Vec<&Ty> = match &v.shape {
                        Shape::Unit => Vec::new(),
                        Shape::Tuple(ts) => ts.iter().collect(),
                        Shape::Struct(fs) => fs.iter().map(|f| &f.ty).collect(),
                    };
                    varint(types.len() as u64, out);
                    for t in types {
                        self.ty(t, out);
                    }
                }
            }
            DeclKind::Alias(_) | DeclKind::Service(_) => {}
        }
    }
}

/// The types a struct's fields or an enum's variants hold, in order.
fn def_types(decl: &Decl) -> Vec<&Ty> {
    match &decl.kind {
        DeclKind::Struct(s) => s.fields.iter().map(|f| &f.ty).collect(),
        DeclKind::Enum(e) => e
            .variants
            .iter()
            .flat_map(|v| -> Vec<&Ty> {
                match &v.shape {
                    Shape::Unit => Vec::new(),
                    Shape::Tuple(ts) => ts.iter().collect(),
                    Shape::Struct(fs) => fs.iter().map(|f| &f.ty).collect(),
                }
            })
            .collect(),
        DeclKind::Alias(_) | DeclKind::Service(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use std::fmt::Write;

    /// The descriptors of the methods of `text`.
    fn descriptors(text: &str) -> Vec<Vec<u8>> {
        let model = Config::checked_text(text).unwrap();
        let schemas = Schemas::new(&model);
        let services = model.decls.iter().filter_map(|d| match &d.kind {
            DeclKind::Service(s) => Some(s),
            _ => None,
        });
        services.flat_map(|s| s.methods.iter().map(|m| schemas.descriptor(m))).collect()
    }

    #[test]
    fn definitions_are_numbered_in_the_order_first_met_each_walked_before_the_next() {
        let d = descriptors(
            "struct A { b: B, d: D }\nstruct B { c: C }\nstruct C { v: u32 }\nstruct D { v: u64 }\n\
             service S { rpc get(A) -> u32; }",
        );
        // A 0, B 1, C 2 (met inside B, before A's next field), D 3.
        let a = [0x21, 2, 0, 18, 1, 0, 18, 3];
        let (b, c, d_) = ([0x21, 1, 0, 18, 2], [0x21, 1, 0, 8], [0x21, 1, 0, 9]);
        assert_eq!(d, vec![[&[1, 0, 18, 0, 8, 12, 4][..], &a, &b, &c, &d_].concat()]);
    }

    #[test]
    fn a_chain_of_definitions_as_long_as_a_file_makes_it_is_checked_and_described_without_recursion() {
        // Each struct holds the next, declared in the order that took the validator's passes
        // over every declaration one pass per link; building the descriptor recursed once per
        // link. On a stack the size of a build script's thread.
        const LINKS: usize = 20_000;
        let mut text = String::new();
        for i in 0..LINKS - 1 {
            writeln!(text, "struct S{i} {{ a: S{} }}", i + 1).unwrap();
        }
        writeln!(text, "struct S{} {{ v: u32 }}\nservice Chain {{ rpc get(S0) -> u32; }}", LINKS - 1).unwrap();
        let described = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || descriptors(&text))
            .unwrap()
            .join()
            .expect("checking or describing the chain overflowed its stack");
        let d = &described[0];
        // The roots, 20,000 definitions (LEB128 `a0 9c 01`), S0 holding S1 ...
        assert_eq!(&d[..11], &[1, 0, 18, 0, 8, 12, 0xa0, 0x9c, 0x01, 0x21, 1]);
        assert!(d.ends_with(&[0x21, 1, 0, 18, 0x9f, 0x9c, 0x01, 0x21, 1, 0, 8]), "... S19998 holding S19999, a u32");
    }
}
