//! The handlers one read of a connection starts are first polled together, by one task
//! (`sched/batch.rs`). What that must not change: a panic while one of them is polled ends that
//! call alone, and a batch that takes long is shared with another worker. The server runs on a
//! 2-worker runtime of its own, as in production; requests are written as raw frames, in one
//! write, so that the server reads them together.

use crate::common;
use crate::raw;

use serde::{Serialize, Serializer};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use tidl_runtime::{Context, Error, Incoming, Method, Server, Service};

/// A reply whose encoding panics: the panic happens in the handler's task, after the handler.
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("this reply cannot be encoded (on purpose)")
    }
}

/// Panics when dropped: held by a handler's future.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("this handler's future panics as it is dropped (on purpose)")
    }
}

/// `Batch.echo(s)` answers at once; `Batch.unmade()` panics before it makes its future;
/// `Batch.drop_panics()` answers at once, and its future panics as it is dropped;
/// `Batch.waits_then_drop_panics()` waits for ever, and its future panics as it is dropped; `Batch.unencodable()` answers with a reply whose encoding
/// panics; `Batch.work(us)` computes for `us` microseconds in its first poll and records the
/// thread it ran on; `Batch.task()` spends a unit of tokio's cooperative budget, then records the
/// task it runs in.
struct Batch {
    threads: Seen<ThreadId>,
    tasks: Seen<Option<tokio::task::Id>>,
}

/// What handlers saw, shared with the test.
type Seen<T> = Arc<Mutex<HashSet<T>>>;

impl Service for Batch {
    fn name(&self) -> &'static str {
        "Batch"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "echo" => {
                request.spawn(Method::new("Batch", "echo"), |_: Context, s: String| async move { Ok::<_, Error>(s) });
            }
            "unencodable" => request.spawn(Method::new("Batch", "unencodable"), |_: Context, (): ()| async move {
                Ok::<_, Error>(Unencodable)
            }),
            "unmade" => request.spawn(Method::new("Batch", "unmade"), |_: Context, (): ()| {
                panic!("no future for this call (on purpose)");
                #[allow(unreachable_code)]
                async move {
                    Ok::<_, Error>(())
                }
            }),
            "drop_panics" => request.spawn(Method::new("Batch", "drop_panics"), |_: Context, (): ()| async move {
                let _guard = PanicOnDrop;
                Ok::<_, Error>(())
            }),
            "waits_then_drop_panics" => {
                request.spawn(Method::new("Batch", "waits_then_drop_panics"), |_: Context, (): ()| async move {
                    let _guard = PanicOnDrop;
                    std::future::pending::<()>().await;
                    Ok::<_, Error>(())
                });
            }
            "task" => {
                let tasks = self.tasks.clone();
                request.spawn(Method::new("Batch", "task"), move |_: Context, (): ()| async move {
                    // Spends a unit of the budget (as a channel or a socket would), then records
                    // the task it goes on in.
                    tokio::task::coop::consume_budget().await;
                    tasks.lock().expect("tasks").insert(tokio::task::try_id());
                    Ok::<_, Error>(())
                });
            }
            "work" => {
                let threads = self.threads.clone();
                request.spawn(Method::new("Batch", "work"), move |_: Context, us: u64| async move {
                    let until = Instant::now() + Duration::from_micros(us);
                    let mut x = 0u64;
                    while Instant::now() < until {
                        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
                    }
                    threads.lock().expect("threads").insert(std::thread::current().id());
                    Ok::<_, Error>(x)
                });
            }
            _ => return Err(request),
        }
        Ok(())
    }
}

/// A server on a 2-worker runtime of its own: its address, and the threads `work` ran on.
fn server() -> (std::net::SocketAddr, Seen<ThreadId>) {
    let (addr, threads, _) = server_and_tasks();
    (addr, threads)
}

/// [`server`], and the tasks `Batch.task` ran in.
fn server_and_tasks() -> (std::net::SocketAddr, Seen<ThreadId>, Seen<Option<tokio::task::Id>>) {
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let tasks = Arc::new(Mutex::new(HashSet::new()));
    let service = Batch { threads: threads.clone(), tasks: tasks.clone() };
    (common::serve_alone(move || Server::builder().register(service).build()), threads, tasks)
}

#[tokio::test]
async fn a_panic_while_a_call_of_the_batch_is_polled_loses_no_other_call() {
    let (addr, _) = server();
    let mut conn = raw::Raw::connect(addr).await;
    // Calls 1, 4, 7 panic, each in another way; the others are echoes.
    let panicking = ["unencodable", "unmade", "drop_panics"];
    let mut requests = Vec::new();
    for id in 0..9u64 {
        requests.extend(match id % 3 {
            1 => raw::request(id, "Batch", panicking[(id / 3) as usize], None, &[]),
            _ => raw::request(id, "Batch", "echo", None, &raw::string("hi")),
        });
    }
    conn.send(&requests).await;
    // Every call is answered: the echoes, and the others with the reason their reply is missing.
    let mut answered = HashSet::new();
    while answered.len() < 9 {
        match conn.recv().await {
            raw::Frame::ResponseOk { id, payload } if id % 3 != 1 => {
                assert_eq!(payload, raw::string("hi"));
                assert!(answered.insert(id));
            }
            raw::Frame::ResponseStatus { id, code, message } if id % 3 == 1 => {
                assert_eq!(code, tidl_runtime::Code::Internal.as_u16(), "{message}");
                let reason = ["this reply cannot be encoded", "no future for this call", "panics as it is dropped"];
                assert!(message.contains("panicked") && message.contains(reason[(id / 3) as usize]), "{message}");
                assert!(answered.insert(id));
            }
            other => panic!("expected the calls' replies, got {other:?}"),
        }
    }
    // The connection still serves.
    conn.send(&raw::request(20, "Batch", "echo", None, &raw::string("after"))).await;
    assert_eq!(conn.recv().await, raw::Frame::ResponseOk { id: 20, payload: raw::string("after") });
}

/// A read holding more requests than a batch takes is handled a batch at a time: the frames after
/// a full batch (more requests, a cancel, a ping) are all handled, none lost.
#[tokio::test]
async fn frames_after_a_full_batch_in_the_same_read_are_all_handled() {
    let (addr, _) = server();
    let mut conn = raw::Raw::connect(addr).await;
    let mut bytes: Vec<u8> =
        (1..=7).flat_map(|id| raw::request(id, "Batch", "echo", None, &raw::string("a"))).collect();
    bytes.extend(raw::cancel(99));
    bytes.extend(raw::ping(5));
    bytes.extend((8..=20).flat_map(|id| raw::request(id, "Batch", "echo", None, &raw::string("b"))));
    conn.send(&bytes).await;
    let (mut answered, mut ponged) = (HashSet::new(), false);
    while answered.len() < 20 || !ponged {
        match conn.recv().await {
            raw::Frame::ResponseOk { id, payload } => {
                assert_eq!(payload, raw::string(if id <= 7 { "a" } else { "b" }));
                assert!(answered.insert(id), "call {id} answered twice");
            }
            raw::Frame::Pong { nonce: 5 } => ponged = true,
            other => panic!("expected the calls' replies and a pong, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_batch_that_takes_long_is_shared_with_another_worker() {
    let (addr, threads) = server();
    let mut conn = raw::Raw::connect(addr).await;
    // 200 first polls of 0.5 ms each: no single poll is long, the batch is (100 ms).
    let requests: Vec<u8> =
        (1..=200).flat_map(|id| raw::request(id, "Batch", "work", None, &raw::varint(500))).collect();
    conn.send(&requests).await;
    for _ in 1..=200 {
        assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { .. }));
    }
    let threads = threads.lock().expect("threads").len();
    assert_eq!(threads, 2, "the batch's first polls ran on {threads} worker(s)");
}

/// A cancelled call is answered by nobody, even when its handler's future panics as the cancel
/// drops it (the panic is logged).
#[tokio::test]
async fn a_cancelled_call_whose_future_panics_as_it_is_dropped_gets_no_reply() {
    let (addr, _) = server();
    let mut conn = raw::Raw::connect(addr).await;
    conn.send(&raw::request(1, "Batch", "waits_then_drop_panics", None, &[])).await;
    // The call has started once an echo sent after it is answered.
    conn.send(&raw::request(2, "Batch", "echo", None, &raw::string("started"))).await;
    assert_eq!(conn.recv().await, raw::Frame::ResponseOk { id: 2, payload: raw::string("started") });
    conn.send(&raw::cancel(1)).await;
    // Once the echo sent after the cancel is answered, the cancel has been handled: nothing for
    // call 1 may come before it.
    conn.send(&raw::request(3, "Batch", "echo", None, &raw::string("after"))).await;
    assert_eq!(conn.recv().await, raw::Frame::ResponseOk { id: 3, payload: raw::string("after") });
    conn.send(&raw::ping(7)).await;
    assert_eq!(conn.recv().await, raw::Frame::Pong { nonce: 7 }, "nothing for the cancelled call");
}

/// A batch longer than tokio's cooperative budget (128 units per task; each of these handlers
/// spends one) goes on in a new task of its own when the budget is spent, rather than leaving
/// every handler after that point to wait, and be spawned, as a task of its own: 300 handlers read
/// together run in a few tasks, not in about 170.
#[tokio::test]
async fn a_batch_past_the_coop_budget_goes_on_in_one_new_task() {
    let (addr, _, tasks) = server_and_tasks();
    let mut conn = raw::Raw::connect(addr).await;
    let requests: Vec<u8> = (1..=300).flat_map(|id| raw::request(id, "Batch", "task", None, &[])).collect();
    conn.send(&requests).await;
    for _ in 1..=300 {
        assert!(matches!(conn.recv().await, raw::Frame::ResponseOk { .. }));
    }
    let tasks = tasks.lock().expect("tasks").len();
    assert!(tasks <= 20, "300 handlers ran in {tasks} tasks");
}
