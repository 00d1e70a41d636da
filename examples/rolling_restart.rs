//! A rolling restart that loses no call: three server processes behind a client-side
//! [`Balancer`], a steady load of `echo` calls through it, and each server restarted in turn with
//! a graceful shutdown. Calls a stopping server refuses unstarted go to the others; calls it was
//! running finish. Prints the calls, failures and latency of each phase; the last line reads
//! `N calls, 0 failed` when all is well.
//!
//! Run it with `cargo run --example rolling_restart`.

use example::services::ExampleClientExt;
use example::{Example, ExampleServer};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidl_runtime::{Balancer, EndpointConfig, Server};

/// Calls in flight at any time.
const CONCURRENCY: usize = 16;

/// One server process, serving `Example` on `addr` until it reads `stop` on its stdin.
struct Process {
    child: Child,
}

impl Process {
    fn start(addr: &str, name: &str) -> Result<Process, Box<dyn std::error::Error + Send + Sync>> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--serve", addr, name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err(format!("server {name} did not start: {line:?}").into());
        }
        Ok(Process { child })
    }

    /// Asks for a graceful shutdown and waits for the process to exit.
    fn stop(mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(stdin) = self.child.stdin.as_mut() {
            stdin.write_all(b"stop\n")?;
        }
        self.child.wait()?;
        Ok(())
    }
}

/// The server process: serves until `stop` (or the end of stdin), then shuts down gracefully.
async fn serve(addr: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = Server::builder().register(ExampleServer::new(Example::new())).build();
    server.listen(addr).await?;
    println!("ready");
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "stop" {
            line.clear();
        }
    })
    .await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// The latencies and failures of one phase.
#[derive(Default)]
struct Phase {
    name: String,
    latencies: Vec<Duration>,
    failed: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve(args.get(2).ok_or("--serve ADDR NAME")?).await;
    }

    // Three free ports on loopback.
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        addrs.push(listener.local_addr()?.to_string());
    }
    let mut servers: Vec<Option<Process>> = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        servers.push(Some(Process::start(addr, &format!("server-{i}"))?));
    }
    let mut config = EndpointConfig::default();
    config.initial_backoff = Duration::from_millis(50);
    config.max_backoff = Duration::from_secs(1);
    let balancer = Balancer::from_addrs(addrs.clone(), &config);

    // The load: CONCURRENCY tasks calling `echo` until told to stop, recording into the
    // current phase.
    let phases = Arc::new(Mutex::new(vec![Phase { name: "steady, 3 servers".into(), ..Phase::default() }]));
    let current = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (balancer, phases, current, stop) = (balancer.clone(), phases.clone(), current.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = balancer.example();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let reply = client.echo("hello world".into()).await;
                if let Err(e) = &reply {
                    eprintln!("a call failed: {e}");
                }
                let ok = reply.is_ok_and(|r| r == "hello world");
                let mut phases = phases.lock().expect("phases");
                let phase = &mut phases[current.load(Ordering::Relaxed)];
                if ok {
                    phase.latencies.push(started.elapsed());
                } else {
                    phase.failed += 1;
                }
            }
        }));
    }
    let next_phase = |name: String| {
        let mut phases = phases.lock().expect("phases");
        phases.push(Phase { name, ..Phase::default() });
        current.store(phases.len() - 1, Ordering::Relaxed);
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, addr) in addrs.iter().enumerate() {
        next_phase(format!("server-{i} drains and restarts"));
        if let Some(process) = servers[i].take() {
            tokio::task::spawn_blocking(move || process.stop()).await??;
        }
        let (addr, name) = (addr.clone(), format!("server-{i}"));
        servers[i] = Some(tokio::task::spawn_blocking(move || Process::start(&addr, &name)).await??);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    next_phase("steady, 3 servers again".into());
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    for process in servers.into_iter().flatten() {
        tokio::task::spawn_blocking(move || process.stop()).await??;
    }

    let mut phases = phases.lock().expect("phases");
    let (mut total, mut failed) = (0, 0);
    for phase in phases.iter_mut() {
        phase.latencies.sort_unstable();
        let calls = phase.latencies.len() + phase.failed;
        println!(
            "{:<34} {calls:>7} calls {:>4} failed   p50 {:>8.1?}   p99 {:>8.1?}",
            phase.name,
            phase.failed,
            percentile(&phase.latencies, 0.50),
            percentile(&phase.latencies, 0.99)
        );
        total += calls;
        failed += phase.failed;
    }
    println!("{total} calls, {failed} failed");
    Ok(())
}
