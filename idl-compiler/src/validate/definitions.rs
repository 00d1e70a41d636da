//! Definitions: structs, enums and aliases from the syntax tree to the model, their fields and
//! variants checked.

use super::Checker;
use super::scope::{Scope, qualified, symbol_key};
use crate::ast::{self, Item, TypeRef, VariantShape};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::{AliasDef, Decl, DeclKind, EnumDef, FieldDef, Shape, StructDef, Ty, VariantDef};
use std::collections::HashMap;

impl<'a> Checker<'a> {
    pub(super) fn decl(&mut self, item: &'a Item, scope: &Scope, lists: &mut Vec<(Span, Ty)>) -> Option<Decl> {
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

    pub(super) fn fields(
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
}
