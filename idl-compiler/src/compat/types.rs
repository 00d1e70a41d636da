//! One version of a schema as `tidl compat` sees it (declarations by name, aliases resolved),
//! and the reader/writer rule of the design: can a reader of type R decode what a writer of
//! type W wrote?

use crate::diagnostic::{FileId, Span};
use crate::model::{Decl, DeclKind, EnumDef, Model, Shape, StructDef, Ty, VariantDef};
use std::collections::{HashMap, HashSet};

/// One version: its declarations, and where its files sit in the report's source map.
pub(super) struct Side<'a> {
    decls: HashMap<(&'a [String], &'a str), &'a Decl>,
    pub(super) model: &'a Model,
    /// Added to the version's file ids to get their ids in the report's source map.
    offset: usize,
}

/// A type with aliases followed and declarations looked up.
#[derive(Clone, Copy)]
pub(super) enum Resolved<'a> {
    Struct(&'a Decl, &'a StructDef),
    Enum(&'a Decl, &'a EnumDef),
    /// Anything else (never an alias or a named type).
    Other(&'a Ty),
}

impl<'a> Side<'a> {
    pub(super) fn new(model: &'a Model, offset: usize) -> Side<'a> {
        let mut decls = HashMap::new();
        for decl in &model.decls {
            let name = match &decl.kind {
                DeclKind::Struct(s) => s.name.as_str(),
                DeclKind::Enum(e) => e.name.as_str(),
                DeclKind::Alias(a) => a.name.as_str(),
                DeclKind::Service(_) => continue,
            };
            decls.insert((decl.module.as_slice(), name), decl);
        }
        Side { decls, model, offset }
    }

    /// `span` located in the report's source map.
    pub(super) fn span(&self, span: Span) -> Span {
        Span { file: FileId(span.file.0 + self.offset), ..span }
    }

    /// `ty` with aliases followed.
    pub(super) fn resolve(&self, mut ty: &'a Ty) -> Resolved<'a> {
        // Validation rejects alias cycles; the bound only keeps a broken model from hanging.
        for _ in 0..64 {
            let (Ty::Named { module, name, .. } | Ty::Alias { module, name }) = ty else { break };
            match self.decls.get(&(module.as_slice(), name.as_str())).map(|d| (*d, &d.kind)) {
                Some((d, DeclKind::Struct(s))) => return Resolved::Struct(d, s),
                Some((d, DeclKind::Enum(e))) => return Resolved::Enum(d, e),
                Some((_, DeclKind::Alias(a))) => ty = &a.target,
                _ => break,
            }
        }
        Resolved::Other(ty)
    }

    /// `ty` as it would be written in a `.tidl` file (aliases by their names).
    pub(super) fn show(&self, ty: &Ty) -> String {
        // The name as written in the `.tidl` file is the last segment of its path.
        let named = |module: &[String], name: &str| {
            let decl = self.decls.get(&(module, name));
            decl.and_then(|d| d.tidl_path.rsplit('.').next()).unwrap_or(name).to_owned()
        };
        ty.to_tidl(&named, "{unknown}")
    }
}

/// The name of a declaration as written.
pub(super) fn decl_name(decl: &Decl) -> &str {
    decl.tidl_path.rsplit('.').next().unwrap_or(&decl.tidl_path)
}

/// Whether a reader of `r` (in version `rs`) decodes what a writer of `w` (in version `ws`)
/// wrote: `compatible(W, R)` of the design.
pub(super) fn compatible(ws: &Side<'_>, w: &Ty, rs: &Side<'_>, r: &Ty) -> bool {
    Compat { ws, rs, assumed: HashSet::new() }.ty(w, r)
}

/// Whether variant `w` can be read as variant `r`.
pub(super) fn compatible_variants(ws: &Side<'_>, w: &VariantDef, rs: &Side<'_>, r: &VariantDef) -> bool {
    Compat { ws, rs, assumed: HashSet::new() }.variant(w, r)
}

struct Compat<'s, 'a> {
    ws: &'s Side<'a>,
    rs: &'s Side<'a>,
    /// Pairs of declarations being (or already) compared: assumed compatible (coinduction).
    assumed: HashSet<(*const Decl, *const Decl)>,
}

impl Compat<'_, '_> {
    fn ty(&mut self, w: &Ty, r: &Ty) -> bool {
        match (self.ws.resolve(w), self.rs.resolve(r)) {
            (Resolved::Struct(wd, w), Resolved::Struct(rd, r)) => !self.assumed.insert((wd, rd)) || self.structs(w, r),
            (Resolved::Enum(wd, w), Resolved::Enum(rd, r)) => !self.assumed.insert((wd, rd)) || self.enums(w, r),
            (Resolved::Other(w), Resolved::Other(r)) => match (w, r) {
                (Ty::List(w), Ty::List(r)) | (Ty::Option(w), Ty::Option(r)) => self.ty(w, r),
                (Ty::Map(wk, wv), Ty::Map(rk, rv)) => self.ty(wk, rk) && self.ty(wv, rv),
                (Ty::Array(w, wn), Ty::Array(r, rn)) => wn == rn && self.ty(w, r),
                _ => primitives_compatible(w, r),
            },
            _ => false,
        }
    }

    fn structs(&mut self, w: &StructDef, r: &StructDef) -> bool {
        if w.frozen != r.frozen || (w.frozen && w.fields.len() != r.fields.len()) {
            return false;
        }
        w.fields.iter().zip(&r.fields).all(|(w, r)| self.ty(&w.ty, &r.ty))
            && r.fields.iter().skip(w.fields.len()).all(|f| f.default.is_some())
    }

    fn enums(&mut self, w: &EnumDef, r: &EnumDef) -> bool {
        if w.open != r.open || (!w.open && w.variants.len() > r.variants.len()) {
            return false;
        }
        w.variants.iter().zip(&r.variants).all(|(w, r)| self.variant(w, r))
    }

    fn variant(&mut self, w: &VariantDef, r: &VariantDef) -> bool {
        match (&w.shape, &r.shape) {
            (Shape::Unit, Shape::Unit) => true,
            (Shape::Tuple(w), Shape::Tuple(r)) => w.len() == r.len() && w.iter().zip(r).all(|(w, r)| self.ty(w, r)),
            (Shape::Struct(w), Shape::Struct(r)) => {
                w.len() == r.len() && w.iter().zip(r).all(|(w, r)| self.ty(&w.ty, &r.ty))
            }
            _ => false,
        }
    }
}

/// Whether a reader of primitive `r` decodes a writer's `w`: the same type, or a wider varint
/// of the same signedness.
fn primitives_compatible(w: &Ty, r: &Ty) -> bool {
    let rank = |t: &Ty| match t {
        Ty::U16 => Some((false, 1)),
        Ty::U32 => Some((false, 2)),
        Ty::U64 => Some((false, 3)),
        Ty::I16 => Some((true, 1)),
        Ty::I32 => Some((true, 2)),
        Ty::I64 => Some((true, 3)),
        _ => None,
    };
    match (rank(w), rank(r)) {
        (Some((ws, wr)), Some((rs, rr))) => ws == rs && wr <= rr,
        _ => w == r || matches!((w, r), (Ty::Error, _) | (_, Ty::Error)),
    }
}
