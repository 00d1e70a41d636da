//! Keepalive: each side pings a silent peer, answers the other's pings, and gives up on a peer
//! that answers nothing — failing its calls or closing its connection — while an idle
//! connection whose peer answers stays up.

use crate::common;
use crate::raw;

use common::{Probe, call, serve_with};
use raw::{Frame, Raw, request, scripted_server};
use std::time::Duration;
use tidl_runtime::{CallOptions, Client, ClientConfig, Code, Invoke, Method, ServerConfig};

#[tokio::test]
async fn the_client_declares_a_silent_server_dead_and_fails_its_calls() {
    let (addr, accept) = scripted_server().await;
    let mut config = ClientConfig::default();
    config.keepalive_interval = Some(Duration::from_millis(30));
    config.keepalive_timeout = Duration::from_millis(60);
    let client = Client::dial_with(addr, config).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let call = client.call::<_, String, String>(Method::new("Echo", "echo"), "anyone?", &CallOptions::default());
    assert!(matches!(server.recv().await, Frame::Request { .. }));
    // The server reads on but never answers, not even the pings.
    assert!(matches!(server.recv().await, Frame::Ping { .. }));
    let status = tokio::time::timeout(raw::TIMEOUT, call).await.expect("no hang").expect_err("dead");
    let status = status.status().cloned().expect("a status");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("not even an answer to a keepalive ping"), "{status}");
}

#[tokio::test]
async fn the_client_answers_the_servers_pings() {
    let (addr, accept) = scripted_server().await;
    let _client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    server.send(&raw::ping(77)).await;
    assert_eq!(server.recv().await, Frame::Pong { nonce: 77 });
}

#[tokio::test]
async fn the_server_declares_a_silent_client_dead_and_closes_its_connection() {
    let mut config = tidl_runtime::ServerConfig::default();
    config.keepalive_interval = Some(Duration::from_millis(30));
    config.keepalive_timeout = Duration::from_millis(60);
    let (addr, _server) = raw::echo_server_with(config).await;
    let mut raw = Raw::connect(addr).await;
    raw.send(&request(1, "Echo", "sleep", None, &raw::varint(60_000))).await;
    // It pings; the client says nothing; it gives up on the client.
    assert!(matches!(raw.recv().await, Frame::Ping { .. }));
    let Frame::GoAway { code, message } = raw.recv().await else { panic!("expected a GoAway") };
    assert_eq!(code, Code::Unavailable.as_u16());
    assert!(message.contains("not even an answer to a keepalive ping (ServerConfig::keepalive_timeout)"), "{message}");
    raw.expect_closed().await;
}

#[tokio::test]
async fn an_idle_connection_with_keepalive_stays_up() {
    let mut server_config = ServerConfig::default();
    server_config.keepalive_interval = Some(Duration::from_millis(20));
    server_config.keepalive_timeout = Duration::from_millis(50);
    let (addr, _server) = serve_with(Probe::default(), server_config).await;
    let mut config = ClientConfig::default();
    config.keepalive_interval = Some(Duration::from_millis(20));
    config.keepalive_timeout = Duration::from_millis(50);
    let client = Client::dial_with(addr, config).await.expect("dial");
    // Many keepalive rounds on both sides, with no call at all: the idle time is what is tested.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(call::<_, ()>(&client, "empty", &()).await, Ok(()));
}
