//! Reflection: a server that enables it ([`ServerBuilder::reflection`]) serves the `.tidl` files
//! its services were generated from, through the built-in service `tidl.Reflection`, so that a
//! tool (`tidl list`, `tidl describe`, `tidl call`) can call it with no `.tidl` file at hand.
//!
//! What it serves is exactly what the server was built from: for each generated module that a
//! registered service comes from, the files it was compiled from (declarations and doc comments;
//! other comments are left out when the module is generated, and paths are relative to the
//! directory the files share), and which of its services the server serves. Services
//! implemented by hand, with no files, are not listed, and nothing else about the server is.
//!
//! ```no_run
//! use tidl_runtime::reflection::ReflectionClientExt;
//!
//! # async fn run() -> Result<(), tidl_runtime::Error> {
//! let client = tidl_runtime::Client::dial("127.0.0.1:23333").await?;
//! for source in client.reflection().schema(()).await?.sources {
//!     println!("{:?} from {}", source.services, source.files[0].path);
//! }
//! # Ok(()) }
//! ```
//!
//! [`ServerBuilder::reflection`]: crate::ServerBuilder::reflection

pub use super::generated::tidl::{ReflectionClient, ReflectionClientExt, SchemaFile, SchemaSource, ServerSchema};

use super::generated::tidl::{Reflection, ReflectionServer};
use crate::context::Context;
use crate::error::Error;

/// The wire name of the reflection service.
pub(crate) const NAME: &str = "tidl.Reflection";

/// The `.tidl` files a generated module was compiled from, embedded in it: its root file first,
/// then every file the root imports, as (path, text) pairs. Generated code declares one
/// (`TIDL_SCHEMA`), and each generated service returns it from
/// [`Service::embedded_schema`](crate::Service::embedded_schema).
#[derive(Debug)]
pub struct EmbeddedSchema {
    files: &'static [(&'static str, &'static str)],
}

impl EmbeddedSchema {
    /// The files `files`, as (path, text) pairs, the root first.
    pub const fn new(files: &'static [(&'static str, &'static str)]) -> EmbeddedSchema {
        EmbeddedSchema { files }
    }

    /// The files, as (path, text) pairs, the root first.
    pub fn files(&self) -> &'static [(&'static str, &'static str)] {
        self.files
    }
}

/// The reflection service of a server: its answer, made once when the server is built.
#[derive(Debug)]
pub(crate) struct Service {
    schema: ServerSchema,
}

impl Reflection for Service {
    async fn schema(&self, _ctx: Context, (): ()) -> Result<ServerSchema, Error> {
        Ok(self.schema.clone())
    }
}

/// The reflection service of a server that serves `services` (by name, with their schemas):
/// one source per embedded schema, with the services that come from it, sorted.
pub(crate) fn service(services: &[(&'static str, &'static EmbeddedSchema)]) -> ReflectionServer<Service> {
    let mut sorted = services.to_vec();
    sorted.sort_unstable_by_key(|(name, _)| *name);
    let mut grouped: Vec<(&'static EmbeddedSchema, Vec<String>)> = Vec::new();
    for (name, schema) in sorted {
        match grouped.iter_mut().find(|(s, _)| std::ptr::eq(*s, schema)) {
            Some((_, names)) => names.push(name.to_owned()),
            None => grouped.push((schema, vec![name.to_owned()])),
        }
    }
    let sources = grouped
        .into_iter()
        .map(|(schema, services)| SchemaSource {
            services,
            files: schema
                .files()
                .iter()
                .map(|(path, text)| SchemaFile { path: (*path).to_owned(), text: (*text).to_owned() })
                .collect(),
        })
        .collect();
    ReflectionServer::new(Service { schema: ServerSchema { sources } })
}
