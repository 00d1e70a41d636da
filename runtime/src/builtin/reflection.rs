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
pub use crate::schema::EmbeddedSchema;

use super::generated::tidl::{Reflection, ReflectionServer};
use crate::context::Context;
use crate::error::Error;
use crate::server::{BuildHook, ServerBuilder};

/// The wire name of the reflection service.
pub(crate) const NAME: &str = "tidl.Reflection";

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

impl ServerBuilder {
    /// Serves reflection (the built-in service `tidl.Reflection`): the `.tidl` files the
    /// registered services were generated from, so that `tidl list`, `tidl describe` and `tidl
    /// call` work with no `.tidl` file at hand. The server reveals what it was built from and
    /// nothing else; see [`reflection`](crate::reflection).
    ///
    /// ```
    /// let server = tidl_runtime::Server::builder().reflection().build();
    /// # drop(server);
    /// ```
    pub fn reflection(self) -> ServerBuilder {
        self.on_build(BuildHook {
            name: NAME,
            // After every other service, health included, is registered: it lists them all.
            order: 1,
            install: Box::new(|services, _| {
                let mut listed: Vec<(&'static str, &'static EmbeddedSchema)> =
                    services.values().filter_map(|s| Some((s.name(), s.embedded_schema()?))).collect();
                // It lists itself too: it is served, and it has a schema.
                listed.push((NAME, &super::generated::TIDL_SCHEMA));
                super::insert(services, std::sync::Arc::new(service(&listed)));
            }),
        })
    }
}

/// The reflection service of a server that serves `services` (by name, with their schemas):
/// one source per embedded schema, with the services that come from it, sorted.
fn service(services: &[(&'static str, &'static EmbeddedSchema)]) -> ReflectionServer<Service> {
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
