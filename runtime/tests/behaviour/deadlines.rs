//! Deadlines: the client's own timer fires whether or not the server answers, the server stops
//! a handler whose deadline passes even if nobody waits, and a deadline travels down a chain of
//! servers, never getting later. (That a deadline exceeds and stops the handler over every
//! transport is in transports.rs.)

use crate::common;
use crate::raw;

use common::{Probe, call, call_with, chain, connected, serve, status};
use raw::{Frame, scripted_server};
use std::time::Duration;
use tidl_runtime::{CallOptions, Client, ClientConfig, Code, Context, Invoke, Method};
use tokio::time::Instant;

#[tokio::test]
async fn a_call_with_a_generous_deadline_completes_normally() {
    let probe = Probe::default();
    let (client, _server) = connected(probe.clone()).await;
    let options = CallOptions::default().timeout(Duration::from_secs(30));
    assert_eq!(call_with::<_, ()>(&client, "sleep", &5u64, &options).await, Ok(()));
    assert_eq!(probe.stats().finished, 1);
}

#[tokio::test]
async fn the_server_enforces_the_deadline_even_if_nobody_waits() {
    let probe = Probe::default();
    let (client, _server) = connected(probe.clone()).await;
    let options = CallOptions::default().timeout(Duration::from_millis(50));
    call_with::<_, ()>(&client, "sleep", &60_000u64, &options).detach();
    probe.wait("the handler to start", |s| s.started == 1).await;
    let stats = probe.wait("the deadline to stop the handler", |s| s.dropped == 1).await;
    assert_eq!(stats.finished, 0);
    assert_eq!(stats.dropped_cancelled, 1, "the call was cancelled before its handler was dropped");
}

#[tokio::test]
async fn a_client_wide_default_timeout_applies_to_every_call() {
    let probe = Probe::default();
    let (addr, _server) = serve(probe.clone()).await;
    let mut config = ClientConfig::default();
    config.default_timeout = Some(Duration::from_millis(20));
    let client = Client::dial_with(addr, config).await.expect("dial");
    assert_eq!(status(call::<_, ()>(&client, "sleep", &60_000u64).await).code(), Code::DeadlineExceeded);
    // A per-call timeout overrides the default.
    let options = CallOptions::default().timeout(Duration::from_secs(30));
    assert_eq!(call_with::<_, ()>(&client, "sleep", &40u64, &options).await, Ok(()));
    probe.wait("one stopped, one finished", |s| s.dropped == 1 && s.finished == 1).await;
}

#[tokio::test]
async fn the_client_times_out_on_its_own_and_tells_the_server() {
    let (addr, accept) = scripted_server().await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let options = CallOptions::default().timeout(Duration::from_millis(30));
    let call = client.call::<_, String, String>(Method::new("Echo", "echo"), "quick?", &options);
    let Frame::Request { id, timeout_micros, .. } = server.recv().await else { panic!("expected a request") };
    let timeout = timeout_micros.expect("the deadline travels with the request");
    assert!(timeout > 0 && timeout <= 30_000, "{timeout}");
    // The server never answers; the client's own timer fires and it cancels the call.
    let status = tokio::time::timeout(raw::TIMEOUT, call).await.expect("no hang").expect_err("timed out");
    assert_eq!(status.code(), Some(Code::DeadlineExceeded));
    assert_eq!(server.recv().await, Frame::Cancel { id });
}

#[tokio::test]
async fn a_deadline_travels_down_a_chain_and_stops_every_server() {
    let (client, [a, b, c], _servers) = chain().await;
    let started = Instant::now();
    let options = CallOptions::default().timeout(Duration::from_millis(300));
    let result = call_with::<_, Vec<Option<u64>>>(&client, "relay", &true, &options).await;
    assert_eq!(status(result).code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(5));
    for (name, probe) in [("A", &a), ("B", &b), ("C", &c)] {
        probe.wait(&format!("{name}'s handler to be stopped"), |s| s.dropped == 1).await;
    }
}

#[tokio::test]
async fn an_inner_deadline_is_never_later_than_the_outer_one() {
    let (b_client, _b) = connected(Probe::default()).await;
    // The caller's context has a 200 ms deadline; the inner call asks for 60 s.
    let parent = Context::new(
        tidl_runtime::CancellationToken::new(),
        Some(std::time::Instant::now() + Duration::from_millis(200)),
    );
    let options = CallOptions::default().context(&parent).timeout(Duration::from_secs(60));
    let inner = call_with::<_, ()>(&b_client, "sleep", &60_000u64, &options);
    let started = Instant::now();
    assert_eq!(status(inner.await).code(), Code::DeadlineExceeded);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn each_server_of_a_chain_sees_no_more_time_than_the_one_before() {
    let (client, _probes, _servers) = chain().await;
    let options = CallOptions::default().timeout(Duration::from_secs(20));
    let hops = call_with::<_, Vec<Option<u64>>>(&client, "relay", &false, &options).await.expect("relay");
    let remaining: Vec<u64> = hops.iter().map(|h| h.expect("every hop has a deadline")).collect();
    assert_eq!(remaining.len(), 3);
    assert!(remaining[0] <= 20_000_000 && remaining[0] > 10_000_000, "{remaining:?}");
    assert!(remaining[1] <= remaining[0] && remaining[2] <= remaining[1], "{remaining:?}");
}
