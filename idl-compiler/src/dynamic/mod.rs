//! Values of a schema known only at run time (feature `dynamic`): a method's argument, reply,
//! error and stream items, from JSON to exactly the bytes generated code sends, and back. What
//! `tidl call` is built on.
//!
//! ```
//! use tidl_compiler::Source;
//! use tidl_compiler::dynamic::{Part, Schema};
//!
//! let text = "struct Point { x: i32, y: i32 }\nservice Plane { rpc mirror(Point) -> Point; }";
//! let schema = Schema::from_files(&[Source { path: "plane.tidl", text }]).unwrap();
//! let mirror = schema.method("Plane.mirror").unwrap();
//! let bytes = mirror.encode(Part::Argument, &serde_json::json!({ "x": 1, "y": -2 })).unwrap();
//! assert_eq!(bytes.as_ref(), [2, 2, 3]); // an evolvable struct: its length, then x and y
//! assert_eq!(mirror.decode(Part::Argument, &bytes).unwrap(), serde_json::json!({ "x": 1, "y": -2 }));
//! let err = mirror.encode(Part::Argument, &serde_json::json!({ "x": 1, "y": "two" })).unwrap_err();
//! assert_eq!(err.to_string(), "at `.y`: expected an i32 (-2147483648 to 2147483647), found the string \"two\"");
//! ```
//!
//! # JSON
//!
//! | `.tidl` type           | JSON                                                               |
//! |------------------------|--------------------------------------------------------------------|
//! | `()`                   | `null`                                                             |
//! | `bool`                 | `true`, `false`                                                    |
//! | integers               | a number (or a string of one, as tools that fear 64 bits write)    |
//! | `f32`, `f64`           | a number; `"NaN"`, `"Infinity"`, `"-Infinity"`                     |
//! | `string`               | a string                                                           |
//! | `bytes`                | a base64 string (standard alphabet, padded)                        |
//! | `list<T>`, `[T; N]`    | an array (of exactly `N` for an array)                             |
//! | `map<K, V>`            | an object; keys are strings, numbers and `true`/`false` as strings, bytes in base64 |
//! | `option<T>`            | `null`, or the value; if `T` itself may be `null` (an option, `()`), the value in a one-element array |
//! | struct                 | an object, with the fields as named in the `.tidl` file            |
//! | enum                   | a unit variant's name (`"Open"`); else an object with one key, the variant: its value, an array of its values, or an object of its fields |
//! | `@open` enum           | as an enum; a variant this side does not know is `{"Unknown": 7}`, its index |
//!
//! Reading JSON, a struct field that is missing takes its default (an `option` field without
//! one is `null`); one without a default, a field the struct does not have, a value out of range
//! and every other mismatch is an error that names where it is (`.lines[2].quantity`) and what was
//! expected. Any NaN is sent as the canonical NaN.

mod decode;
mod encode;
pub(crate) mod value;

use crate::codegen;
use crate::loader::{FsLoader, MemoryLoader};
use crate::model::{Decl, DeclKind, MethodDef, MethodKind, Model, ServiceDef, Ty};
use crate::{Config, Error, Source, loader};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use tidl_runtime::bytes::Bytes;

/// The services and types of one or more compiled `.tidl` files, for encoding and decoding
/// their values at run time.
#[derive(Debug, Default)]
pub struct Schema {
    units: Vec<Unit>,
}

/// One compilation: its model, the files it was read from, and which of its services count.
#[derive(Debug)]
pub(crate) struct Unit {
    pub(crate) model: Model,
    /// Declarations by module path and Rust name, as `Ty::Named` and `Ty::Alias` refer to them.
    decls: HashMap<String, usize>,
    /// The services that count (a server's, from reflection); `None` for all.
    served: Option<HashSet<String>>,
}

/// Which of a method's messages a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The argument, or one item of a client or bidirectional stream.
    Argument,
    /// The reply, or one item of a server or bidirectional stream.
    Reply,
    /// The method's declared error.
    Error,
}

/// How a method's messages flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// One argument, one reply.
    Unary,
    /// One argument, a stream of replies.
    ServerStreaming,
    /// A stream of arguments, one reply.
    ClientStreaming,
    /// A stream each way.
    Bidi,
}

/// JSON that does not fit the type: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    path: String,
    message: String,
}

impl JsonError {
    /// Where in the value, as a jq path: `.` for the value itself, `.lines[2].quantity` deeper.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What was wrong there: `expected u32, found the string "x"`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at `{}`: {}", self.path, self.message)
    }
}

impl std::error::Error for JsonError {}

impl Schema {
    /// Reads and checks `files` (and what they import, found through `config`'s include
    /// directories), compiled together as `tidl gen` compiles them.
    pub fn load(config: &Config, files: &[impl AsRef<Path>]) -> Result<Schema, Error> {
        let roots: Vec<String> = files.iter().map(|f| f.as_ref().display().to_string()).collect();
        let (model, _) = config.checked_model(&roots, &mut FsLoader::new(&config.include_dirs))?;
        Ok(Schema { units: vec![Unit::new(model, None)] })
    }

    /// Checks in-memory files, compiled together (imports are resolved among them, relative to
    /// the importing file's path); does no IO.
    pub fn from_files(files: &[Source<'_>]) -> Result<Schema, Error> {
        Ok(Schema { units: vec![Unit::from_files(files, None)?] })
    }

    /// Adds the files of `other`.
    pub fn extend(&mut self, other: Schema) {
        self.units.extend(other.units);
    }

    /// The method named `name`: the service's wire name and the method's, joined by a dot
    /// (`Example.echo`, `shop.Shop.place`) or a slash (`shop.Shop/place`, as gRPC tools write).
    /// An unknown name is an error that lists the methods there are.
    pub fn method(&self, name: &str) -> Result<MethodSchema<'_>, String> {
        let split = name.rfind('/').or_else(|| name.rfind('.'));
        if let Some(at) = split {
            let (service, method) = (&name[..at], &name[at + 1..]);
            for (unit, _, s) in self.services() {
                if s.wire_name == service
                    && let Some(m) = s.methods.iter().find(|m| m.wire_name == method)
                {
                    return Ok(MethodSchema { unit, service: s, method: m });
                }
            }
        }
        let all: Vec<String> = self
            .services()
            .flat_map(|(_, _, s)| s.methods.iter().map(move |m| format!("{}.{}", s.wire_name, m.wire_name)))
            .collect();
        let mut message = format!("there is no method `{name}`");
        match crate::diagnostic::suggest(name, all.iter().map(String::as_str)) {
            Some(near) => message.push_str(&format!("; did you mean `{near}`?")),
            None => message.push('.'),
        }
        if all.is_empty() {
            message.push_str(" The schema has no services");
        } else {
            message.push_str(&format!(" The methods are: {}", all.join(", ")));
        }
        Err(message)
    }

    /// The compilations the schema holds.
    pub(crate) fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter()
    }

    /// Every service that counts, with its unit and declaration, in declaration order.
    pub(crate) fn services(&self) -> impl Iterator<Item = (&Unit, &Decl, &ServiceDef)> {
        self.units.iter().flat_map(|unit| {
            unit.model.decls.iter().filter_map(move |decl| match &decl.kind {
                DeclKind::Service(s) if unit.served.as_ref().is_none_or(|served| served.contains(&s.wire_name)) => {
                    Some((unit, decl, s))
                }
                _ => None,
            })
        })
    }

    /// A schema of one unit per group of files (what reflection serves), each counting only the
    /// services named with it.
    pub(crate) fn from_served(groups: &[(Vec<Source<'_>>, HashSet<String>)]) -> Result<Schema, Error> {
        let files: usize = groups.iter().map(|(files, _)| files.len()).sum();
        if files > MAX_SERVED_FILES {
            return Err(Error::config(format!(
                "the server serves {files} .tidl files, more than the {MAX_SERVED_FILES} this tool compiles"
            )));
        }
        let units = groups
            .iter()
            .map(|(files, services)| Unit::from_files(files, Some(services.clone())))
            .collect::<Result<_, _>>()?;
        Ok(Schema { units })
    }
}

/// The most `.tidl` files a server's reflection may serve: compiling each root's imports costs
/// up to the whole import graph, so files served by the ten thousand cost that squared.
const MAX_SERVED_FILES: usize = 4096;

impl Unit {
    fn new(model: Model, served: Option<HashSet<String>>) -> Unit {
        let decls = model
            .decls
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let name = match &d.kind {
                    DeclKind::Struct(s) => &s.name,
                    DeclKind::Enum(e) => &e.name,
                    DeclKind::Alias(a) => &a.name,
                    DeclKind::Service(_) => return None,
                };
                Some((key(&d.module, name), i))
            })
            .collect();
        Unit { model, decls, served }
    }

    fn from_files(files: &[Source<'_>], served: Option<HashSet<String>>) -> Result<Unit, Error> {
        let mut memory = MemoryLoader::new(files, &[]);
        let roots: Vec<String> = files.iter().map(|s| loader::normalize(Path::new(s.path))).collect();
        let (model, _) = Config::new().checked_model(&roots, &mut memory)?;
        Ok(Unit::new(model, served))
    }

    /// The declaration a `Ty::Named` or `Ty::Alias` names.
    pub(crate) fn decl(&self, module: &[String], name: &str) -> Option<&Decl> {
        self.decls.get(&key(module, name)).map(|i| &self.model.decls[*i])
    }

    /// `ty` with aliases followed to what they stand for.
    pub(crate) fn resolve<'a>(&'a self, mut ty: &'a Ty) -> &'a Ty {
        // Alias chains are at most 64 long (the compiler checks); the bound keeps this total.
        for _ in 0..=crate::parser::MAX_NESTING {
            match ty {
                Ty::Alias { module, name } => match self.decl(module, name).map(|d| &d.kind) {
                    Some(DeclKind::Alias(a)) => ty = &a.target,
                    _ => return &Ty::Error,
                },
                _ => return ty,
            }
        }
        &Ty::Error
    }

    /// The `.tidl` name of a declared type (`shop.Order`).
    pub(crate) fn tidl_name(&self, module: &[String], name: &str) -> String {
        self.decl(module, name).map_or_else(|| name.to_owned(), |d| d.tidl_path.clone())
    }

    /// How `ty` is written in a `.tidl` file, with declared types by their full names.
    pub(crate) fn type_name(&self, ty: &Ty) -> String {
        ty.to_tidl(&|module, name| self.tidl_name(module, name), "?")
    }
}

/// A declaration's key: its module path and Rust name (as `codegen/schema.rs` keys them).
fn key(module: &[String], name: &str) -> String {
    format!("{}::{name}", module.join("::"))
}

/// One method of a [`Schema`]: encodes and decodes its messages.
#[derive(Debug, Clone, Copy)]
pub struct MethodSchema<'a> {
    pub(crate) unit: &'a Unit,
    pub(crate) service: &'a ServiceDef,
    pub(crate) method: &'a MethodDef,
}

impl MethodSchema<'_> {
    /// The service's wire name (`shop.Shop`).
    pub fn service(&self) -> &str {
        &self.service.wire_name
    }

    /// The method's wire name (`place`).
    #[allow(clippy::misnamed_getters)] // the wire name, not the Rust name
    pub fn name(&self) -> &str {
        &self.method.wire_name
    }

    /// How its messages flow.
    pub fn kind(&self) -> CallKind {
        match self.method.kind {
            MethodKind::Unary => CallKind::Unary,
            MethodKind::ServerStreaming => CallKind::ServerStreaming,
            MethodKind::ClientStreaming => CallKind::ClientStreaming,
            MethodKind::Bidi => CallKind::Bidi,
        }
    }

    /// The type of `part`, as written in a `.tidl` file (`list<shop.Line>`).
    pub fn type_name(&self, part: Part) -> String {
        self.unit.type_name(self.ty(part))
    }

    /// Encodes `json` as `part` of the method: exactly the bytes generated code sends for the
    /// same value.
    pub fn encode(&self, part: Part, json: &Json) -> Result<Bytes, JsonError> {
        let value = self.value(part, json)?;
        tidl_runtime::payload::encode(&value)
            .map_err(|e| JsonError { path: ".".into(), message: format!("the value could not be encoded: {e}") })
    }

    /// `json` as `part` of the method, checked, to be encoded where it is sent (a stream item).
    pub(crate) fn value(&self, part: Part, json: &Json) -> Result<value::Value, JsonError> {
        encode::Encoder::new(self.unit).value(self.ty(part), json)
    }

    /// Decodes `bytes`, which must be all of one `part` of the method, as JSON.
    pub fn decode(&self, part: Part, bytes: &[u8]) -> Result<Json, String> {
        decode::decoding(bytes.len(), || {
            tidl_runtime::payload::decode_seed(decode::Seed::new(self.unit, self.ty(part)), bytes)
        })
    }

    /// The method as the runtime calls it, with its schema, so that the server checks it
    /// against its own before the first call (and refuses it, rather than misread it, if the
    /// two cannot talk). Its names and schema are kept for the rest of the process (once per
    /// method).
    pub fn runtime_method(&self) -> tidl_runtime::Method {
        let (descriptor, fingerprint) = codegen::method_schema(&self.unit.model, self.method);
        let key = (self.service.wire_name.clone(), self.method.wire_name.clone(), descriptor);
        let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
        let interned = interned.get_or_insert_with(HashMap::new);
        *interned.entry(key).or_insert_with_key(|(service, method, descriptor)| {
            let schema = Box::leak(Box::new(tidl_runtime::Schema {
                fingerprint,
                descriptor: Box::leak(descriptor.clone().into_boxed_slice()),
                idempotent: self.method.idempotent,
            }));
            tidl_runtime::Method::new(
                Box::leak(service.clone().into_boxed_str()),
                Box::leak(method.clone().into_boxed_str()),
            )
            .with_schema(schema)
        })
    }

    fn ty(&self, part: Part) -> &Ty {
        match part {
            Part::Argument => &self.method.arg,
            Part::Reply => &self.method.reply,
            Part::Error => &self.method.error,
        }
    }
}

/// Runtime methods made so far, by service, method and descriptor: each is leaked once.
#[allow(clippy::type_complexity)]
static INTERNED: Mutex<Option<HashMap<(String, String, Vec<u8>), tidl_runtime::Method>>> = Mutex::new(None);

#[cfg(test)]
mod served_tests {
    use super::*;

    #[test]
    fn a_server_serving_more_files_than_the_tool_compiles_is_refused() {
        let paths: Vec<String> = (0..=MAX_SERVED_FILES).map(|i| format!("f{i}.tidl")).collect();
        let files: Vec<Source<'_>> = paths.iter().map(|path| Source { path, text: "" }).collect();
        let Err(e) = Schema::from_served(&[(files, HashSet::new())]) else { panic!("4,097 files compiled") };
        assert!(e.to_string().contains("serves 4097 .tidl files, more than the 4096"), "{e}");
    }
}
