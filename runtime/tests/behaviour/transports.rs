//! Every transport carries the same behaviour: the core cases (echo, cancel, disconnect,
//! deadline, who called) are written once and run over TCP, Unix domain sockets and the
//! in-memory pipe. Then what only one transport has: a TCP peer's address, a Unix peer's
//! credentials, a bare byte stream, and connecting to nothing.

use crate::common;

use common::{Probe, Served, Stats, Transport, call, call_with, serve_over, status};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidl_runtime::transport::Connector;
use tidl_runtime::{Call, CallOptions, Client, Code, Peer, Server};
use tokio::net::{TcpListener, TcpStream};

/// An echo, and many at once, each answered with its own argument.
async fn echo(transport: Transport) {
    let Served { client, .. } = &serve_over(transport, Probe::default()).await;
    let reply: Result<String, _> = call(client, "echo", "hello world").await;
    assert_eq!(reply, Ok("hello world".to_owned()));
    let calls: Vec<Call<String>> = (0..100).map(|i| call(client, "echo", &format!("message {i}"))).collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await, Ok(format!("message {i}")));
    }
}

/// Cancelling a call drops the handler's future, the call resolves to `Cancelled`, and the
/// connection goes on.
async fn cancel_stops_the_handler(transport: Transport) {
    let probe = Probe::default();
    let Served { client, .. } = &serve_over(transport, probe.clone()).await;
    let running: Call<u64> = call(client, "ticks", &u64::MAX);
    probe.wait("three ticks", |s| s.ticks >= 3).await;
    running.cancel();
    let stats = probe.wait("the handler to be dropped", |s| s.dropped == 1).await;
    assert_eq!((stats.started, stats.finished), (1, 0));
    let cancelled = status(running.await);
    assert_eq!(cancelled.code(), Code::Cancelled);
    assert_eq!(cancelled.message(), "`Probe.ticks` was cancelled by the caller");
    let echo: Result<String, _> = call(client, "echo", "still here").await;
    assert_eq!(echo, Ok("still here".to_owned()));
}

/// Detached calls run on while their client lives; dropping the client closes the connection,
/// and the server drops every handler still running for it.
async fn disconnect_cancels_every_running_handler(transport: Transport) {
    let probe = Probe::default();
    let Served { client, server: _server, socket: _socket } = serve_over(transport, probe.clone()).await;
    for _ in 0..3 {
        call::<_, u64>(&client, "ticks", &u64::MAX).detach();
    }
    probe.wait("three handlers to start", |s| s.started == 3).await;
    let before = probe.stats().ticks;
    probe.wait("detached handlers to keep going", |s| s.ticks >= before + 6).await;
    assert_eq!(probe.stats().dropped, 0, "detached calls run on while the client lives");
    drop(client);
    let stats = probe.wait("all three handlers to be dropped", |s| s.dropped == 3).await;
    assert_eq!(stats.finished, 0);
}

/// A call past its deadline resolves to `DeadlineExceeded`, and the server, told the deadline
/// with the request, drops the handler.
async fn deadline_exceeds_and_stops_the_handler(transport: Transport) {
    let probe = Probe::default();
    let Served { client, .. } = &serve_over(transport, probe.clone()).await;
    let options = CallOptions::default().timeout(Duration::from_millis(1));
    let result: Result<(), _> = call_with(client, "sleep", &60_000u64, &options).await;
    let exceeded = status(result);
    assert_eq!(exceeded.code(), Code::DeadlineExceeded);
    assert_eq!(exceeded.message(), "`Probe.sleep` did not complete within its timeout of 1ms");
    let stats = probe.wait("the handler to be stopped", |s| s.dropped == 1).await;
    assert_eq!(stats.finished, 0);
}

/// The handler's context names the transport its caller came over.
async fn the_handler_sees_its_peer(transport: Transport) {
    let probe = Probe::default();
    let Served { client, .. } = &serve_over(transport, probe.clone()).await;
    let whoami: Result<(), _> = call(client, "whoami", &()).await;
    assert_eq!(whoami, Ok(()));
    let peer = probe.peers.lock().expect("peers lock").pop().expect("the handler recorded its peer");
    match transport {
        Transport::Tcp => assert!(matches!(peer, Peer::Tcp(addr) if addr.ip().is_loopback()), "{peer:?}"),
        #[cfg(unix)]
        Transport::Unix => assert!(peer.unix_credentials().is_some(), "{peer:?}"),
        Transport::Memory => assert_eq!(peer, Peer::Memory),
    }
}

/// Runs every core case over one transport, as tests named `<transport>::<case>`.
macro_rules! core_cases {
    ($transport:ident, $variant:expr) => {
        mod $transport {
            use super::*;

            #[tokio::test]
            async fn echo() {
                super::echo($variant).await;
            }

            #[tokio::test]
            async fn cancel_stops_the_handler() {
                super::cancel_stops_the_handler($variant).await;
            }

            #[tokio::test]
            async fn disconnect_cancels_every_running_handler() {
                super::disconnect_cancels_every_running_handler($variant).await;
            }

            #[tokio::test]
            async fn deadline_exceeds_and_stops_the_handler() {
                super::deadline_exceeds_and_stops_the_handler($variant).await;
            }

            #[tokio::test]
            async fn the_handler_sees_its_peer() {
                super::the_handler_sees_its_peer($variant).await;
            }
        }
    };
}

core_cases!(tcp, Transport::Tcp);
#[cfg(unix)]
core_cases!(unix, Transport::Unix);
core_cases!(memory, Transport::Memory);

/// Connects over TCP and records the local address of the client's socket.
#[derive(Clone)]
struct RecordingTcp {
    server: SocketAddr,
    local: Arc<Mutex<Option<SocketAddr>>>,
}

impl Connector for RecordingTcp {
    type Io = TcpStream;

    async fn connect(&self) -> std::io::Result<(TcpStream, Peer)> {
        let stream = TcpStream::connect(self.server).await?;
        *self.local.lock().expect("local lock") = Some(stream.local_addr()?);
        Ok((stream, Peer::Tcp(self.server)))
    }
}

#[tokio::test]
async fn a_tcp_handler_sees_the_clients_address() {
    let probe = Probe::default();
    let (addr, _server) = common::serve(probe.clone()).await;
    let connector = RecordingTcp { server: addr, local: Arc::default() };
    let client = Client::connect(connector.clone()).await.expect("connect");
    assert_eq!(client.peer(), &Peer::Tcp(addr));
    let whoami: Result<(), _> = call(&client, "whoami", &()).await;
    assert_eq!(whoami, Ok(()));
    let local = connector.local.lock().expect("local lock").expect("connected");
    let peers = probe.peers.lock().expect("peers lock").clone();
    assert_eq!(peers, vec![Peer::Tcp(local)]);
    assert_eq!(peers[0].socket_addr(), Some(local));
}

/// The uid of this process, as the kernel records it on a file the process creates.
#[cfg(unix)]
fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let path = common::SocketPath::new().0.with_extension("uid");
    std::fs::write(&path, b"mine").expect("create a file");
    let uid = std::fs::metadata(&path).expect("its metadata").uid();
    std::fs::remove_file(&path).expect("remove the file");
    uid
}

#[cfg(unix)]
#[tokio::test]
async fn a_unix_socket_handler_reads_its_callers_uid() {
    let probe = Probe::default();
    let served = serve_over(Transport::Unix, probe.clone()).await;
    let socket = served.socket.as_ref().expect("a unix socket").0.clone();
    assert!(socket.exists(), "the socket is in the temporary directory");
    let whoami: Result<(), _> = call(&served.client, "whoami", &()).await;
    assert_eq!(whoami, Ok(()));
    let peer = probe.peers.lock().expect("peers lock").pop().expect("the handler recorded its peer");
    assert!(matches!(peer, Peer::Unix(_)), "{peer:?}");
    let credentials = peer.unix_credentials().expect("the kernel told the caller's credentials");
    assert_eq!(credentials.uid, my_uid());
    if let Some(pid) = credentials.pid {
        assert_eq!(pid, std::process::id() as i32, "the caller is this process");
    }
    drop(served);
    assert!(!socket.exists(), "the socket file is cleaned up");
}

#[tokio::test]
async fn a_bare_byte_stream_carries_calls_and_cancels() {
    let probe = Probe::default();
    let server = Server::builder().register(probe.clone()).build();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve_connection(server_io).await }
    });
    let client = Client::new(client_io);
    client.ready().await.expect("handshake over the pipe");
    let echo: Result<String, _> = call(&client, "echo", "piped").await;
    assert_eq!(echo, Ok("piped".to_owned()));

    let running: Call<u64> = call(&client, "ticks", &u64::MAX);
    probe.wait("the loop to run", |s| s.ticks >= 1).await;
    running.cancel();
    probe.wait("the handler to be dropped", |s: &Stats| s.dropped == 1).await;

    // Nothing is known of a peer on a bare stream.
    let whoami: Result<(), _> = call(&client, "whoami", &()).await;
    assert_eq!(whoami, Ok(()));
    assert_eq!(probe.peers.lock().expect("peers lock").clone(), vec![Peer::Unknown]);

    drop((running, client));
    tokio::time::timeout(common::EVENT_TIMEOUT, serving).await.expect("connection ends").expect("task");
}

#[tokio::test]
async fn dialing_nothing_fails_with_unavailable() {
    // Bind then drop, so the port is (very likely) closed.
    let addr = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let err = Client::dial(addr).await.expect_err("nobody listens");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().starts_with("could not connect: "), "{}", err.message());
    assert!(std::error::Error::source(&err).is_some(), "the io::Error is the source");
}

#[cfg(unix)]
#[tokio::test]
async fn connecting_to_a_missing_unix_socket_fails_with_unavailable() {
    let missing = common::SocketPath::new();
    let connector = tidl_runtime::transport::unix::UnixConnector::new(&missing.0);
    let err = Client::connect(connector).await.expect_err("no socket there");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().starts_with("could not connect: "), "{}", err.message());
}

#[tokio::test]
async fn connecting_after_the_memory_listener_is_gone_fails_with_unavailable() {
    let (listener, connector) = tidl_runtime::transport::memory::channel();
    drop(listener);
    let err = Client::connect(connector).await.expect_err("nobody listens");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("the MemoryListener was dropped"), "{}", err.message());
}
