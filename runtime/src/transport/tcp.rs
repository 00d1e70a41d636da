//! TCP: tokio's `TcpListener` is a [`Listener`]; [`TcpConnector`] connects to an address.
//!
//! Every tidl TCP socket has `TCP_NODELAY` set on both sides, so a cancel or a small reply is
//! never held back waiting for a delayed ACK (Nagle's algorithm would hold a small frame for up
//! to ~40 ms while an earlier one is unacknowledged). On the server's side it is set in the
//! connection's own task (`prepare_accepted`), not in the accept loop, which does nothing but
//! accept and spawn so that a storm of connections leaves the listen queue as fast as it fills.

use super::{Connector, Listener, Peer};
use std::any::Any;
use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};

/// The server sets up the accepted stream in the connection's task (`prepare_accepted`):
/// a stream accepted through this trait by anything else has `TCP_NODELAY` still to set.
impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = TcpListener::accept(self).await?;
        Ok((stream, Peer::Tcp(addr)))
    }
}

/// Binds a listening socket to the first address `addr` resolves to that can be bound (as
/// `TcpListener::bind` does), with a listen queue of `backlog` connections.
pub(crate) async fn bind(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(addr).await? {
        match bind_one(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address resolved to no address to bind")))
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As `TcpListener::bind` does: a restarted server can bind its port again at once, while
    // connections of the previous one are still in TIME_WAIT.
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Sets up a stream the server accepted, in the connection's own task: a TCP stream gets the
/// options of every tidl TCP socket; any other kind of stream is left as it is.
pub(crate) fn prepare_accepted<S: Any>(io: &S) {
    if let Some(stream) = (io as &dyn Any).downcast_ref::<TcpStream>()
        && let Err(e) = tune(stream)
    {
        tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted connection");
    }
}

/// Connects over TCP to an address given as `"host:port"`, resolved anew at each connect.
#[derive(Clone, Debug)]
pub struct TcpConnector {
    addr: String,
}

impl TcpConnector {
    /// Connects to `addr` (`"127.0.0.1:23333"`, `"example.com:443"`, `"[::1]:80"`).
    pub fn new(addr: impl Into<String>) -> TcpConnector {
        TcpConnector { addr: addr.into() }
    }
}

impl Connector for TcpConnector {
    type Io = TcpStream;

    async fn connect(&self) -> io::Result<(TcpStream, Peer)> {
        connect(&*self.addr).await
    }
}

/// Connects to `addr` and sets the socket up as every tidl TCP socket is.
pub(crate) async fn connect(addr: impl ToSocketAddrs) -> io::Result<(TcpStream, Peer)> {
    let stream = TcpStream::connect(addr).await?;
    tune(&stream)?;
    let peer = stream.peer_addr()?;
    Ok((stream, Peer::Tcp(peer)))
}

/// Sets the socket options of a tidl TCP connection: `TCP_NODELAY`.
fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_ends_have_nagle_off_once_the_server_prepared_its_end() -> io::Result<()> {
        let mut listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connector = TcpConnector::new(addr.to_string());
        let (connected, accepted) = tokio::join!(connector.connect(), Listener::accept(&mut listener));
        let ((client, to_server), (server, to_client)) = (connected?, accepted?);
        prepare_accepted(&server);
        assert!(client.nodelay()? && server.nodelay()?, "Nagle is on by default; tidl turns it off");
        assert_eq!(to_server, Peer::Tcp(addr));
        assert_eq!(to_client.socket_addr(), Some(client.local_addr()?));
        Ok(())
    }

    /// The kernel queues `backlog + 1` handshaken connections; it drops the SYN of the next
    /// one, whose connect then waits for a retransmit a second later.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bind_gives_the_listen_queue_the_backlog_asked_for() -> io::Result<()> {
        let listener = bind("127.0.0.1:0", 4).await?;
        let addr = listener.local_addr()?;
        assert_ne!(addr.port(), 0, "a free port was bound");
        let mut queued = Vec::new();
        for _ in 0..5 {
            queued.push(TcpStream::connect(addr).await?);
        }
        let over = tokio::time::timeout(std::time::Duration::from_millis(500), TcpStream::connect(addr)).await;
        assert!(over.is_err(), "a sixth connection completed with a backlog of 4");
        assert!(bind(addr, 4).await.is_err(), "the port is taken");
        Ok(())
    }
}
