//! The accept loop: takes connections from any [`Listener`] until shutdown begins.
//!
//! When a server restarts, every client reconnects at once, and connections the kernel cannot
//! queue (`ServerConfig::listen_backlog`) are dropped: each costs its client a SYN retransmit,
//! a second or more. So the loop does nothing but accept and spawn (the connection's task does
//! the rest), and takes connections in batches of up to [`BATCH`] without giving up its turn:
//! left to tokio's cooperative budget it would yield after every 128, behind the tasks of the
//! connections it had just accepted, and drain the queue no faster than they handshake.

use super::Server;
use crate::transport::{self, Listener};
use std::io;
use std::time::Duration;

/// How long the loop pauses when the process is short of file descriptors or memory.
const SHORTAGE_PAUSE: Duration = Duration::from_millis(100);

/// Connections accepted in a row before the loop lets other tasks on its worker run.
const BATCH: usize = 1024;

/// Accepts connections on `listener` and serves each in tasks of its own, until shutdown begins
/// (`Ok`) or the listener fails for good (its error).
pub(super) async fn run<L: Listener>(server: &Server, mut listener: L) -> io::Result<()> {
    let mut in_a_row = 0;
    loop {
        if in_a_row == BATCH {
            in_a_row = 0;
            tokio::task::yield_now().await;
        }
        // Outside tokio's budget: a ready connection is taken at once, however many came before.
        let accepted = tokio::task::unconstrained(async {
            tokio::select! {
                biased;
                () = server.inner.draining.cancelled() => None,
                accepted = listener.accept() => Some(accepted),
            }
        })
        .await;
        match accepted {
            None => return Ok(()),
            Some(Ok((io, peer))) => {
                in_a_row += 1;
                server.spawn_connection(io, peer);
            }
            Some(Err(e)) if transport::is_per_connection(&e) => {}
            Some(Err(e)) if transport::is_shortage(&e) => {
                tracing::warn!(error = %e, "tidl server could not accept a connection; retrying in {SHORTAGE_PAUSE:?}");
                tokio::time::sleep(SHORTAGE_PAUSE).await;
            }
            Some(Err(e)) => return Err(e),
        }
    }
}
