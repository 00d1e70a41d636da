//! tonic (gRPC over HTTP/2), for the streaming cases only, with no `.proto` and no protoc: a
//! hand-written service over `tonic::server::Grpc` (what tonic's generated servers do) and
//! clients over `tonic::client::Grpc`, with a codec that passes raw `Bytes` through, so the
//! items on the wire are the payload bytes behind gRPC's 5-byte message prefix.
//!
//! Each streaming method has two producers, picked by the client: a handler returning a ready
//! `Stream` (`futures::stream::repeat(item).take(n)`, or the request stream itself for the echo),
//! and one spawning a task that feeds a `tokio::sync::mpsc` channel of [`CHANNEL_CAPACITY`]
//! returned as a `ReceiverStream`, as tonic's streaming examples do. Both box their stream, as
//! tonic's examples do. Server and client use tonic's (hyper's) default HTTP/2 settings, with
//! `TCP_NODELAY` on both ends.

use crate::imp::{StreamClient, StreamRpc};
use crate::probe::Probe;
use bytes::{Buf, BufMut, Bytes};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body as TonicBody;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

/// The capacity of the channel the channel-fed producers use: tonic's streaming example's.
pub const CHANNEL_CAPACITY: usize = 128;

/// A codec of raw bytes: the message is the item.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Which producer a handler uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Producer {
    /// A ready `Stream`.
    Ready,
    /// A task feeding an mpsc channel.
    Channel,
}

impl Producer {
    fn suffix(self) -> &'static str {
        match self {
            Producer::Ready => "Ready",
            Producer::Channel => "Chan",
        }
    }
}

/// The stream a handler returns.
type ItemStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send + 'static>>;

/// Runs `feed` in a task of its own, feeding a channel; returns the channel as a stream.
fn channel_fed<F, Fut>(feed: F) -> ItemStream
where
    F: FnOnce(mpsc::Sender<Result<Bytes, Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(feed(tx));
    Box::pin(ReceiverStream::new(rx))
}

/// `Items{Ready,Chan}`: the request is `count` (u64) and `size` (u32), little-endian; the reply
/// `count` items of `size` bytes.
#[derive(Debug)]
struct Items(Producer);

impl tonic::server::ServerStreamingService<Bytes> for Items {
    type Response = Bytes;
    type ResponseStream = ItemStream;
    type Future = BoxFuture<Response<ItemStream>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let producer = self.0;
        Box::pin(async move {
            let mut arg = request.into_inner();
            if arg.len() != 12 {
                return Err(Status::invalid_argument("expected a count (u64) and a size (u32)"));
            }
            let (count, size) = (arg.get_u64_le(), arg.get_u32_le());
            let item = Bytes::from(vec![0xa5; size as usize]);
            let stream: ItemStream = match producer {
                Producer::Ready => Box::pin(futures::stream::repeat(item).take(count as usize).map(Ok)),
                Producer::Channel => channel_fed(move |tx| async move {
                    for _ in 0..count {
                        if tx.send(Ok(item.clone())).await.is_err() {
                            break;
                        }
                    }
                }),
            };
            Ok(Response::new(stream))
        })
    }
}

/// `Endless{Ready,Chan}`: the request is `size` (u32, little-endian); the reply items of `size`
/// bytes for ever, produced under the probe's guard and counted there.
#[derive(Debug)]
struct Endless(Producer, Arc<Probe>);

impl tonic::server::ServerStreamingService<Bytes> for Endless {
    type Response = Bytes;
    type ResponseStream = ItemStream;
    type Future = BoxFuture<Response<ItemStream>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let (producer, probe) = (self.0, self.1.clone());
        Box::pin(async move {
            let mut arg = request.into_inner();
            if arg.len() != 4 {
                return Err(Status::invalid_argument("expected a size (u32)"));
            }
            let item = Bytes::from(vec![0xa5; arg.get_u32_le() as usize]);
            let stream: ItemStream = match producer {
                Producer::Ready => {
                    // The stream owns the guard: it is dropped with the stream.
                    let guard = probe.enter();
                    Box::pin(futures::stream::repeat_with(move || {
                        let _ = &guard;
                        probe.count_item();
                        Ok(item.clone())
                    }))
                }
                Producer::Channel => channel_fed(move |tx| async move {
                    let _guard = probe.enter();
                    while tx.send(Ok(item.clone())).await.is_ok() {
                        probe.count_item();
                    }
                }),
            };
            Ok(Response::new(stream))
        })
    }
}

/// `Echo{Ready,Chan}`: echoes every item of a bidirectional stream.
#[derive(Debug)]
struct Echo(Producer);

impl tonic::server::StreamingService<Bytes> for Echo {
    type Response = Bytes;
    type ResponseStream = ItemStream;
    type Future = BoxFuture<Response<ItemStream>, Status>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let producer = self.0;
        Box::pin(async move {
            let mut items = request.into_inner();
            let stream: ItemStream = match producer {
                Producer::Ready => Box::pin(items),
                Producer::Channel => channel_fed(move |tx| async move {
                    while let Some(item) = items.next().await {
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                }),
            };
            Ok(Response::new(stream))
        })
    }
}

/// The hand-written gRPC service `bench.Streams`, routing by path as generated servers do.
#[derive(Debug, Clone)]
struct StreamsServer {
    probe: Arc<Probe>,
}

impl<B> Service<http::Request<B>> for StreamsServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let probe = self.probe.clone();
        let method = request.uri().path().strip_prefix("/bench.Streams/").unwrap_or_default().to_owned();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            let response = match method.as_str() {
                "ItemsReady" => grpc.server_streaming(Items(Producer::Ready), request).await,
                "ItemsChan" => grpc.server_streaming(Items(Producer::Channel), request).await,
                "EndlessReady" => grpc.server_streaming(Endless(Producer::Ready, probe), request).await,
                "EndlessChan" => grpc.server_streaming(Endless(Producer::Channel, probe), request).await,
                "EchoReady" => grpc.streaming(Echo(Producer::Ready), request).await,
                "EchoChan" => grpc.streaming(Echo(Producer::Channel), request).await,
                _ => Status::unimplemented(format!("no method `{method}`")).into_http(),
            };
            Ok(response)
        })
    }
}

/// Serves `bench.Streams` on `listener` with tonic's server, `TCP_NODELAY` on.
fn serve(listener: TcpListener, probe: Arc<Probe>) {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder();
    tokio::spawn(async move {
        server.serve_with_incoming(StreamsServer { probe }, incoming).await.expect("tonic server: serving");
    });
}

/// A tonic client of `bench.Streams`, calling the methods of one producer.
#[derive(Debug, Clone)]
pub struct TonicClient {
    grpc: tonic::client::Grpc<Channel>,
    producer: Producer,
}

impl TonicClient {
    async fn connect(addr: SocketAddr, producer: Producer) -> TonicClient {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid URI")
            .tcp_nodelay(true)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("tonic: connecting to {addr}: {e}"));
        TonicClient { grpc: tonic::client::Grpc::new(channel), producer }
    }

    /// The path of `method` for this client's producer.
    fn path(&self, method: &str) -> http::uri::PathAndQuery {
        format!("/bench.Streams/{method}{}", self.producer.suffix()).parse().expect("a valid path")
    }

    /// A ready clone of the client.
    async fn ready(&self) -> tonic::client::Grpc<Channel> {
        let mut grpc = self.grpc.clone();
        grpc.ready().await.expect("tonic: the channel is ready");
        grpc
    }

    async fn server_stream(&self, method: &str, arg: Bytes) -> Streaming<Bytes> {
        let mut grpc = self.ready().await;
        let response = grpc.server_streaming(Request::new(arg), self.path(method), RawCodec).await;
        response.unwrap_or_else(|e| panic!("tonic: {method} failed: {e}")).into_inner()
    }
}

impl StreamClient for TonicClient {
    async fn take_items(&self, count: u64, size: u32) -> u64 {
        let mut arg = Vec::with_capacity(12);
        arg.put_u64_le(count);
        arg.put_u32_le(size);
        let mut stream = self.server_stream("Items", arg.into()).await;
        let mut bytes = 0;
        while let Some(item) = stream.message().await.expect("tonic items stream failed") {
            bytes += item.len() as u64;
        }
        bytes
    }

    async fn ping_pong(&self, item: Bytes, warmup: usize, n: usize) -> Vec<Duration> {
        // A request stream the client can feed one item at a time: a channel.
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let mut grpc = self.ready().await;
        let response = grpc.streaming(Request::new(ReceiverStream::new(rx)), self.path("Echo"), RawCodec).await;
        let mut stream = response.expect("tonic: the echo stream").into_inner();
        let mut samples = Vec::with_capacity(n);
        for i in 0..warmup + n {
            let start = Instant::now();
            tx.send(item.clone()).await.expect("tonic: sending a ping");
            let pong = stream.message().await.expect("tonic echo stream failed").expect("tonic: a pong");
            let elapsed = start.elapsed();
            assert_eq!(pong.len(), item.len(), "the pong is not the ping");
            if i >= warmup {
                samples.push(elapsed);
            }
        }
        drop(tx);
        assert!(stream.message().await.expect("tonic: the echo stream ends OK").is_none());
        samples
    }

    async fn open_endless(&self, size: u32) -> Box<dyn std::any::Any + Send> {
        Box::new(self.server_stream("Endless", Bytes::copy_from_slice(&size.to_le_bytes())).await)
    }

    async fn cancel_trial(&self, probe: &Probe) -> Duration {
        probe.reset();
        let mut stream = self.server_stream("Endless", Bytes::copy_from_slice(&16u32.to_le_bytes())).await;
        stream.message().await.expect("tonic endless stream failed").expect("tonic: a first item");
        probe.wait_started().await;
        let cancelled_at = Instant::now();
        // tonic's way to cancel a stream: drop it (the client resets the HTTP/2 stream).
        drop(stream);
        let dropped_at = probe.wait_dropped().await;
        dropped_at.saturating_duration_since(cancelled_at)
    }
}

/// tonic with ready-`Stream` handlers.
#[derive(Debug, Clone, Copy)]
pub struct TonicReady;

/// tonic with channel-fed handlers.
#[derive(Debug, Clone, Copy)]
pub struct TonicChan;

impl StreamRpc for TonicReady {
    type Client = TonicClient;

    fn serve(listener: TcpListener, probe: Arc<Probe>) {
        serve(listener, probe);
    }

    async fn connect(addr: SocketAddr) -> TonicClient {
        TonicClient::connect(addr, Producer::Ready).await
    }
}

impl StreamRpc for TonicChan {
    type Client = TonicClient;

    fn serve(listener: TcpListener, probe: Arc<Probe>) {
        serve(listener, probe);
    }

    async fn connect(addr: SocketAddr) -> TonicClient {
        TonicClient::connect(addr, Producer::Channel).await
    }
}
