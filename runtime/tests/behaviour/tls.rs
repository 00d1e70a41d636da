//! TLS (feature `tls`): mutual TLS with the client's identity seen by the handler, and each
//! failed handshake named on both sides (the client's status, the server's log), after which
//! the server still serves a good client. Certificates are generated here, at test time.

#![cfg(feature = "tls")]

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::io::Write;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidl_runtime::transport::tcp::TcpConnector;
use tidl_runtime::transport::tls::{self, TlsConnector, TlsListener};
use tidl_runtime::{
    CallOptions, Client, Code, Context, Error, Incoming, Invoke, Method, Peer, Server, Service, Status,
};

/// `Who.name(()) -> (option<string>, option<string>)`: the name in the client's certificate and
/// the server name the client asked for (SNI), as the handler sees them through its context.
struct Who;

impl Service for Who {
    fn name(&self) -> &'static str {
        "Who"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "name" => request.spawn(Method::new("Who", "name"), |ctx: Context, (): ()| async move {
                let sni = match ctx.peer() {
                    Peer::Tls(peer) => peer.server_name().map(str::to_owned),
                    _ => None,
                };
                Ok::<_, Error>((ctx.peer().tls_name().map(str::to_owned), sni))
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

/// A certificate and its key, in PEM.
struct Identity {
    chain: String,
    key: String,
}

/// A CA, and an identity for each name, signed by it.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        Ca { issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate") }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, name: &str) -> Identity {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("leaf key");
        let certificate = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        Identity { chain: certificate.pem(), key: key.serialize_pem() }
    }
}

thread_local! {
    /// The subscriber a server's worker thread logs to.
    static WORKER_LOGS: std::cell::RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { std::cell::RefCell::new(None) };
}

/// What the server logged, shared with the thread that writes it.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs lock")).into_owned()
    }

    /// Waits for the server to log a line containing `needle` (it logs from its own tasks).
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..200 {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server did not log {needle:?}; it logged:\n{}", self.text());
    }
}

/// The certificates of a test: a CA, the server's (`localhost`) and a client's
/// (`client.example`) signed by it, and an unrelated CA with a client of its own.
struct Pki {
    ca: Ca,
    server: Identity,
    client: Identity,
    other_ca: Ca,
    stranger: Identity,
}

fn pki() -> Pki {
    let ca = Ca::new("tidl test CA");
    let other_ca = Ca::new("unrelated CA");
    Pki {
        server: ca.issue("localhost"),
        client: ca.issue("client.example"),
        stranger: other_ca.issue("stranger.example"),
        ca,
        other_ca,
    }
}

/// A mutual-TLS server for `Who` on a 2-worker runtime of its own, logging into the returned
/// `Logs`; its address. The runtime ends when the test process does.
fn server(pki: &Pki) -> (String, Logs) {
    server_with(pki, tls::DEFAULT_HANDSHAKE_TIMEOUT)
}

/// [`server`], with handshakes that may take `handshake_timeout`.
fn server_with(pki: &Pki, handshake_timeout: Duration) -> (String, Logs) {
    let config =
        tls::server_config(pki.server.chain.as_bytes(), pki.server.key.as_bytes(), Some(pki.ca.pem().as_bytes()))
            .expect("server config");
    let logs = Logs::default();
    let (addr_tx, addr_rx) = std_mpsc::channel();
    std::thread::spawn({
        let logs = logs.clone();
        move || {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || logs.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            let dispatch = tracing::Dispatch::new(subscriber);
            let _guard = tracing::dispatcher::set_default(&dispatch);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                // The runtime's workers log to the same subscriber, for as long as they live.
                .on_thread_start(move || {
                    let guard = tracing::dispatcher::set_default(&dispatch);
                    WORKER_LOGS.with(|slot| *slot.borrow_mut() = Some(guard));
                })
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
                addr_tx.send(tcp.local_addr().expect("local address").to_string()).expect("report the address");
                let server = Server::builder().register(Who).build();
                let listener = TlsListener::new(tcp, config).with_handshake_timeout(handshake_timeout);
                server.accept(listener).await.expect("serve");
            });
        }
    });
    (addr_rx.recv().expect("server address"), logs)
}

async fn connect(addr: &str, config: tls::ClientConfig, server_name: &str) -> Result<Client, Status> {
    let connector = TlsConnector::new(TcpConnector::new(addr), config, server_name).expect("a valid server name");
    Client::connect(connector).await
}

/// A client with `pki.client`'s certificate, trusting `pki.ca`.
fn good_config(pki: &Pki) -> tls::ClientConfig {
    tls::client_config(pki.ca.pem().as_bytes(), Some((pki.client.chain.as_bytes(), pki.client.key.as_bytes())))
        .expect("client config")
}

/// Connects with the good client and checks the handler sees its name.
async fn assert_serves_a_good_client(addr: &str, pki: &Pki) {
    let client = connect(addr, good_config(pki), "localhost").await.expect("a good client connects");
    assert_eq!(client.peer().tls_name(), Some("localhost"), "the client sees the server's name");
    let certificates = client.peer().tls_certificates().expect("a TLS peer");
    assert_eq!(certificates.len(), 1, "the server sent its own certificate");
    let names: Result<(Option<String>, Option<String>), Error> =
        client.call(Method::new("Who", "name"), &(), &CallOptions::default()).await;
    let (name, sni) = names.expect("the call succeeds");
    assert_eq!(name.as_deref(), Some("client.example"), "the handler sees the client's name");
    assert_eq!(sni.as_deref(), Some("localhost"), "the handler sees the server name the client asked for");
}

fn assert_unavailable(result: Result<Client, Status>, cause: &str) {
    let status = result.expect_err("the handshake fails");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(status.message().contains(cause), "expected {cause:?} in {:?}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_shows_each_side_the_others_name() {
    let pki = pki();
    let (addr, _logs) = server(&pki);
    assert_serves_a_good_client(&addr, &pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_signed_by_an_unknown_ca_is_refused_by_name() {
    let pki = pki();
    let (addr, logs) = server(&pki);
    let config = tls::client_config(
        pki.other_ca.pem().as_bytes(),
        Some((pki.client.chain.as_bytes(), pki.client.key.as_bytes())),
    )
    .expect("client config");
    assert_unavailable(
        connect(&addr, config, "localhost").await,
        "the server's certificate is signed by an unknown CA",
    );
    let log = logs.wait_for("TLS handshake failed").await;
    assert!(log.contains("the client does not trust the server's certificate"), "{log}");
    assert!(log.contains("127.0.0.1:"), "the log names the client's address: {log}");
    assert_serves_a_good_client(&addr, &pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_for_another_name_is_refused_by_name() {
    let pki = pki();
    let (addr, logs) = server(&pki);
    assert_unavailable(
        connect(&addr, good_config(&pki), "db.example").await,
        "the server's certificate is not valid for db.example (it is valid for localhost)",
    );
    let log = logs.wait_for("TLS handshake failed").await;
    assert!(log.contains("the client rejected the server's certificate"), "{log}");
    assert_serves_a_good_client(&addr, &pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_told_one_is_required() {
    let pki = pki();
    let (addr, logs) = server(&pki);
    let config = tls::client_config(pki.ca.pem().as_bytes(), None).expect("client config");
    assert_unavailable(connect(&addr, config, "localhost").await, "the server requires a client certificate");
    let log = logs.wait_for("TLS handshake failed").await;
    assert!(log.contains("the client presented no certificate"), "{log}");
    assert_serves_a_good_client(&addr, &pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_an_unknown_ca_is_refused_by_name() {
    let pki = pki();
    let (addr, logs) = server(&pki);
    let config =
        tls::client_config(pki.ca.pem().as_bytes(), Some((pki.stranger.chain.as_bytes(), pki.stranger.key.as_bytes())))
            .expect("client config");
    assert_unavailable(connect(&addr, config, "localhost").await, "the server does not trust the client's certificate");
    let log = logs.wait_for("TLS handshake failed").await;
    assert!(log.contains("the client's certificate is signed by an unknown CA"), "{log}");
    assert_serves_a_good_client(&addr, &pki).await;
}

#[test]
fn bad_pem_is_named() {
    let pki = pki();
    let error = |result: std::io::Result<tls::ServerConfig>| result.expect_err("a bad config").to_string();
    let no_cert = error(tls::server_config(b"", pki.server.key.as_bytes(), None));
    assert!(no_cert.contains("no certificate"), "{no_cert}");
    let no_key = error(tls::server_config(pki.server.chain.as_bytes(), pki.server.chain.as_bytes(), None));
    assert!(no_key.contains("no private key"), "{no_key}");
    let wrong_key = error(tls::server_config(pki.server.chain.as_bytes(), pki.client.key.as_bytes(), None));
    assert!(wrong_key.contains("does not match"), "{wrong_key}");
    let bad_ca = error(tls::server_config(pki.server.chain.as_bytes(), pki.server.key.as_bytes(), Some(b"junk")));
    assert!(bad_ca.contains("no certificate (no CERTIFICATE block) in the client CA PEM"), "{bad_ca}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_does_not_hold_up_other_clients() {
    let pki = pki();
    let (addr, _logs) = server(&pki);
    // Connected, but never says a word of TLS: its handshake waits for the timeout.
    let _silent = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let _half = {
        use tokio::io::AsyncWriteExt;
        let mut half = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.expect("write a record header");
        half
    };
    let served = tokio::time::timeout(Duration::from_secs(5), assert_serves_a_good_client(&addr, &pki)).await;
    assert!(served.is_ok(), "a good client waited behind stalled handshakes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_takes_too_long_is_dropped_and_logged() {
    use tokio::io::AsyncReadExt;
    let pki = pki();
    let (addr, logs) = server_with(&pki, Duration::from_millis(200));
    let mut silent = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let log = logs.wait_for("did not complete within 200ms").await;
    assert!(log.contains("127.0.0.1:"), "the log names the client's address: {log}");
    let mut buf = [0; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "the server closed the connection: {read:?}");
    assert_serves_a_good_client(&addr, &pki).await;
}
