//! The accept loop: takes connections from any [`Listener`] until shutdown begins.

use super::Server;
use crate::transport::{self, Listener};
use std::io;
use std::time::Duration;

/// How long the loop pauses when the process is short of file descriptors or memory.
const SHORTAGE_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` and serves each in tasks of its own, until shutdown begins
/// (`Ok`) or the listener fails for good (its error).
pub(super) async fn run<L: Listener>(server: &Server, mut listener: L) -> io::Result<()> {
    loop {
        let accepted = tokio::select! {
            biased;
            () = server.inner.draining.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((io, peer)) => server.spawn_connection(io, peer),
            Err(e) if transport::is_per_connection(&e) => {}
            Err(e) if transport::is_shortage(&e) => {
                tracing::warn!(error = %e, "tidl server could not accept a connection; retrying in {SHORTAGE_PAUSE:?}");
                tokio::time::sleep(SHORTAGE_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}
