//! The struct-encoding case (tidl only): the same four-field record echoed as a `@frozen` struct
//! and as an evolvable one, sequentially (latency) and with 256 calls in flight (throughput), in
//! alternating rounds so that both halves see the same machine.

use crate::cases::{Counts, Metrics, runtime, start_server};
use crate::generated::{BenchClientExt, Evolvable, Frozen};
use crate::probe::Probe;
use crate::stats::{micros, percentile};
use crate::tidl_bench::Tidl;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tidl_runtime::Client;

/// Rounds of each half.
const ROUNDS: usize = 4;

/// Calls in flight in the throughput half.
const IN_FLIGHT: usize = 256;

fn frozen() -> Frozen {
    Frozen { id: 42, name: "hello world".into(), tags: vec!["a".into(), "bc".into()], score: 0.5 }
}

fn evolvable() -> Evolvable {
    Evolvable { id: 42, name: "hello world".into(), tags: vec!["a".into(), "bc".into()], score: 0.5 }
}

/// Echoes the record `n` times, one after another; the latencies.
async fn sequential(client: &Client, evolvable_half: bool, n: usize) -> Vec<Duration> {
    let bench = client.bench();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        if evolvable_half {
            assert_eq!(bench.echo_evolvable(evolvable()).await, Ok(evolvable()));
        } else {
            assert_eq!(bench.echo_frozen(frozen()).await, Ok(frozen()));
        }
        samples.push(t.elapsed());
    }
    samples
}

/// Echoes the record `total` times with [`IN_FLIGHT`] calls in flight; calls per second.
async fn throughput(client: &Client, evolvable_half: bool, total: u64) -> f64 {
    let remaining = Arc::new(AtomicI64::new(i64::try_from(total).expect("fits")));
    let start = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (bench, remaining) = (client.bench(), remaining.clone());
            tokio::spawn(async move {
                while remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                    if evolvable_half {
                        assert_eq!(bench.echo_evolvable(evolvable()).await.map(|r| r.id), Ok(42));
                    } else {
                        assert_eq!(bench.echo_frozen(frozen()).await.map(|r| r.id), Ok(42));
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a load task panicked");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Runs the case: p50 latency and throughput of each half.
pub fn run(counts: &Counts) -> Metrics {
    let (seq, tput) = (counts.seq / ROUNDS, counts.tput / ROUNDS as u64);
    runtime().block_on(async move {
        tokio::spawn(async move {
            let addr = start_server::<Tidl>(Arc::new(Probe::default())).await;
            let client = Client::dial(addr).await.expect("dial the bench server");
            sequential(&client, false, seq / 10).await;
            sequential(&client, true, seq / 10).await;
            let (mut lat, mut rate) = ([Vec::new(), Vec::new()], [0.0, 0.0]);
            for _ in 0..ROUNDS {
                for (half, evolvable_half) in [(0, false), (1, true)] {
                    lat[half].extend(sequential(&client, evolvable_half, seq).await);
                    rate[half] += throughput(&client, evolvable_half, tput).await / ROUNDS as f64;
                }
            }
            for samples in &mut lat {
                samples.sort_unstable();
            }
            vec![
                ("frozen_p50_us", micros(percentile(&lat[0], 0.50))),
                ("evolvable_p50_us", micros(percentile(&lat[1], 0.50))),
                ("frozen_calls_per_s", rate[0]),
                ("evolvable_calls_per_s", rate[1]),
            ]
        })
        .await
        .expect("the structs case panicked")
    })
}
