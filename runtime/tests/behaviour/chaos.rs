//! A chaos soak: many tasks make calls through a [`Balancer`] over three servers, and end each
//! at random by awaiting it, cancelling it, dropping it, giving it a short deadline or detaching
//! it, while the servers are crashed, drained and restarted on their addresses. It checks that
//! every awaited call ends (no hang), never with a wrong answer; that no handler is left running
//! once the servers stop; and that memory stays flat. It prints its figures.
//!
//! It runs for 4 s by default (CI); `TIDL_CHAOS_SECS=60 cargo test -p tidl-runtime
//! --all-features --test behaviour -- chaos:: --nocapture` runs it longer.

#![cfg(feature = "balance")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidl_runtime::{Balancer, CallOptions, Code, EndpointConfig, Error, Incoming, Invoke, Method, Server, Service};
use tokio::sync::oneshot;

/// Handlers running now, in every server of this process.
static LIVE: AtomicI64 = AtomicI64::new(0);

struct Live;

impl Live {
    fn enter() -> Live {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `Chaos.work((token, ms)) -> token`: sleeps `ms`, answers the token.
struct Chaos;

impl Service for Chaos {
    fn name(&self) -> &'static str {
        "Chaos"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "work" => request.spawn(Method::new("Chaos", "work"), |_ctx, (token, ms): (u64, u64)| async move {
                let _live = Live::enter();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, Error>(token)
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

/// A server on a runtime and thread of its own; dropping the stop sender crashes it.
struct Node {
    stop: Option<oneshot::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    fn start(addr: SocketAddr) -> (Node, SocketAddr) {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<bool>();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let server = Server::builder().register(Chaos).build();
                let bound = loop {
                    // The address may still be held by the previous incarnation for a moment.
                    match server.listen(addr).await {
                        Ok(bound) => break bound,
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                };
                addr_tx.send(bound).expect("report the address");
                if let Ok(true) = stop_rx.await {
                    server.shutdown(Duration::from_secs(2)).await;
                }
            });
        });
        let bound = addr_rx.recv().expect("server address");
        (Node { stop: Some(stop_tx), thread: Some(thread) }, bound)
    }

    /// Stops the server: gracefully, or as a crash.
    fn stop(mut self, graceful: bool) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(graceful);
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

/// A xorshift generator: deterministic per seed, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_crashes_drains_cancels_and_deadlines() {
    let secs: u64 = std::env::var("TIDL_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let (node, addr) = Node::start("127.0.0.1:0".parse().expect("addr"));
        nodes.push(Some(node));
        addrs.push(addr);
    }
    let mut config = EndpointConfig::default();
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    let balancer = Balancer::from_addrs(addrs.iter().map(ToString::to_string), &config);

    let outcomes: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let wrong = Arc::new(AtomicU64::new(0));
    let hung = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(AtomicU64::new(1));
    let end = Instant::now() + Duration::from_secs(secs);
    let rss_start = rss_kib();

    let mut workers = Vec::new();
    for seed in 0..24u64 {
        let (balancer, outcomes, wrong, hung, tokens) =
            (balancer.clone(), outcomes.clone(), wrong.clone(), hung.clone(), tokens.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let method = Method::new("Chaos", "work");
            while Instant::now() < end {
                let token = tokens.fetch_add(1, Ordering::Relaxed);
                let ms = rng.below(20);
                let action = rng.below(5);
                let options = if action == 3 {
                    CallOptions::default().timeout(Duration::from_millis(rng.below(15) + 1))
                } else {
                    CallOptions::default().timeout(Duration::from_secs(20))
                };
                let call = balancer.call::<_, u64, String>(method, &(token, ms), &options);
                let outcome = match action {
                    1 => {
                        tokio::time::sleep(Duration::from_millis(rng.below(10))).await;
                        call.cancel();
                        Some(call)
                    }
                    2 => {
                        drop(call);
                        None
                    }
                    4 => {
                        call.detach();
                        None
                    }
                    _ => Some(call),
                };
                let key = match outcome {
                    None => {
                        if action == 2 {
                            "dropped".to_owned()
                        } else {
                            "detached".to_owned()
                        }
                    }
                    Some(call) => match tokio::time::timeout(Duration::from_secs(30), call).await {
                        Err(_) => {
                            hung.fetch_add(1, Ordering::Relaxed);
                            "hung".to_owned()
                        }
                        Ok(Ok(answer)) => {
                            if answer != token {
                                wrong.fetch_add(1, Ordering::Relaxed);
                            }
                            "ok".to_owned()
                        }
                        Ok(Err(Error::Status(status))) => format!("{:?}", status.code()),
                        Ok(Err(e)) => format!("other: {e}"),
                    },
                };
                *outcomes.lock().expect("outcomes").entry(key).or_insert(0) += 1;
            }
        }));
    }

    // The faults: every 150-450 ms one server crashes or drains, and comes back.
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    while Instant::now() + Duration::from_millis(500) < end {
        tokio::time::sleep(Duration::from_millis(150 + rng.below(300))).await;
        let i = usize::try_from(rng.below(3)).expect("small");
        let graceful = rng.below(2) == 0;
        if let Some(node) = nodes[i].take() {
            let addr = addrs[i];
            let node = tokio::task::spawn_blocking(move || {
                node.stop(graceful);
                Node::start(addr).0
            })
            .await
            .expect("restart");
            nodes[i] = Some(node);
            *faults.entry(if graceful { "drain and restart" } else { "crash and restart" }).or_insert(0) += 1;
        }
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    let rss_end = rss_kib();
    for node in nodes.into_iter().flatten() {
        tokio::task::spawn_blocking(move || node.stop(true)).await.expect("stop");
    }
    // Every handler ends once its server has stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while LIVE.load(Ordering::SeqCst) != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let outcomes = outcomes.lock().expect("outcomes").clone();
    let total: u64 = outcomes.values().sum();
    println!("chaos soak, {secs} s: {total} calls; faults {faults:?}; outcomes {outcomes:?}");
    println!("RSS {rss_start} KiB -> {rss_end} KiB");
    assert_eq!(hung.load(Ordering::Relaxed), 0, "awaited calls that never ended: {outcomes:?}");
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "calls answered with another call's token");
    assert_eq!(LIVE.load(Ordering::SeqCst), 0, "handlers left running after their servers stopped");
    assert!(outcomes.get("ok").copied().unwrap_or(0) > total / 4, "most calls succeed: {outcomes:?}");
    assert!(faults.values().sum::<u64>() >= 2, "faults were injected: {faults:?}");
    let allowed = [
        "ok",
        "dropped",
        "detached",
        &format!("{:?}", Code::Cancelled),
        &format!("{:?}", Code::DeadlineExceeded),
        &format!("{:?}", Code::Unavailable),
    ];
    for key in outcomes.keys() {
        assert!(allowed.contains(&key.as_str()), "unexpected outcome {key}: {outcomes:?}");
    }
    assert!(rss_end < rss_start + 128 * 1024, "memory grew from {rss_start} KiB to {rss_end} KiB");
}
