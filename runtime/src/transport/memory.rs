//! An in-process transport: a [`MemoryListener`] and the [`MemoryConnector`]s that reach it,
//! joined by tokio's in-memory duplex pipes. For tests, and for embedding a server in the
//! process that calls it, with every behaviour of a real connection (framing, cancellation,
//! deadlines, limits) and no socket.
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tidl_runtime::{Client, Server, transport::memory};
//!
//! let (listener, connector) = memory::channel();
//! let server = Server::builder().build(); // register services here
//! tokio::spawn({
//!     let server = server.clone();
//!     async move { server.accept(listener).await }
//! });
//! let client = Client::connect(connector).await?;
//! # Ok(()) }
//! ```

use super::{Connector, Listener, Peer};
use std::io;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// Bytes each direction of a pipe buffers before the writer waits.
const PIPE_CAPACITY: usize = 256 * 1024;

/// Connections waiting to be accepted, as a listen backlog does.
const BACKLOG: usize = 1024;

/// A listener and a connector that reaches it.
pub fn channel() -> (MemoryListener, MemoryConnector) {
    let (tx, rx) = mpsc::channel(BACKLOG);
    (MemoryListener { incoming: rx }, MemoryConnector { listener: tx })
}

/// Accepts the connections made through its [`MemoryConnector`]s.
#[derive(Debug)]
pub struct MemoryListener {
    incoming: mpsc::Receiver<DuplexStream>,
}

impl Listener for MemoryListener {
    type Io = DuplexStream;

    async fn accept(&mut self) -> io::Result<(DuplexStream, Peer)> {
        match self.incoming.recv().await {
            Some(stream) => Ok((stream, Peer::Memory)),
            // Not transient: the server stops accepting.
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "every MemoryConnector was dropped")),
        }
    }
}

/// Connects to its [`MemoryListener`]; clone it for more.
#[derive(Clone, Debug)]
pub struct MemoryConnector {
    listener: mpsc::Sender<DuplexStream>,
}

impl Connector for MemoryConnector {
    type Io = DuplexStream;

    async fn connect(&self) -> io::Result<(DuplexStream, Peer)> {
        let (client, server) = tokio::io::duplex(PIPE_CAPACITY);
        self.listener
            .send(server)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionRefused, "the MemoryListener was dropped"))?;
        Ok((client, Peer::Memory))
    }
}
