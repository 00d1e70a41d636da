//! Health: whether a server and its services take calls, served through the built-in service
//! `tidl.Health` to load balancers, orchestrators and probes (`tidl health ADDR` exits with 0
//! when the server is serving).
//!
//! The application makes a [`HealthReporter`], hands it to the builder
//! ([`ServerBuilder::health`]) and keeps it to set statuses as its state changes. Every status
//! starts out [`Serving`](ServingStatus::Serving): the whole server's (`""`) and each registered
//! service's (by wire name, `shop.Shop`), unless the application set it before the server was
//! built. A name that was never set reads [`UnknownService`](ServingStatus::UnknownService).
//! When the server starts shutting down ([`Server::shutdown`]), every status turns to
//! `NotServing` and stays so: watchers are told, and their streams end.
//!
//! ```
//! use tidl_runtime::Server;
//! use tidl_runtime::health::{HealthReporter, ServingStatus};
//!
//! let health = HealthReporter::new();
//! health.set("", ServingStatus::NotServing); // warming up
//! let server = Server::builder().health(&health).build();
//! assert_eq!(health.status(""), ServingStatus::NotServing);
//! assert_eq!(health.status("tidl.Health"), ServingStatus::Serving);
//! health.set("", ServingStatus::Serving); // ready
//! # drop(server);
//! ```
//!
//! A probe, through the generated client:
//!
//! ```no_run
//! use tidl_runtime::health::{HealthClientExt, ServingStatus};
//!
//! # async fn run() -> Result<(), tidl_runtime::Error> {
//! let client = tidl_runtime::Client::dial("127.0.0.1:23333").await?;
//! let serving = client.health().check(String::new()).await? == ServingStatus::Serving;
//! # Ok(()) }
//! ```
//!
//! [`ServerBuilder::health`]: crate::ServerBuilder::health
//! [`Server::shutdown`]: crate::Server::shutdown

pub use super::generated::tidl::{HealthClient, HealthClientExt, ServingStatus};

use super::generated::tidl::{Health, HealthServer};
use crate::context::Context;
use crate::error::Error;
use crate::server::streaming::Sink;
use crate::server::{BuildHook, ServerBuilder};
use crate::sync::lock;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The wire name of the health service.
const NAME: &str = "tidl.Health";

/// The health statuses a server reports through `tidl.Health`, set by the application. Clone it
/// freely: clones share the statuses. Statuses are kept by name: a service's wire name
/// (`shop.Shop`), any other name the application reports on, or `""` for the whole server.
#[derive(Clone, Default)]
pub struct HealthReporter {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Bumped at every change, so that watchers look again.
    changed: watch::Sender<()>,
}

#[derive(Default)]
struct State {
    statuses: HashMap<String, ServingStatus>,
    /// Fire when the servers reporting these statuses start shutting down: from then on, every
    /// status is `NotServing`.
    draining: Vec<CancellationToken>,
}

impl HealthReporter {
    /// A reporter with no statuses yet; a server built with it ([`ServerBuilder::health`]) sets
    /// its own and its services' to serving.
    pub fn new() -> HealthReporter {
        HealthReporter::default()
    }

    /// Sets the status of `service` (a wire name, any name the application reports on, or `""`
    /// for the whole server) and tells its watchers. Once the server has started shutting down,
    /// every status stays `NotServing`, and this changes nothing.
    pub fn set(&self, service: &str, status: ServingStatus) {
        let mut state = lock(&self.shared.state);
        if state.statuses.insert(service.to_owned(), status) != Some(status) {
            drop(state);
            self.shared.changed.send_replace(());
        }
    }

    /// The status of `service` (or of the whole server, for `""`): `UnknownService` for a name
    /// that was never set, `NotServing` for every other once the server is shutting down.
    pub fn status(&self, service: &str) -> ServingStatus {
        let state = lock(&self.shared.state);
        match state.statuses.get(service) {
            None => ServingStatus::UnknownService,
            Some(_) if state.draining.iter().any(CancellationToken::is_cancelled) => ServingStatus::NotServing,
            Some(status) => *status,
        }
    }

    /// Marks the whole server and each of `services` serving, unless the application set them
    /// already, and turns them all to not serving when `draining` fires: how a server starts.
    fn start<'a>(&self, services: impl IntoIterator<Item = &'a str>, draining: CancellationToken) {
        let mut state = lock(&self.shared.state);
        for service in std::iter::once("").chain(services) {
            state.statuses.entry(service.to_owned()).or_insert(ServingStatus::Serving);
        }
        state.draining.push(draining);
        drop(state);
        self.shared.changed.send_replace(());
    }
}

impl fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        let shutting_down = state.draining.iter().any(CancellationToken::is_cancelled);
        f.debug_struct("HealthReporter")
            .field("statuses", &state.statuses)
            .field("shutting_down", &shutting_down)
            .finish()
    }
}

impl ServerBuilder {
    /// Serves health (the built-in service `tidl.Health`): whether the server and each service
    /// takes calls, as `reporter` says, for load balancers, orchestrators and `tidl health`.
    /// Every status not set yet starts out serving, and all turn to not serving when the server
    /// starts shutting down; see [`health`](crate::health).
    ///
    /// ```
    /// use tidl_runtime::Server;
    /// use tidl_runtime::health::{HealthReporter, ServingStatus};
    ///
    /// let health = HealthReporter::new();
    /// let server = Server::builder().health(&health).build();
    /// health.set("Example", ServingStatus::NotServing); // its database is down
    /// # drop(server);
    /// ```
    pub fn health(self, reporter: &HealthReporter) -> ServerBuilder {
        let (serve, start) = (reporter.clone(), reporter.clone());
        self.on_build(BuildHook {
            name: NAME,
            order: 0,
            install: Box::new(move |services, draining| {
                let service = Service { reporter: serve, draining: draining.clone() };
                super::insert(services, Arc::new(HealthServer::new(service)));
            }),
        })
        // Once every service, reflection included, is registered.
        .on_build(BuildHook {
            name: "tidl.Health statuses",
            order: 2,
            install: Box::new(move |services, draining| start.start(services.keys().copied(), draining.clone())),
        })
    }
}

/// The health service of a server.
#[derive(Debug)]
struct Service {
    reporter: HealthReporter,
    /// Fires when the server starts shutting down.
    draining: CancellationToken,
}

impl Health for Service {
    async fn check(&self, _ctx: Context, service: String) -> Result<ServingStatus, Error> {
        Ok(self.reporter.status(&service))
    }

    async fn watch(&self, _ctx: Context, service: String, mut out: Sink<ServingStatus>) -> Result<(), Error> {
        // Subscribed before the first look, so that no change after it is missed.
        let mut changed = self.reporter.shared.changed.subscribe();
        let mut sent = None;
        loop {
            // Read before the status: a shutdown that starts in between is seen next time round.
            let shutting_down = self.draining.is_cancelled();
            let status = self.reporter.status(&service);
            if sent != Some(status) {
                out.send(status).await?;
                sent = Some(status);
            }
            // A shutting-down server ends its watches, so that they do not hold up its shutdown.
            if shutting_down {
                return Ok(());
            }
            tokio::select! {
                changed = changed.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                () = self.draining.cancelled() => {}
            }
        }
    }
}
