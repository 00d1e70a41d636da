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

/// A server that pings and reads nothing gets pongs only until a megabyte waits for it, not
/// one for every ping: 2 million pings (22 MB) sent after a call's request and before its reply,
/// without reading; then everything the client wrote, read back, holds far fewer pongs than
/// pings (what the socket buffers took, and 1 MiB of them at most).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_pings_and_reads_nothing_gets_pongs_only_until_a_megabyte_waits() {
    let (addr, accept) = scripted_server().await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let call: tidl_runtime::Call<u32> = client.call(Method::new("S", "m"), &1u32, &CallOptions::default());
    let Frame::Request { id, .. } = server.recv().await else { panic!("expected the request") };
    const PINGS: u64 = 2_000_000;
    let mut bytes: Vec<u8> = (1..=PINGS).flat_map(raw::ping).collect();
    bytes.extend(raw::response_ok(id, &[7]));
    server.send(&bytes).await;
    // The reply comes after every ping: the client has read (and answered, or not) them all.
    assert_eq!(call.await, Ok(7));
    drop(client);
    let written = server.expect_closed().await;
    let mut pongs = 0u64;
    let mut at = 0;
    while at + 4 <= written.len() {
        let len = u32::from_be_bytes([written[at], written[at + 1], written[at + 2], written[at + 3]]) as usize;
        let Some(body) = written.get(at + 4..at + 4 + len) else { break };
        pongs += raw::parse_all(body).iter().filter(|f| matches!(f, Frame::Pong { .. })).count() as u64;
        at += 4 + len;
    }
    assert!(pongs > 0, "pings are answered at first");
    assert!(pongs < PINGS / 2, "{pongs} pongs for {PINGS} pings from a server that read nothing");
}

/// The ping that follows a GoAway is answered however much the client has queued: the server
/// closes the connection on its pong. 12 MiB of requests wait (the server reads nothing until
/// it has sent the GoAway), then the pong comes after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ping_after_a_goaway_is_answered_however_much_is_queued() {
    let (addr, accept) = scripted_server().await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let big = tidl_runtime::bytes::Bytes::from(vec![7u8; 6 << 20]);
    let calls: Vec<tidl_runtime::Call<()>> =
        (0..2).map(|_| client.call(Method::new("S", "m"), &big, &CallOptions::default())).collect();
    // The client has queued both once the first request's header arrives... the GoAway goes
    // out while most of the 12 MiB still waits on the client's side.
    let frames = [raw::goaway(14, "draining"), raw::ping(u64::MAX)].concat();
    server.send(&frames).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < deadline, "no pong to the GoAway's ping");
        if let Frame::Pong { nonce: u64::MAX } = server.recv().await {
            break;
        }
    }
    drop(calls);
}

/// A server that reads nothing but keeps sending is given up on by the client too: once the
/// socket has taken no bytes for keepalive_interval + keepalive_timeout, the connection is
/// retired (not only its calls failed), so an `Endpoint` would connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gives_up_on_a_server_that_reads_nothing_and_keeps_sending() {
    let (addr, accept) = scripted_server().await;
    let mut config = ClientConfig::default();
    config.keepalive_interval = Some(Duration::from_millis(200));
    config.keepalive_timeout = Duration::from_millis(200);
    let client = Client::dial_with(addr, config).await.expect("dial");
    let server = accept.await.expect("accepted");
    let Raw { stream } = server;
    let (_read, mut write) = stream.into_split();
    // 16 MiB of requests, more than the sockets hold: the client's writer waits.
    let big = tidl_runtime::bytes::Bytes::from(vec![7u8; 4 << 20]);
    let calls: Vec<tidl_runtime::Call<()>> =
        (0..4).map(|_| client.call(Method::new("S", "m"), &big, &CallOptions::default())).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut nonce = 0;
    while client.is_open() {
        assert!(std::time::Instant::now() < deadline, "the client kept a server that read nothing for 10 s");
        nonce += 1;
        let ping = raw::ping(nonce);
        let _ = tokio::io::AsyncWriteExt::write_all(&mut write, &ping).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(calls);
}
