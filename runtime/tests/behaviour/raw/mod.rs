//! A peer that speaks the tidl wire protocol byte by byte, as docs/PROTOCOL.md describes it,
//! to test the real client and server against scripted, and misbehaving, peers.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;
use tidl_runtime::{Incoming, Method, Server, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// bincode's variable-length integer.
pub fn varint(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xffff => [vec![251], (n as u16).to_le_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => [vec![252], (n as u32).to_le_bytes().to_vec()].concat(),
        _ => [vec![253], n.to_le_bytes().to_vec()].concat(),
    }
}

/// A string: its length as a varint, then its bytes.
pub fn string(s: &str) -> Vec<u8> {
    [varint(s.len() as u64), s.as_bytes().to_vec()].concat()
}

/// A frame: the 4-byte big-endian length, then the body.
pub fn frame(body: &[u8]) -> Vec<u8> {
    [(body.len() as u32).to_be_bytes().to_vec(), body.to_vec()].concat()
}

/// This version's hello (protocol 1.4).
pub fn hello() -> Vec<u8> {
    b"TIDL\x01\x04\x00\x00".to_vec()
}

/// The hello of a protocol 1.1 peer, which knows streams but not schema checks (`Bind`).
pub fn hello_1_1() -> Vec<u8> {
    b"TIDL\x01\x01\x00\x00".to_vec()
}

/// The hello of a protocol 1.0 peer, which knows no streams.
pub fn hello_1_0() -> Vec<u8> {
    b"TIDL\x01\x00\x00\x00".to_vec()
}

/// A request frame with an encoded `payload`.
pub fn request(id: u64, service: &str, method: &str, timeout_micros: Option<u64>, payload: &[u8]) -> Vec<u8> {
    let timeout = match timeout_micros {
        None => vec![0],
        Some(t) => [vec![1], varint(t)].concat(),
    };
    frame(&[vec![0], varint(id), string(service), string(method), timeout, payload.to_vec()].concat())
}

/// A bind frame (protocol 1.2): the client's schema `descriptor` of a method.
pub fn bind(service: &str, method: &str, fingerprint: u64, descriptor: &[u8]) -> Vec<u8> {
    frame(&[vec![9], string(service), string(method), varint(fingerprint), descriptor.to_vec()].concat())
}

/// A cancel frame.
pub fn cancel(id: u64) -> Vec<u8> {
    frame(&[vec![1], varint(id)].concat())
}

/// A successful response frame with an encoded `payload`.
pub fn response_ok(id: u64, payload: &[u8]) -> Vec<u8> {
    frame(&[vec![2], varint(id), vec![0], payload.to_vec()].concat())
}

/// A GoAway frame with `code` and `message`.
pub fn goaway(code: u16, message: &str) -> Vec<u8> {
    frame(&[vec![5], varint(u64::from(code)), string(message)].concat())
}

/// A ping frame.
pub fn ping(nonce: u64) -> Vec<u8> {
    frame(&[vec![3], varint(nonce)].concat())
}

/// A response frame ending the call with the status `code` and `message`.
pub fn response_status(id: u64, code: u16, message: &str) -> Vec<u8> {
    frame(&[vec![2], varint(id), vec![2], varint(u64::from(code)), string(message)].concat())
}

/// A response frame ending the call with the method's declared error, encoded in `payload`.
pub fn response_app_error(id: u64, payload: &[u8]) -> Vec<u8> {
    frame(&[vec![2], varint(id), vec![1], payload.to_vec()].concat())
}

/// An item frame of call `id` (protocol 1.1) holding one encoded item, `payload`.
pub fn item(id: u64, payload: &[u8]) -> Vec<u8> {
    items(id, &[payload])
}

/// An item frame of call `id` (protocol 1.1) holding several encoded items, each after its
/// 4-byte little-endian length.
pub fn items(id: u64, payloads: &[&[u8]]) -> Vec<u8> {
    let mut body = [vec![6], varint(id)].concat();
    for payload in payloads {
        body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        body.extend_from_slice(payload);
    }
    frame(&body)
}

/// A half-close frame (protocol 1.1): the client sends no more items for call `id`.
pub fn half_close(id: u64) -> Vec<u8> {
    frame(&[vec![7], varint(id)].concat())
}

/// A credit frame (protocol 1.1): `bytes` more bytes of items for call `id`.
pub fn credit(id: u64, bytes: u64) -> Vec<u8> {
    frame(&[vec![8], varint(id), varint(bytes)].concat())
}

/// A decoded frame, as far as the tests need.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Request {
        id: u64,
        service: String,
        method: String,
        timeout_micros: Option<u64>,
        payload: Vec<u8>,
    },
    Cancel {
        id: u64,
    },
    ResponseOk {
        id: u64,
        payload: Vec<u8>,
    },
    ResponseAppError {
        id: u64,
        payload: Vec<u8>,
    },
    ResponseStatus {
        id: u64,
        code: u16,
        message: String,
    },
    /// Protocol 1.3: the call was refused before it started.
    ResponseRefused {
        id: u64,
        code: u16,
        message: String,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    GoAway {
        code: u16,
        message: String,
    },
    Item {
        id: u64,
        payload: Vec<u8>,
    },
    HalfClose {
        id: u64,
    },
    Credit {
        id: u64,
        bytes: u64,
    },
    Bind {
        service: String,
        method: String,
        fingerprint: u64,
        descriptor: Vec<u8>,
    },
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.0[0];
        self.0 = &self.0[1..];
        b
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let out = self.0[..n].to_vec();
        self.0 = &self.0[n..];
        out
    }

    fn varint(&mut self) -> u64 {
        match self.byte() {
            251 => u64::from(u16::from_le_bytes(self.bytes(2).try_into().expect("n bytes"))),
            252 => u64::from(u32::from_le_bytes(self.bytes(4).try_into().expect("n bytes"))),
            253 => u64::from_le_bytes(self.bytes(8).try_into().expect("n bytes")),
            b => u64::from(b),
        }
    }

    fn string(&mut self) -> String {
        let n = self.varint() as usize;
        String::from_utf8(self.bytes(n)).expect("utf-8")
    }

    fn rest(&mut self) -> Vec<u8> {
        let n = self.0.len();
        self.bytes(n)
    }
}

/// The items of an item frame's payload: each a 4-byte little-endian length, then its bytes.
fn split_items(mut payload: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    while !payload.is_empty() {
        let len = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
        items.push(payload[4..4 + len].to_vec());
        payload = &payload[4 + len..];
    }
    items
}

/// Decodes a frame body into the frames it stands for: an item frame holding several items
/// gives one `Frame::Item` for each.
pub fn parse_all(body: &[u8]) -> Vec<Frame> {
    if body.first() == Some(&6) {
        let mut r = Reader(&body[1..]);
        let id = r.varint();
        return split_items(&r.rest()).into_iter().map(|payload| Frame::Item { id, payload }).collect();
    }
    vec![parse(body)]
}

/// Decodes a frame body.
pub fn parse(body: &[u8]) -> Frame {
    let mut r = Reader(body);
    match r.byte() {
        0 => {
            let id = r.varint();
            let service = r.string();
            let method = r.string();
            let timeout_micros = if r.byte() == 1 { Some(r.varint()) } else { None };
            Frame::Request { id, service, method, timeout_micros, payload: r.rest() }
        }
        1 => Frame::Cancel { id: r.varint() },
        2 => {
            let id = r.varint();
            match r.byte() {
                0 => Frame::ResponseOk { id, payload: r.rest() },
                1 => Frame::ResponseAppError { id, payload: r.rest() },
                3 => {
                    let code = r.varint() as u16;
                    Frame::ResponseRefused { id, code, message: r.string() }
                }
                _ => {
                    let code = r.varint() as u16;
                    Frame::ResponseStatus { id, code, message: r.string() }
                }
            }
        }
        3 => Frame::Ping { nonce: r.varint() },
        4 => Frame::Pong { nonce: r.varint() },
        5 => {
            let code = r.varint() as u16;
            Frame::GoAway { code, message: r.string() }
        }
        6 => {
            let id = r.varint();
            let mut items = split_items(&r.rest());
            assert_eq!(items.len(), 1, "an item frame holding {} items: read it with parse_all", items.len());
            Frame::Item { id, payload: items.remove(0) }
        }
        7 => Frame::HalfClose { id: r.varint() },
        8 => {
            let id = r.varint();
            Frame::Credit { id, bytes: r.varint() }
        }
        9 => {
            let service = r.string();
            let method = r.string();
            let fingerprint = r.varint();
            Frame::Bind { service, method, fingerprint, descriptor: r.rest() }
        }
        other => panic!("unknown frame variant {other}"),
    }
}

/// One end of a raw connection.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    /// Connects to `addr` and exchanges hellos.
    pub async fn connect(addr: std::net::SocketAddr) -> Raw {
        let mut raw = Raw { stream: TcpStream::connect(addr).await.expect("connect") };
        raw.stream.set_nodelay(true).expect("nodelay");
        raw.send(&hello()).await;
        let mut theirs = [0u8; 8];
        raw.read_exact(&mut theirs).await;
        assert_eq!(&theirs[..], &hello()[..], "the server's hello");
        raw
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn read_exact(&mut self, buf: &mut [u8]) {
        tokio::time::timeout(TIMEOUT, self.stream.read_exact(buf)).await.expect("read in time").expect("read");
    }

    /// Reads the next frame.
    pub async fn recv(&mut self) -> Frame {
        let mut len = [0u8; 4];
        self.read_exact(&mut len).await;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.read_exact(&mut body).await;
        parse(&body)
    }

    /// Splits the connection: a task reads and decodes the peer's frames into the returned
    /// channel, which closes when the peer closes the connection (or sends a frame that does not
    /// parse); the write half stays with the caller.
    pub fn split(self) -> (tokio::sync::mpsc::UnboundedReceiver<Frame>, tokio::net::tcp::OwnedWriteHalf) {
        let (mut read, write) = self.stream.into_split();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 4];
                if read.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                if read.read_exact(&mut body).await.is_err() {
                    return;
                }
                for frame in parse_all(&body) {
                    if tx.send(frame).is_err() {
                        return;
                    }
                }
            }
        });
        (rx, write)
    }

    /// Waits until the peer closes the connection; fails if it sends anything but `allowed`.
    pub async fn expect_closed(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(TIMEOUT, self.stream.read_to_end(&mut rest))
            .await
            .expect("the peer closes the connection in time")
            .ok();
        rest
    }
}

/// A hand-written service (what generated code does): `Echo.echo(string) -> string` and
/// `Echo.sleep(u64 ms)`.
pub struct Echo;

impl Service for Echo {
    fn name(&self) -> &'static str {
        "Echo"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "echo" => request
                .spawn(Method::new("Echo", "echo"), |_ctx, s: String| async move { Ok::<_, tidl_runtime::Error>(s) }),
            "sleep" => request.spawn(Method::new("Echo", "sleep"), |_ctx, ms: u64| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, tidl_runtime::Error>(())
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

/// A server with the `Echo` service on a loopback port.
pub async fn echo_server() -> (std::net::SocketAddr, Server) {
    echo_server_with(tidl_runtime::ServerConfig::default()).await
}

/// [`echo_server`] with settings.
pub async fn echo_server_with(config: tidl_runtime::ServerConfig) -> (std::net::SocketAddr, Server) {
    let server = Server::builder().register(Echo).config(config).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    (addr, server)
}

/// A scripted server: accepts one client, answers the hello, and hands over the stream.
pub async fn scripted_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<Raw>) {
    scripted_server_answering(hello()).await
}

/// A scripted server that answers the client's hello with `answer` (an older version's hello).
pub async fn scripted_server_answering(answer: Vec<u8>) -> (std::net::SocketAddr, tokio::task::JoinHandle<Raw>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accept = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut raw = Raw { stream };
        let mut theirs = [0u8; 8];
        raw.read_exact(&mut theirs).await;
        assert_eq!(&theirs[..], &hello()[..], "the client's hello");
        raw.send(&answer).await;
        raw
    });
    (addr, accept)
}
