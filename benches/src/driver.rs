//! The command line: runs the whole suite, or (as a child process of the suite) one case.
//!
//! ```text
//! cargo bench -p tidl-benches                  # every case, 5 runs each, full counts
//! cargo bench -p tidl-benches -- --quick       # a smoke test with a tenth of the calls
//! cargo bench -p tidl-benches -- --runs 5 --cases seq,tput-256 --out results.md
//! ```
//!
//! The suite runs each case for each implementation in a fresh child process (this same
//! executable, started with `--child CASE IMPL`), alternating implementations (raw, tarpc,
//! tidl, raw, ...), and repeats the whole sequence `--runs` times. Each child prints one
//! `RESULT key=value ...` line. The two-process table starts the server with `--serve IMPL`
//! (it prints `LISTENING ADDR` and serves until its standard input closes) and the client with
//! `--child CASE IMPL --addr ADDR`.

use crate::cases::{self, Case, Counts};
use crate::imp::Impl;
use crate::probe::Probe;
use crate::raw::Raw;
use crate::report::{self, Parsed, Table};
use crate::streams;
use crate::tarpc_bench::Tarpc;
use crate::tidl_bench::Tidl;
use crate::tonic_bench::{self, TonicReady};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: suite [--quick] [--runs N (default 5)] [--cases CASE,...] [--one-process-only] [--out FILE]
             [--workers N (default 2: worker threads of each runtime, server's and client's)]
       suite --child CASE IMPL [--addr ADDR] [--quick] [--workers N]
       suite --serve IMPL [--listen ADDR]   (ADDR: where to listen, default 127.0.0.1:0)
       suite --storm-server IMPL   (the storm case's server, raw or tidl; the case starts it)

cases: seq tput-1 tput-64 tput-256 tput-1024 (or tput-N for any N calls in flight) conns-16 payload-16 payload-1024 payload-65536
       payload-1048576 cancel cost busy stream-16 stream-65536 stream-pingpong stream-cancel
       stream-stall structs (tidl only: @frozen against evolvable structs) tls (tidl only: plain against TLS)
       layers (tidl only: with and without tower layers) inline (tidl only: handlers spawned or inline)
       storm (tidl, and raw as a plain accept loop: 10,000 connections at once; with --addr,
       against a server already running there)
impls: raw tarpc tonic-ready tonic-chan tidl (tonic only in the stream-* cases)

Between two machines: `suite --serve tidl --listen 0.0.0.0:23400` on one (it serves until its
standard input closes: Ctrl-D), then `suite --child CASE tidl --addr HOST:23400` on the other, for
CASE one of seq, tput-*, conns-16, payload-*.";

/// A child process that has not reported after this long is stuck; it exits with an error.
const CHILD_WATCHDOG: Duration = Duration::from_secs(600);

/// What this process was asked to do.
#[derive(Debug)]
enum Role {
    Suite,
    Child { case: Case, imp: Impl, addr: Option<SocketAddr> },
    Serve(Impl, Option<SocketAddr>),
    StormServer(Impl),
}

/// Parsed command-line options.
#[derive(Debug)]
struct Options {
    role: Role,
    quick: bool,
    runs: usize,
    cases: Vec<Case>,
    two_process: bool,
    out: Option<PathBuf>,
    workers: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        role: Role::Suite,
        quick: false,
        runs: 5,
        cases: Case::ALL.to_vec(),
        two_process: true,
        out: None,
        workers: 2,
    };
    let mut addr = None;
    let mut listen = None;
    let mut it = args.iter();
    let case = |name: &str| Case::parse(name).ok_or_else(|| format!("unknown case `{name}`"));
    let imp = |name: &str| Impl::parse(name).ok_or_else(|| format!("unknown implementation `{name}`"));
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            "--quick" => options.quick = true,
            "--one-process-only" => options.two_process = false,
            "--runs" => {
                options.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?;
                if options.runs == 0 {
                    return Err("--runs must be at least 1".to_owned());
                }
            }
            "--cases" => options.cases = value()?.split(',').map(case).collect::<Result<_, _>>()?,
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "--workers" => {
                options.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if options.workers == 0 {
                    return Err("--workers must be at least 1".to_owned());
                }
            }
            "--addr" => addr = Some(value()?.parse::<SocketAddr>().map_err(|e| format!("--addr: {e}"))?),
            "--child" => {
                let c = case(value()?)?;
                let i = imp(value()?)?;
                options.role = Role::Child { case: c, imp: i, addr: None };
            }
            "--serve" => options.role = Role::Serve(imp(value()?)?, None),
            "--listen" => listen = Some(value()?.parse::<SocketAddr>().map_err(|e| format!("--listen: {e}"))?),
            "--storm-server" => options.role = Role::StormServer(imp(value()?)?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    match &mut options.role {
        Role::Child { addr: child_addr, .. } => *child_addr = addr,
        Role::Serve(_, serve_addr) => *serve_addr = listen,
        _ if listen.is_some() => return Err("--listen goes with --serve".to_owned()),
        _ => {}
    }
    Ok(options)
}

/// The benchmark's `main`.
pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let counts = if options.quick { Counts::QUICK } else { Counts::FULL };
    cases::WORKERS.store(options.workers, std::sync::atomic::Ordering::Relaxed);
    match options.role {
        Role::Child { case, imp, addr } => {
            start_watchdog(format!("{case} {imp}"));
            let metrics = cases::run(case, imp, &counts, addr);
            let line: Vec<String> = metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("RESULT {}", line.join(" "));
        }
        Role::Serve(imp, listen) => serve(imp, listen),
        Role::StormServer(imp) => {
            start_watchdog(format!("the storm server ({imp})"));
            crate::storm::serve(imp);
        }
        Role::Suite => suite(&options, &counts),
    }
}

/// Exits the process with an error if it is still running after [`CHILD_WATCHDOG`].
fn start_watchdog(what: String) {
    std::thread::spawn(move || {
        std::thread::sleep(CHILD_WATCHDOG);
        eprintln!("error: `{what}` did not finish within {CHILD_WATCHDOG:?}; giving up");
        std::process::exit(3);
    });
}

/// `--serve IMPL [--listen ADDR]`: serves on `ADDR` (an ephemeral loopback port if none) until
/// standard input closes.
fn serve(imp: Impl, listen: Option<SocketAddr>) {
    start_watchdog(format!("serving {imp}"));
    let rt = cases::runtime();
    let probe = Arc::new(Probe::default());
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let addr = rt.block_on(async move {
        match imp {
            Impl::Raw => cases::start_server_on::<Raw>(listen, probe).await,
            Impl::Tarpc => cases::start_server_on::<Tarpc>(listen, probe).await,
            Impl::Tidl => cases::start_server_on::<Tidl>(listen, probe).await,
            Impl::TonicReady | Impl::TonicChan => streams::start_server::<TonicReady>(probe).await,
        }
    });
    println!("LISTENING {addr}");
    std::io::stdout().flush().expect("writing to stdout");
    // The suite closes our standard input when the client is done.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    rt.shutdown_background();
}

fn parse_result(stdout: &str) -> Result<Parsed, String> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).ok_or("the child printed no RESULT line")?;
    line.split_whitespace()
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(|| format!("bad result field `{pair}`"))?;
            Ok((k.to_owned(), v.parse::<f64>().map_err(|e| format!("bad value in `{pair}`: {e}"))?))
        })
        .collect()
}

/// Whether `perf stat` can count this machine's system calls (`raw_syscalls:sys_enter`): checked
/// once; without it, the syscall rows stay empty.
fn perf_counts_syscalls() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        Command::new("perf")
            .args(["stat", "-x,", "-e", SYSCALLS, "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// The tracepoint `perf stat` counts system calls with.
const SYSCALLS: &str = "raw_syscalls:sys_enter";

/// A file for `perf stat -o`, unique to this process and `what`.
fn perf_out(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tidl-bench-{}-{what}.perf", std::process::id()))
}

/// The count of system calls `perf stat -x,` wrote to `path` (and removes it).
fn read_syscalls(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok();
    let _ = std::fs::remove_file(path);
    text?.lines().find(|l| l.contains(SYSCALLS))?.split(',').next()?.trim().parse().ok()
}

/// Whether `case` is a throughput case, whose children report `calls_total`: the ones whose CPU
/// and system calls per call are worth counting.
fn counts_calls(case: Case) -> bool {
    matches!(case, Case::Tput(_) | Case::Conns | Case::Payload(_))
}

/// Runs `--child CASE IMPL` and returns what it reported; for a throughput case, under `perf
/// stat` when it can count system calls, adding `syscalls_per_call` (the child's own: both sides
/// in one process, the client in two).
fn run_child(exe: &Path, case: Case, imp: Impl, quick: bool, addr: Option<SocketAddr>) -> Result<Parsed, String> {
    let perf = (counts_calls(case) && perf_counts_syscalls()).then(|| perf_out("child"));
    let mut command = match &perf {
        Some(out) => {
            let mut command = Command::new("perf");
            command.args(["stat", "-x,", "-e", SYSCALLS, "-o"]).arg(out).arg("--").arg(exe);
            command
        }
        None => Command::new(exe),
    };
    command.args(["--child", &case.to_string(), imp.name()]);
    if let Some(addr) = addr {
        command.args(["--addr", &addr.to_string()]);
    }
    if quick {
        command.arg("--quick");
    }
    command.args(["--workers", &workers().to_string()]);
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start {}: {e}", exe.display()))?;
    if !output.status.success() {
        return Err(format!("`{case} {imp}` failed: {}", output.status));
    }
    let mut parsed = parse_result(&String::from_utf8_lossy(&output.stdout))?;
    if let (Some(syscalls), Some(calls)) = (perf.as_deref().and_then(read_syscalls), value(&parsed, "calls_total")) {
        parsed.push(("syscalls_per_call".to_owned(), syscalls / calls));
    }
    Ok(parsed)
}

/// Worker threads per runtime, as `--workers` set them.
fn workers() -> usize {
    cases::WORKERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The value of `key` in `parsed`.
fn value(parsed: &Parsed, key: &str) -> Option<f64> {
    parsed.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// Runs `case` with the server (`--serve IMPL`) and the client in separate processes. For a
/// throughput case, the server's CPU time and system calls over the client's run are added to
/// the client's, per call: `cpu_us_per_call` and `syscalls_per_call` are both sides'.
fn run_two_process(exe: &Path, case: Case, imp: Impl, quick: bool) -> Result<Parsed, String> {
    let mut server = Command::new(exe)
        .args(["--serve", imp.name(), "--workers", &workers().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", exe.display()))?;
    let stdout = server.stdout.take().ok_or("the server's stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).map_err(|e| format!("reading the server's address: {e}"))?;
    let pid = server.id();
    let counting = counts_calls(case);
    let perf = (counting && perf_counts_syscalls()).then(|| perf_out("server")).and_then(|out| {
        let attached = Command::new("perf")
            .args(["stat", "-x,", "-e", SYSCALLS, "-p", &pid.to_string(), "-o"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some((attached, out))
    });
    let cpu_before = if counting { crate::stats::cpu_ns(Some(pid)) } else { None };
    let result = match first.trim().strip_prefix("LISTENING ").map(str::parse::<SocketAddr>) {
        Some(Ok(addr)) => run_child(exe, case, imp, quick, Some(addr)),
        _ => Err(format!("the `{imp}` server did not say where it listens (it said {first:?})")),
    };
    let cpu_after = if counting { crate::stats::cpu_ns(Some(pid)) } else { None };
    let server_syscalls = perf.and_then(|(mut attached, out)| {
        // `perf stat -p` writes its counts when interrupted.
        let _ = Command::new("kill").args(["-INT", &attached.id().to_string()]).status();
        let _ = attached.wait();
        read_syscalls(&out)
    });
    // Closing its standard input tells the server to exit.
    drop(server.stdin.take());
    server.wait().map_err(|e| format!("waiting for the server: {e}"))?;
    let mut parsed = result?;
    if let Some(calls) = value(&parsed, "calls_total") {
        if let (Some(before), Some(after), Some(client)) = (cpu_before, cpu_after, value(&parsed, "cpu_us_per_call")) {
            let server = after.saturating_sub(before) as f64 / 1e3 / calls;
            parsed.retain(|(k, _)| k != "cpu_us_per_call");
            parsed.push(("cpu_us_per_call".to_owned(), client + server));
            parsed.push(("server_cpu_us_per_call".to_owned(), server));
        }
        if let (Some(server), Some(client)) = (server_syscalls, value(&parsed, "syscalls_per_call")) {
            parsed.retain(|(k, _)| k != "syscalls_per_call");
            parsed.push(("syscalls_per_call".to_owned(), client + server / calls));
        }
    }
    Ok(parsed)
}

/// Where the results go unless `--out` says otherwise: `bench-results.md` in the target
/// directory this executable was built in (`target/release/deps/suite-*` gives `target/`).
fn default_out(exe: &Path) -> PathBuf {
    let target = exe.parent().filter(|d| d.ends_with("deps")).and_then(Path::parent).and_then(Path::parent);
    target.map_or_else(|| PathBuf::from("bench-results.md"), |t| t.join("bench-results.md"))
}

fn summary(parsed: &Parsed) -> String {
    parsed.iter().map(|(k, v)| format!("{k}={}", report::number(*v, 2))).collect::<Vec<_>>().join(" ")
}

/// The first three fields of `/proc/loadavg`, to tell a busy machine from a quiet one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs every selected case for every implementation, `runs` times, and reports.
fn suite(options: &Options, counts: &Counts) {
    let exe = std::env::current_exe().expect("the path of this executable");
    let started = Instant::now();
    let load_before = load_average();
    let mut one = Table::default();
    let mut two = Table::default();
    let two_process_cases: Vec<Case> = if options.two_process {
        Case::TWO_PROCESS.into_iter().filter(|c| options.cases.contains(c)).collect()
    } else {
        Vec::new()
    };
    let mut failures = Vec::new();
    for run in 1..=options.runs {
        for &case in &options.cases {
            for imp in Impl::EVERY.into_iter().filter(|&i| case.applies_to(i)) {
                match run_child(&exe, case, imp, options.quick, None) {
                    Ok(parsed) => {
                        eprintln!("[run {run}/{}] {case} {imp}: {}", options.runs, summary(&parsed));
                        one.add(case, imp, run, parsed);
                    }
                    Err(e) => {
                        eprintln!("[run {run}/{}] {case} {imp}: FAILED: {e}", options.runs);
                        failures.push(format!("run {run}, {case} {imp}: {e}"));
                    }
                }
            }
        }
        for &case in &two_process_cases {
            for imp in Impl::ALL {
                match run_two_process(&exe, case, imp, options.quick) {
                    Ok(parsed) => {
                        eprintln!("[run {run}/{}] two processes, {case} {imp}: {}", options.runs, summary(&parsed));
                        two.add(case, imp, run, parsed);
                    }
                    Err(e) => {
                        eprintln!("[run {run}/{}] two processes, {case} {imp}: FAILED: {e}", options.runs);
                        failures.push(format!("run {run}, two processes, {case} {imp}: {e}"));
                    }
                }
            }
        }
    }

    let mode = if options.quick { "quick (smoke-test counts)" } else { "full" };
    let mut md = format!(
        "# tidl benchmark results\n\n\
         Mode: {mode}; {} run(s) per case and implementation, each in a fresh process; cells show \
         the median over runs with the minimum and maximum in parentheses. Loopback TCP, tokio \
         multi-thread runtime with {} worker thread(s). Suite time: {:.0} s. Load average \
         (1, 5, 15 min) before: {load_before}; after: {}.\n\n\
         Counts: {} sequential calls; {} calls per throughput case; payload sweep {:?} calls \
         (16 B, 1 KiB, 64 KiB, 1 MiB) with {} in flight; {} cancel trials; {} calls counted for \
         the cost case; streams of {:?} items (16 B, 64 KiB), {} ping-pong round trips, {} stream \
         cancel trials, a consumer that does not read for {} ms; {} connections at once in the \
         storm case.\n\n",
        options.runs,
        workers(),
        started.elapsed().as_secs_f64(),
        load_average(),
        counts.seq,
        counts.tput,
        counts.payload,
        cases::PAYLOAD_IN_FLIGHT,
        counts.cancel,
        counts.cost,
        counts.stream_items,
        counts.ping_pong,
        counts.stream_cancel,
        counts.stall_ms,
        crate::storm::CONNECTIONS,
    );
    let unary = options.cases.iter().any(|c| !c.is_streaming());
    let streaming = options.cases.iter().any(|c| c.is_streaming());
    if unary {
        md.push_str("## Client and server in one process\n\n");
        md.push_str(&report::render(&one, report::ONE_PROCESS_ROWS));
    }
    if !two_process_cases.is_empty() {
        md.push_str("\n## Client and server in two processes\n\n");
        md.push_str(&report::render(&two, report::TWO_PROCESS_ROWS));
    }
    if streaming {
        md.push_str(&format!(
            "\n## Streaming (client and server in one process)\n\n\
             tonic 0.14 over HTTP/2 with a raw-bytes codec; `tonic-ready`: handlers return a ready \
             `Stream`; `tonic-chan`: a task feeds an mpsc channel of {} wrapped in a `ReceiverStream`. \
             tarpc has no streams.\n\n",
            tonic_bench::CHANNEL_CAPACITY
        ));
        md.push_str(&report::render_streams(&one, report::STREAM_ROWS));
    }
    md.push_str("\n## Targets (one-process medians)\n\n");
    if unary {
        md.push_str(&report::targets(&one));
    }
    if streaming {
        md.push_str(&report::stream_targets(&one));
    }
    if unary {
        md.push_str("\n## Targets of \"Close to the wire\" (one and two processes)\n\n");
        md.push_str(&report::wire_targets(&one, &two));
    }
    if !failures.is_empty() {
        md.push_str("\n## Failed runs\n\n");
        for failure in &failures {
            md.push_str(&format!("- {failure}\n"));
        }
    }
    println!("{md}");
    let out = options.out.clone().unwrap_or_else(|| default_out(&exe));
    match std::fs::write(&out, &md) {
        Ok(()) => eprintln!("wrote {}", out.display()),
        Err(e) => eprintln!("error: could not write {}: {e}", out.display()),
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
