//! Limits: what a connection carries (empty and large messages, a thousand calls at once), and
//! where it stops — frames over the limit either way, calls over the concurrency limit,
//! connections over the connection limit — with a message naming the setting that raises it.

use crate::common;
use crate::raw;

use common::{Probe, call, connected, serve, serve_with, status};
use raw::{Frame, response_ok, scripted_server, string};
use std::time::Duration;
use tidl_runtime::bytes::Bytes;
use tidl_runtime::{Call, CallOptions, Client, ClientConfig, Code, Invoke, Method, ServerConfig};

/// `Probe.large`'s argument: the size of the reply, and a payload sent along.
fn large(response_size: u32, payload: Bytes) -> (u32, Bytes) {
    (response_size, payload)
}

// Within the limits: the gRPC interop cases.

#[tokio::test]
async fn empty_request_and_empty_reply() {
    let (client, _server) = connected(Probe::default()).await;
    assert_eq!(call::<_, ()>(&client, "empty", &()).await, Ok(()));
}

#[tokio::test]
async fn large_request_and_large_reply() {
    let (client, _server) = connected(Probe::default()).await;
    let reply =
        call::<_, Bytes>(&client, "large", &large(314_159, Bytes::from(vec![0; 271_828]))).await.expect("large call");
    assert_eq!(reply.len(), 314_159);
    assert!(reply.iter().all(|b| *b == 0xab));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_large_calls_in_parallel_on_one_client() {
    let (client, _server) = connected(Probe::default()).await;
    let payload = Bytes::from(vec![7; 271_828]);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000u32 {
        let client = client.clone();
        let request = large(314_159 + i, payload.clone());
        calls.spawn(async move { (i, call::<_, Bytes>(&client, "large", &request).await) });
    }
    let mut done = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, reply) = joined.expect("task");
        assert_eq!(reply.expect("large call").len(), 314_159 + i as usize);
        done += 1;
    }
    assert_eq!(done, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_echo_calls_each_get_their_own_answer() {
    let (client, _server) = connected(Probe::default()).await;

    // All thousand are in flight at once: each was sent when it was made.
    let calls: Vec<(usize, Call<String>)> =
        (0..1000).map(|i| (i, call(&client, "echo", &format!("message {i}")))).collect();
    // And some from concurrent tasks, too.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1000..1100 {
        let client = client.clone();
        tasks.spawn(async move { (i, call::<_, String>(&client, "echo", &format!("message {i}")).await) });
    }
    for (i, call) in calls {
        assert_eq!(call.await, Ok(format!("message {i}")));
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, reply) = joined.expect("task");
        assert_eq!(reply, Ok(format!("message {i}")));
    }
}

// Over the limits.

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_refused_and_cancels_still_work() {
    let probe = Probe::default();
    let mut config = ServerConfig::default();
    config.max_concurrent_calls = 4;
    let (addr, _server) = serve_with(probe.clone(), config).await;
    let client = Client::dial(addr).await.expect("dial");
    let running: Vec<Call<()>> = (0..4).map(|_| call(&client, "sleep", &60_000u64)).collect();
    probe.wait("four handlers to run", |s| s.started == 4).await;

    let refused = status(call::<_, ()>(&client, "sleep", &1u64).await);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "`Probe.sleep` was refused: this connection already has 4 calls running, the limit \
         (ServerConfig::max_concurrent_calls)"
    );

    // Cancels are still read at the limit, and free a place.
    running[0].cancel();
    probe.wait("the cancelled handler to stop", |s| s.dropped == 1).await;
    assert_eq!(call::<_, ()>(&client, "sleep", &1u64).await, Ok(()));
    drop(running);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_resource_exhausted() {
    let mut config = ServerConfig::default();
    config.max_connections = 2;
    let (addr, _server) = serve_with(Probe::default(), config).await;
    let first = Client::dial(addr).await.expect("first");
    let second = Client::dial(addr).await.expect("second");
    let refused = Client::dial(addr).await.expect_err("third is over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("maximum number of connections (ServerConfig::max_connections)"), "{refused}");
    assert_eq!(call::<_, ()>(&first, "empty", &()).await, Ok(()));

    // Closing one frees a place.
    drop(second);
    let again = tokio::time::timeout(common::EVENT_TIMEOUT, async {
        loop {
            match Client::dial(addr).await {
                Ok(client) => break client,
                Err(e) if e.code() == Code::ResourceExhausted => tokio::task::yield_now().await,
                Err(e) => panic!("unexpected: {e}"),
            }
        }
    })
    .await
    .expect("a place frees up");
    assert_eq!(call::<_, ()>(&again, "empty", &()).await, Ok(()));
}

#[tokio::test]
async fn a_storm_beyond_the_connection_limit_holds_a_bounded_number_of_refusals() {
    // The server's refusals each wait up to 1 s for the client's hello; at most 256 at once.
    const REFUSING: usize = 256;
    const OVER: usize = REFUSING + 40;
    let addr = common::serve_alone(|| {
        let mut config = ServerConfig::default();
        config.max_connections = 1;
        tidl_runtime::Server::builder().register(Probe::default()).config(config).build()
    });
    let first = Client::dial(addr).await.expect("first");
    // Connections over the limit that never send their hello.
    let mut silent = Vec::with_capacity(OVER);
    for _ in 0..OVER {
        silent.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    // Those beyond the refusals in progress are closed at once, well before a refusal's second.
    let reads: Vec<_> = silent
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                let read = tokio::io::AsyncReadExt::read(&mut socket, &mut byte);
                matches!(tokio::time::timeout(Duration::from_millis(500), read).await, Ok(Ok(0) | Err(_)))
            })
        })
        .collect();
    let mut closed_at_once = 0;
    for read in reads {
        closed_at_once += usize::from(read.await.expect("a read task"));
    }
    assert!(closed_at_once >= OVER - REFUSING, "{closed_at_once} of {OVER} closed at once");
    assert!(closed_at_once < OVER, "the refusals in progress wait for their hello");
    // The connection being served is not disturbed.
    assert_eq!(call::<_, ()>(&first, "empty", &()).await, Ok(()));
}

#[tokio::test]
async fn a_request_over_the_frame_limit_fails_locally_and_the_connection_goes_on() {
    let (addr, _server) = serve(Probe::default()).await;
    let mut config = ClientConfig::default();
    config.max_frame_len = 64 * 1024;
    let client = Client::dial_with(addr, config).await.expect("dial");
    let refused = status(call::<_, Bytes>(&client, "large", &large(0, Bytes::from(vec![0; 100_000]))).await);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "the request to `Probe.large` is larger than the maximum frame length of 65536 bytes; raise \
         ClientConfig::max_frame_len on both peers to send it"
    );
    assert_eq!(call::<_, ()>(&client, "empty", &()).await, Ok(()));
}

#[tokio::test]
async fn a_reply_over_the_frame_limit_fails_that_call_only() {
    let mut config = ServerConfig::default();
    config.max_frame_len = 64 * 1024;
    let (addr, _server) = serve_with(Probe::default(), config).await;
    let client = Client::dial(addr).await.expect("dial");
    let refused = status(call::<_, Bytes>(&client, "large", &large(100_000, Bytes::new())).await);
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "the reply of `Probe.large` is larger than the maximum frame length of 65536 bytes; raise \
         ServerConfig::max_frame_len on both peers to send it"
    );
    assert_eq!(call::<_, ()>(&client, "empty", &()).await, Ok(()));
}

#[tokio::test]
async fn a_reply_over_the_clients_frame_limit_closes_the_connection_with_a_reason() {
    let (addr, accept) = scripted_server().await;
    let mut config = ClientConfig::default();
    config.max_frame_len = 1024;
    let client = Client::dial_with(addr, config).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let call = client.call::<_, String, String>(Method::new("Echo", "echo"), "big?", &CallOptions::default());
    let Frame::Request { id, .. } = server.recv().await else { panic!("expected a request") };
    server.send(&response_ok(id, &string(&"x".repeat(5000)))).await;
    let status = tokio::time::timeout(raw::TIMEOUT, call).await.expect("no hang").expect_err("too big");
    let message = status.to_string();
    assert!(
        message.contains("over the maximum frame length of 1024 bytes; raise ClientConfig::max_frame_len"),
        "{message}"
    );
}

/// Calls made while a server reads nothing: the requests first fill the socket, then the
/// client's queue, which stops at `max_queued_request_bytes`.
#[tokio::test]
async fn a_client_bounds_the_requests_it_queues() {
    let (addr, accept) = scripted_server().await;
    let mut config = ClientConfig::default();
    config.max_queued_request_bytes = 1024 * 1024;
    config.when_full = tidl_runtime::WhenFull::Fail;
    let client = Client::dial_with(addr, config).await.expect("dial");
    let _server = accept.await.expect("accepted"); // never reads
    let big = "x".repeat(256 * 1024);
    let method = Method::new("Echo", "echo");
    let mut calls: Vec<Call<String>> = Vec::new();
    let refused = loop {
        assert!(calls.len() < 400, "the queue never filled: {} calls of 256 KiB", calls.len());
        let mut call = client.call::<_, String, String>(method, &big, &CallOptions::default());
        // A refused call is ready at once; a queued one is pending.
        match futures_now(&mut call).await {
            Some(result) => break result,
            None => calls.push(call),
        }
    };
    let status = match refused {
        Err(tidl_runtime::Error::Status(status)) => status,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.is_unstarted(), "{status}");
    assert!(status.message().contains("ClientConfig::max_queued_request_bytes"), "{status}");

    // Waiting instead: the call waits for room within its deadline, and fails unstarted when it
    // passes.
    let (addr, accept) = scripted_server().await;
    let mut config = ClientConfig::default();
    config.max_queued_request_bytes = 1024 * 1024;
    let client = Client::dial_with(addr, config).await.expect("dial");
    let _server = accept.await.expect("accepted");
    // Calls without a deadline until the queue is full (the first ones fill the socket).
    let mut calls: Vec<Call<String>> = Vec::new();
    while client.queued_request_bytes() < 1024 * 1024 {
        assert!(calls.len() < 400, "the queue never filled");
        calls.push(client.call::<_, String, String>(method, &big, &CallOptions::default()));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let options = CallOptions::default().timeout(Duration::from_millis(200));
    let waited = tokio::time::timeout(Duration::from_secs(5), client.call::<_, String, String>(method, &big, &options))
        .await
        .expect("the deadline applies to the wait");
    let Err(tidl_runtime::Error::Status(status)) = waited else { panic!("{waited:?}") };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(status.message().contains("too many bytes of requests queued"), "{status}");
}

/// The call's result if it is ready at once, without waiting.
async fn futures_now(call: &mut Call<String>) -> Option<Result<String, tidl_runtime::Error>> {
    tokio::time::timeout(Duration::from_millis(1), call).await.ok()
}

/// A client that stops reading holds its connection only for so long: once the socket has
/// taken no bytes for `keepalive_interval + keepalive_timeout`, the server gives up on it and
/// closes the connection, instead of keeping the connection, its queued replies and the handlers
/// waiting to queue theirs for ever. The keepalive alone cannot tell: such a client keeps
/// sending (here a ping every 20 ms). Other clients are served throughout.
#[test]
fn a_client_that_stops_reading_is_dropped_once_its_socket_takes_nothing_for_the_keepalive_period() {
    let mut config = ServerConfig::default();
    config.keepalive_interval = Some(Duration::from_millis(200));
    config.keepalive_timeout = Duration::from_millis(200);
    let addr =
        common::serve_alone(move || tidl_runtime::Server::builder().register(Probe::default()).config(config).build());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
    runtime.block_on(async {
        let raw::Raw { stream } = raw::Raw::connect(addr).await;
        let (_read, mut write) = stream.into_split();
        // 64 calls answering 1 MiB each: more than the server's reply queue (4 MiB) and both
        // sockets' buffers hold, so the server's writer finds the socket full.
        let large = [raw::varint(1 << 20), raw::varint(0)].concat();
        let requests: Vec<u8> = (1..=64).flat_map(|id| raw::request(id, "Probe", "large", None, &large)).collect();
        tokio::io::AsyncWriteExt::write_all(&mut write, &requests).await.expect("sending the calls");
        // The client goes on sending, and reads nothing, until the server closes the connection.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut nonce = 0;
        loop {
            nonce += 1;
            let ping = raw::ping(nonce);
            let ping = tokio::io::AsyncWriteExt::write_all(&mut write, &ping);
            match tokio::time::timeout(Duration::from_secs(1), ping).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => panic!("the server stopped reading but kept the connection"),
            }
            assert!(std::time::Instant::now() < deadline, "the server kept a client that reads nothing for 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Another client is served.
        let mut other = raw::Raw::connect(addr).await;
        other.send(&raw::request(1, "Probe", "large", None, &[raw::varint(3), raw::varint(0)].concat())).await;
        assert!(matches!(other.recv().await, Frame::ResponseOk { id: 1, .. }));
    });
}

/// A server that grants a client stream all the credit there is and reads nothing does not make
/// the client queue without end: a sender waits once `max_queued_request_bytes` (16 MiB) are
/// queued, as a unary call does. 1,000 items of 64 KiB (64 MB) are offered; the sender is still
/// waiting after 2 s, well short of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stream_queues_no_more_than_the_queue_limit_whatever_credit_the_server_grants() {
    let (addr, accept) = scripted_server().await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let (mut sink, reply) = client.client_stream::<Bytes, u64, String>(Method::new("S", "up"), &CallOptions::default());
    let item = Bytes::from(vec![7u8; 64 * 1024]);
    sink.send(item.clone()).await.expect("the first item, within the initial window");
    let id = match server.recv().await {
        Frame::Request { id, .. } => id,
        other => panic!("expected the stream's request, got {other:?}"),
    };
    server.send(&raw::credit(id, u64::MAX)).await;
    let mut sent = 1u32;
    let sending = async {
        while sent < 1_000 {
            sink.send(item.clone()).await.expect("sent");
            sent += 1;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), sending).await;
    assert!(sent < 500, "{sent} items of 64 KiB queued for a server that reads nothing");
    drop((reply, server));
}
