//! The real `tidl` binary against a server (the golden `Example` service, with reflection, on a
//! runtime of its own): a call's reply on standard output, and Ctrl-C (SIGINT) cancelling a
//! long call, whose handler is seen to stop. The root crate's `tests/operate.rs` runs the same
//! commands in process, in depth.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use tidl_runtime::{Context, Error, Server};
use tokio::sync::watch;

// Private to this test: the generated public API is partly unused here.
#[allow(unreachable_pub, dead_code)]
mod services {
    include!("golden/services.rs");
}

/// `finite_loop` handlers running now, and started so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Loops {
    running: u32,
    started: u32,
}

struct Example {
    loops: watch::Sender<Loops>,
}

/// Counts a handler as running until its future is dropped.
struct Running<'a>(&'a watch::Sender<Loops>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|l| l.running -= 1);
    }
}

impl services::Example for Example {
    async fn finite_loop(&self, _ctx: Context, (): ()) -> Result<(), Error> {
        self.loops.send_modify(|l| {
            l.running += 1;
            l.started += 1;
        });
        let _running = Running(&self.loops);
        std::future::pending().await
    }

    async fn echo(&self, _ctx: Context, text: String) -> Result<String, Error> {
        Ok(text)
    }
}

/// Serves `Example` with reflection on a runtime of its own; the receiver sees its loops.
fn serve() -> (SocketAddr, watch::Receiver<Loops>) {
    let loops = watch::Sender::new(Loops::default());
    let seen = loops.subscribe();
    let addr = serve_alone(move || {
        Server::builder().register(services::ExampleServer::new(Example { loops })).reflection().build()
    });
    (addr, seen)
}

/// Serves the server `build` makes on a runtime of its own, in a thread of its own.
fn serve_alone(build: impl FnOnce() -> Server + Send + 'static) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("server runtime");
        runtime.block_on(async move {
            let server = build();
            tx.send(server.listen("127.0.0.1:0").await.expect("bind loopback")).expect("report the address");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("server address")
}

fn tidl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidl"))
}

/// Waits (on the test's thread) until the loops satisfy `condition`.
fn wait_for(loops: &mut watch::Receiver<Loops>, condition: impl FnMut(&Loops) -> bool) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), loops.wait_for(condition))
            .await
            .expect("in time")
            .expect("the server is alive");
    });
}

#[test]
fn call_prints_the_reply_as_json() {
    let (addr, _) = serve();
    let out = tidl().args(["call", &addr.to_string(), "Example.echo", "\"hi\""]).output().expect("run tidl");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"hi\"\n");
    assert_eq!(out.status.code(), Some(0));
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_the_call_and_the_handler_stops() {
    let (addr, mut loops) = serve();
    let child = tidl()
        .args(["call", &addr.to_string(), "Example.finite_loop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tidl");
    wait_for(&mut loops, |l| l.running == 1);
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("run kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("tidl ends");
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cancelled: `Example.finite_loop` was cancelled (Ctrl-C); the server was told to stop it\n"
    );
    wait_for(&mut loops, |l| l.running == 0);
    assert_eq!(*loops.borrow(), Loops { running: 0, started: 1 });
}

/// A service named like reflection whose `schema` never answers.
struct Silent;

impl tidl_runtime::Service for Silent {
    fn name(&self) -> &'static str {
        "tidl.Reflection"
    }

    fn call(&self, method: &str, request: tidl_runtime::Incoming) -> Result<(), tidl_runtime::Incoming> {
        match method {
            "schema" => request.spawn(tidl_runtime::Method::new("tidl.Reflection", "schema"), |_ctx, (): ()| async {
                std::future::pending::<Result<(), Error>>().await
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

#[test]
fn a_server_that_never_sends_its_schema_does_not_hang_the_tool() {
    let addr = serve_alone(|| Server::builder().register(Silent).build());
    let mut child = tidl()
        .args(["call", &addr.to_string(), "Example.echo", "\"hi\"", "--timeout", "300ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tidl");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("tidl runs").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("tidl call waited 20 s for a schema that never came");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("tidl's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("asking the server for its schema failed"), "{stderr}");
    assert!(stderr.contains("deadline"), "{stderr}");
}

/// A service whose `say` fails with a status carrying terminal escape sequences.
struct Evil;

impl tidl_runtime::Service for Evil {
    fn name(&self) -> &'static str {
        "Evil"
    }

    fn call(&self, method: &str, request: tidl_runtime::Incoming) -> Result<(), tidl_runtime::Incoming> {
        match method {
            "say" => request.spawn(tidl_runtime::Method::new("Evil", "say"), |_ctx, (): ()| async {
                let message = "\u{1b}]52;c;aGVsbG8=\u{7}\u{1b}[2Jgotcha\u{9b}";
                Err::<String, Error>(Error::Status(tidl_runtime::Status::new(tidl_runtime::Code::Internal, message)))
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

#[test]
fn text_from_the_server_reaches_the_terminal_with_its_control_characters_escaped() {
    let addr = serve_alone(|| Server::builder().register(Evil).build());
    let schema = std::env::temp_dir().join(format!("evil-{}.tidl", std::process::id()));
    std::fs::write(&schema, "service Evil { rpc say() -> string; }\n").expect("write the schema");
    let out = tidl().args(["call", &addr.to_string(), "Evil.say", "--schema"]).arg(&schema).output().expect("run tidl");
    let _ = std::fs::remove_file(&schema);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for text in [&stdout, &stderr] {
        assert!(!text.contains(['\u{1b}', '\u{7}', '\u{9b}']), "a control character reached the terminal: {text:?}");
    }
    assert!(stderr.contains("\\u{1b}]52;c;aGVsbG8=\\u{7}\\u{1b}[2Jgotcha\\u{9b}"), "{stderr}");
    // Standard output stays JSON, with the same message.
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON on standard output");
    assert_eq!(json["message"], "\u{1b}]52;c;aGVsbG8=\u{7}\u{1b}[2Jgotcha\u{9b}");
}
