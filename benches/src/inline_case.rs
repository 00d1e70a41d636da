//! The inline case (tidl only): `echo` sequentially (latency) and with 256 calls in flight
//! (throughput), from a server with default settings and from one with
//! `ServerConfig::inline_handlers`, in alternating rounds so that both see the same machine.

use crate::cases::{Counts, Metrics, echo_sequential as sequential, echo_throughput as throughput, runtime};
use crate::probe::Probe;
use crate::stats::{cpu_ns, micros, percentile};
use crate::tidl_bench::bench_builder;
use std::sync::Arc;
use tidl_runtime::{Client, ServerConfig};

/// Rounds of each half.
const ROUNDS: usize = 3;

/// A server on loopback, its handlers inline or not, and a client of it.
async fn connect(inline: bool) -> Client {
    let mut config = ServerConfig::default();
    config.inline_handlers = inline;
    let server = bench_builder(Arc::new(Probe::default())).config(config).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    Client::dial(addr).await.expect("dial")
}

/// Runs the case: p50 latency, throughput and CPU time per call, spawned and inline.
pub fn run(counts: &Counts) -> Metrics {
    let (seq, tput) = (counts.seq / ROUNDS, counts.tput / ROUNDS as u64);
    runtime().block_on(async move {
        tokio::spawn(async move {
            let clients = [connect(false).await, connect(true).await];
            for client in &clients {
                sequential(client, seq / 10).await;
            }
            let (mut lat, mut rate, mut cpu) = ([Vec::new(), Vec::new()], [0.0; 2], [0.0; 2]);
            for _ in 0..ROUNDS {
                for (half, client) in clients.iter().enumerate() {
                    lat[half].extend(sequential(client, seq).await);
                    let before = cpu_ns(None);
                    rate[half] += throughput(client, tput).await / ROUNDS as f64;
                    if let (Some(before), Some(after)) = (before, cpu_ns(None)) {
                        cpu[half] += after.saturating_sub(before) as f64 / 1e3 / tput as f64 / ROUNDS as f64;
                    }
                }
            }
            for samples in &mut lat {
                samples.sort_unstable();
            }
            vec![
                ("spawned_p50_us", micros(percentile(&lat[0], 0.50))),
                ("inline_p50_us", micros(percentile(&lat[1], 0.50))),
                ("spawned_calls_per_s", rate[0]),
                ("inline_calls_per_s", rate[1]),
                ("spawned_cpu_us_per_call", cpu[0]),
                ("inline_cpu_us_per_call", cpu[1]),
            ]
        })
        .await
        .expect("the inline case panicked")
    })
}
