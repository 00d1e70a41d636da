//! The built-in services over TCP, each server on a runtime of its own: `tidl.Health` answers
//! and watches the statuses the application sets, and turns every one to not serving when a
//! graceful shutdown starts, ending its watches so they do not hold the shutdown up;
//! `tidl.Reflection` lists the built-in services (which have schemas) and not a service
//! implemented by hand (which has none). The root crate's tests check what reflection reveals
//! of generated services.

use crate::common;

use common::{EVENT_TIMEOUT, Probe};
use std::net::SocketAddr;
use std::time::Duration;
use tidl_runtime::health::{HealthClientExt, HealthReporter, ServingStatus};
use tidl_runtime::reflection::ReflectionClientExt;
use tidl_runtime::{Client, Code, Error, Server};

/// Serves `server` on a runtime of its own; its handle spawns on that runtime.
fn serve_alone(server: Server) -> (SocketAddr, tokio::runtime::Handle) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("server runtime");
        runtime.block_on(async move {
            let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
            tx.send((addr, tokio::runtime::Handle::current())).expect("report the address");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("server address")
}

#[tokio::test]
async fn health_answers_the_statuses_the_application_sets() {
    let health = HealthReporter::new();
    let (addr, _runtime) = serve_alone(Server::builder().register(Probe::default()).health(&health).build());
    let client = Client::dial(addr).await.expect("dial");
    let check = |name: &str| client.health().check(name.to_owned());
    assert_eq!(check("").await, Ok(ServingStatus::Serving));
    assert_eq!(check("Probe").await, Ok(ServingStatus::Serving));
    assert_eq!(check("tidl.Health").await, Ok(ServingStatus::Serving));
    assert_eq!(check("Nobody").await, Ok(ServingStatus::UnknownService));
    health.set("Probe", ServingStatus::NotServing);
    assert_eq!(check("Probe").await, Ok(ServingStatus::NotServing));
    assert_eq!(check("").await, Ok(ServingStatus::Serving), "the server's own status is apart");
    // Without `health`, the service is not served.
    let (addr, _runtime) = serve_alone(Server::builder().register(Probe::default()).build());
    let plain = Client::dial(addr).await.expect("dial");
    let err = plain.health().check(String::new()).await.expect_err("no health service");
    assert_eq!(err.code(), Some(Code::Unimplemented));
}

#[tokio::test]
async fn a_health_watch_sees_each_change_then_not_serving_at_shutdown_and_ends() {
    let health = HealthReporter::new();
    let server = Server::builder().register(Probe::default()).health(&health).build();
    let (addr, runtime) = serve_alone(server.clone());
    let client = Client::dial(addr).await.expect("dial");
    let mut watch = client.health().watch("Probe".to_owned());
    let mut next = async || tokio::time::timeout(EVENT_TIMEOUT, watch.message()).await.expect("an item in time");
    assert_eq!(next().await, Ok(Some(ServingStatus::Serving)), "the status now, first");
    health.set("Probe", ServingStatus::NotServing);
    assert_eq!(next().await, Ok(Some(ServingStatus::NotServing)));
    health.set("Probe", ServingStatus::NotServing);
    health.set("Probe", ServingStatus::Serving);
    assert_eq!(next().await, Ok(Some(ServingStatus::Serving)), "a set that changes nothing sends nothing");
    // A long grace: the watch must end by itself for the shutdown to finish in time.
    let shutdown = runtime.spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_secs(600)).await }
    });
    assert_eq!(next().await, Ok(Some(ServingStatus::NotServing)));
    assert_eq!(next().await, Ok(None), "the watch ends successfully");
    tokio::time::timeout(EVENT_TIMEOUT, shutdown).await.expect("the shutdown is not held up").expect("shut down");
    assert_eq!(health.status(""), ServingStatus::NotServing);
    health.set("", ServingStatus::Serving);
    assert_eq!(health.status(""), ServingStatus::NotServing, "a shutting-down server stays not serving");
}

#[tokio::test]
async fn a_check_during_a_shutdown_fails_so_probes_fail() {
    let server = Server::builder().register(Probe::default()).health(&HealthReporter::new()).build();
    let (addr, runtime) = serve_alone(server.clone());
    let client = Client::dial(addr).await.expect("dial");
    assert_eq!(client.health().check(String::new()).await, Ok(ServingStatus::Serving));
    runtime.spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_secs(600)).await }
    });
    tokio::time::timeout(EVENT_TIMEOUT, client.retired()).await.expect("told to go away");
    // A probe on a draining server fails: for `tidl health`, not zero.
    let err = client.health().check(String::new()).await.expect_err("refused");
    assert_eq!(err.code(), Some(Code::Unavailable));
}

#[tokio::test]
async fn reflection_lists_services_with_schemas_and_not_those_made_by_hand() {
    let server = Server::builder().register(Probe::default()).health(&HealthReporter::new()).reflection().build();
    let (addr, _runtime) = serve_alone(server);
    let client = Client::dial(addr).await.expect("dial");
    let schema = client.reflection().schema(()).await.expect("reflection answers");
    assert_eq!(schema.sources.len(), 1, "both built-ins come from one file");
    let source = &schema.sources[0];
    assert_eq!(source.services, ["tidl.Health", "tidl.Reflection"], "`Probe` has no schema");
    assert_eq!(source.files.len(), 1);
    assert_eq!(source.files[0].path, "tidl.tidl");
    let text = &source.files[0].text;
    assert!(
        text.starts_with("/// The services a tidl server may serve") && text.contains("service Health {"),
        "{text}"
    );
    // Without `reflection()`, nothing is revealed.
    let (addr, _runtime) = serve_alone(Server::builder().register(Probe::default()).build());
    let plain = Client::dial(addr).await.expect("dial");
    let err: Error = plain.reflection().schema(()).await.expect_err("no reflection");
    assert_eq!(err.code(), Some(Code::Unimplemented));
}
