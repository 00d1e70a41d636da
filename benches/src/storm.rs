//! The connection-storm case (tidl, and a plain accept loop as `raw`): a server restarts and every client reconnects at once.
//! [`CONNECTIONS`] connections are opened at the same moment, each sends the tidl hello and
//! reads the server's answer; the case reports how long until every one was answered, how fast
//! the server accepted them, how many connections the kernel dropped because the listen queue
//! was full (`TcpExt ListenOverflows`: each costs its client a SYN retransmit, a second or
//! more), and the server's resident memory per idle connection.
//!
//! Each side needs a file descriptor per connection, and one process may not have enough for
//! both, so the server runs in a child process (this executable with `--storm-server`) on a
//! 2-worker runtime of its own: [`Server::accept`] on a listener bound as [`Server::listen`]
//! binds it (`SO_REUSEADDR`, the default [`ServerConfig::listen_backlog`]), wrapped to count the
//! accepts. With `--addr ADDR` the storm goes to a server already running there instead (the
//! example server, say), and only the client's side is measured.

use crate::cases::{Metrics, runtime};
use crate::imp::Impl;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tidl_runtime::transport::{Listener, Peer};
use tidl_runtime::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Connections opened at once.
pub const CONNECTIONS: usize = 10_000;

/// File descriptors this process needs beyond one per connection.
const SPARE_FDS: u64 = 200;

/// The client's hello (protocol 1.2) and the server's answer when it accepts the connection.
const HELLO: &[u8; 8] = b"TIDL\x01\x02\x00\x00";

/// How long the server is given to settle before its memory is read.
const SETTLE: Duration = Duration::from_millis(200);

/// Runs the storm against a server of its own in a child process, or against `addr`.
pub fn run(imp: Impl, addr: Option<SocketAddr>) -> Metrics {
    let limit = raise_nofile_limit();
    if limit < CONNECTIONS as u64 + SPARE_FDS {
        eprintln!(
            "storm: skipped: {CONNECTIONS} connections need {} file descriptors and RLIMIT_NOFILE allows {limit}",
            CONNECTIONS as u64 + SPARE_FDS
        );
        return vec![("skipped", 1.0)];
    }
    let mut server = match addr {
        Some(addr) => StormServer::External(addr),
        // The child inherits the raised limit.
        None => StormServer::start(imp),
    };
    let before = server.report();
    let overflows_before = listen_overflows();
    let (connections, mut metrics) = runtime().block_on(storm(server.addr()));
    let overflows_after = listen_overflows();
    if let (Some(before), Some(after)) = (overflows_before, overflows_after) {
        metrics.push(("listen_overflows", (after - before) as f64));
    }
    std::thread::sleep(SETTLE);
    let after = server.report();
    if let (Some(before), Some(after)) = (before, after) {
        let accept_secs = after.last_accept_secs - after.first_accept_secs;
        if after.accepts > 1 && accept_secs > 0.0 {
            metrics.push(("accepts_per_s", (after.accepts - 1) as f64 / accept_secs));
        }
        metrics.push(("rss_per_conn_kib", (after.rss_kib - before.rss_kib) / CONNECTIONS as f64));
    }
    // The server closes first, so that the TIME_WAIT sockets are its own, not the client's ports.
    server.finish();
    drop(connections);
    metrics
}

/// Opens every connection at once, sends the hello on each and reads the answer. Returns the
/// connections (to be closed after the server) and the numbers.
async fn storm(addr: SocketAddr) -> (Vec<TcpStream>, Metrics) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            tokio::spawn(async move {
                let began = Instant::now();
                let mut stream = TcpStream::connect(addr).await?;
                stream.write_all(HELLO).await?;
                let mut answer = [0; 8];
                stream.read_exact(&mut answer).await?;
                Ok::<_, io::Error>((stream, &answer == HELLO, began.elapsed()))
            })
        })
        .collect();
    let (mut accepted, mut slowest, mut failed) = (0, Duration::ZERO, 0);
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for task in tasks {
        match task.await.expect("a connection task panicked") {
            Ok((stream, ok, took)) => {
                accepted += usize::from(ok);
                slowest = slowest.max(took);
                connections.push(stream);
            }
            Err(e) => {
                if failed == 0 {
                    eprintln!("storm: a connection failed: {e}");
                }
                failed += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    if accepted < CONNECTIONS {
        eprintln!("storm: only {accepted} of {CONNECTIONS} connections were accepted ({failed} failed)");
    }
    let metrics = vec![
        ("storm_ms", elapsed.as_secs_f64() * 1000.0),
        ("handshakes_per_s", accepted as f64 / elapsed.as_secs_f64()),
        ("slowest_ms", slowest.as_secs_f64() * 1000.0),
        ("accepted", accepted as f64),
    ];
    (connections, metrics)
}

/// What the server reports: its resident memory, and its accepts so far with the times of the
/// first and the last, in seconds since it started listening.
#[derive(Debug, Clone, Copy)]
struct ServerReport {
    rss_kib: f64,
    accepts: u64,
    first_accept_secs: f64,
    last_accept_secs: f64,
}

/// The server the storm goes to.
enum StormServer {
    /// A child process (`--storm-server`), with its standard input (closing it stops the
    /// server) and its output, line by line.
    Child { child: Child, stdin: Option<ChildStdin>, stdout: BufReader<std::process::ChildStdout>, addr: SocketAddr },
    /// A server somebody else runs.
    External(SocketAddr),
}

impl StormServer {
    fn start(imp: Impl) -> StormServer {
        let exe = std::env::current_exe().expect("the path of this executable");
        let mut child = Command::new(exe)
            .args(["--storm-server", imp.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the storm server");
        let mut stdout = BufReader::new(child.stdout.take().expect("the server's stdout"));
        let stdin = child.stdin.take();
        let mut first = String::new();
        stdout.read_line(&mut first).expect("reading the server's address");
        let addr = first
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the storm server did not say where it listens (it said {first:?})"));
        StormServer::Child { child, stdin, stdout, addr }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            StormServer::Child { addr, .. } | StormServer::External(addr) => *addr,
        }
    }

    /// Asks the server for its numbers (none from an external server).
    fn report(&mut self) -> Option<ServerReport> {
        let StormServer::Child { stdin: Some(stdin), stdout, .. } = self else { return None };
        writeln!(stdin, "report").and_then(|()| stdin.flush()).expect("writing to the storm server");
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading the storm server's report");
        let fields: Vec<f64> = line
            .strip_prefix("REPORT ")
            .unwrap_or_else(|| panic!("the storm server answered {line:?}"))
            .split_whitespace()
            .map(|v| v.parse().expect("a number in the storm server's report"))
            .collect();
        let &[rss_kib, accepts, first_accept_secs, last_accept_secs] = fields.as_slice() else {
            panic!("the storm server answered {line:?}");
        };
        Some(ServerReport { rss_kib, accepts: accepts as u64, first_accept_secs, last_accept_secs })
    }

    /// Stops the server and waits for it.
    fn finish(self) {
        if let StormServer::Child { mut child, stdin, .. } = self {
            drop(stdin);
            let status = child.wait().expect("waiting for the storm server");
            assert!(status.success(), "the storm server failed: {status}");
        }
    }
}

/// Accepts from a `TcpListener`, counting the accepts and noting the first and the last.
struct CountingListener {
    inner: TcpListener,
    counts: Arc<Mutex<Accepts>>,
}

#[derive(Debug, Default)]
struct Accepts {
    count: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Listener for CountingListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, Peer)> {
        let accepted = Listener::accept(&mut self.inner).await?;
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.count += 1;
        counts.first.get_or_insert(now);
        counts.last = Some(now);
        Ok(accepted)
    }
}

/// `--storm-server IMPL`: serves on a free loopback port, prints `LISTENING ADDR`, answers each
/// `report` line on its standard input with `REPORT RSS_KIB ACCEPTS FIRST_S LAST_S`, and shuts
/// down when its standard input closes. `raw` is the floor to compare with: a plain tokio accept
/// loop whose tasks answer the hello and nothing more.
pub fn serve(imp: Impl) {
    assert!(matches!(imp, Impl::Raw | Impl::Tidl), "the storm case's server is raw or tidl, not {imp}");
    let (commands_tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines().map_while(Result::ok) {
            if commands_tx.send(line).is_err() {
                break;
            }
        }
    });
    runtime().block_on(async move {
        let backlog = ServerConfig::default().listen_backlog;
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("binding 127.0.0.1:0");
        let inner = socket.listen(backlog).expect("listening");
        let addr = inner.local_addr().expect("the listener's address");
        let counts = Arc::new(Mutex::new(Accepts::default()));
        let listener = CountingListener { inner, counts: counts.clone() };
        let server = Server::builder().build();
        let accepting = match imp {
            Impl::Raw => tokio::spawn(raw_accept_loop(listener)),
            _ => tokio::spawn({
                let server = server.clone();
                async move { server.accept(listener).await }
            }),
        };
        let started = Instant::now();
        println!("LISTENING {addr}");
        io::stdout().flush().expect("writing to stdout");
        while let Some(command) = commands.recv().await {
            if command == "report" {
                let counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
                let since = |t: Option<Instant>| t.map_or(0.0, |t| t.duration_since(started).as_secs_f64());
                println!(
                    "REPORT {} {} {} {}",
                    crate::stats::rss_mib().unwrap_or(0.0) * 1024.0,
                    counts.count,
                    since(counts.first),
                    since(counts.last)
                );
                io::stdout().flush().expect("writing to stdout");
            }
        }
        match imp {
            // Ending the process closes the raw connections.
            Impl::Raw => accepting.abort(),
            _ => {
                server.shutdown(Duration::from_secs(5)).await;
                let _ = accepting.await;
            }
        }
    });
}

/// A plain accept loop: each connection's task sets `TCP_NODELAY`, reads the 8-byte hello,
/// answers it, and holds the connection until the client closes it.
async fn raw_accept_loop(mut listener: CountingListener) -> io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            stream.set_nodelay(true)?;
            let mut hello = [0; 8];
            stream.read_exact(&mut hello).await?;
            stream.write_all(&hello).await?;
            stream.read_to_end(&mut Vec::new()).await
        });
    }
}

/// Raises this process's soft limit on open files to its hard limit; returns the limit now in
/// force. Children inherit it.
#[cfg(unix)]
#[allow(unsafe_code)]
fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid `rlimit` for the call to fill in and read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    // `rlim_t` is `u64` on Linux, not on every unix.
    #[allow(clippy::unnecessary_cast)]
    let limit = limit.rlim_cur as u64;
    limit
}

#[cfg(not(unix))]
fn raise_nofile_limit() -> u64 {
    u64::MAX
}

/// The kernel's count of connections dropped because a listen queue was full (`TcpExt
/// ListenOverflows` in `/proc/net/netstat`, for this network namespace), if it can be read.
pub fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names.split_whitespace().position(|name| name == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}
