//! tidl through the code generated from `bench.tidl`, used as its README shows: a `Server`
//! with the generated `BenchServer`, and a `Client` with the generated `BenchClient`. The
//! streaming methods are a hand-written [`Service`] (what generated code for `stream` methods
//! does) registered beside it, and called through [`Invoke`].

use crate::generated::{self, BenchClient, BenchClientExt, BenchServer};
use crate::imp::{BusyClient, CancelClient, EchoClient, Rpc, StreamClient, StreamRpc, tcp_connect};
use crate::probe::Probe;
use crate::wire::{Counted, WireCounter};
use bytes::Bytes;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidl_runtime::{
    CallOptions, Client, Code, Context, Error, Incoming, Invoke, Method, Server, Service, Sink, Source,
};
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

    async fn echo_frozen(&self, _ctx: Context, record: generated::Frozen) -> Result<generated::Frozen, Error> {
        Ok(record)
    }

    async fn echo_evolvable(&self, _ctx: Context, record: generated::Evolvable) -> Result<generated::Evolvable, Error> {
        Ok(record)
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

/// The benchmark's tidl server, not yet accepting.
pub fn bench_server(probe: Arc<Probe>) -> Server {
    bench_builder(probe).build()
}

/// The builder of [`bench_server`], to add to.
pub fn bench_builder(probe: Arc<Probe>) -> tidl_runtime::ServerBuilder {
    Server::builder().register(BenchServer::new(Handlers { probe: probe.clone() })).register(Streams { probe })
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
        let server = bench_server(probe);
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

/// The name of the hand-written streaming service.
const STREAMS: &str = "BenchStreams";

/// The streaming methods, hand-written as generated code would be.
#[derive(Debug)]
struct Streams {
    probe: Arc<Probe>,
}

impl Service for Streams {
    fn name(&self) -> &'static str {
        STREAMS
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            // `count` items of `size` bytes (one `Bytes`, cloned), from a ready stream, as
            // tonic-ready's handler returns one.
            "items" => request.spawn_server_stream(
                Method::new(STREAMS, "items"),
                |_ctx: Context, (count, size): (u64, u32), mut out: Sink<Bytes>| async move {
                    let item = Bytes::from(vec![0xa5; size as usize]);
                    let count = usize::try_from(count).unwrap_or(usize::MAX);
                    out.send_all(futures::stream::repeat(item).take(count)).await?;
                    Ok::<_, Error>(())
                },
            ),
            // Items of `size` bytes for ever, holding the probe's guard and counting them.
            "endless" => {
                let probe = self.probe.clone();
                request.spawn_server_stream::<u32, Bytes, String, _, _>(
                    Method::new(STREAMS, "endless"),
                    |_ctx: Context, size: u32, mut out: Sink<Bytes>| async move {
                        let _guard = probe.enter();
                        let item = Bytes::from(vec![0xa5; size as usize]);
                        loop {
                            out.send(item.clone()).await?;
                            probe.count_item();
                        }
                    },
                );
            }
            // Echoes every item.
            "echo" => request.spawn_bidi(
                Method::new(STREAMS, "echo"),
                |_ctx: Context, mut items: Source<Bytes>, mut out: Sink<Bytes>| async move {
                    while let Some(item) = items.next().await {
                        out.send(item?).await?;
                    }
                    Ok::<_, Error>(())
                },
            ),
            _ => return Err(request),
        }
        Ok(())
    }
}

/// A tidl client of the streaming methods.
#[derive(Debug, Clone)]
pub struct TidlStreamClient {
    client: Client,
}

impl StreamClient for TidlStreamClient {
    async fn take_items(&self, count: u64, size: u32) -> u64 {
        let options = CallOptions::default();
        let mut stream =
            self.client.server_stream::<_, Bytes, String>(Method::new(STREAMS, "items"), &(count, size), &options);
        let mut bytes = 0;
        while let Some(item) = stream.message().await.expect("tidl items stream failed") {
            bytes += item.len() as u64;
        }
        bytes
    }

    async fn ping_pong(&self, item: Bytes, warmup: usize, n: usize) -> Vec<Duration> {
        let (mut sink, mut stream) =
            self.client.bidi_stream::<Bytes, Bytes, String>(Method::new(STREAMS, "echo"), &CallOptions::default());
        let mut samples = Vec::with_capacity(n);
        for i in 0..warmup + n {
            let start = Instant::now();
            sink.send(item.clone()).await.expect("tidl: sending a ping");
            let pong = stream.message().await.expect("tidl echo stream failed").expect("tidl: a pong");
            let elapsed = start.elapsed();
            assert_eq!(pong.len(), item.len(), "the pong is not the ping");
            if i >= warmup {
                samples.push(elapsed);
            }
        }
        sink.close();
        assert_eq!(stream.message().await, Ok(None), "tidl: the echo stream ends OK");
        samples
    }

    async fn open_endless(&self, size: u32) -> Box<dyn std::any::Any + Send> {
        let stream = self.client.server_stream::<_, Bytes, String>(
            Method::new(STREAMS, "endless"),
            &size,
            &CallOptions::default(),
        );
        Box::new(stream)
    }

    async fn cancel_trial(&self, probe: &Probe) -> Duration {
        probe.reset();
        let mut stream = self.client.server_stream::<_, Bytes, String>(
            Method::new(STREAMS, "endless"),
            &16u32,
            &CallOptions::default(),
        );
        stream.message().await.expect("tidl endless stream failed").expect("tidl: a first item");
        probe.wait_started().await;
        let cancelled_at = Instant::now();
        stream.cancel();
        let dropped_at = probe.wait_dropped().await;
        dropped_at.saturating_duration_since(cancelled_at)
    }
}

impl StreamRpc for Tidl {
    type Client = TidlStreamClient;

    fn serve(listener: TcpListener, probe: Arc<Probe>) {
        <Tidl as Rpc>::serve(listener, probe);
    }

    async fn connect(addr: SocketAddr) -> TidlStreamClient {
        let client = Client::dial(addr).await.unwrap_or_else(|e| panic!("tidl: dialing {addr}: {e}"));
        TidlStreamClient { client }
    }
}
