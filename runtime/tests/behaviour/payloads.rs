//! Calls whose values stay encoded, as tools whose types are known only at run time make them
//! (`tidl call`): a request made of bytes answers bytes, and a stream's items and outcome come
//! undecoded. The built-in health service, whose encodings docs/PROTOCOL.md gives, serves, on a
//! runtime of its own.

use crate::common;

use common::{EVENT_TIMEOUT, Probe};
use tidl_runtime::bytes::Bytes;
use tidl_runtime::health::{HealthReporter, ServingStatus};
use tidl_runtime::{CallOptions, Client, Code, Invoke, Method, Reply, Request, Server, payload};

/// Serves `server` on a runtime of its own.
fn serve_alone(server: Server) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("server runtime");
        runtime.block_on(async move {
            tx.send(server.listen("127.0.0.1:0").await.expect("bind loopback")).expect("report the address");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("server address")
}

#[test]
fn health_statuses_encode_as_the_protocol_says() {
    let encoded = |status| payload::encode(&status).expect("encodes").to_vec();
    assert_eq!(encoded(ServingStatus::Serving), [0, 0]);
    assert_eq!(encoded(ServingStatus::NotServing), [1, 0]);
    assert_eq!(encoded(ServingStatus::UnknownService), [2, 0]);
    assert_eq!(payload::decode::<ServingStatus>(&[7, 0]), Ok(ServingStatus::Unknown(7)));
    assert_eq!(payload::encode("").expect("encodes").as_ref(), [0]);
}

#[tokio::test]
async fn a_request_of_bytes_is_answered_with_bytes() {
    let addr = serve_alone(Server::builder().register(Probe::default()).health(&HealthReporter::new()).build());
    let client = Client::dial(addr).await.expect("dial");
    let check = |name: &'static [u8]| {
        let request = Request::from_payload(
            Method::new("tidl.Health", "check"),
            Bytes::from_static(name),
            CallOptions::default(),
        );
        client.invoke(request)
    };
    assert!(matches!(check(&[0]).await, Reply::Ok(bytes) if bytes.as_ref() == [0, 0]));
    assert!(matches!(check(b"\x06Nobody").await, Reply::Ok(bytes) if bytes.as_ref() == [2, 0]));
    assert!(matches!(check(&[]).await, Reply::Status(s) if s.code() == Code::InvalidArgument), "no string at all");
}

#[tokio::test]
async fn a_streams_items_and_outcome_come_undecoded() {
    let health = HealthReporter::new();
    let addr = serve_alone(Server::builder().register(Probe::default()).health(&health).build());
    let client = Client::dial(addr).await.expect("dial");
    let watch = Method::new("tidl.Health", "watch");
    let mut items = client.server_stream::<_, (), ()>(watch, "Probe", &CallOptions::default());
    let mut next = async || tokio::time::timeout(EVENT_TIMEOUT, items.next_payload()).await.expect("in time");
    assert!(matches!(next().await, Some(Ok(bytes)) if bytes.as_ref() == [0, 0]));
    health.set("Probe", ServingStatus::NotServing);
    assert!(matches!(next().await, Some(Ok(bytes)) if bytes.as_ref() == [1, 0]));
    // A server without the service: the outcome is the status, then the stream is over.
    let addr = serve_alone(Server::builder().register(Probe::default()).build());
    let client = Client::dial(addr).await.expect("dial");
    let mut items = client.server_stream::<_, (), ()>(watch, "Probe", &CallOptions::default());
    assert!(matches!(items.next_payload().await, Some(Err(Reply::Status(s))) if s.code() == Code::Unimplemented));
    assert!(items.next_payload().await.is_none());
}
