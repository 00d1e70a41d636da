//! Cancellation stops the work, not just the waiting: a cancelled or dropped call drops the
//! server's handler, across a chain of servers too, and a cancel that comes too late changes
//! nothing. (That a cancel stops the handler over every transport, and that a closed connection
//! cancels all its handlers, is in transports.rs.)

use crate::common;

use common::{Probe, call, chain, connected, status};
use std::time::Duration;
use tidl_runtime::{Call, Code};

#[tokio::test]
async fn dropping_a_pending_call_cancels_it() {
    let probe = Probe::default();
    let (client, _server) = connected(probe.clone()).await;

    let running: Call<u64> = call(&client, "ticks", &u64::MAX);
    probe.wait("the loop to run", |s| s.ticks >= 1).await;
    drop(running);
    probe.wait("the handler to be dropped", |s| s.dropped == 1).await;

    // The same happens to a call abandoned by a timeout around it.
    let timed_out = tokio::time::timeout(Duration::from_millis(20), call::<_, u64>(&client, "ticks", &u64::MAX)).await;
    assert!(timed_out.is_err());
    probe.wait("the second handler to be dropped", |s| s.dropped == 2).await;
    assert_eq!(probe.stats().finished, 0);
}

#[tokio::test]
async fn a_call_cancelled_right_after_it_starts_is_cancelled() {
    let (client, _server) = connected(Probe::default()).await;
    let running: Call<()> = call(&client, "sleep", &60_000u64);
    running.cancel();
    assert_eq!(status(running.await).code(), Code::Cancelled);
}

#[tokio::test]
async fn cancelling_a_completed_call_does_nothing() {
    let (client, _server) = connected(Probe::default()).await;
    let done: Call<String> = call(&client, "echo", "done");
    // Wait for the reply to arrive, by completing another call issued after it.
    assert_eq!(call::<_, String>(&client, "echo", "later").await, Ok("later".to_owned()));
    done.cancel();
    assert_eq!(done.await, Ok("done".to_owned()));
}

#[tokio::test]
async fn cancel_then_dropping_the_client_still_stops_the_handler() {
    let probe = Probe::default();
    let (client, _server) = connected(probe.clone()).await;
    let running: Call<()> = call(&client, "sleep", &60_000u64);
    probe.wait("the handler to start", |s| s.started == 1).await;
    running.cancel();
    drop(running);
    drop(client);
    probe.wait("the handler to be stopped", |s| s.dropped == 1).await;
}

#[tokio::test]
async fn cancelling_a_call_cancels_it_on_every_server_of_a_chain() {
    let (client, [a, b, c], _servers) = chain().await;
    let running: Call<Vec<Option<u64>>> = call(&client, "relay", &true);
    c.wait("the call to reach the last server", |s| s.started == 1).await;
    running.cancel();
    for (name, probe) in [("A", &a), ("B", &b), ("C", &c)] {
        probe.wait(&format!("{name}'s handler to be dropped"), |s| s.dropped == 1).await;
    }
    assert_eq!(status(running.await).code(), Code::Cancelled);
}
