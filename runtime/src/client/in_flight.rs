//! The client's calls in flight on one connection: the only count of them.

use crate::conn::stream::Stream;
use crate::error::Status;
use crate::sync::lock;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// How a call ended, as the connection hands it to the caller: before its value is decoded.
#[derive(Debug)]
pub enum Reply {
    /// The encoded reply value.
    Ok(Bytes),
    /// The encoded application error.
    App(Bytes),
    /// An RPC-layer failure.
    Status(Status),
}

/// The calls a client has in flight on one connection, by request id.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    table: Mutex<Table>,
    /// The number of calls in `table`, readable without its lock.
    count: AtomicUsize,
}

#[derive(Debug, Default)]
struct Table {
    /// The id of the next call; ids are never reused on a connection.
    next_id: u64,
    /// Where each pending call's reply goes, and its stream if it has one.
    pending: HashMap<u64, Entry>,
    /// Set once new calls must fail (the server said go away, or the connection is gone).
    refusal: Option<Status>,
}

/// One pending call.
#[derive(Debug)]
struct Entry {
    reply: oneshot::Sender<Reply>,
    stream: Option<Arc<Stream>>,
}

impl Entry {
    /// Ends the entry: its stream, if any, stops sending; the reply slot is handed out.
    fn end(self) -> oneshot::Sender<Reply> {
        if let Some(stream) = self.stream {
            stream.finish();
        }
        self.reply
    }
}

impl InFlight {
    /// Registers a new call, with its stream if it is a streaming call: its id and where its
    /// reply will arrive. Fails with the reason if the connection takes no new calls.
    pub(crate) fn start(&self, stream: Option<Arc<Stream>>) -> Result<(u64, oneshot::Receiver<Reply>), Status> {
        let (tx, rx) = oneshot::channel();
        let mut table = lock(&self.table);
        if let Some(status) = &table.refusal {
            return Err(status.clone());
        }
        table.next_id += 1;
        let id = table.next_id;
        table.pending.insert(id, Entry { reply: tx, stream });
        self.count.store(table.pending.len(), Ordering::Relaxed);
        Ok((id, rx))
    }

    /// Ends call `id`: where its reply goes, if it was still pending.
    pub(crate) fn end(&self, id: u64) -> Option<oneshot::Sender<Reply>> {
        let slot = {
            let mut table = lock(&self.table);
            let slot = table.pending.remove(&id);
            self.count.store(table.pending.len(), Ordering::Relaxed);
            slot
        };
        slot.map(Entry::end)
    }

    /// The stream of call `id`, if it is a pending streaming call.
    pub(crate) fn stream(&self, id: u64) -> Option<Arc<Stream>> {
        lock(&self.table).pending.get(&id).and_then(|entry| entry.stream.clone())
    }

    /// Makes new calls fail with `status` from now on; the first reason given is kept.
    pub(crate) fn refuse(&self, status: Status) {
        lock(&self.table).refusal.get_or_insert(status);
    }

    /// Why new calls fail, if they do.
    pub(crate) fn refusal(&self) -> Option<Status> {
        lock(&self.table).refusal.clone()
    }

    /// Refuses new calls and ends every pending one with `status`.
    pub(crate) fn fail_all(&self, status: &Status) {
        let pending = {
            let mut table = lock(&self.table);
            table.refusal.get_or_insert_with(|| status.clone());
            self.count.store(0, Ordering::Relaxed);
            std::mem::take(&mut table.pending)
        };
        for (_, entry) in pending {
            let _ = entry.end().send(Reply::Status(status.clone()));
        }
    }

    /// The number of calls in flight.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_the_count_follows_the_table() {
        let in_flight = InFlight::default();
        let (a, _ra) = in_flight.start(None).expect("open");
        let (b, _rb) = in_flight.start(None).expect("open");
        assert_ne!(a, b);
        assert_eq!(in_flight.len(), 2);
        assert!(in_flight.end(a).is_some());
        assert!(in_flight.end(a).is_none(), "a call ends once");
        assert_eq!(in_flight.len(), 1);
    }

    #[tokio::test]
    async fn failing_all_ends_pending_calls_and_refuses_new_ones() {
        let in_flight = InFlight::default();
        let (_, reply) = in_flight.start(None).expect("open");
        in_flight.fail_all(&Status::unavailable("gone"));
        assert!(matches!(reply.await, Ok(Reply::Status(s)) if s.message() == "gone"));
        assert_eq!(in_flight.len(), 0);
        assert_eq!(in_flight.start(None).map(|_| ()), Err(Status::unavailable("gone")));
        in_flight.refuse(Status::unavailable("later reason"));
        assert_eq!(in_flight.refusal(), Some(Status::unavailable("gone")), "the first reason is kept");
    }
}
