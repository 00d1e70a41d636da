//! Bad input over raw TCP: for each kind, the offending connection gets a clear error or is
//! closed, the server logs one line about it, and a well-behaved client on another connection
//! keeps getting correct answers throughout.

use crate::raw;

use raw::{Frame, Raw, cancel, frame, request, string};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidl_runtime::CancellationToken;
use tidl_runtime::{CallOptions, Client, Code, Invoke, Method, Server, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::subscriber::DefaultGuard;

/// The server's log, captured.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// The log lines that name `peer`.
    fn about(&self, peer: SocketAddr) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned();
        let peer = format!("peer={peer}");
        text.lines().filter(|l| l.contains(&peer)).map(str::to_owned).collect()
    }

    /// Asserts the server logged exactly one line about `peer`, containing `text`.
    fn assert_one_line(&self, peer: SocketAddr, text: &str) {
        let lines = self.about(peer);
        let all = String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned();
        assert_eq!(lines.len(), 1, "one line about {peer}, got: {lines:#?}\nall:\n{all}");
        assert!(lines[0].contains(text), "{:?} should contain {text:?}", lines[0]);
    }
}

/// A well-behaved client calling `Echo.echo` in a loop on its own connection.
struct GoodClient {
    stop: CancellationToken,
    task: JoinHandle<usize>,
}

impl GoodClient {
    async fn start(addr: SocketAddr) -> GoodClient {
        let client = Client::dial(addr).await.expect("the good client connects");
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut calls = 0;
                while !stop.is_cancelled() {
                    let message = format!("message {calls}");
                    let call = client.call::<_, String, String>(
                        Method::new("Echo", "echo"),
                        &message,
                        &CallOptions::default(),
                    );
                    assert_eq!(call.await, Ok(message), "the good client's call {calls}");
                    calls += 1;
                    tokio::task::yield_now().await;
                }
                calls
            }
        });
        GoodClient { stop, task }
    }

    /// Stops the loop and checks it made progress.
    async fn finish(self) {
        self.stop.cancel();
        let calls = self.task.await.expect("the good client never failed");
        assert!(calls > 0, "the good client made calls throughout");
    }
}

struct Fixture {
    addr: SocketAddr,
    logs: Logs,
    good: GoodClient,
    _server: Server,
    _log_guard: DefaultGuard,
}

/// A server with the `Echo` service, its log captured (the tests run on one thread, so the
/// thread's default subscriber sees every task), and a good client already calling it.
async fn fixture() -> Fixture {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let log_guard = tracing::subscriber::set_default(subscriber);
    let mut config = ServerConfig::default();
    config.handshake_timeout = Duration::from_millis(200);
    let server = Server::builder().register(raw::Echo).config(config).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    let good = GoodClient::start(addr).await;
    Fixture { addr, logs, good, _server: server, _log_guard: log_guard }
}

fn local(raw: &Raw) -> SocketAddr {
    raw.stream.local_addr().expect("local addr")
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_closes_the_connection() {
    let f = fixture().await;
    let mut stream = TcpStream::connect(f.addr).await.expect("connect");
    let me = stream.local_addr().expect("addr");
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut raw = Raw { stream };
    assert_eq!(raw.expect_closed().await, b"", "closed without a word: the peer is not tidl");
    f.logs.assert_one_line(me, "closed a connection: the peer does not speak tidl");
    f.good.finish().await;
}

#[tokio::test]
async fn a_valid_handshake_then_garbage_gets_a_goaway_and_is_closed() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    raw.send(b"\xde\xad\xbe\xef and then some garbage").await;
    let Frame::GoAway { code, message } = raw.recv().await else { panic!("expected a GoAway") };
    assert_eq!(code, Code::ResourceExhausted.as_u16());
    assert_eq!(
        message,
        "the peer sent a frame of 3735928559 bytes, over the maximum frame length of 8388608 bytes; raise \
         ServerConfig::max_frame_len (and the client's) to allow it"
    );
    raw.expect_closed().await;
    f.logs.assert_one_line(local(&raw), "closed a tidl connection: the peer sent a frame of 3735928559 bytes");
    f.good.finish().await;
}

#[tokio::test]
async fn a_length_prefix_of_4_gib_is_refused_before_anything_is_allocated() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    raw.send(&[0xff, 0xff, 0xff, 0xff]).await;
    let Frame::GoAway { code, message } = raw.recv().await else { panic!("expected a GoAway") };
    assert_eq!(code, Code::ResourceExhausted.as_u16());
    assert!(message.starts_with("the peer sent a frame of 4294967295 bytes"), "{message}");
    raw.expect_closed().await;
    f.logs.assert_one_line(local(&raw), "4294967295 bytes");
    f.good.finish().await;
}

#[tokio::test]
async fn a_truncated_frame_then_eof_is_logged_and_closed() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    let whole = request(1, "Echo", "echo", None, &string("hello"));
    raw.send(&whole[..10]).await;
    raw.stream.shutdown().await.expect("half-close");
    raw.expect_closed().await;
    f.logs.assert_one_line(local(&raw), "closed its connection in the middle of a frame");
    f.good.finish().await;
}

#[tokio::test]
async fn a_frame_that_decodes_to_nothing_known_gets_a_goaway() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    raw.send(&frame(&[99, 1, 2, 3])).await;
    let Frame::GoAway { code, message } = raw.recv().await else { panic!("expected a GoAway") };
    assert_eq!(code, Code::InvalidArgument.as_u16());
    assert!(message.starts_with("received a frame that is not a tidl frame ("), "{message}");
    raw.expect_closed().await;
    f.logs.assert_one_line(local(&raw), "received a frame that is not a tidl frame");
    f.good.finish().await;
}

#[tokio::test]
async fn a_server_to_client_frame_from_a_client_gets_a_goaway() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    raw.send(&raw::response_ok(1, &string("backwards"))).await;
    let Frame::GoAway { code, message } = raw.recv().await else { panic!("expected a GoAway") };
    assert_eq!(code, Code::InvalidArgument.as_u16());
    assert_eq!(message, "received a server-to-client frame from a client");
    raw.expect_closed().await;
    f.logs.assert_one_line(local(&raw), "server-to-client frame");
    f.good.finish().await;
}

#[tokio::test]
async fn arguments_of_the_wrong_type_get_invalid_argument_and_the_connection_goes_on() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    // A string that claims five bytes and has none.
    raw.send(&request(1, "Echo", "echo", None, &[5])).await;
    let Frame::ResponseStatus { id: 1, code, message } = raw.recv().await else { panic!("expected a status") };
    assert_eq!(code, Code::InvalidArgument.as_u16());
    assert!(message.starts_with("the argument of `Echo.echo` did not decode: "), "{message}");
    raw.send(&request(2, "Echo", "echo", None, &string("fine"))).await;
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 2, payload: string("fine") });
    f.logs.assert_one_line(local(&raw), "the argument of `Echo.echo` did not decode");
    f.good.finish().await;
}

#[tokio::test]
async fn an_unknown_service_or_method_gets_unimplemented_and_the_connection_survives() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    raw.send(&request(1, "Nope", "echo", None, &string("x"))).await;
    assert_eq!(
        raw.recv().await,
        Frame::ResponseStatus {
            id: 1,
            code: Code::Unimplemented.as_u16(),
            message: "the server has no service `Nope` (it serves: Echo)".into()
        }
    );
    // The connection survives: the next call on it is answered.
    raw.send(&request(2, "Echo", "echo", None, &string("still here"))).await;
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 2, payload: string("still here") });
    f.logs.assert_one_line(local(&raw), "no service `Nope`");

    let mut raw = Raw::connect(f.addr).await;
    raw.send(&request(1, "Echo", "nope", None, &string("x"))).await;
    assert_eq!(
        raw.recv().await,
        Frame::ResponseStatus {
            id: 1,
            code: Code::Unimplemented.as_u16(),
            message: "the service `Echo` has no method `nope`".into()
        }
    );
    raw.send(&request(2, "Echo", "echo", None, &string("still here"))).await;
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 2, payload: string("still here") });
    f.logs.assert_one_line(local(&raw), "no method `nope`");
    f.good.finish().await;
}

#[tokio::test]
async fn a_cancel_for_an_unknown_id_and_a_burst_of_ten_thousand_are_ignored() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    let burst: Vec<u8> = (0..10_000u64).flat_map(|id| cancel(1_000_000 + id)).collect();
    raw.send(&burst).await;
    raw.send(&request(1, "Echo", "echo", None, &string("after the burst"))).await;
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 1, payload: string("after the burst") });
    f.logs.assert_one_line(local(&raw), "ignored a cancel for call 1000000, which is not running");
    f.good.finish().await;
}

#[tokio::test]
async fn a_duplicate_request_id_closes_the_connection_with_a_reason() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    raw.send(&request(5, "Echo", "sleep", None, &raw::varint(60_000))).await;
    raw.send(&request(5, "Echo", "sleep", None, &raw::varint(60_000))).await;
    let Frame::GoAway { code, message } = raw.recv().await else { panic!("expected a GoAway") };
    assert_eq!(code, Code::InvalidArgument.as_u16());
    assert_eq!(message, "request id 5 was reused while its call is still running");
    raw.expect_closed().await;
    f.logs.assert_one_line(local(&raw), "request id 5 was reused");
    f.good.finish().await;
}

#[tokio::test]
async fn a_client_that_connects_and_never_sends_is_closed_after_the_handshake_timeout() {
    let f = fixture().await;
    let stream = TcpStream::connect(f.addr).await.expect("connect");
    let me = stream.local_addr().expect("addr");
    let mut raw = Raw { stream };
    assert_eq!(raw.expect_closed().await, b"");
    f.logs.assert_one_line(me, "sent no tidl handshake within 200ms (ServerConfig::handshake_timeout)");
    f.good.finish().await;
}

#[tokio::test]
async fn a_frame_that_trickles_in_does_not_hold_anyone_up() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    let whole = request(1, "Echo", "echo", None, &string("slowly"));
    for byte in &whole {
        raw.send(&[*byte]).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 1, payload: string("slowly") });
    assert_eq!(f.logs.about(local(&raw)), Vec::<String>::new(), "slow is not wrong");
    f.good.finish().await;
}

#[tokio::test]
async fn pings_are_answered() {
    let f = fixture().await;
    let mut raw = Raw::connect(f.addr).await;
    raw.send(&raw::ping(42)).await;
    assert_eq!(raw.recv().await, Frame::Pong { nonce: 42 });
    f.good.finish().await;
}

#[tokio::test]
async fn a_newer_protocol_version_is_refused_with_a_log_line() {
    let f = fixture().await;
    let mut stream = TcpStream::connect(f.addr).await.expect("connect");
    let me = stream.local_addr().expect("addr");
    stream.write_all(b"TIDL\x02\x00\x00\x00").await.expect("write");
    let mut raw = Raw { stream };
    assert_eq!(raw.expect_closed().await, b"TIDL\x01\x04\x01\x00");
    f.logs.assert_one_line(me, "refused a connection: the peer speaks tidl protocol 2.0");
    f.good.finish().await;
}
