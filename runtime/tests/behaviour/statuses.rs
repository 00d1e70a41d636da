//! What a handler answers is what its caller gets: a status it returns reaches the caller with
//! its code and message, `?` on an inner call's error forwards the inner status, and a panic
//! fails that call only, with `Internal`.

use crate::common;

use common::{Probe, call, connected, serve, status};
use tidl_runtime::{Client, Code};

/// Every status constructor, and the code its status has.
const KINDS: [(&str, Code); 16] = [
    ("cancelled", Code::Cancelled),
    ("unknown", Code::Unknown),
    ("invalid_argument", Code::InvalidArgument),
    ("deadline_exceeded", Code::DeadlineExceeded),
    ("not_found", Code::NotFound),
    ("already_exists", Code::AlreadyExists),
    ("permission_denied", Code::PermissionDenied),
    ("resource_exhausted", Code::ResourceExhausted),
    ("failed_precondition", Code::FailedPrecondition),
    ("aborted", Code::Aborted),
    ("out_of_range", Code::OutOfRange),
    ("unimplemented", Code::Unimplemented),
    ("internal", Code::Internal),
    ("unavailable", Code::Unavailable),
    ("data_loss", Code::DataLoss),
    ("unauthenticated", Code::Unauthenticated),
];

#[tokio::test]
async fn every_status_a_handler_returns_reaches_the_caller_with_its_code_and_message() {
    let (client, _server) = connected(Probe::default()).await;
    for (kind, code) in KINDS {
        let message = format!("{kind}: ünïcödé ✓ — 期限切れ 🚫");
        let result: Result<(), _> = call(&client, "fail", &(kind, &message)).await;
        let status = status(result);
        assert_eq!((status.code(), status.message()), (code, message.as_str()), "Status::{kind}");
    }
    // None of them broke the connection.
    let echo: Result<String, _> = call(&client, "echo", "still here").await;
    assert_eq!(echo, Ok("still here".to_owned()));
}

#[tokio::test]
async fn question_mark_on_an_inner_calls_error_forwards_its_status_to_the_outer_caller() {
    // outer -> inner; the inner server answers with the status it is asked for.
    let (inner_addr, _inner) = serve(Probe::default()).await;
    let outer = Probe::with_next(Client::dial(inner_addr).await.expect("dial the inner server"));
    let (client, _outer) = connected(outer).await;

    let result: Result<(), _> = call(&client, "forward", &("unavailable", "the backend is down")).await;
    let forwarded = status(result);
    assert_eq!(forwarded.code(), Code::Unavailable);
    assert_eq!(forwarded.message(), "the backend is down");

    let result: Result<(), _> = call(&client, "forward", &("not_found", "no user 42")).await;
    let forwarded = status(result);
    assert_eq!((forwarded.code(), forwarded.message()), (Code::NotFound, "no user 42"));
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_own_call() {
    let probe = Probe::default();
    let (client, _server) = connected(probe.clone()).await;
    let running = call::<_, u64>(&client, "ticks", &u64::MAX);
    probe.wait("the loop to start", |s| s.started == 1).await;

    let result: Result<(), _> = call(&client, "explode", "kaboom").await;
    let panicked = status(result);
    assert_eq!(panicked.code(), Code::Internal);
    assert_eq!(panicked.message(), "the handler of `Probe.explode` panicked: kaboom");

    // The connection and the other call are unaffected.
    let echo: Result<String, _> = call(&client, "echo", "after").await;
    assert_eq!(echo, Ok("after".to_owned()));
    let before = probe.stats().ticks;
    probe.wait("the loop to keep running", |s| s.ticks >= before + 2).await;
    assert_eq!(probe.stats().dropped, 0);
    drop(running);
}
