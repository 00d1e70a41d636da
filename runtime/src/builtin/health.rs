//! Health: whether a server and its services take calls, served through the built-in service
//! `tidl.Health` to load balancers, orchestrators and probes (`tidl health ADDR` exits with 0
//! when the server is serving).
//!
//! A server built with [`ServerBuilder::health`] serves it. Every status starts out
//! [`Serving`](ServingStatus::Serving): the whole server's (`""`) and each registered service's
//! (by wire name, `shop.Shop`). The application changes them through [`Server::health`], say
//! to `NotServing` while a database it needs is down; a name it never set reads
//! [`UnknownService`](ServingStatus::UnknownService). When the server starts shutting down
//! ([`Server::shutdown`]), every status turns to `NotServing` and stays so: watchers are told,
//! and their streams end.
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
//! [`Server::health`]: crate::Server::health
//! [`Server::shutdown`]: crate::Server::shutdown

pub use super::generated::tidl::{HealthClient, HealthClientExt, ServingStatus};

use super::generated::tidl::{Health, HealthServer};
use crate::context::Context;
use crate::error::Error;
use crate::server::streaming::Sink;
use crate::sync::lock;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The health statuses a server reports: get it with [`Server::health`](crate::Server::health),
/// clone it freely (clones share the statuses), and set them as the application's state
/// changes. Statuses are kept by name: a service's wire name (`shop.Shop`), or `""` for the whole
/// server.
///
/// ```
/// use tidl_runtime::Server;
/// use tidl_runtime::health::ServingStatus;
///
/// let server = Server::builder().health().build();
/// let health = server.health();
/// assert_eq!(health.status(""), ServingStatus::Serving);
/// health.set("", ServingStatus::NotServing); // warming up
/// assert_eq!(health.status(""), ServingStatus::NotServing);
/// assert_eq!(health.status("Nobody"), ServingStatus::UnknownService);
/// ```
#[derive(Clone)]
pub struct HealthReporter {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped at every change, so that watchers look again.
    changed: watch::Sender<()>,
}

#[derive(Default)]
struct State {
    statuses: HashMap<String, ServingStatus>,
    /// Set when the server starts shutting down: every status is `NotServing` for good.
    shutting_down: bool,
}

impl HealthReporter {
    pub(crate) fn new() -> HealthReporter {
        HealthReporter {
            shared: Arc::new(Shared { state: Mutex::new(State::default()), changed: watch::Sender::new(()) }),
        }
    }

    /// Marks the whole server and each of `services` serving: how a server starts.
    pub(crate) fn start<'a>(&self, services: impl IntoIterator<Item = &'a str>) {
        self.set("", ServingStatus::Serving);
        for service in services {
            self.set(service, ServingStatus::Serving);
        }
    }

    /// Sets the status of `service` (a wire name, any name the application reports on, or `""`
    /// for the whole server) and tells its watchers. Once the server has started shutting down,
    /// every status stays `NotServing`, and this does nothing.
    pub fn set(&self, service: &str, status: ServingStatus) {
        let mut state = lock(&self.shared.state);
        if state.shutting_down {
            return;
        }
        if state.statuses.insert(service.to_owned(), status) != Some(status) {
            drop(state);
            self.shared.changed.send_replace(());
        }
    }

    /// The status of `service` (or of the whole server, for `""`): `UnknownService` for a name
    /// that was never set.
    pub fn status(&self, service: &str) -> ServingStatus {
        self.read(service).0
    }

    /// The status of `service`, and whether the server is shutting down.
    fn read(&self, service: &str) -> (ServingStatus, bool) {
        let state = lock(&self.shared.state);
        (state.statuses.get(service).copied().unwrap_or(ServingStatus::UnknownService), state.shutting_down)
    }

    /// Turns every status to `NotServing` for good: the server is shutting down.
    pub(crate) fn shut_down(&self) {
        let mut state = lock(&self.shared.state);
        state.shutting_down = true;
        for status in state.statuses.values_mut() {
            *status = ServingStatus::NotServing;
        }
        drop(state);
        self.shared.changed.send_replace(());
    }
}

impl fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("HealthReporter")
            .field("statuses", &state.statuses)
            .field("shutting_down", &state.shutting_down)
            .finish()
    }
}

/// The health service of a server.
#[derive(Debug)]
pub(crate) struct Service {
    reporter: HealthReporter,
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
            let (status, shutting_down) = self.reporter.read(&service);
            if sent != Some(status) {
                out.send(status).await?;
                sent = Some(status);
            }
            // A shutting-down server ends its watches, so that they do not hold up its shutdown.
            if shutting_down || changed.changed().await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The health service reporting `reporter`'s statuses.
pub(crate) fn service(reporter: HealthReporter) -> HealthServer<Service> {
    HealthServer::new(Service { reporter })
}
