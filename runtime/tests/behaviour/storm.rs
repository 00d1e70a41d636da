//! Connection storms: when a server restarts, every client reconnects at once. Ten thousand
//! connections opened at once against one server must all complete their handshake within a
//! few seconds, with no connection dropped by a full listen queue (each such drop costs the
//! client a one-second SYN retransmit).
//!
//! Ten thousand connections take ten thousand file descriptors on each side, more than one
//! process may have here (`RLIMIT_NOFILE`), and the runtime forbids `unsafe` (so no
//! `setrlimit`). The test therefore runs its two sides as child processes of this same test
//! binary, each started through `sh -c 'ulimit -n LIMIT && exec ...'` (at most the hard limit;
//! the test is skipped, saying why, if that is too low) and told its role by
//! an environment variable: a server (a 2-worker runtime serving with [`Server::listen`]) and
//! a client that opens every connection at once. This process only conducts them, reads the
//! kernel's `ListenOverflows` counter before and after, and asks the server for its resident
//! memory with every connection open and idle.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tidl_runtime::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections opened at once.
const CONNECTIONS: usize = 10_000;
/// File descriptors each side needs beyond one per connection (stdio, epoll, the listener...).
const SPARE_FDS: u64 = 200;
/// How long the storm may take, from the first connect to the last handshake answer. It takes
/// well under a second on the 2-core machine this was written on; a dropped SYN alone costs 1 s.
const STORM_LIMIT: Duration = Duration::from_secs(20);
/// How long a child may take to say anything before the test gives up on it.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// The client's hello, protocol 1.2, and the server's answer when it accepts it.
const HELLO: &[u8; 8] = b"TIDL\x01\x02\x00\x00";

/// This test's name in its binary (module path without the crate), to run it again in a child
/// with `--exact`.
fn test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, path)| path);
    format!("{module}::ten_thousand_connections_at_once_all_complete_their_handshake")
}
/// Tells a child which side it is: `server` or `client`.
const ROLE: &str = "TIDL_STORM_ROLE";
/// Tells the client where the server listens.
const ADDR: &str = "TIDL_STORM_ADDR";

#[test]
fn ten_thousand_connections_at_once_all_complete_their_handshake() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => return serve(),
        Ok("client") => return storm(),
        _ => {}
    }
    // Each child raises its soft limit to this: what it needs, with room to spare.
    let nofile = match nofile_hard_limit() {
        Some(hard) if hard >= CONNECTIONS as u64 + SPARE_FDS => hard.min(2 * CONNECTIONS as u64),
        other => {
            println!(
                "skipped: {CONNECTIONS} connections need {} file descriptors per process and the \
                 hard RLIMIT_NOFILE is {other:?}",
                CONNECTIONS as u64 + SPARE_FDS
            );
            return;
        }
    };
    let overflows_before = listen_overflows();

    let mut server = Side::start("server", nofile, &[]);
    let addr = server.expect("LISTENING");
    let rss_before: f64 = server.ask("rss", "RSS").parse().expect("the server's RSS");

    let mut client = Side::start("client", nofile, &[(ADDR, addr.as_str())]);
    let done = client.expect("DONE");
    let report = Report::parse(&done);
    // Every connection is open and idle now: how much memory does the server hold for them?
    let rss_after: f64 = server.ask("rss", "RSS").parse().expect("the server's RSS");

    // The server closes first, so the TIME_WAIT sockets are its own rather than the client's
    // ephemeral ports.
    server.finish();
    client.finish();
    let overflows_after = listen_overflows();

    let per_connection = (rss_after - rss_before) * 1024.0 / report.accepted as f64;
    println!(
        "storm: {} connections, {} accepted, all answered in {:.0} ms (slowest connection {:.0} ms, \
         {:.0} handshakes/s); server RSS {:.1} MiB -> {:.1} MiB, {:.0} bytes per idle connection; \
         ListenOverflows {overflows_before:?} -> {overflows_after:?}",
        CONNECTIONS,
        report.accepted,
        report.elapsed_ms,
        report.slowest_ms,
        report.accepted as f64 * 1000.0 / report.elapsed_ms,
        rss_before / 1024.0,
        rss_after / 1024.0,
        per_connection,
    );
    assert_eq!(report.accepted, CONNECTIONS, "every connection is accepted: {done}");
    assert!(
        report.elapsed_ms < STORM_LIMIT.as_secs_f64() * 1000.0,
        "{CONNECTIONS} handshakes took {:.0} ms, over {STORM_LIMIT:?}",
        report.elapsed_ms
    );
    if let (Some(before), Some(after)) = (overflows_before, overflows_after) {
        assert_eq!(after, before, "the listen queue overflowed during the storm (TcpExt ListenOverflows)");
    }
}

/// What the client reports: `DONE accepted=N elapsed_ms=X slowest_ms=Y`.
struct Report {
    accepted: usize,
    elapsed_ms: f64,
    slowest_ms: f64,
}

impl Report {
    fn parse(line: &str) -> Report {
        let field = |name: &str| -> f64 {
            line.split_whitespace()
                .find_map(|pair| pair.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("no `{name}` in the client's report {line:?}"))
        };
        Report {
            accepted: field("accepted") as usize,
            elapsed_ms: field("elapsed_ms"),
            slowest_ms: field("slowest_ms"),
        }
    }
}

/// A child process playing one side; its standard output, line by line.
struct Side {
    role: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Side {
    /// Runs this test again as `role`, with its soft file descriptor limit raised to `nofile`.
    fn start(role: &'static str, nofile: u64, env: &[(&str, &str)]) -> Side {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$0" && exec "$@""#)
            .arg(nofile.to_string())
            .arg(exe)
            .args(["--exact", &test_name(), "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting a child of the test");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Side { role, child, stdin, lines }
    }

    /// Waits for the line with `prefix` and returns what follows it.
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + CHILD_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // The line may follow the test harness's `test NAME ... ` on the same line.
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("the {} child did not say {prefix} ({e}); its status: {:?}", self.role, self.child.wait());
                }
            }
        }
    }

    /// Sends `command` and waits for the answer that starts with `prefix`.
    fn ask(&mut self, command: &str, prefix: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the child's stdin is open");
        writeln!(stdin, "{command}").and_then(|()| stdin.flush()).expect("writing to a child");
        self.expect(prefix)
    }

    /// Closes the child's standard input, which tells it to finish, and waits for it.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("waiting for a child");
        assert!(status.success(), "the {} child failed: {status}", self.role);
    }
}

/// A multi-thread runtime with 2 workers, as each side runs on.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

/// The server's side: serves on a free loopback port, prints `LISTENING ADDR`, answers each
/// `rss` line on its standard input with `RSS KIB`, and shuts down when its standard input
/// closes.
fn serve() {
    let (commands_tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if commands_tx.send(line).is_err() {
                break;
            }
        }
    });
    runtime().block_on(async move {
        let server = Server::builder().build();
        let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
        println!("LISTENING {addr}");
        while let Some(command) = commands.recv().await {
            if command == "rss" {
                // Let the last connections' tasks settle.
                tokio::time::sleep(Duration::from_millis(200)).await;
                println!("RSS {}", rss_kib().unwrap_or(0.0));
            }
        }
        server.shutdown(Duration::from_secs(5)).await;
    });
}

/// The client's side: opens every connection at once, sends the hello on each and reads the
/// answer, prints `DONE accepted=N elapsed_ms=X slowest_ms=Y`, and holds the connections open
/// until its standard input closes.
fn storm() {
    let addr: SocketAddr = std::env::var(ADDR).expect("the server's address").parse().expect("an address");
    let connections = runtime().block_on(async move {
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                tokio::spawn(async move {
                    let began = Instant::now();
                    let mut stream = TcpStream::connect(addr).await?;
                    stream.write_all(HELLO).await?;
                    let mut answer = [0; 8];
                    stream.read_exact(&mut answer).await?;
                    Ok::<_, std::io::Error>((stream, answer, began.elapsed()))
                })
            })
            .collect();
        let (mut accepted, mut slowest, mut failures) = (0, Duration::ZERO, Vec::new());
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for task in tasks {
            match task.await.expect("a connection task panicked") {
                Ok((stream, answer, took)) => {
                    accepted += usize::from(&answer == HELLO);
                    slowest = slowest.max(took);
                    connections.push(stream);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        let elapsed = start.elapsed();
        if !failures.is_empty() {
            eprintln!("{} connections failed, the first with: {}", failures.len(), failures[0]);
        }
        println!(
            "DONE accepted={accepted} elapsed_ms={:.1} slowest_ms={:.1}",
            elapsed.as_secs_f64() * 1000.0,
            slowest.as_secs_f64() * 1000.0
        );
        connections
    });
    // Hold every connection open, idle, until told to finish.
    let _ = std::io::stdin().lock().lines().count();
    drop(connections);
}

/// The hard limit on open file descriptors (`Max open files` in `/proc/self/limits`).
fn nofile_hard_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(4)? {
        "unlimited" => Some(u64::MAX),
        hard => hard.parse().ok(),
    }
}

/// The kernel's count of connections dropped because a listen queue was full (`TcpExt
/// ListenOverflows` in `/proc/net/netstat`), if it can be read.
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names.split_whitespace().position(|name| name == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// This process's resident memory in KiB (`VmRSS` in `/proc/self/status`).
fn rss_kib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}
