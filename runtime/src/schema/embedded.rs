//! [`EmbeddedSchema`]: the `.tidl` files a generated module was compiled from, as the runtime
//! holds them for reflection: opaque text, which the runtime never reads.

/// The `.tidl` files a generated module was compiled from, embedded in it: its root file first,
/// then every file the root imports, as (path, text) pairs. Generated code declares one
/// (`TIDL_SCHEMA`), and each generated service returns it from
/// [`Service::embedded_schema`](crate::Service::embedded_schema); a server built with
/// [`ServerBuilder::reflection`](crate::ServerBuilder::reflection) serves it.
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
