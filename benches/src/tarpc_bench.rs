//! tarpc: the same three calls as `bench.tidl`, over tarpc's serde transport on TCP with the
//! bincode codec (`tokio_serde::formats::Bincode`), served as tarpc's documentation shows: a
//! `BaseChannel` per connection, `execute`, and a task per request.
//!
//! Both sides set `TCP_NODELAY`, as tidl does. The client allows 4,096 requests in flight
//! (tarpc's default is 1,000; tidl's server allows 4,096), so the 1,024-in-flight case runs
//! unthrottled on both.

use crate::imp::{BusyClient, CancelClient, EchoClient, Rpc, tcp_connect};
use crate::probe::Probe;
use crate::wire::{Counted, WireCounter};
use bytes::Bytes;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tarpc::{client, context};
use tokio::net::TcpListener;

/// The tarpc service; `#[tarpc::service]` generates `BenchClient`, `ServeBench` and the
/// request and response enums from it.
mod service {
    #![allow(missing_docs, missing_debug_implementations, unreachable_pub)]

    use bytes::Bytes;

    /// The benchmark service, as in `bench.tidl`.
    #[tarpc::service]
    pub trait Bench {
        /// Returns its argument.
        async fn echo(text: String) -> String;
        /// Returns its argument.
        async fn echo_bytes(body: Bytes) -> Bytes;
        /// Loops on a 1 ms sleep until cancelled.
        async fn spin();
        /// Computes for this many milliseconds without awaiting.
        async fn compute(ms: u64) -> u64;
    }
}

use service::Bench as _;

/// The tarpc implementation.
#[derive(Debug, Clone, Copy)]
pub struct Tarpc;

/// The server's handlers.
#[derive(Debug, Clone)]
struct Handlers {
    probe: Arc<Probe>,
}

impl service::Bench for Handlers {
    async fn echo(self, _: context::Context, text: String) -> String {
        text
    }

    async fn echo_bytes(self, _: context::Context, body: Bytes) -> Bytes {
        body
    }

    async fn compute(self, _: context::Context, ms: u64) -> u64 {
        let _guard = self.probe.enter();
        crate::probe::compute(ms)
    }

    async fn spin(self, _: context::Context) {
        let _guard = self.probe.enter();
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A tarpc client of the benchmark service.
#[derive(Debug, Clone)]
pub struct TarpcClient {
    client: service::BenchClient,
}

impl TarpcClient {
    fn new<T>(transport: T) -> TarpcClient
    where
        T: tarpc::Transport<tarpc::ClientMessage<service::BenchRequest>, tarpc::Response<service::BenchResponse>>
            + Send
            + 'static,
    {
        let mut config = client::Config::default();
        config.max_in_flight_requests = 4096;
        TarpcClient { client: service::BenchClient::new(config, transport).spawn() }
    }
}

impl EchoClient for TarpcClient {
    async fn echo(&self, text: String) -> usize {
        self.client.echo(context::current(), text).await.expect("tarpc echo failed").len()
    }

    async fn echo_bytes(&self, body: Bytes) -> usize {
        self.client.echo_bytes(context::current(), body).await.expect("tarpc echo_bytes failed").len()
    }
}

impl BusyClient for TarpcClient {
    async fn compute(&self, ms: u64) -> u64 {
        self.client.compute(context::current(), ms).await.expect("tarpc compute failed")
    }
}

impl CancelClient for TarpcClient {
    async fn cancel_trial(&self, probe: &Probe) -> Duration {
        probe.reset();
        // tarpc sends the request when the response future is first polled, and cancels it
        // when that future is dropped.
        let mut call = Box::pin(self.client.spin(context::current()));
        tokio::select! {
            result = &mut call => panic!("tarpc spin returned: {result:?}"),
            () = probe.wait_started() => {}
        }
        let cancelled_at = Instant::now();
        drop(call);
        probe.wait_dropped().await.saturating_duration_since(cancelled_at)
    }
}

impl Rpc for Tarpc {
    type Client = TarpcClient;

    fn serve(listener: TcpListener, probe: Arc<Probe>) {
        tokio::spawn(async move {
            let mut incoming = tarpc::serde_transport::tcp::listen_on(listener, Bincode::default)
                .await
                .expect("tarpc server: wrapping the listener");
            while let Some(transport) = incoming.next().await {
                let Ok(transport) = transport else { continue };
                transport.get_ref().set_nodelay(true).expect("setting TCP_NODELAY on a server socket");
                let handlers = Handlers { probe: probe.clone() };
                let requests = BaseChannel::with_defaults(transport).execute(handlers.serve());
                tokio::spawn(requests.for_each(|request| async move {
                    tokio::spawn(request);
                }));
            }
        });
    }

    async fn connect(addr: SocketAddr, _pipelined: bool) -> TarpcClient {
        let transport = tarpc::serde_transport::tcp::connect(addr, Bincode::default)
            .await
            .unwrap_or_else(|e| panic!("tarpc: connecting to {addr}: {e}"));
        transport.get_ref().set_nodelay(true).expect("setting TCP_NODELAY on a client socket");
        TarpcClient::new(transport)
    }

    async fn connect_counted(addr: SocketAddr, counter: Arc<WireCounter>) -> TarpcClient {
        let stream = Counted::new(tcp_connect(addr).await, counter);
        let framed = Framed::new(stream, LengthDelimitedCodec::new());
        TarpcClient::new(tarpc::serde_transport::new(framed, Bincode::default()))
    }
}
