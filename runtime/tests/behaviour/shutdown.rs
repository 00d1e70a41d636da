//! Graceful shutdown: the server stops accepting, tells clients to start no new calls, lets
//! running calls finish within the grace period, cancels the rest telling their callers why,
//! and returns once every task has ended.

use crate::common;
use crate::raw;

use common::{Probe, call, connected, serve, status};
use std::time::Duration;
use tidl_runtime::{Call, Client, Code, Error};

#[tokio::test]
async fn shutdown_lets_running_calls_finish_and_refuses_new_ones_at_once() {
    let probe = Probe::default();
    let (addr, server) = serve(probe.clone()).await;
    let client = Client::dial(addr).await.expect("dial");
    let running: Call<()> = call(&client, "sleep", &200u64);
    probe.wait("the handler to start", |s| s.started == 1).await;

    let shutdown = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_secs(30)).await }
    });
    // The client hears that the server is going away: new calls fail at once.
    let refused = tokio::time::timeout(common::EVENT_TIMEOUT, async {
        loop {
            match call::<_, ()>(&client, "empty", &()).await {
                Err(Error::Status(status)) => break status,
                Ok(()) => tokio::task::yield_now().await,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("refused in time");
    assert_eq!(refused.code(), Code::Unavailable);

    // The running call completes, and only then does shutdown return.
    assert_eq!(running.await, Ok(()));
    tokio::time::timeout(common::EVENT_TIMEOUT, shutdown).await.expect("shutdown returns").expect("task");
    assert_eq!(probe.stats().finished, 1);
    assert!(Client::dial(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn shutdown_cancels_what_is_left_after_the_grace_period_and_says_why() {
    let probe = Probe::default();
    let (client, server) = connected(probe.clone()).await;
    let running: Call<()> = call(&client, "sleep", &60_000u64);
    probe.wait("the handler to start", |s| s.started == 1).await;

    tokio::time::timeout(common::EVENT_TIMEOUT, server.shutdown(Duration::from_millis(50)))
        .await
        .expect("shutdown returns");
    // Every task has ended when shutdown returns: the handler was dropped before.
    assert_eq!(probe.stats().dropped, 1);
    let stopped = status(running.await);
    assert_eq!(stopped.code(), Code::Unavailable);
    assert_eq!(stopped.message(), "the server shut down and stopped `Probe.sleep` at the end of its grace period");
}

#[tokio::test]
async fn a_shutdown_with_no_grace_fails_every_pending_call_at_once() {
    let probe = Probe::default();
    let (client, server) = connected(probe.clone()).await;
    let calls: Vec<Call<()>> = (0..3).map(|_| call(&client, "sleep", &60_000u64)).collect();
    probe.wait("three handlers to start", |s| s.started == 3).await;
    // A grace of zero: the server cancels the calls and closes the connection.
    server.shutdown(Duration::ZERO).await;
    for call in calls {
        let result = tokio::time::timeout(common::EVENT_TIMEOUT, call).await.expect("no hang");
        assert_eq!(status(result).code(), Code::Unavailable);
    }
    let after = status(call::<_, ()>(&client, "empty", &()).await);
    assert_eq!(after.code(), Code::Unavailable);
}

/// A request that crosses the GoAway on the wire is still read, and refused unstarted; the
/// connection closes only once the client has answered the ping that follows the GoAway.
#[tokio::test]
async fn a_request_that_crosses_the_goaway_is_refused_unstarted_not_lost() {
    let (addr, server) = raw::echo_server().await;
    let mut raw = raw::Raw::connect(addr).await;
    let shutdown = tokio::spawn(async move { server.shutdown(Duration::from_secs(10)).await });
    assert!(matches!(raw.recv().await, raw::Frame::GoAway { .. }));
    let raw::Frame::Ping { nonce } = raw.recv().await else { panic!("expected the ping after the GoAway") };
    // The client had sent this before it read the GoAway.
    raw.send(&raw::request(7, "Echo", "echo", None, &[2, b'h', b'i'])).await;
    let frame = raw.recv().await;
    let raw::Frame::ResponseRefused { id: 7, code, message } = frame else {
        panic!("expected a refusal, got {frame:?}")
    };
    assert_eq!(code, Code::Unavailable.as_u16());
    assert!(message.contains("shutting down"), "{message}");
    assert!(!shutdown.is_finished(), "the server waits for the pong");
    raw.send(&raw::frame(&[vec![4], raw::varint(nonce)].concat())).await;
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("the shutdown ends after the pong")
        .expect("task");
}
