//! Transports: how connections are made and accepted.
//!
//! A server serves any [`Listener`] and a client connects through any [`Connector`]; both hand
//! over a byte stream and the [`Peer`] at its other end, which handlers see through
//! [`Context::peer`](crate::Context::peer). Three come with tidl: TCP ([`tcp`]), Unix domain
//! sockets ([`unix`], where the peer's uid, gid and pid are known) and an in-process pipe
//! ([`memory`], for tests and embedding). With the `tls` feature, `tls` wraps any of them in
//! TLS (rustls), mutual or not.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) mod halves;
pub mod memory;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(unix)]
pub mod unix;

/// A byte stream a connection runs over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A source of incoming connections, served by [`Server::accept`](crate::Server::accept).
pub trait Listener: Send + 'static {
    /// The byte stream of an accepted connection.
    type Io: Io;

    /// Waits for the next connection.
    ///
    /// An error that concerns only the connection being accepted (one reset before it was
    /// accepted) or a shortage that passes (out of file descriptors) is retried by the server;
    /// see [`is_transient`].
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Peer)>> + Send;
}

/// Makes connections to one server, for [`Client::connect`](crate::Client::connect).
pub trait Connector: Send + Sync + 'static {
    /// The byte stream of a connection.
    type Io: Io;

    /// Opens a connection.
    fn connect(&self) -> impl Future<Output = io::Result<(Self::Io, Peer)>> + Send;
}

/// Who is at the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP peer at this address.
    Tcp(SocketAddr),
    /// A peer on a Unix domain socket.
    #[cfg(unix)]
    Unix(unix::UnixPeer),
    /// The other end of an in-process pipe.
    Memory,
    /// A peer over TLS: the transport's peer, and what the TLS handshake told of it.
    #[cfg(feature = "tls")]
    Tls(std::sync::Arc<tls::TlsPeer>),
    /// A connection made from a bare byte stream ([`Client::new`](crate::Client::new),
    /// [`Server::serve_connection`](crate::Server::serve_connection)): nothing is known of it.
    Unknown,
}

impl Peer {
    /// The peer's IP address and port, if it is a TCP peer.
    /// (Over TLS, the address of the transport below it.)
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Peer::Tcp(addr) => Some(*addr),
            #[cfg(feature = "tls")]
            Peer::Tls(peer) => peer.transport().socket_addr(),
            _ => None,
        }
    }

    /// The peer process's credentials, if it is on a Unix domain socket (over TLS or not).
    #[cfg(unix)]
    pub fn unix_credentials(&self) -> Option<unix::Credentials> {
        match self {
            Peer::Unix(peer) => peer.credentials(),
            #[cfg(feature = "tls")]
            Peer::Tls(peer) => peer.transport().unix_credentials(),
            _ => None,
        }
    }

    /// The certificate chain the peer presented in the TLS handshake, its own certificate
    /// first: `None` if the connection is not TLS, empty if the peer presented none (a client
    /// when the server does not ask for one).
    #[cfg(feature = "tls")]
    pub fn tls_certificates(&self) -> Option<&[tls::CertificateDer<'static>]> {
        match self {
            Peer::Tls(peer) => Some(peer.certificates()),
            _ => None,
        }
    }

    /// The name in the peer's TLS certificate: its first DNS subjectAltName, or failing that
    /// its subject's common name. `None` if the connection is not TLS, the peer presented no
    /// certificate, or it names nothing this can read (see [`tls::certificate_name`]).
    ///
    /// With mutual TLS this is the client's verified identity, as handlers see it through
    /// [`Context::peer`](crate::Context::peer).
    #[cfg(feature = "tls")]
    pub fn tls_name(&self) -> Option<&str> {
        match self {
            Peer::Tls(peer) => peer.name(),
            _ => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => addr.fmt(f),
            #[cfg(unix)]
            Peer::Unix(peer) => peer.fmt(f),
            Peer::Memory => f.write_str("an in-process peer"),
            #[cfg(feature = "tls")]
            Peer::Tls(peer) => peer.fmt(f),
            Peer::Unknown => f.write_str("the peer"),
        }
    }
}

/// Whether an error from [`Listener::accept`] passes: it concerns only the connection that was
/// being accepted, or the process is short of something (file descriptors, memory, buffers) for
/// a while. The server retries those (after a pause for shortages) and stops on the rest.
pub fn is_transient(e: &io::Error) -> bool {
    is_per_connection(e) || is_shortage(e)
}

/// The connection being accepted failed, not the listener.
pub(crate) fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The process or the system is out of something for a while.
pub(crate) fn is_shortage(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
    }
    #[cfg(not(unix))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortages_and_lost_connections_pass_and_other_errors_do_not() {
        #[cfg(unix)]
        assert!(is_transient(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_transient(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert!(!is_transient(&io::Error::from(io::ErrorKind::InvalidInput)));
    }
}
