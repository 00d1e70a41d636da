//! The floor: length-delimited frames (tokio-util's `LengthDelimitedCodec`) echoed back over TCP,
//! with no RPC layer at all: no ids, no headers, no encoding.
//!
//! The server echoes each frame on its connection in order, writing every frame that is already
//! readable before it flushes. The client has two modes: *direct* (one caller at a time writes a
//! frame and reads the next one, no tasks in between) and *pipelined* (a writer task sends frames
//! in the order callers submit them, flushing when it runs out, and a reader task hands each
//! reply to the oldest waiting caller).

use crate::imp::{EchoClient, Rpc, tcp_connect};
use crate::probe::Probe;
use crate::wire::{Counted, WireCounter};
use bytes::{Bytes, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LengthDelimitedCodec};

/// The raw implementation.
#[derive(Debug, Clone, Copy)]
pub struct Raw;

/// A byte stream the direct client can own.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A raw echo client.
#[derive(Clone)]
pub struct RawClient {
    inner: Arc<Mode>,
}

impl std::fmt::Debug for RawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClient").finish_non_exhaustive()
    }
}

enum Mode {
    Direct(tokio::sync::Mutex<Framed<Box<dyn Io>, LengthDelimitedCodec>>),
    Pipelined(mpsc::UnboundedSender<(Bytes, oneshot::Sender<BytesMut>)>),
}

impl RawClient {
    fn direct(io: Box<dyn Io>) -> RawClient {
        RawClient {
            inner: Arc::new(Mode::Direct(tokio::sync::Mutex::new(Framed::new(io, LengthDelimitedCodec::new())))),
        }
    }

    fn pipelined(stream: TcpStream) -> RawClient {
        let (read, write) = stream.into_split();
        let waiting: Arc<Mutex<VecDeque<oneshot::Sender<BytesMut>>>> = Arc::default();
        let (tx, mut rx) = mpsc::unbounded_channel::<(Bytes, oneshot::Sender<BytesMut>)>();
        let mut sink = FramedWrite::new(write, LengthDelimitedCodec::new());
        let queue = waiting.clone();
        tokio::spawn(async move {
            while let Some((frame, reply)) = rx.recv().await {
                lock(&queue).push_back(reply);
                sink.feed(frame).await.expect("raw client: writing a frame");
                while let Ok((frame, reply)) = rx.try_recv() {
                    lock(&queue).push_back(reply);
                    sink.feed(frame).await.expect("raw client: writing a frame");
                }
                SinkExt::<Bytes>::flush(&mut sink).await.expect("raw client: flushing frames");
            }
        });
        let mut stream = FramedRead::new(read, LengthDelimitedCodec::new());
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                let frame = frame.expect("raw client: reading a frame");
                let reply = lock(&waiting).pop_front().expect("raw client: a reply nobody asked for");
                let _ = reply.send(frame);
            }
        });
        RawClient { inner: Arc::new(Mode::Pipelined(tx)) }
    }

    async fn round_trip(&self, frame: Bytes) -> usize {
        match &*self.inner {
            Mode::Direct(framed) => {
                let mut framed = framed.lock().await;
                framed.send(frame).await.expect("raw client: writing a frame");
                framed
                    .next()
                    .await
                    .expect("raw client: the server closed the connection")
                    .expect("raw client: reading")
                    .len()
            }
            Mode::Pipelined(tx) => {
                let (reply_tx, reply_rx) = oneshot::channel();
                tx.send((frame, reply_tx)).expect("raw client: the writer task ended");
                reply_rx.await.expect("raw client: the connection closed before the reply").len()
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EchoClient for RawClient {
    async fn echo(&self, text: String) -> usize {
        self.round_trip(Bytes::from(text)).await
    }

    async fn echo_bytes(&self, body: Bytes) -> usize {
        self.round_trip(body).await
    }
}

/// Echoes frames on one connection until it closes.
async fn serve_connection(stream: TcpStream) {
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    while let Some(frame) = framed.next().await {
        let Ok(frame) = frame else { return };
        if framed.feed(frame.freeze()).await.is_err() {
            return;
        }
        // Everything already readable goes out with the same flush.
        while let Some(Some(Ok(frame))) = framed.next().now_or_never() {
            if framed.feed(frame.freeze()).await.is_err() {
                return;
            }
        }
        if SinkExt::<Bytes>::flush(&mut framed).await.is_err() {
            return;
        }
    }
}

impl Rpc for Raw {
    type Client = RawClient;

    fn serve(listener: TcpListener, _probe: Arc<Probe>) {
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.expect("raw server: accepting a connection");
                stream.set_nodelay(true).expect("setting TCP_NODELAY on a server socket");
                tokio::spawn(serve_connection(stream));
            }
        });
    }

    async fn connect(addr: SocketAddr, pipelined: bool) -> RawClient {
        let stream = tcp_connect(addr).await;
        if pipelined { RawClient::pipelined(stream) } else { RawClient::direct(Box::new(stream)) }
    }

    async fn connect_counted(addr: SocketAddr, counter: Arc<WireCounter>) -> RawClient {
        RawClient::direct(Box::new(Counted::new(tcp_connect(addr).await, counter)))
    }
}
