//! The services a server may serve besides its own, each turned on by one line in its builder:
//! [`reflection`] (what the server was built from, `tidl.Reflection`) and [`health`] (whether it
//! is serving, `tidl.Health`). Both are declared in `tidl.tidl` (package `tidl`) and served from
//! the code the compiler generated from it, `tidl.rs`, which a test of the compiler keeps
//! current (the runtime cannot run the compiler in a build script: the compiler's `tidl` tool
//! depends on the runtime).

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

/// Adds the built-in services asked for to `services`, and returns the health reporter (which
/// exists whether or not the health service is served). Every service starts out serving.
///
/// # Panics
/// If the program registered a service of a built-in's name itself.
#[track_caller]
pub(crate) fn add(
    services: &mut HashMap<&'static str, Arc<dyn Service>>,
    reflection: bool,
    health: bool,
) -> health::HealthReporter {
    let reporter = health::HealthReporter::new();
    if health {
        insert(services, Arc::new(health::service(reporter.clone())));
    }
    if reflection {
        // Reflection lists itself too: it is served, and it has a schema.
        let mut listed: Vec<(&'static str, &'static reflection::EmbeddedSchema)> =
            services.values().filter_map(|s| Some((s.name(), s.embedded_schema()?))).collect();
        listed.push((reflection::NAME, &generated::TIDL_SCHEMA));
        insert(services, Arc::new(reflection::service(&listed)));
    }
    reporter.start(services.keys().copied());
    reporter
}

#[track_caller]
fn insert(services: &mut HashMap<&'static str, Arc<dyn Service>>, service: Arc<dyn Service>) {
    let name = service.name();
    if services.insert(name, service).is_some() {
        panic!("tidl: the service `{name}` is registered twice on one server (it is built in)");
    }
}
