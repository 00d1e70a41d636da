//! The syntax tree of a `.tidl` file, exactly as written, with a span on every name and type.
//! Nothing here is checked yet: `validate.rs` turns it into the model codegen uses.

use crate::diagnostic::Span;

/// A parsed file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct File {
    pub(crate) items: Vec<Item>,
}

/// A top-level declaration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Service(Service),
    Struct(Struct),
    Enum(Enum),
}

/// A name as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    pub(crate) name: String,
    pub(crate) span: Span,
}

/// `service Name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Service {
    pub(crate) docs: Vec<String>,
    pub(crate) name: Ident,
    pub(crate) methods: Vec<Method>,
}

/// `rpc name(Arg) -> Reply throws Error;`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Method {
    pub(crate) docs: Vec<String>,
    pub(crate) name: Ident,
    pub(crate) arg: Option<TypeRef>,
    pub(crate) reply: Option<TypeRef>,
    pub(crate) error: Option<TypeRef>,
}

/// `struct Name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Struct {
    pub(crate) docs: Vec<String>,
    pub(crate) name: Ident,
    pub(crate) fields: Vec<Field>,
}

/// `name: Type`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub(crate) docs: Vec<String>,
    pub(crate) name: Ident,
    pub(crate) ty: TypeRef,
}

/// `enum Name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enum {
    pub(crate) docs: Vec<String>,
    pub(crate) name: Ident,
    pub(crate) variants: Vec<Variant>,
}

/// One enum variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) docs: Vec<String>,
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

/// A type as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TypeRef {
    /// `()`.
    Unit(Span),
    /// A name with type arguments (`string`, `Point`, `map<string, u32>`).
    Named { name: Ident, args: Vec<TypeRef>, span: Span },
}

impl TypeRef {
    pub(crate) fn span(&self) -> Span {
        match self {
            TypeRef::Unit(span) | TypeRef::Named { span, .. } => *span,
        }
    }
}
