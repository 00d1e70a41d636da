//! tidl through the code generated from `bench.tidl`, used as its README shows: a `Server`
//! with the generated `BenchServer`, and a `Client` with the generated `BenchClient`.

use crate::generated::{self, BenchClient, BenchClientExt, BenchServer};
use crate::imp::{BusyClient, CancelClient, EchoClient, Rpc, tcp_connect};
use crate::probe::Probe;
use crate::wire::{Counted, WireCounter};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidl_runtime::{Client, Code, Context, Error, Server};
use tokio::net::TcpListener;

/// The tidl implementation.
#[derive(Debug, Clone, Copy)]
pub struct Tidl;

/// The server's handlers.
#[derive(Debug)]
struct Handlers {
    probe: Arc<Probe>,
}

impl generated::Bench for Handlers {
    async fn echo(&self, _ctx: Context, text: String) -> Result<String, Error> {
        Ok(text)
    }

    async fn echo_bytes(&self, _ctx: Context, body: Bytes) -> Result<Bytes, Error> {
        Ok(body)
    }

    async fn compute(&self, _ctx: Context, ms: u64) -> Result<u64, Error> {
        let _guard = self.probe.enter();
        Ok(crate::probe::compute(ms))
    }

    async fn spin(&self, _ctx: Context, (): ()) -> Result<(), Error> {
        let _guard = self.probe.enter();
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A tidl client of the benchmark service.
#[derive(Debug, Clone)]
pub struct TidlClient {
    client: BenchClient,
}

impl EchoClient for TidlClient {
    async fn echo(&self, text: String) -> usize {
        self.client.echo(text).await.expect("tidl echo failed").len()
    }

    async fn echo_bytes(&self, body: Bytes) -> usize {
        self.client.echo_bytes(body).await.expect("tidl echo_bytes failed").len()
    }
}

impl BusyClient for TidlClient {
    async fn compute(&self, ms: u64) -> u64 {
        self.client.compute(ms).await.expect("tidl compute failed")
    }
}

impl CancelClient for TidlClient {
    async fn cancel_trial(&self, probe: &Probe) -> Duration {
        probe.reset();
        let call = self.client.spin(());
        probe.wait_started().await;
        let cancelled_at = Instant::now();
        call.cancel();
        let dropped_at = probe.wait_dropped().await;
        match call.await {
            Err(Error::Status(status)) if status.code() == Code::Cancelled => {}
            other => panic!("a cancelled tidl spin resolved to {other:?}"),
        }
        dropped_at.saturating_duration_since(cancelled_at)
    }
}

impl Rpc for Tidl {
    type Client = TidlClient;

    fn serve(listener: TcpListener, probe: Arc<Probe>) {
        let server = Server::builder().register(BenchServer::new(Handlers { probe })).build();
        tokio::spawn(async move { server.accept(listener).await.expect("tidl server: accepting") });
    }

    async fn connect(addr: SocketAddr, _pipelined: bool) -> TidlClient {
        let client = Client::dial(addr).await.unwrap_or_else(|e| panic!("tidl: dialing {addr}: {e}"));
        TidlClient { client: client.bench() }
    }

    async fn connect_counted(addr: SocketAddr, counter: Arc<WireCounter>) -> TidlClient {
        let client = Client::new(Counted::new(tcp_connect(addr).await, counter));
        client.ready().await.expect("tidl: handshake");
        TidlClient { client: client.bench() }
    }
}
