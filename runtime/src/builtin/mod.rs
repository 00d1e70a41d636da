//! The services a server may serve besides its own, each turned on by one line in its builder:
//! [`reflection`] (what the server was built from, `tidl.Reflection`) and [`health`] (whether it
//! is serving, `tidl.Health`). Both are declared in `tidl.tidl` (package `tidl`) and served from
//! the code the compiler generated from it, `tidl.rs`, which a test of the compiler keeps
//! current (the runtime cannot run the compiler in a build script: the compiler's `tidl` tool
//! depends on the runtime).
//!
//! They sit above the server and the client: `ServerBuilder::reflection` and
//! `ServerBuilder::health` are defined here, and register the services through the builder's
//! build hooks (`server::BuildHook`), so the server knows nothing of them.

pub mod health;
pub mod reflection;

use crate::server::dispatch::Service;
use std::collections::HashMap;
use std::sync::Arc;

/// The code generated from `tidl.tidl`. What the [`reflection`] and [`health`] modules do not
/// re-export (the service traits and servers) is the runtime's own.
#[allow(unreachable_pub, dead_code)]
mod generated {
    include!("tidl.rs");
}

/// Registers a built-in service.
///
/// # Panics
/// If the program registered a service of its name itself.
#[track_caller]
fn insert(services: &mut HashMap<&'static str, Arc<dyn Service>>, service: Arc<dyn Service>) {
    let name = service.name();
    if services.insert(name, service).is_some() {
        panic!("tidl: the service `{name}` is registered twice on one server (it is built in)");
    }
}
