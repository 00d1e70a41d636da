//! The streaming cases, as run inside one child process: server-streaming throughput with small
//! and large items, bidirectional ping-pong latency, cancel-to-drop of a streaming handler, and
//! how far a producer gets ahead of a consumer that never reads.
//!
//! Like the unary cases they run on a 2-worker tokio runtime with client and server in one
//! process and the measuring task spawned onto it.

use crate::cases::{Case, Counts, Metrics, runtime};
use crate::imp::{StreamClient, StreamRpc};
use crate::probe::Probe;
use crate::stats::{micros, percentile, rss_mib};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The size of the small items.
pub const SMALL_ITEM: u32 = 16;

/// The size of the large items (and of the never-reading consumer's items).
pub const LARGE_ITEM: u32 = 64 * 1024;

/// Binds a listener on an ephemeral loopback port and serves `R`'s streams on it.
pub async fn start_server<R: StreamRpc>(probe: Arc<Probe>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding 127.0.0.1:0");
    let addr = listener.local_addr().expect("the listener's address");
    R::serve(listener, probe);
    addr
}

/// Runs the streaming `case` for `R` in this process.
pub fn run<R: StreamRpc>(case: Case, counts: &Counts) -> Metrics {
    let counts = *counts;
    runtime().block_on(async move {
        let probe = Arc::new(Probe::default());
        let addr = start_server::<R>(probe.clone()).await;
        let client = R::connect(addr).await;
        let task = match case {
            Case::StreamItems(size) => {
                let size = u32::try_from(size).expect("item size fits in u32");
                tokio::spawn(items(client, size, counts.stream_items(size)))
            }
            Case::StreamPingPong => tokio::spawn(ping_pong(client, counts.ping_pong)),
            Case::StreamCancel => tokio::spawn(cancel::<R>(addr, client, probe, counts.stream_cancel)),
            Case::StreamStall => tokio::spawn(stall(client, probe, counts.stall_ms)),
            other => unreachable!("{other} is not a streaming case"),
        };
        task.await.expect("the benchmark task panicked")
    })
}

/// Cases 8 and 9: one server stream of `count` items of `size` bytes, taken as fast as they
/// come (after a stream of a tenth as many, to warm up).
async fn items<C: StreamClient>(client: C, size: u32, count: u64) -> Metrics {
    let warmup = (count / 10).max(10);
    assert_eq!(client.take_items(warmup, size).await, warmup * u64::from(size), "the warm-up stream fell short");
    let start = Instant::now();
    let bytes = client.take_items(count, size).await;
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(bytes, count * u64::from(size), "the stream fell short");
    vec![("items_per_s", count as f64 / elapsed), ("mb_per_s", bytes as f64 / elapsed / 1e6)]
}

/// Case 10: `n` round trips of one 16-byte item on one bidirectional stream, one at a time
/// (after a tenth as many to warm up).
async fn ping_pong<C: StreamClient>(client: C, n: usize) -> Metrics {
    let item = Bytes::from(vec![0x5a; SMALL_ITEM as usize]);
    let start = Instant::now();
    let mut samples = client.ping_pong(item, (n / 10).max(100), n).await;
    let total = start.elapsed();
    samples.sort_unstable();
    let busy: Duration = samples.iter().sum();
    vec![
        ("p50_us", micros(percentile(&samples, 0.50))),
        ("p99_us", micros(percentile(&samples, 0.99))),
        ("p999_us", micros(percentile(&samples, 0.999))),
        ("round_trips_per_s", n as f64 / busy.as_secs_f64()),
        ("total_s", total.as_secs_f64()),
    ]
}

/// Cancel trials made on one connection before the next trial reconnects (outside the timing).
///
/// tonic's client needs this: its HTTP/2 library (h2) counts the resets it sends for cancelled
/// streams that still have unread data, and after 1,024 of them on one connection ends it with
/// `GOAWAY(ENHANCE_YOUR_CALM, "too_many_internal_resets")`, failing the next call. Every
/// implementation reconnects at the same points, so that the comparison stays like for like.
pub const CANCELS_PER_CONNECTION: usize = 256;

/// Case 11: `n` cancel trials on endless streams of 16-byte items (after 50 to warm up).
async fn cancel<R: StreamRpc>(addr: SocketAddr, mut client: R::Client, probe: Arc<Probe>, n: usize) -> Metrics {
    for _ in 0..50 {
        client.cancel_trial(&probe).await;
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        if i % CANCELS_PER_CONNECTION == 0 {
            client = R::connect(addr).await;
        }
        samples.push(client.cancel_trial(&probe).await);
    }
    samples.sort_unstable();
    vec![
        ("median_us", micros(percentile(&samples, 0.50))),
        ("p99_us", micros(percentile(&samples, 0.99))),
        ("max_us", micros(percentile(&samples, 1.0))),
    ]
}

/// Case 12: an endless stream of 64 KiB items that the client never reads, for `ms`
/// milliseconds: how many items the producer handed over, and how much the process (client and
/// server) grew. A short stream first warms up the connection and the allocator.
async fn stall<C: StreamClient>(client: C, probe: Arc<Probe>, ms: u64) -> Metrics {
    client.take_items(64, LARGE_ITEM).await;
    let rss_before = rss_mib().unwrap_or(f64::NAN);
    let stream = client.open_endless(LARGE_ITEM).await;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let sent = probe.items();
    let rss_after = rss_mib().unwrap_or(f64::NAN);
    drop(stream);
    vec![
        ("items_sent", sent as f64),
        ("mib_sent", sent as f64 * f64::from(LARGE_ITEM) / (1024.0 * 1024.0)),
        ("rss_growth_mib", rss_after - rss_before),
    ]
}
