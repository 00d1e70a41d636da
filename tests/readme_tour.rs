//! The README's "A five-minute tour", copied literally into a fresh crate: it builds, and its
//! server and client, run as two processes, show the cancel.
//!
//! The test takes each file of the tour from the code block that follows the line naming it,
//! writes them into a crate outside this workspace (rewriting only the `../tidl/` path prefix to
//! this checkout), builds it offline against the workspace's `Cargo.lock`, then runs the server,
//! waits for its port, runs the client and checks what both printed.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The port the tour's server listens on and its client dials.
const PORT: u16 = 23333;

/// The files of the tour, each named in backticks on the line before its code block.
const FILES: [&str; 6] =
    ["services.tidl", "Cargo.toml", "build.rs", "src/lib.rs", "src/bin/server.rs", "src/bin/client.rs"];

/// How long the client may take: it sleeps 2 s before its cancel and makes a 1 s timed call.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for a line the server has yet to print once its work is done.
const LINE_TIMEOUT: Duration = Duration::from_secs(10);

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The lines of the README's tour: from its heading to the next `## ` heading.
fn tour_section(readme: &str) -> Vec<&str> {
    let mut lines = readme.lines().skip_while(|l| *l != "## A five-minute tour");
    let heading = lines.next().expect("README.md has no \"## A five-minute tour\" section");
    std::iter::once(heading).chain(lines.take_while(|l| !l.starts_with("## "))).collect()
}

/// The code blocks of the tour by the file named, in backticks, on the last non-blank line before
/// each block (`` `build.rs`: ``, ``In `Cargo.toml`: ``): its first backticked word, a file name.
fn blocks_by_file(section: &[&str]) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut previous: Option<&str> = None;
    let mut lines = section.iter();
    while let Some(&line) = lines.next() {
        if line.starts_with("```") {
            let body: Vec<&str> = lines.by_ref().copied().take_while(|l| !l.starts_with("```")).collect();
            let name = previous
                .filter(|p| p.trim_end().ends_with(':'))
                .and_then(|p| p.split('`').nth(1))
                .filter(|name| name.contains('.'))
                .map(str::to_owned);
            if let Some(name) = name {
                blocks.push((name, body.join("\n") + "\n"));
            }
            previous = None;
        } else if !line.trim().is_empty() {
            previous = Some(line);
        }
    }
    blocks
}

/// The text of the tour's block for `file`; fails if there is none, or more than one.
fn block<'a>(blocks: &'a [(String, String)], file: &str) -> &'a str {
    let found: Vec<&str> = blocks.iter().filter(|(name, _)| name == file).map(|(_, text)| text.as_str()).collect();
    match found.as_slice() {
        [text] => text,
        [] => panic!(
            "README.md's tour has no code block for `{file}`: each file of the tour is a code block \
             right after a line naming the file in backticks and ending with a colon (found blocks for {:?})",
            blocks.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>()
        ),
        _ => panic!("README.md's tour has {} code blocks for `{file}`, expected one", found.len()),
    }
}

/// Writes the tour into a fresh crate and returns its directory.
fn write_crate(blocks: &[(String, String)]) -> PathBuf {
    let repo = repository().to_str().expect("the repository's path is UTF-8");
    assert!(!repo.contains(['"', '\\']), "the repository's path {repo:?} cannot be put in a TOML string as it is");
    let dependencies = block(blocks, "Cargo.toml");
    assert!(
        dependencies.contains("\"../tidl/"),
        "the tour's Cargo.toml block should name the crates by `../tidl/` paths:\n{dependencies}"
    );
    // What `cargo new --lib example` writes, the tour's block, and a `[workspace]` table so that
    // the crate is not taken for a member of the workspace it sits in.
    let manifest = format!(
        "[package]\nname = \"example\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n{}\n[workspace]\n",
        dependencies.replace("\"../tidl/", &format!("\"{repo}/"))
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-tour");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src/bin")).expect("create the tour's crate");
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("write Cargo.toml");
    for file in FILES.iter().filter(|f| **f != "Cargo.toml") {
        std::fs::write(dir.join(file), block(blocks, file)).unwrap_or_else(|e| panic!("write {file}: {e}"));
    }
    // Resolve to the versions the workspace already uses (and has downloaded), offline.
    std::fs::copy(repository().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    dir
}

/// Builds the crate's binaries and returns the directory they are in.
fn build(dir: &Path) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-tour-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["build", "--offline", "--bins"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the tour's crate ({}) does not build:\n{stderr}", dir.display());
    assert!(!stderr.contains("warning"), "the tour's crate ({}) builds with warnings:\n{stderr}", dir.display());
    target.join("debug")
}

/// A child process, killed when dropped: on success, on failure and on panic alike.
struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn spawn(bin: &Path) -> Self {
        let mut child = Command::new(bin)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, received) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self { child, stdout: received, stderr: Some(stderr) }
    }

    /// Whether the process has exited.
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process (if it still runs) and returns what it wrote to standard error.
    fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }

    /// The lines printed, until `done` says so, standard output ends or `timeout` passes.
    fn lines_until(&self, timeout: Duration, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        let deadline = Instant::now() + timeout;
        while !done(&lines) {
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        lines
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails with a clear message if something else listens on the tour's port.
fn assert_port_free() {
    if let Err(e) = TcpListener::bind((Ipv4Addr::LOCALHOST, PORT)) {
        panic!(
            "port {PORT} on 127.0.0.1 is taken ({e}); the README's tour serves on it. Stop whatever \
             listens there (an `example` server?) and run the test again"
        );
    }
}

/// Waits until the server accepts connections on its port.
fn wait_for_port(server: &mut Running) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PORT));
    for _ in 0..400 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        if server.exited() {
            let stderr = server.kill();
            panic!("the tour's server exited before listening on {addr}:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(25));
    }
    let stderr = server.kill();
    panic!("the tour's server did not listen on {addr} within about 10 seconds:\n{stderr}");
}

/// The client's output as the README's tour shows it: its `text` block of `client: ` lines.
fn client_output(readme: &str) -> Vec<String> {
    let section = tour_section(readme);
    let mut lines = section.iter();
    while let Some(line) = lines.next() {
        if *line == "```text" {
            let block: Vec<String> = lines.by_ref().take_while(|l| **l != "```").map(|l| (*l).to_owned()).collect();
            if block.first().is_some_and(|l| l.starts_with("client: ")) {
                return block;
            }
        }
    }
    panic!("README.md's tour does not show the client's output (a `text` block of `client: ` lines)");
}

#[test]
fn the_readme_tour_builds_as_a_fresh_crate_and_shows_the_cancel() {
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("read README.md");
    let blocks = blocks_by_file(&tour_section(&readme));
    for file in FILES {
        block(&blocks, file);
    }
    let shown = client_output(&readme);
    let dir = write_crate(&blocks);
    let bin = build(&dir);
    let exe = |name: &str| bin.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));

    assert_port_free();
    let mut server = Running::spawn(&exe("server"));
    wait_for_port(&mut server);

    let mut client = Running::spawn(&exe("client"));
    let since = Instant::now();
    let status = loop {
        if let Some(status) = client.child.try_wait().expect("wait for the client") {
            break status;
        }
        if since.elapsed() > CLIENT_TIMEOUT {
            let stderr = client.kill();
            panic!("the tour's client did not finish within {CLIENT_TIMEOUT:?}:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let client_stderr = client.kill();
    // Every line it printed: its standard output ends when it exits.
    let client_lines = client.lines_until(LINE_TIMEOUT, |_| false);
    assert!(
        status.success(),
        "the tour's client failed ({status}):\nstdout:\n{}\nstderr:\n{client_stderr}",
        client_lines.join("\n")
    );

    // The cancel stops the loop at once and the connection goes on to `echo`; the two run on
    // different tasks, so their lines come in either order, but both before the timed call starts
    // and stops the loop once more. The server may print its last line just after the client has
    // exited: wait for it (a bounded wait, ended by the line itself).
    let [started, stopped, echo] =
        ["server: finite_loop started", "server: finite_loop stopped", "server: echo(\"hello world\")"];
    let expected = [[started, stopped, echo, started, stopped], [started, echo, stopped, started, stopped]];
    let server_lines = server.lines_until(LINE_TIMEOUT, |lines| lines.len() >= expected[0].len());
    let server_stderr = server.kill();
    drop(server);
    assert!(
        expected.iter().any(|e| server_lines == e),
        "the tour's server should print {:#?} (or with its second and third lines swapped); it printed:\n{}\nstderr:\n{server_stderr}",
        expected[0],
        server_lines.join("\n")
    );

    // The client prints what the README shows. Its timed call ends on the client's own timer or
    // on the server's report of the deadline, whichever comes first; the README says so.
    let alternative = "passed its deadline; the server stopped it";
    assert!(readme.contains(alternative), "README.md should mention the other end of the timed call");
    let timed_out_on_the_server = "client: timed out: `Example.finite_loop` ".to_owned() + alternative;
    let matches = client_lines.len() == shown.len()
        && client_lines.iter().zip(&shown).enumerate().all(|(i, (printed, expected))| {
            printed == expected || (i == shown.len() - 1 && *printed == timed_out_on_the_server)
        });
    assert!(
        matches,
        "the tour's client should print what README.md shows:\n{}\nit printed:\n{}",
        shown.join("\n"),
        client_lines.join("\n")
    );
}
