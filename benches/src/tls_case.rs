//! The TLS case (tidl only): `echo` sequentially (latency) and with 256 calls in flight
//! (throughput), over plain TCP and over TLS 1.3 (rustls, ring, certificates generated at start),
//! in alternating rounds so that both see the same machine.

use crate::cases::{Counts, Metrics, echo_sequential as sequential, echo_throughput as throughput, runtime};
use crate::probe::Probe;
use crate::stats::{micros, percentile};
use crate::tidl_bench::bench_server;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::sync::Arc;
use tidl_runtime::Client;
use tidl_runtime::transport::tcp::TcpConnector;
use tidl_runtime::transport::tls::{self, TlsConnector, TlsListener};

/// Rounds of each half.
const ROUNDS: usize = 3;

/// A server on loopback and a client of it, over TLS or not.
async fn connect(secure: bool) -> Client {
    let server = bench_server(Arc::new(Probe::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    if !secure {
        tokio::spawn(async move { server.accept(listener).await });
        return Client::dial(addr).await.expect("dial");
    }
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert =
        CertificateParams::new(vec!["localhost".to_owned()]).expect("params").signed_by(&key, &ca).expect("sign");
    let config =
        tls::server_config(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), None).expect("server config");
    tokio::spawn(async move { server.accept(TlsListener::new(listener, config)).await });
    let config = tls::client_config(ca.pem().as_bytes(), None).expect("client config");
    let connector = TlsConnector::new(TcpConnector::new(addr.to_string()), config, "localhost").expect("connector");
    Client::connect(connector).await.expect("connect over TLS")
}

/// Runs the case: p50 latency and throughput, plain and over TLS.
pub fn run(counts: &Counts) -> Metrics {
    let (seq, tput) = (counts.seq / ROUNDS, counts.tput / ROUNDS as u64);
    runtime().block_on(async move {
        tokio::spawn(async move {
            let clients = [connect(false).await, connect(true).await];
            for client in &clients {
                sequential(client, seq / 10).await;
            }
            let (mut lat, mut rate) = ([Vec::new(), Vec::new()], [0.0, 0.0]);
            for _ in 0..ROUNDS {
                for (half, client) in clients.iter().enumerate() {
                    lat[half].extend(sequential(client, seq).await);
                    rate[half] += throughput(client, tput).await / ROUNDS as f64;
                }
            }
            for samples in &mut lat {
                samples.sort_unstable();
            }
            vec![
                ("plain_p50_us", micros(percentile(&lat[0], 0.50))),
                ("tls_p50_us", micros(percentile(&lat[1], 0.50))),
                ("plain_calls_per_s", rate[0]),
                ("tls_calls_per_s", rate[1]),
            ]
        })
        .await
        .expect("the TLS case panicked")
    })
}
