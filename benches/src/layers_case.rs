//! The layers case (tidl only): `echo` sequentially (latency) and with 256 calls in flight
//! (throughput), with no tower layers, through a server stack, and through a client stack, in
//! alternating rounds so that all three see the same machine. Both stacks are what a production
//! service would put up: load shedding, a concurrency limit and a timeout.

use crate::cases::{Counts, Metrics, echo_sequential as sequential, echo_throughput as throughput, runtime};
use crate::probe::Probe;
use crate::stats::{micros, percentile};
use crate::tidl_bench::bench_builder;
use std::sync::Arc;
use std::time::Duration;
use tidl_runtime::Client;
use tidl_runtime::tower::{ClientService, Layered};
use tower::ServiceBuilder;

/// Rounds of each third.
const ROUNDS: usize = 3;

/// A server on loopback, with the production stack or none, and a client of it.
async fn connect(server_layers: bool) -> Client {
    let builder = bench_builder(Arc::new(Probe::default()));
    let server = if server_layers {
        builder
            .layer(ServiceBuilder::new().load_shed().concurrency_limit(10_000).timeout(Duration::from_secs(30)))
            .build()
    } else {
        builder.build()
    };
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    Client::dial(addr).await.expect("dial")
}

/// Runs `$body` with `$invoke` bound to the plain client, the client of the layered server, and
/// the client stack, in turn (three types, so a macro rather than a loop).
macro_rules! each {
    ($plain:expr, $server:expr, $client:expr, |$i:ident, $invoke:ident| $body:expr) => {{
        let $i = 0usize;
        let $invoke = $plain;
        $body;
        let $i = 1usize;
        let $invoke = $server;
        $body;
        let $i = 2usize;
        let $invoke = $client;
        $body;
    }};
}

/// Runs the case: p50 latency and throughput, without layers, with a server stack and with a
/// client stack.
pub fn run(counts: &Counts) -> Metrics {
    let (seq, tput) = (counts.seq / ROUNDS, counts.tput / ROUNDS as u64);
    runtime().block_on(async move {
        tokio::spawn(async move {
            let plain = connect(false).await;
            let layered_server = connect(true).await;
            let client_stack = Layered::new(
                ServiceBuilder::new()
                    .load_shed()
                    .concurrency_limit(10_000)
                    .timeout(Duration::from_secs(30))
                    .service(ClientService::new(connect(false).await)),
            );
            each!(&plain, &layered_server, &client_stack, |_i, invoke| sequential(invoke, seq / 10).await);
            let (mut lat, mut rate) = ([Vec::new(), Vec::new(), Vec::new()], [0.0; 3]);
            for _ in 0..ROUNDS {
                each!(&plain, &layered_server, &client_stack, |i, invoke| {
                    lat[i].extend(sequential(invoke, seq).await);
                    rate[i] += throughput(invoke, tput).await / ROUNDS as f64;
                });
            }
            for samples in &mut lat {
                samples.sort_unstable();
            }
            vec![
                ("plain_p50_us", micros(percentile(&lat[0], 0.50))),
                ("server_layers_p50_us", micros(percentile(&lat[1], 0.50))),
                ("client_layers_p50_us", micros(percentile(&lat[2], 0.50))),
                ("plain_calls_per_s", rate[0]),
                ("server_layers_calls_per_s", rate[1]),
                ("client_layers_calls_per_s", rate[2]),
            ]
        })
        .await
        .expect("the layers case panicked")
    })
}
