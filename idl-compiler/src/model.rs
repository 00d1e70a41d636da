//! The validated model: what codegen sees. Every name here is already a valid Rust identifier
//! (case-converted, keywords escaped), every type is resolved, and recursive fields are marked
//! for boxing. Codegen never sees pest pairs or unresolved names.

/// Everything declared in one `.tidl` file, in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    pub(crate) decls: Vec<Decl>,
}

/// A declaration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decl {
    Struct(StructDef),
    Enum(EnumDef),
    Service(ServiceDef),
}

/// A resolved type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ty {
    Unit,
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    String,
    Bytes,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Option(Box<Ty>),
    /// A declared struct or enum, by its Rust name; `boxed` when it must sit behind a `Box`
    /// because it (indirectly) contains the type this reference is in.
    Named {
        name: String,
        boxed: bool,
    },
}

/// A struct.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StructDef {
    pub(crate) name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) fields: Vec<FieldDef>,
    /// Used as a method's error type: gets a `Display` impl.
    pub(crate) is_error: bool,
}

/// A named field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldDef {
    /// The Rust name (snake case, `r#` for keywords).
    pub(crate) name: String,
    /// The name as written in the `.tidl` file.
    pub(crate) tidl_name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) ty: Ty,
}

/// An enum.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnumDef {
    pub(crate) name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) variants: Vec<VariantDef>,
    /// Used as a method's error type: gets a `Display` impl.
    pub(crate) is_error: bool,
}

/// An enum variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VariantDef {
    pub(crate) name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) shape: Shape,
}

/// What a variant carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Unit,
    Tuple(Vec<Ty>),
    Struct(Vec<FieldDef>),
}

/// A service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceDef {
    /// The Rust name of the trait (upper camel case).
    pub(crate) name: String,
    /// The name on the wire: as written in the `.tidl` file.
    pub(crate) wire_name: String,
    /// The name of the `Client` extension method (`example` for `Example`).
    pub(crate) accessor: String,
    pub(crate) docs: Vec<String>,
    pub(crate) methods: Vec<MethodDef>,
}

/// A method.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodDef {
    /// The Rust name (snake case, `r#` for keywords).
    pub(crate) name: String,
    /// The name on the wire: as written in the `.tidl` file.
    pub(crate) wire_name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) arg: Ty,
    pub(crate) reply: Ty,
    pub(crate) error: Ty,
    /// The method as declared, for generated docs: `echo(string) -> string`.
    pub(crate) signature: String,
}
