//! The syntax tree of a `.tidl` file, exactly as written, with a span on every name and type.
//! Nothing here is checked yet: `validate/` turns it into the model codegen uses.

use crate::diagnostic::Span;

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct File {
    pub(crate) packages: Vec<Package>,
    pub(crate) imports: Vec<Import>,
    pub(crate) items: Vec<Item>,
    /// The names of declarations with syntax errors (reported by the parser): other
    /// declarations' uses of them are not reported again as unknown names.
    pub(crate) broken: Vec<Ident>,
}

/// `package a.b;`. A file has at most one (validation reports more).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Package {
    pub(crate) meta: Meta,
    pub(crate) path: Vec<Ident>,
    pub(crate) span: Span,
    /// Whether a declaration or import came before it.
    pub(crate) late: bool,
}

/// `import "path";`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Import {
    /// The path as written, unescaped.
    pub(crate) path: String,
    pub(crate) span: Span,
}

/// A top-level declaration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Service(Service),
    Struct(Struct),
    Enum(Enum),
    Alias(Alias),
}

impl Item {
    pub(crate) fn name(&self) -> &Ident {
        match self {
            Item::Service(s) => &s.name,
            Item::Struct(s) => &s.name,
            Item::Enum(e) => &e.name,
            Item::Alias(a) => &a.name,
        }
    }

    pub(crate) fn meta(&self) -> &Meta {
        match self {
            Item::Service(s) => &s.meta,
            Item::Struct(s) => &s.meta,
            Item::Enum(e) => &e.meta,
            Item::Alias(a) => &a.meta,
        }
    }
}

/// A name as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    pub(crate) name: String,
    pub(crate) span: Span,
}

/// Doc comments and attributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Meta {
    pub(crate) docs: Vec<String>,
    pub(crate) attributes: Vec<Attribute>,
}

/// `@name("arg", ...)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attribute {
    pub(crate) name: Ident,
    /// `None` without parentheses.
    pub(crate) args: Option<Vec<String>>,
    pub(crate) span: Span,
}

/// `service Name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Service {
    pub(crate) meta: Meta,
    pub(crate) name: Ident,
    pub(crate) methods: Vec<Method>,
}

/// `rpc name(Arg) -> Reply throws Error;`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Method {
    pub(crate) meta: Meta,
    pub(crate) name: Ident,
    pub(crate) arg: Option<TypeRef>,
    pub(crate) reply: Option<TypeRef>,
    pub(crate) error: Option<TypeRef>,
}

/// `struct Name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Struct {
    pub(crate) meta: Meta,
    pub(crate) name: Ident,
    pub(crate) fields: Vec<Field>,
}

/// `name: Type` or `name: Type = default`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) meta: Meta,
    pub(crate) name: Ident,
    pub(crate) ty: TypeRef,
    pub(crate) default: Option<DefaultValue>,
}

/// A field's default as written, and where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DefaultValue {
    pub(crate) value: Literal,
    pub(crate) span: Span,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    /// An integer; `None` if it does not fit an `i128`.
    Integer(Option<i128>),
    /// A number with a fraction, as written.
    Float(String),
    String(String),
    Bool(bool),
    /// `[]`.
    EmptyList,
    /// `{}`.
    EmptyMap,
    /// Not written: the implicit default of an `option<T>` field (in the model only).
    None,
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Integer(Some(n)) => write!(f, "{n}"),
            Literal::Integer(None) => f.write_str("<too large>"),
            Literal::Float(text) => f.write_str(text),
            Literal::String(s) => write!(f, "{s:?}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::EmptyList => f.write_str("[]"),
            Literal::EmptyMap => f.write_str("{}"),
            Literal::None => f.write_str("none"),
        }
    }
}

/// `enum Name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enum {
    pub(crate) meta: Meta,
    pub(crate) name: Ident,
    pub(crate) variants: Vec<Variant>,
}

/// One enum variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) meta: Meta,
    pub(crate) name: Ident,
    pub(crate) shape: VariantShape,
}

/// What a variant carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VariantShape {
    Unit,
    Tuple(Vec<TypeRef>),
    Struct(Vec<Field>),
}

/// `type Name = Type;`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Alias {
    pub(crate) meta: Meta,
    pub(crate) name: Ident,
    pub(crate) ty: TypeRef,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TypeRef {
    /// `()`.
    Unit(Span),
    /// A possibly qualified name with type arguments (`string`, `geo.Point`, `map<K, V>`).
    Named { path: Vec<Ident>, args: Vec<TypeRef>, span: Span },
    /// `[T; N]`; `len` is `None` if the number does not fit a `u64`.
    Array { element: Box<TypeRef>, len: Option<u64>, len_span: Span, span: Span },
    /// `stream T`.
    Stream { inner: Box<TypeRef>, span: Span },
}

impl TypeRef {
    pub(crate) fn span(&self) -> Span {
        match self {
            TypeRef::Unit(span)
            | TypeRef::Named { span, .. }
            | TypeRef::Array { span, .. }
            | TypeRef::Stream { span, .. } => *span,
        }
    }
}

/// Replaces every span with a fixed one, so trees parsed from differently formatted texts can be
/// compared (the formatter's tests).
#[cfg(test)]
pub(crate) fn erase_spans(file: &mut File) {
    let zero = Span { file: crate::diagnostic::FileId(0), start: 0, end: 0 };
    let ident = |i: &mut Ident| i.span = zero;
    fn meta(m: &mut Meta, zero: Span) {
        for a in &mut m.attributes {
            a.span = zero;
            a.name.span = zero;
        }
    }
    fn ty(t: &mut TypeRef, zero: Span) {
        match t {
            TypeRef::Unit(span) => *span = zero,
            TypeRef::Named { path, args, span } => {
                *span = zero;
                path.iter_mut().for_each(|i| i.span = zero);
                args.iter_mut().for_each(|a| ty(a, zero));
            }
            TypeRef::Array { element, len_span, span, .. } => {
                *span = zero;
                *len_span = zero;
                ty(element, zero);
            }
            TypeRef::Stream { inner, span } => {
                *span = zero;
                ty(inner, zero);
            }
        }
    }
    fn fields(fs: &mut [Field], zero: Span) {
        for f in fs {
            meta(&mut f.meta, zero);
            f.name.span = zero;
            ty(&mut f.ty, zero);
            if let Some(d) = &mut f.default {
                d.span = zero;
            }
        }
    }
    for p in &mut file.packages {
        p.span = zero;
        meta(&mut p.meta, zero);
        p.path.iter_mut().for_each(ident);
    }
    for i in &mut file.imports {
        i.span = zero;
    }
    file.broken.iter_mut().for_each(|i| i.span = zero);
    for item in &mut file.items {
        match item {
            Item::Service(s) => {
                meta(&mut s.meta, zero);
                s.name.span = zero;
                for m in &mut s.methods {
                    meta(&mut m.meta, zero);
                    m.name.span = zero;
                    for t in [&mut m.arg, &mut m.reply, &mut m.error].into_iter().flatten() {
                        ty(t, zero);
                    }
                }
            }
            Item::Struct(s) => {
                meta(&mut s.meta, zero);
                s.name.span = zero;
                fields(&mut s.fields, zero);
            }
            Item::Enum(e) => {
                meta(&mut e.meta, zero);
                e.name.span = zero;
                for v in &mut e.variants {
                    meta(&mut v.meta, zero);
                    v.name.span = zero;
                    match &mut v.shape {
                        VariantShape::Unit => {}
                        VariantShape::Tuple(ts) => ts.iter_mut().for_each(|t| ty(t, zero)),
                        VariantShape::Struct(fs) => fields(fs, zero),
                    }
                }
            }
            Item::Alias(a) => {
                meta(&mut a.meta, zero);
                a.name.span = zero;
                ty(&mut a.ty, zero);
            }
        }
    }
}
