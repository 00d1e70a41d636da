//! The validated model: what codegen sees. Every name here is already a valid Rust identifier
//! (case-converted, keywords escaped), every type is resolved to the module that declares it,
//! and recursive fields are marked for boxing. An alias reference names the alias; its target is
//! stored once, with the alias's declaration.
//! Codegen never sees pest pairs, the syntax tree or unresolved names.

pub(crate) use crate::ast::Literal;
use crate::diagnostic::{FileId, Span};
use crate::names::ServiceNames;

/// Everything declared in one compilation (every file and its imports), in declaration order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Model {
    pub(crate) decls: Vec<Decl>,
    /// Documentation of packages, by Rust module path.
    pub(crate) packages: Vec<PackageDef>,
}

/// A package's Rust module and documentation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackageDef {
    pub(crate) module: Vec<String>,
    /// The package's name as written (`shop.orders`).
    pub(crate) tidl_name: String,
    pub(crate) docs: Vec<String>,
}

/// A declaration, where it lives, and what it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decl {
    /// The file that declares it.
    pub(crate) file: FileId,
    /// The Rust module path of its package (empty for files without a package).
    pub(crate) module: Vec<String>,
    /// Its full `.tidl` name (`shop.orders.Order`), for `Config` attribute paths.
    pub(crate) tidl_path: String,
    pub(crate) docs: Vec<String>,
    pub(crate) deprecated: Option<Deprecated>,
    pub(crate) kind: DeclKind,
    /// Where its name is written.
    pub(crate) span: Span,
}

/// `@deprecated`, with its note if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deprecated {
    pub(crate) note: Option<String>,
}

/// What a declaration declares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeclKind {
    Struct(StructDef),
    Enum(EnumDef),
    Alias(AliasDef),
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
    Array(Box<Ty>, u64),
    /// A declared struct or enum; `boxed` when it must sit behind a `Box` because it
    /// (indirectly) contains the declaration this reference is in.
    Named {
        module: Vec<String>,
        name: String,
        boxed: bool,
    },
    /// A type alias (its target is in its [`AliasDef`]).
    Alias {
        module: Vec<String>,
        name: String,
    },
    /// A type that could not be resolved (already reported); it satisfies every later check,
    /// so one mistake gives one diagnostic. Never reaches codegen.
    Error,
}

impl Ty {
    /// The `.tidl` keyword of a built-in scalar type (`u32`, `string`, `()`); `None` for lists,
    /// maps, options, arrays, declared types and errors.
    pub(crate) fn keyword(&self) -> Option<&'static str> {
        Some(match self {
            Ty::Unit => "()",
            Ty::Bool => "bool",
            Ty::I8 => "i8",
            Ty::I16 => "i16",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::U8 => "u8",
            Ty::U16 => "u16",
            Ty::U32 => "u32",
            Ty::U64 => "u64",
            Ty::F32 => "f32",
            Ty::F64 => "f64",
            Ty::String => "string",
            Ty::Bytes => "bytes",
            _ => return None,
        })
    }

    /// How the type is written in a `.tidl` file: a declared type or alias as `named(module,
    /// name)` gives it, a type that did not resolve as `unknown`.
    pub(crate) fn to_tidl(&self, named: &dyn Fn(&[String], &str) -> String, unknown: &str) -> String {
        if let Some(keyword) = self.keyword() {
            return keyword.to_owned();
        }
        let inner = |ty: &Ty| ty.to_tidl(named, unknown);
        match self {
            Ty::List(e) => format!("list<{}>", inner(e)),
            Ty::Map(k, v) => format!("map<{}, {}>", inner(k), inner(v)),
            Ty::Option(e) => format!("option<{}>", inner(e)),
            Ty::Array(e, n) => format!("[{}; {n}]", inner(e)),
            Ty::Named { module, name, .. } | Ty::Alias { module, name } => named(module, name),
            _ => unknown.to_owned(),
        }
    }
}

/// A struct.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StructDef {
    pub(crate) name: String,
    pub(crate) fields: Vec<FieldDef>,
    /// `@frozen`: encoded as its fields alone, so no field can ever be added. Otherwise the
    /// struct is evolvable: its encoding starts with its length, so readers skip fields they do
    /// not know and give fields a writer did not send their defaults.
    pub(crate) frozen: bool,
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
    pub(crate) deprecated: Option<Deprecated>,
    pub(crate) ty: Ty,
    /// The value a reader gives the field when the writer did not send it: the literal written
    /// after `=`, or [`Literal::None`] for an `option<T>` field without one.
    pub(crate) default: Option<Literal>,
    /// Where its name is written.
    pub(crate) span: Span,
}

/// An enum.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnumDef {
    pub(crate) name: String,
    pub(crate) variants: Vec<VariantDef>,
    /// `@open`: a variant this side does not know decodes to `Unknown` instead of failing.
    pub(crate) open: bool,
    /// Used as a method's error type: gets a `Display` impl.
    pub(crate) is_error: bool,
}

/// An enum variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VariantDef {
    pub(crate) name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) deprecated: Option<Deprecated>,
    pub(crate) shape: Shape,
    /// Where its name is written.
    pub(crate) span: Span,
}

/// What a variant carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Unit,
    Tuple(Vec<Ty>),
    Struct(Vec<FieldDef>),
}

/// `type Name = Type;`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AliasDef {
    pub(crate) name: String,
    pub(crate) target: Ty,
}

/// A service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceDef {
    /// The Rust names of the trait and of everything generated for it.
    pub(crate) names: ServiceNames,
    /// The name on the wire: the package and the name as written (`shop.Store`).
    pub(crate) wire_name: String,
    pub(crate) methods: Vec<MethodDef>,
}

/// How a method's messages flow: one argument or a stream of them, one reply or a stream of
/// them. Either way a call ends with one outcome, success or the declared error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodKind {
    /// One argument, one reply (or error).
    Unary,
    /// `rpc watch(Filter) -> stream Event;`: one argument, a stream of replies.
    ServerStreaming,
    /// `rpc upload(stream Chunk) -> Summary;`: a stream of arguments, one reply.
    ClientStreaming,
    /// `rpc chat(stream Msg) -> stream Msg;`: a stream each way.
    Bidi,
}

impl MethodKind {
    /// The kind of a method whose argument (`client`) and reply (`server`) are or are not
    /// streams.
    pub(crate) fn new(client: bool, server: bool) -> MethodKind {
        match (client, server) {
            (false, false) => MethodKind::Unary,
            (false, true) => MethodKind::ServerStreaming,
            (true, false) => MethodKind::ClientStreaming,
            (true, true) => MethodKind::Bidi,
        }
    }
}

/// A method.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodDef {
    /// The Rust name (snake case, `r#` for keywords).
    pub(crate) name: String,
    /// The name on the wire: as written in the `.tidl` file.
    pub(crate) wire_name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) deprecated: Option<Deprecated>,
    pub(crate) kind: MethodKind,
    /// The argument, or for a client or bidirectional stream the type of its items.
    pub(crate) arg: Ty,
    /// The reply, or for a server or bidirectional stream the type of its items.
    pub(crate) reply: Ty,
    pub(crate) error: Ty,
    /// The method as declared, for generated docs: `echo(string) -> string`.
    pub(crate) signature: String,
    /// Where its name is written.
    pub(crate) span: Span,
    /// `@idempotent`: running it twice does what running it once does, so a call that failed
    /// on the way may be sent again.
    pub(crate) idempotent: bool,
}
