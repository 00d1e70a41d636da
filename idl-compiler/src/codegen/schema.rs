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
        let mut b = Builder { schemas: self, defs: Vec::new(), index: HashMap::new() };
        let kind = match method.kind {
            MethodKind::Unary => 0,
            MethodKind::ServerStreaming => 1,
            MethodKind::ClientStreaming => 2,
            MethodKind::Bidi => 3,
        };
        let mut out = vec![1, kind];
        for t in [&method.arg, &method.reply, &method.error] {
            b.ty(t, &mut out);
        }
        varint(b.defs.len() as u64, &mut out);
        for def in b.defs {
            out.extend(def);
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
    /// Definitions in the order first met (each filled in once built).
    defs: Vec<Vec<u8>>,
    index: HashMap<String, usize>,
}

impl Builder<'_, '_> {
    fn ty(&mut self, t: &Ty, out: &mut Vec<u8>) {
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

    fn named(&mut self, module: &[String], name: &str, out: &mut Vec<u8>) {
        let key = key(module, name);
        let Some(&decl) = self.schemas.decls.get(&key) else {
            out.push(0);
            return;
        };
        if let DeclKind::Alias(a) = &decl.kind {
            return self.ty(&a.target, out);
        }
        let index = match self.index.get(&key) {
            Some(index) => *index,
            None => {
                let index = self.defs.len();
                self.index.insert(key, index);
                self.defs.push(Vec::new());
                let def = self.def(decl);
                self.defs[index] = def;
                index
            }
        };
        out.push(18);
        varint(index as u64, out);
    }

    fn def(&mut self, decl: &Decl) -> Vec<u8> {
        let mut out = Vec::new();
        match &decl.kind {
            DeclKind::Struct(s) if s.frozen => {
                out.push(0x20);
                varint(s.fields.len() as u64, &mut out);
                for f in &s.fields {
                    self.ty(&f.ty, &mut out);
                }
            }
            DeclKind::Struct(s) => {
                out.push(0x21);
                varint(s.fields.len() as u64, &mut out);
                for f in &s.fields {
                    out.push(u8::from(f.default.is_some()));
                    self.ty(&f.ty, &mut out);
                }
            }
            DeclKind::Enum(e) => {
                out.push(if e.open { 0x23 } else { 0x22 });
                varint(e.variants.len() as u64, &mut out);
                for v in &e.variants {
                    let types: Vec<&Ty> = match &v.shape {
                        Shape::Unit => Vec::new(),
                        Shape::Tuple(ts) => ts.iter().collect(),
                        Shape::Struct(fs) => fs.iter().map(|f| &f.ty).collect(),
                    };
                    varint(types.len() as u64, &mut out);
                    for t in types {
                        self.ty(t, &mut out);
                    }
                }
            }
            DeclKind::Alias(_) | DeclKind::Service(_) => {}
        }
        out
    }
}
