//! TLS over any transport (feature `tls`): rustls, through tokio-rustls, with the ring provider.
//!
//! A [`TlsListener`] wraps any [`Listener`] (TCP usually) and a [`TlsConnector`] any
//! [`Connector`]; the byte stream below the tidl protocol is encrypted, and nothing changes in
//! the frames. With mutual TLS ([`server_config`] given a client CA), handlers see the client's
//! verified certificate chain and name through [`Context::peer`](crate::Context::peer):
//! [`Peer::tls_certificates`], [`Peer::tls_name`].
//!
//! ```no_run
//! # async fn run(ca: &[u8], server_chain: &[u8], server_key: &[u8], client_chain: &[u8], client_key: &[u8])
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use tidl_runtime::transport::tcp::TcpConnector;
//! use tidl_runtime::transport::tls::{self, TlsConnector, TlsListener};
//! use tidl_runtime::{Client, Server};
//!
//! // The server: its certificate and key, and the CA its clients' certificates must chain to.
//! let config = tls::server_config(server_chain, server_key, Some(ca))?;
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:4433").await?;
//! let server = Server::builder().build(); // register services here
//! tokio::spawn(async move { server.accept(TlsListener::new(tcp, config)).await });
//!
//! // The client: the CA the server's certificate must chain to, and its own certificate.
//! let config = tls::client_config(ca, Some((client_chain, client_key)))?;
//! let connector = TlsConnector::new(TcpConnector::new("127.0.0.1:4433"), config, "localhost")?;
//! let client = Client::connect(connector).await?;
//! # Ok(()) }
//! ```
//!
//! A failed handshake is an error naming its cause on both sides: the client's connect fails
//! with `Unavailable` ("the server's certificate is signed by an unknown CA", "... is not valid
//! for NAME", "the server requires a client certificate"), and the server logs it (tracing,
//! `warn`) with the client's address and goes on accepting.

use super::{Connector, Io, Listener, Peer, tcp};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

pub use rustls::{ClientConfig, ServerConfig};
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use rustls::pki_types::pem::{self, PemObject};
use rustls::{AlertDescription, CertificateError, RootCertStore};

mod name;

pub use name::certificate_name;

/// How long a TLS handshake may take by default before the listener drops the connection.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS handshakes a listener runs at once by default; further connections wait in the
/// transport's listen queue.
pub const DEFAULT_MAX_HANDSHAKES: usize = 1024;

/// Completed handshakes waiting for the server to take them.
const READY_QUEUE: usize = 128;

/// How long the listener's accept task pauses when the process is short of file descriptors.
const SHORTAGE_PAUSE: Duration = Duration::from_millis(100);

/// The cryptography of every config built here: ring, chosen explicitly, so that nothing
/// depends on a process-wide default provider.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Every certificate in `pem`, in order; an error if there is none or a block is malformed.
fn certificates(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| invalid(format!("could not read the {what} PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid(format!("no certificate (no CERTIFICATE block) in the {what} PEM")));
    }
    Ok(certificates)
}

/// The first private key in `pem`.
fn private_key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(
            "no private key (no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block) in the key PEM".to_owned(),
        ),
        e => invalid(format!("could not read the private key PEM: {e}")),
    })
}

/// A store of the CA certificates in `pem`.
fn roots(pem: &[u8], what: &str) -> io::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(pem, what)? {
        roots
            .add(certificate)
            .map_err(|e| invalid(format!("a certificate in the {what} PEM is not usable as a CA: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The error of a certificate and key rustls will not use together.
fn unusable_key(e: &rustls::Error, whose: &str) -> io::Error {
    match e {
        rustls::Error::InconsistentKeys(_) => {
            invalid(format!("the private key does not match the {whose} certificate ({e})"))
        }
        e => invalid(format!("the {whose} certificate and private key are not usable: {e}")),
    }
}

/// A server config from PEM: the server's certificate chain (its own certificate first, then
/// any intermediates) and its private key (PKCS#8, PKCS#1 or SEC1). With `client_ca_pem`
/// (the CA certificates clients' certificates must chain to) the server requires a client
/// certificate: mutual TLS.
///
/// The error names what is wrong: no certificate in a PEM, no private key, a key that does not
/// match the certificate, a CA certificate that is not usable.
pub fn server_config(cert_chain_pem: &[u8], key_pem: &[u8], client_ca_pem: Option<&[u8]>) -> io::Result<ServerConfig> {
    let chain = certificates(cert_chain_pem, "server certificate chain")?;
    let key = private_key(key_pem)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("no TLS protocol version is usable: {e}")))?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca, "client CA")?, provider())
                    .build()
                    .map_err(|e| invalid(format!("could not build the client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(chain, key).map_err(|e| unusable_key(&e, "server"))
}

/// A client config from PEM: the CA certificates the server's certificate must chain to, and
/// for mutual TLS the client's own certificate chain and private key.
///
/// The error names what is wrong, as [`server_config`]'s does.
pub fn client_config(ca_pem: &[u8], client_cert: Option<(&[u8], &[u8])>) -> io::Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("no TLS protocol version is usable: {e}")))?
        .with_root_certificates(roots(ca_pem, "CA")?);
    match client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((chain_pem, key_pem)) => {
            let chain = certificates(chain_pem, "client certificate chain")?;
            let key = private_key(key_pem)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| unusable_key(&e, "client"))
        }
    }
}

/// Which end of a TLS connection this is, to say whose certificate an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// A TLS error named for people: what went wrong, in words, with the rustls error as its
/// source. The I/O errors of this module's streams and handshakes carry one.
#[derive(Debug)]
pub struct TlsError {
    message: String,
    source: rustls::Error,
}

impl TlsError {
    /// The rustls error this describes.
    pub fn rustls_error(&self) -> &rustls::Error {
        &self.source
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Says what `e` means, seen from `side`; `expected` is the name a client asked for.
fn describe(e: &rustls::Error, side: Side, expected: Option<&str>) -> String {
    let (peer, us) = match side {
        Side::Client => ("server", "client"),
        Side::Server => ("client", "server"),
    };
    match e {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::UnknownIssuer => format!("the {peer}'s certificate is signed by an unknown CA"),
            CertificateError::NotValidForNameContext { expected, presented } => format!(
                "the {peer}'s certificate is not valid for {} (it is valid for {})",
                expected.to_str(),
                if presented.is_empty() {
                    "no name".to_owned()
                } else {
                    presented.iter().map(|name| unwrap_debug(name)).collect::<Vec<_>>().join(", ")
                }
            ),
            CertificateError::NotValidForName => {
                format!("the {peer}'s certificate is not valid for {}", expected.unwrap_or("the name asked for"))
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the {peer}'s certificate has expired ({e:?})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the {peer}'s certificate is not valid yet ({e:?})")
            }
            CertificateError::Revoked => format!("the {peer}'s certificate is revoked"),
            e => format!("the {peer}'s certificate is invalid: {e:?}"),
        },
        rustls::Error::NoCertificatesPresented => format!("the {peer} presented no certificate, and one is required"),
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => format!("the {peer} requires a {us} certificate"),
            AlertDescription::UnknownCA => {
                format!(
                    "the {peer} does not trust the {us}'s certificate: it is signed by a CA the {peer} does not know"
                )
            }
            AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked => {
                format!("the {peer} rejected the {us}'s certificate ({alert:?})")
            }
            alert => format!("the {peer} ended the TLS connection with the alert {alert:?}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("the {peer} sent something that is not the TLS expected (does it speak TLS?): {e}")
        }
        e => format!("TLS failed: {e}"),
    }
}

/// `name` without the `DnsName("...")` rustls formats the presented names of a certificate in.
fn unwrap_debug(name: &str) -> &str {
    name.split_once("(\"").and_then(|(_, rest)| rest.strip_suffix("\")")).unwrap_or(name)
}

/// `e` with its rustls error, if it has one, named in words ([`TlsError`]).
fn name_error(e: io::Error, side: Side, expected: Option<&str>) -> io::Error {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return e;
    };
    let error = TlsError { message: describe(tls, side, expected), source: tls.clone() };
    io::Error::new(e.kind(), error)
}

/// A failed handshake with `peer`, its cause named.
fn handshake_failed(e: io::Error, side: Side, peer: &Peer, expected: Option<&str>) -> io::Error {
    let e = name_error(e, side, expected);
    io::Error::new(e.kind(), format!("TLS handshake with {peer} failed: {e}"))
}

/// What the TLS handshake told of a peer, with the transport's peer below it:
/// [`Peer::Tls`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPeer {
    transport: Box<Peer>,
    certificates: Vec<CertificateDer<'static>>,
    server_name: Option<String>,
    name: Option<String>,
}

impl TlsPeer {
    fn new(transport: Peer, certificates: Vec<CertificateDer<'static>>, server_name: Option<String>) -> TlsPeer {
        let name = certificates.first().and_then(|leaf| certificate_name(leaf));
        TlsPeer { transport: Box::new(transport), certificates, server_name, name }
    }

    /// The peer of the transport TLS runs over (a TCP address, usually).
    pub fn transport(&self) -> &Peer {
        &self.transport
    }

    /// The certificate chain the peer presented, its own certificate first; empty if it
    /// presented none. On a server with mutual TLS it is verified against the client CA; on a
    /// client, against the CA the config trusts.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }

    /// The name in the peer's certificate ([`certificate_name`]): [`Peer::tls_name`].
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The server name of the connection (SNI): on a server, the name the client asked for, if
    /// it sent one (clients connecting to an IP address send none); on a client, the name it
    /// asked for.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }
}

impl fmt::Display for TlsPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} (TLS: {name})", self.transport),
            None => write!(f, "{} (TLS)", self.transport),
        }
    }
}

/// A TLS stream over a transport's stream `S`, on either side. Its I/O errors name their TLS
/// cause ([`TlsError`]): a client whose certificate the server refuses after the handshake
/// (TLS 1.3) reads "the server requires a client certificate".
pub struct TlsStream<S> {
    inner: tokio_rustls::TlsStream<S>,
    side: Side,
}

impl<S> TlsStream<S> {
    /// The transport's stream, and the TLS connection's state (protocol version, cipher suite,
    /// ALPN protocol, peer certificates).
    pub fn get_ref(&self) -> (&S, &rustls::CommonState) {
        self.inner.get_ref()
    }
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").field("side", &self.side).finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let side = self.side;
        Pin::new(&mut self.inner).poll_read(cx, buf).map_err(|e| name_error(e, side, None))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let side = self.side;
        Pin::new(&mut self.inner).poll_write(cx, buf).map_err(|e| name_error(e, side, None))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let side = self.side;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs).map_err(|e| name_error(e, side, None))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let side = self.side;
        Pin::new(&mut self.inner).poll_flush(cx).map_err(|e| name_error(e, side, None))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let side = self.side;
        Pin::new(&mut self.inner).poll_shutdown(cx).map_err(|e| name_error(e, side, None))
    }
}

/// A connection through [`TlsListener`]'s accept task: its stream and peer, or the error that
/// stopped the inner listener.
type Accepted<S> = io::Result<(TlsStream<S>, Peer)>;

/// Serves TLS on the connections of any [`Listener`]: give it to
/// [`Server::accept`](crate::Server::accept).
///
/// The handshakes do not hold up the server's accept loop: on its first
/// [`accept`](Listener::accept) the listener starts a task of its own that accepts from the
/// inner listener and runs each handshake in a task (at most [`DEFAULT_MAX_HANDSHAKES`] at
/// once, each within [`DEFAULT_HANDSHAKE_TIMEOUT`]), and `accept` hands out the connections
/// whose handshake completed. A failed handshake is logged (tracing, `warn`) with its cause
/// and the peer's address, and the listener goes on. Dropping the listener stops its task,
/// its handshakes, and the inner listener.
pub struct TlsListener<L: Listener> {
    idle: Option<(L, tokio_rustls::TlsAcceptor)>,
    handshake_timeout: Duration,
    max_handshakes: usize,
    ready: Option<mpsc::Receiver<Accepted<L::Io>>>,
    task: Option<AbortOnDropHandle<()>>,
}

impl<L: Listener> fmt::Debug for TlsListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_handshakes", &self.max_handshakes)
            .field("started", &self.task.is_some())
            .finish_non_exhaustive()
    }
}

impl<L: Listener> TlsListener<L> {
    /// Serves TLS with `config` ([`server_config`] builds one from PEM) on the connections
    /// `listener` accepts.
    pub fn new(listener: L, config: impl Into<Arc<ServerConfig>>) -> TlsListener<L> {
        TlsListener {
            idle: Some((listener, tokio_rustls::TlsAcceptor::from(config.into()))),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            ready: None,
            task: None,
        }
    }

    /// How long a handshake may take before the connection is dropped. Default: 10 s.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsListener<L> {
        self.handshake_timeout = timeout;
        self
    }

    /// How many handshakes may run at once (at least 1); further connections wait in the
    /// inner listener's queue. Default: 1024.
    pub fn with_max_handshakes(mut self, max: usize) -> TlsListener<L> {
        self.max_handshakes = max.max(1);
        self
    }
}

impl<L: Listener> Listener for TlsListener<L> {
    type Io = TlsStream<L::Io>;

    async fn accept(&mut self) -> io::Result<(TlsStream<L::Io>, Peer)> {
        if let Some((listener, acceptor)) = self.idle.take() {
            let (tx, rx) = mpsc::channel(READY_QUEUE);
            let limits = (self.handshake_timeout, self.max_handshakes);
            self.task = Some(AbortOnDropHandle::new(tokio::spawn(run(listener, acceptor, tx, limits))));
            self.ready = Some(rx);
        }
        let ended = || io::Error::new(io::ErrorKind::NotConnected, "the TLS listener's inner listener has stopped");
        let ready = self.ready.as_mut().ok_or_else(ended)?;
        ready.recv().await.unwrap_or_else(|| Err(ended()))
    }
}

/// The accept task of a [`TlsListener`]: accepts from `listener` and runs each handshake in a
/// task of its own, until the listener is dropped or the inner listener fails for good.
async fn run<L: Listener>(
    mut listener: L,
    acceptor: tokio_rustls::TlsAcceptor,
    ready: mpsc::Sender<Accepted<L::Io>>,
    (timeout, max_handshakes): (Duration, usize),
) {
    let permits = Arc::new(Semaphore::new(max_handshakes));
    // Dropped with the task, which aborts the handshakes still running.
    let mut handshakes = JoinSet::new();
    loop {
        while handshakes.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = ready.closed() => return,
            accepted = async {
                // The semaphore is never closed.
                let permit = permits.clone().acquire_owned().await.ok();
                (listener.accept().await, permit)
            } => accepted,
        };
        match accepted {
            (Ok((io, peer)), permit) => {
                handshakes.spawn(handshake(acceptor.clone(), io, peer, ready.clone(), timeout, permit));
            }
            (Err(e), _) if super::is_per_connection(&e) => {}
            (Err(e), _) if super::is_shortage(&e) => {
                tracing::warn!(error = %e, "TLS listener could not accept a connection; retrying in {SHORTAGE_PAUSE:?}");
                tokio::time::sleep(SHORTAGE_PAUSE).await;
            }
            (Err(e), _) => {
                let _ = ready.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Runs the server's side of the handshake with `peer` and hands the stream over when it
/// completes; logs why when it does not.
async fn handshake<S: Io>(
    acceptor: tokio_rustls::TlsAcceptor,
    io: S,
    peer: Peer,
    ready: mpsc::Sender<Accepted<S>>,
    timeout: Duration,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    tcp::prepare_accepted(&io);
    let stream = match tokio::time::timeout(timeout, acceptor.accept(io)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            let e = name_error(e, Side::Server, None);
            tracing::warn!(%peer, cause = %e, "TLS handshake failed; closed the connection");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, "TLS handshake did not complete within {timeout:?}; closed the connection");
            return;
        }
    };
    drop(permit);
    let (_, connection) = stream.get_ref();
    let certificates = connection
        .peer_certificates()
        .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    let server_name = connection.server_name().map(str::to_owned);
    let peer = Peer::Tls(Arc::new(TlsPeer::new(peer, certificates, server_name)));
    let stream = TlsStream { inner: tokio_rustls::TlsStream::Server(stream), side: Side::Server };
    // The listener was dropped if this fails: the connection just closes.
    let _ = ready.send(Ok((stream, peer))).await;
}

/// Connects through any [`Connector`] and runs TLS over it, checking the server's certificate
/// against `server_name`. Give it to [`Client::connect`](crate::Client::connect).
///
/// A failed handshake fails the connect with an error naming its cause; the client's status is
/// `Unavailable` with that message.
pub struct TlsConnector<C> {
    inner: C,
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl<C> fmt::Debug for TlsConnector<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl<C: Connector> TlsConnector<C> {
    /// Runs TLS with `config` ([`client_config`] builds one from PEM) over the connections of
    /// `inner`, expecting a certificate for `server_name` (a DNS name or an IP address). Fails
    /// if `server_name` is neither.
    pub fn new(inner: C, config: impl Into<Arc<ClientConfig>>, server_name: &str) -> io::Result<TlsConnector<C>> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| invalid(format!("{server_name:?} is not a valid TLS server name: {e}")))?;
        Ok(TlsConnector { inner, connector: tokio_rustls::TlsConnector::from(config.into()), server_name })
    }
}

impl<C: Connector> Connector for TlsConnector<C> {
    type Io = TlsStream<C::Io>;

    async fn connect(&self) -> io::Result<(TlsStream<C::Io>, Peer)> {
        let (io, peer) = self.inner.connect().await?;
        let expected = self.server_name.to_str();
        let stream = self
            .connector
            .connect(self.server_name.clone(), io)
            .await
            .map_err(|e| handshake_failed(e, Side::Client, &peer, Some(&expected)))?;
        let (_, connection) = stream.get_ref();
        let certificates = connection
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        let peer = Peer::Tls(Arc::new(TlsPeer::new(peer, certificates, Some(expected.into_owned()))));
        Ok((TlsStream { inner: tokio_rustls::TlsStream::Client(stream), side: Side::Client }, peer))
    }
}
