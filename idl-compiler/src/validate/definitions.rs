//! Definitions: structs, enums and aliases from the syntax tree to the model, their fields and
//! variants checked.

use super::Checker;
use super::scope::{Scope, qualified, symbol_key};
use crate::ast::{self, Item, Literal, TypeRef, VariantShape};
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
                let frozen = has_attribute(&s.meta, "frozen");
                if frozen {
                    self.no_defaults(
                        &s.fields,
                        "a `@frozen` struct's fields are always sent, so a default is never used",
                    );
                }
                DeclKind::Struct(StructDef { name: declared.rust_name.clone(), fields, frozen, is_error: false })
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
            span: name.span,
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
            self.check_attributes(&field.meta.attributes, &[]);
            let ty = self.resolve(&field.ty, scope, Some(lists));
            let default = self.field_default(field, &ty);
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
                default,
                span: field.name.span,
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
            self.check_attributes(&v.meta.attributes, &[]);
            let shape = match &v.shape {
                VariantShape::Unit => Shape::Unit,
                VariantShape::Tuple(types) => {
                    Shape::Tuple(types.iter().map(|t| self.resolve(t, scope, Some(lists))).collect())
                }
                VariantShape::Struct(fields) => {
                    self.no_defaults(fields, "an enum variant's fields are always sent, so a default is never used");
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
                span: v.name.span,
            });
        }
        let open = has_attribute(&e.meta, "open");
        if open && let Some(v) = e.variants.iter().find(|v| v.name.name == "Unknown") {
            self.error(
                Diagnostic::error(v.name.span, "an `@open` enum cannot declare a variant named `Unknown`")
                    .label("`Unknown` is the variant a reader gives a variant it does not know")
                    .help("rename this variant"),
            );
        }
        EnumDef { name: rust_name.to_owned(), variants, open, is_error: false }
    }

    /// Reports the defaults written in `fields`, which are never used.
    fn no_defaults(&mut self, fields: &[ast::Field], why: &str) {
        for default in fields.iter().filter_map(|f| f.default.as_ref()) {
            self.error(Diagnostic::error(default.span, "a default here is never used").label(why).help("remove it"));
        }
    }

    /// Checks a field's default against its type: the literal must be a value of it. An
    /// `option<T>` field without one defaults to `none`.
    fn field_default(&mut self, field: &ast::Field, ty: &Ty) -> Option<Literal> {
        let expanded = self.expand(ty);
        let Some(default) = &field.default else {
            return matches!(expanded, Ty::Option(_)).then_some(Literal::None);
        };
        let fits = match (&default.value, &expanded) {
            (_, Ty::Error) => true,
            (Literal::Integer(n), Ty::F32 | Ty::F64) => n.is_some(),
            (Literal::Integer(n), _) => match (n, integer_range(&expanded)) {
                (Some(n), Some((min, max))) => {
                    if *n < min || *n > max {
                        self.error(
                            Diagnostic::error(default.span, format!("{n} does not fit the field's type"))
                                .label(format!("{} holds {min} to {max}", ty_word(&expanded))),
                        );
                        return None;
                    }
                    true
                }
                _ => false,
            },
            (Literal::Float(_), Ty::F32 | Ty::F64) => true,
            (Literal::String(_), Ty::String) => true,
            (Literal::Bool(_), Ty::Bool) => true,
            (Literal::EmptyList, Ty::List(_) | Ty::Bytes) => true,
            (Literal::EmptyMap, Ty::Map(..)) => true,
            _ => false,
        };
        if !fits {
            let help = match expanded {
                Ty::Named { .. } | Ty::Array(..) | Ty::Unit => {
                    "a struct, enum, array or `()` has no default literal: make the field an `option<T>`, which defaults to none"
                }
                Ty::Option(_) => "an `option<T>` field needs no default: it is none when not sent",
                _ => {
                    "integers take a number, floats a number, `string` a \"string\", `bool` true or false, lists and bytes `[]`, maps `{}`"
                }
            };
            self.error(
                Diagnostic::error(default.span, format!("`{}` is not a value of the field's type", default.value))
                    .label(format!("the field's type is {}", ty_word(&expanded)))
                    .help(help),
            );
            return None;
        }
        Some(default.value.clone())
    }
}

/// Whether `meta` has the attribute `@name`.
fn has_attribute(meta: &ast::Meta, name: &str) -> bool {
    meta.attributes.iter().any(|a| a.name.name == name)
}

/// The values an integer type holds.
fn integer_range(ty: &Ty) -> Option<(i128, i128)> {
    Some(match ty {
        Ty::I8 => (i8::MIN.into(), i8::MAX.into()),
        Ty::I16 => (i16::MIN.into(), i16::MAX.into()),
        Ty::I32 => (i32::MIN.into(), i32::MAX.into()),
        Ty::I64 => (i64::MIN.into(), i64::MAX.into()),
        Ty::U8 => (0, u8::MAX.into()),
        Ty::U16 => (0, u16::MAX.into()),
        Ty::U32 => (0, u32::MAX.into()),
        Ty::U64 => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// A type in words, for messages: a name in backticks, or a kind with its article.
fn ty_word(ty: &Ty) -> String {
    if let Some(keyword) = ty.keyword() {
        return format!("`{keyword}`");
    }
    let name = match ty {
        Ty::List(_) => return "a list".into(),
        Ty::Map(..) => return "a map".into(),
        Ty::Option(_) => return "an option".into(),
        Ty::Array(..) => return "an array".into(),
        Ty::Named { name, .. } | Ty::Alias { name, .. } => name,
        _ => return "a type".into(),
    };
    format!("`{name}`")
}
