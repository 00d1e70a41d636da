//! The `tidl` tool's network commands (`call`, `list`, `describe`, `health`), run in process
//! (`tidl_compiler::cli::run`) against the example server over TCP, each server on a runtime of
//! its own: echo; the declared error; an unknown method and JSON that does not fit; a timeout
//! and a Ctrl-C whose handlers are seen to stop; metadata; streams of every kind from and to
//! standard input; reflection revealing exactly what the server was built from; health.

use example::{Example, ExampleServer, LoopStats};
use serde_json::Value as Json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tidl_runtime::health::{HealthReporter, ServingStatus};
use tidl_runtime::reflection::ReflectionClientExt;
use tidl_runtime::{Client, Context, Error, Server, Sink, Source};
use tokio::sync::watch;

// Private to this test: the generated public API is partly unused here.
#[allow(unreachable_pub, dead_code)]
mod operate {
    tidl_runtime::include_tidl!("operate");
}

use operate::ops::{Item, Problem, ToolServer};

/// A bound for events that take milliseconds when things work.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `ops.Tool` service.
struct Tool;

impl operate::ops::Tool for Tool {
    async fn fail(&self, _ctx: Context, problem: Problem) -> Result<(), Error<Problem>> {
        Err(Error::App(problem))
    }

    async fn header(&self, ctx: Context, key: String) -> Result<Option<String>, Error> {
        Ok(ctx.metadata().get_str(&key).map(str::to_owned))
    }

    async fn count(&self, _ctx: Context, n: u32, mut out: Sink<Item>) -> Result<(), Error> {
        for count in 1..=n {
            out.send(Item { name: format!("#{count}"), count }).await?;
        }
        Ok(())
    }

    async fn total(&self, _ctx: Context, mut items: Source<Item>) -> Result<u64, Error> {
        let mut total = 0;
        while let Some(item) = items.message().await? {
            total += u64::from(item.count);
        }
        Ok(total)
    }

    async fn double(&self, _ctx: Context, mut items: Source<Item>, mut out: Sink<Item>) -> Result<(), Error> {
        while let Some(item) = items.message().await? {
            out.send(Item { count: item.count * 2, ..item }).await?;
        }
        Ok(())
    }
}

/// Serves `Example` (whose loop sleeps 20 ms a round) and `ops.Tool` on a runtime of its own,
/// with reflection if asked, and health if given a reporter.
fn serve(example: &Example, reflection: bool, health: Option<&HealthReporter>) -> (SocketAddr, Server) {
    let mut builder = Server::builder().register(ExampleServer::new(example.clone())).register(ToolServer::new(Tool));
    if reflection {
        builder = builder.reflection();
    }
    if let Some(health) = health {
        builder = builder.health(health);
    }
    let server = builder.build();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn({
        let server = server.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                tx.send(server.listen("127.0.0.1:0").await.expect("bind loopback")).expect("report the address");
                std::future::pending::<()>().await;
            });
        }
    });
    (rx.recv().expect("server address"), server)
}

fn fast_example() -> Example {
    Example::with_period(Duration::from_millis(20))
}

/// What a run of the tool printed, and its exit status.
#[derive(Debug)]
struct Run {
    status: u8,
    stdout: String,
    stderr: String,
}

/// Runs `tidl` with `args` and `stdin` until it ends, or `cancel` resolves (Ctrl-C).
async fn tidl_with(args: &[&str], stdin: &str, cancel: impl Future<Output = ()> + Send) -> Run {
    let mut input = stdin.as_bytes();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let io = tidl_compiler::cli::Io { stdin: &mut input, stdout: &mut stdout, stderr: &mut stderr };
    let argv = std::iter::once("tidl").chain(args.iter().copied());
    let status = tidl_compiler::cli::run(argv, io, cancel).await;
    Run { status, stdout: String::from_utf8_lossy(&stdout).into(), stderr: String::from_utf8_lossy(&stderr).into() }
}

async fn tidl(args: &[&str]) -> Run {
    tidl_with(args, "", std::future::pending()).await
}

/// Waits until `example`'s loop statistics satisfy `condition`.
async fn wait_for(example: &Example, what: &str, condition: impl FnMut(&LoopStats) -> bool) -> LoopStats {
    let mut stats = example.subscribe();
    let seen = tokio::time::timeout(EVENT_TIMEOUT, stats.wait_for(condition)).await;
    seen.unwrap_or_else(|_| panic!("timed out waiting until {what}")).expect("the example is alive").clone()
}

#[tokio::test]
async fn call_echoes_through_reflection_or_a_schema_file() {
    let example = fast_example();
    let (addr, _server) = serve(&example, true, None);
    let addr = addr.to_string();
    let run = tidl(&["call", &addr, "Example.echo", "\"hi\""]).await;
    assert_eq!((run.status, run.stdout.as_str(), run.stderr.as_str()), (0, "\"hi\"\n", ""));
    // The argument from standard input, and the gRPC tools' spelling of the method.
    let run = tidl_with(&["call", &addr, "Example/echo", "-"], "\"from stdin\"", std::future::pending()).await;
    assert_eq!((run.status, run.stdout.as_str()), (0, "\"from stdin\"\n"));
    // A server without reflection, with the schema from its file.
    let (plain, _server) = serve(&example, false, None);
    let plain = plain.to_string();
    let run = tidl(&["call", &plain, "Example.echo", "\"hi\""]).await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("does not serve its schema: build the server with ServerBuilder::reflection()"),
        "{run:?}"
    );
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/services.tidl");
    let run = tidl(&["call", &plain, "Example.echo", "\"hi\"", "--schema", schema]).await;
    assert_eq!((run.status, run.stdout.as_str()), (0, "\"hi\"\n"), "{run:?}");
}

#[tokio::test]
async fn a_declared_error_is_printed_as_json_with_its_own_exit_status() {
    let (addr, _server) = serve(&fast_example(), true, None);
    let run = tidl(&["call", &addr.to_string(), "ops.Tool.fail", r#"{"Missing": {"name": "x"}}"#, "--compact"]).await;
    assert_eq!(run.status, 3, "{run:?}");
    assert_eq!(run.stdout, "{\"Missing\":{\"name\":\"x\"}}\n");
    assert_eq!(run.stderr, "error: `ops.Tool.fail` failed with its declared error (`ops.Problem`)\n");
}

#[tokio::test]
async fn an_unknown_method_and_json_that_does_not_fit_are_usage_errors_that_say_what_there_is() {
    let (addr, _server) = serve(&fast_example(), true, None);
    let addr = addr.to_string();
    let run = tidl(&["call", &addr, "Example.ecko", "\"hi\""]).await;
    assert_eq!(run.status, 2);
    assert_eq!(
        run.stderr,
        "error: there is no method `Example.ecko`; did you mean `Example.echo`? The methods are: Example.finite_loop, \
         Example.echo, ops.Tool.fail, ops.Tool.header, ops.Tool.count, ops.Tool.total, ops.Tool.double, \
         tidl.Reflection.schema\n"
    );
    let run = tidl(&["call", &addr, "ops.Tool.fail", r#"{"TooMany": "lots"}"#]).await;
    assert_eq!(run.status, 2);
    assert_eq!(
        run.stderr,
        "error: the argument does not fit `ops.Problem`, what `ops.Tool.fail` takes: at `.TooMany`: expected a u32 \
         (0 to 4294967295), found the string \"lots\"\n"
    );
    let run = tidl(&["call", &addr, "Example.echo", "{not json"]).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.starts_with("error: the argument is not JSON: key must be a string at line 1 column 2"),
        "{run:?}"
    );
    let run = tidl(&["call", &addr, "Example.echo"]).await;
    assert_eq!(
        (run.status, run.stderr.as_str()),
        (2, "error: `Example.echo` takes `string`: give it as JSON, or `-` to read it from standard input\n")
    );
}

#[tokio::test]
async fn a_timeout_fails_the_call_with_its_status_and_stops_the_handler() {
    let example = fast_example();
    let (addr, _server) = serve(&example, true, None);
    let run = tidl(&["call", &addr.to_string(), "Example.finite_loop", "--timeout", "150ms"]).await;
    assert_eq!(run.status, 64 + 4, "{run:?}");
    let status: Json = serde_json::from_str(&run.stdout).expect("the status as JSON");
    assert_eq!(status["code"], "DeadlineExceeded");
    wait_for(&example, "the handler stopped", |s| s.stopped == 1).await;
}

#[tokio::test]
async fn ctrl_c_cancels_a_long_call_and_the_handler_stops() {
    let example = fast_example();
    let (addr, _server) = serve(&example, true, None);
    let (ctrl_c, pressed) = tokio::sync::oneshot::channel::<()>();
    let press_once_running = async {
        wait_for(&example, "the handler started", |s| s.started == 1).await;
        let _ = ctrl_c.send(());
    };
    let cancel = async move {
        let _ = pressed.await;
    };
    let addr = addr.to_string();
    let args = ["call", &addr, "Example.finite_loop"];
    let (run, ()) = tokio::join!(tidl_with(&args, "", cancel), press_once_running);
    assert_eq!(run.status, 130, "{run:?}");
    assert_eq!(
        run.stdout,
        "{\"code\":\"Cancelled\",\"message\":\"`Example.finite_loop` was cancelled (Ctrl-C); the server was told to stop it\"}\n"
    );
    let stats = wait_for(&example, "the handler stopped", |s| s.stopped == 1).await;
    assert_eq!((stats.started, stats.completed), (1, 0));
}

#[tokio::test]
async fn metadata_reaches_the_handler() {
    let (addr, _server) = serve(&fast_example(), true, None);
    let addr = addr.to_string();
    let run = tidl(&["call", &addr, "ops.Tool.header", "\"tenant\"", "-H", "tenant=acme", "--metadata", "x: y"]).await;
    assert_eq!((run.status, run.stdout.as_str()), (0, "\"acme\"\n"), "{run:?}");
}

#[tokio::test]
async fn streams_print_an_item_a_line_and_read_items_from_standard_input() {
    let (addr, _server) = serve(&fast_example(), true, None);
    let addr = addr.to_string();
    let run = tidl(&["call", &addr, "ops.Tool.count", "3"]).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "{\"name\":\"#1\",\"count\":1}\n{\"name\":\"#2\",\"count\":2}\n{\"name\":\"#3\",\"count\":3}\n"
    );
    let items = "{\"name\": \"a\", \"count\": 2}\n\n{\"name\": \"b\", \"count\": 5}\n";
    let run = tidl_with(&["call", &addr, "ops.Tool.total"], items, std::future::pending()).await;
    assert_eq!((run.status, run.stdout.as_str()), (0, "7\n"), "{run:?}");
    let run = tidl_with(&["call", &addr, "ops.Tool.double", "-"], items, std::future::pending()).await;
    assert_eq!((run.status, run.stdout.as_str()), (0, "{\"name\":\"a\",\"count\":4}\n{\"name\":\"b\",\"count\":10}\n"));
    let run = tidl_with(&["call", &addr, "ops.Tool.total"], "{\"name\": \"a\"}\n", std::future::pending()).await;
    assert_eq!(run.status, 2);
    assert_eq!(
        run.stderr,
        "error: line 1 of standard input does not fit `ops.Item`: at `.`: the field `count` (u32) is missing, and it \
         has no default\n"
    );
}

#[tokio::test]
async fn list_and_describe_show_what_the_server_serves_with_its_docs() {
    let (addr, _server) = serve(&fast_example(), true, None);
    let addr = addr.to_string();
    let run = tidl(&["list", &addr, "Example"]).await;
    assert_eq!(run.status, 0);
    assert_eq!(run.stdout, format!("{}", include_str!("../services.tidl")));
    let run = tidl(&["describe", &addr, "ops.Tool.count"]).await;
    assert_eq!(run.status, 0);
    assert_eq!(
        run.stdout,
        "/// Answers the tool's calls.
service ops.Tool {
    /// Counts to its argument: one item each.
    rpc count(u32) -> stream ops.Item;
}

/// A thing and how many of it.
struct ops.Item {
    name: string,
    count: u32,
}
"
    );
    let run = tidl(&["describe", &addr, "ops.Itme"]).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.starts_with("error: there is no method, service or type `ops.Itme`; did you mean `ops.Item`?"),
        "{run:?}"
    );
}

#[tokio::test]
async fn reflection_reveals_exactly_what_the_server_was_built_from() {
    let (addr, _server) = serve(&fast_example(), true, None);
    let client = Client::dial(addr).await.expect("dial");
    let schema = client.reflection().schema(()).await.expect("reflection answers");
    let served: Vec<(Vec<String>, Vec<String>)> =
        schema.sources.iter().map(|s| (s.services.clone(), s.files.iter().map(|f| f.path.clone()).collect())).collect();
    // The crate compiles `support.tidl` and `lab.tidl` too; their services are not registered.
    assert_eq!(
        served,
        [
            (vec!["Example".to_owned()], vec!["services.tidl".to_owned()]),
            (vec!["ops.Tool".to_owned()], vec!["operate.tidl".to_owned()]),
            (vec!["tidl.Reflection".to_owned()], vec!["tidl.tidl".to_owned()]),
        ]
    );
    assert_eq!(schema.sources[0].files[0].text, include_str!("../services.tidl"));
    let tool = &schema.sources[1].files[0].text;
    assert!(
        tool.starts_with("/// A service for the tests of the `tidl` tool") && !tool.contains("ordinary comment"),
        "{tool}"
    );
}

#[tokio::test]
async fn health_exits_zero_only_when_serving() {
    let health = HealthReporter::new();
    let (addr, _server) = serve(&fast_example(), false, Some(&health));
    let addr = addr.to_string();
    let run = tidl(&["health", &addr]).await;
    assert_eq!((run.status, run.stdout.as_str()), (0, "Serving\n"));
    health.set("Example", ServingStatus::NotServing);
    let run = tidl(&["health", &addr, "Example"]).await;
    assert_eq!((run.status, run.stdout.as_str()), (4, "NotServing\n"));
    let run = tidl(&["health", &addr, "Nobody"]).await;
    assert_eq!((run.status, run.stdout.as_str()), (4, "UnknownService\n"));
    // Nothing listens there any more: unavailable, 64 + 14.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").to_string();
    let run = tidl(&["health", &closed, "--timeout", "2s"]).await;
    assert_eq!(run.status, 78, "{run:?}");
}

/// Standard output shared with the test, which can wait for what is printed.
#[derive(Clone)]
struct Watched(Arc<watch::Sender<Vec<u8>>>);

impl std::io::Write for Watched {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.send_modify(|out| out.extend_from_slice(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn health_watch_ends_not_serving_when_the_server_shuts_down() {
    let (addr, server) = serve(&fast_example(), false, Some(&HealthReporter::new()));
    let stdout = Watched(Arc::new(watch::Sender::new(Vec::new())));
    let mut printed = stdout.0.subscribe();
    let watching = async {
        let (mut stdin, mut stdout, mut stderr): (&[u8], _, Vec<u8>) = (b"", stdout.clone(), Vec::new());
        let io = tidl_compiler::cli::Io { stdin: &mut stdin, stdout: &mut stdout, stderr: &mut stderr };
        tidl_compiler::cli::run(["tidl", "health", &addr.to_string(), "--watch"], io, std::future::pending()).await
    };
    let shut_down_once_watched = async {
        printed.wait_for(|out| out.ends_with(b"Serving\n")).await.expect("the watch prints");
        server.shutdown(Duration::from_secs(30)).await;
    };
    let (status, ()) = tokio::time::timeout(EVENT_TIMEOUT, async { tokio::join!(watching, shut_down_once_watched) })
        .await
        .expect("the watch ends, and the shutdown with it");
    assert_eq!(status, 4);
    assert_eq!(String::from_utf8_lossy(&stdout.0.borrow()), "Serving\nNotServing\n");
}

/// A CA and a certificate for `localhost` it signed, as PEM: (CA, certificate, key).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert =
        CertificateParams::new(vec!["localhost".to_owned()]).expect("params").signed_by(&key, &ca).expect("sign");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn call_and_health_speak_tls_to_a_server_that_does() {
    use tidl_runtime::transport::tls::{self, TlsListener};
    let (ca, cert, key) = certificates();
    let config = tls::server_config(cert.as_bytes(), key.as_bytes(), None).expect("server config");
    let health = HealthReporter::new();
    let server = Server::builder().register(ExampleServer::new(fast_example())).reflection().health(&health).build();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
            tx.send(tcp.local_addr().expect("address")).expect("report the address");
            server.accept(TlsListener::new(tcp, config)).await.expect("serve");
        });
    });
    let addr = rx.recv().expect("server address").to_string();
    let dir = std::env::temp_dir().join(format!("tidl-operate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca).expect("write the CA");
    let ca_path = ca_file.to_string_lossy().into_owned();

    let tls = ["--ca", ca_path.as_str(), "--server-name", "localhost"];
    let run = tidl(&[&["call", &addr, "Example.echo", "\"over tls\""][..], &tls].concat()).await;
    assert_eq!((run.status, run.stdout.as_str(), run.stderr.as_str()), (0, "\"over tls\"\n", ""), "{run:?}");
    let run = tidl(&[&["health", &addr][..], &tls].concat()).await;
    assert_eq!(run.status, 0, "{run:?}");

    // A certificate for another name: refused, saying so, with Unavailable's exit status.
    let run = tidl(&["call", &addr, "Example.echo", "\"hi\"", "--ca", &ca_path, "--server-name", "example.org"]).await;
    assert_eq!(run.status, 64 + 14, "{run:?}");
    assert!(run.stderr.contains("example.org"), "{run:?}");
    // Plain TCP to a TLS server fails, and a missing CA file is a usage error naming it.
    assert_ne!(tidl(&["call", &addr, "Example.echo", "\"hi\""]).await.status, 0);
    let run = tidl(&["call", &addr, "Example.echo", "\"hi\"", "--ca", "/nonexistent/ca.pem"]).await;
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stderr.contains("/nonexistent/ca.pem"), "{run:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
