//! Unix domain sockets: tokio's `UnixListener` is a [`Listener`]; [`UnixConnector`] connects to
//! a socket path. The server learns the connecting process's uid, gid and pid from the kernel
//! (`SO_PEERCRED`), and handlers read them with
//! [`Peer::unix_credentials`](super::Peer::unix_credentials).

use super::{Connector, Listener, Peer};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};

/// A peer on a Unix domain socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixPeer {
    /// Shared, so that cloning a peer (once per call) never allocates.
    path: Option<Arc<Path>>,
    credentials: Option<Credentials>,
}

impl UnixPeer {
    /// The socket's path, if it is bound to one (a connecting client's end usually is not).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The peer process's credentials, if the kernel told them.
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials
    }
}

impl fmt::Display for UnixPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, &self.credentials) {
            (Some(path), _) => write!(f, "unix:{}", path.display()),
            (None, Some(c)) => match c.pid {
                Some(pid) => write!(f, "unix peer (pid {pid}, uid {})", c.uid),
                None => write!(f, "unix peer (uid {})", c.uid),
            },
            (None, None) => f.write_str("unix peer"),
        }
    }
}

/// The credentials of the process at the other end of a Unix domain socket, as the kernel
/// recorded them when it connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
    /// The process id, where the platform reports it.
    pub pid: Option<i32>,
}

impl Listener for UnixListener {
    type Io = UnixStream;

    async fn accept(&mut self) -> io::Result<(UnixStream, Peer)> {
        let (stream, addr) = UnixListener::accept(self).await?;
        let credentials = match stream.peer_cred() {
            Ok(cred) => Some(Credentials { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() }),
            Err(e) => {
                tracing::debug!(error = %e, "could not read a unix peer's credentials");
                None
            }
        };
        let path = addr.as_pathname().map(Arc::from);
        Ok((stream, Peer::Unix(UnixPeer { path, credentials })))
    }
}

/// Connects to a Unix domain socket at a path.
#[derive(Clone, Debug)]
pub struct UnixConnector {
    path: PathBuf,
}

impl UnixConnector {
    /// Connects to the socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> UnixConnector {
        UnixConnector { path: path.into() }
    }
}

impl Connector for UnixConnector {
    type Io = UnixStream;

    async fn connect(&self) -> io::Result<(UnixStream, Peer)> {
        let stream = UnixStream::connect(&self.path).await?;
        let credentials =
            stream.peer_cred().ok().map(|cred| Credentials { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() });
        Ok((stream, Peer::Unix(UnixPeer { path: Some(Arc::from(self.path.as_path())), credentials })))
    }
}
