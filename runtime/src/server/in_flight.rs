//! The server's calls running on one connection: the only count of them.

use crate::conn::stream::Stream;
use crate::context::CallState;
use crate::metadata::Metadata;
use crate::sync::lock;
use crate::transport::Peer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Why a call could not be admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A call with this id is still running: the client broke the protocol.
    Duplicate,
    /// The connection has as many calls running as it may.
    Full,
}

/// The calls running on one connection, by request id, each with its cancellation and, for a
/// streaming call, its stream.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    calls: Mutex<Calls>,
    /// The number of calls in `calls`, readable without its lock.
    count: AtomicUsize,
    /// How many of them are streaming calls.
    streams: AtomicUsize,
    /// Signalled when the last running call ends.
    idle: Notify,
}

/// How many ended calls' states a connection keeps for reuse, at most.
const SPARE: usize = 32;

#[derive(Debug, Default)]
struct Calls {
    /// Keyed by ids the peer chooses, so hashed with a seed of the table's own: foldhash, as fast
    /// as a hash of a `u64` gets while still keyed. (The table holds at most the connection's
    /// limit of calls, which bounds what colliding ids could cost even a peer that learned the
    /// seed.)
    running: HashMap<u64, Entry, foldhash::fast::RandomState>,
    /// The states of ended calls that nothing else referred to, reset, for new calls to reuse:
    /// a call then costs no allocation for its state.
    spare: Vec<Arc<CallState>>,
}

#[derive(Debug)]
struct Entry {
    call: Arc<CallState>,
    stream: Option<Arc<Stream>>,
}

impl InFlight {
    /// Records that call `id` from `peer` with `metadata` is running, if it may: not while a
    /// call of that id runs, and not beyond `limit` calls. The call's state, shared with its
    /// handler; or why not, with the metadata back.
    pub(crate) fn admit(
        &self,
        id: u64,
        limit: usize,
        peer: Peer,
        metadata: Metadata,
    ) -> Result<Arc<CallState>, (Refused, Metadata)> {
        let mut guard = lock(&self.calls);
        let calls = &mut *guard;
        let len = calls.running.len();
        // One lookup for both the duplicate check and the insertion.
        let std::collections::hash_map::Entry::Vacant(vacant) = calls.running.entry(id) else {
            return Err((Refused::Duplicate, metadata));
        };
        if len >= limit {
            return Err((Refused::Full, metadata));
        }
        let state = CallState::new(peer, metadata);
        let call = match calls.spare.pop() {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(reused) => {
                    *reused = state;
                    spare
                }
                None => Arc::new(state),
            },
            None => Arc::new(state),
        };
        vacant.insert(Entry { call: call.clone(), stream: None });
        self.count.store(len + 1, Ordering::Relaxed);
        Ok(call)
    }

    /// Gives running call `id` its stream: it is a streaming call.
    pub(crate) fn set_stream(&self, id: u64, stream: Arc<Stream>) {
        if let Some(entry) = lock(&self.calls).running.get_mut(&id)
            && entry.stream.replace(stream).is_none()
        {
            self.streams.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The stream of call `id`, if it is a running streaming call.
    pub(crate) fn stream(&self, id: u64) -> Option<Arc<Stream>> {
        lock(&self.calls).running.get(&id).and_then(|entry| entry.stream.clone())
    }

    /// The number of streaming calls running.
    pub(crate) fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// Records that call `id` has ended (its reply, if any, is queued). Its state is kept for
    /// reuse if nothing else refers to it any more (the handler's task drops its own first).
    pub(crate) fn end(&self, id: u64) {
        let now_idle = {
            let mut calls = lock(&self.calls);
            if let Some(Entry { mut call, stream }) = calls.running.remove(&id) {
                if let Some(stream) = stream {
                    self.streams.fetch_sub(1, Ordering::Relaxed);
                    stream.finish();
                }
                if calls.spare.len() < SPARE
                    && let Some(state) = Arc::get_mut(&mut call)
                {
                    // Reset now, so that a spare state holds no metadata or token.
                    *state = CallState::new(Peer::Unknown, Metadata::new());
                    calls.spare.push(call);
                }
            }
            self.count.store(calls.running.len(), Ordering::Relaxed);
            calls.running.is_empty()
        };
        if now_idle {
            self.idle.notify_waiters();
        }
    }

    /// Cancels call `id`; whether it was running.
    pub(crate) fn cancel(&self, id: u64) -> bool {
        let call = lock(&self.calls).running.get(&id).map(|entry| entry.call.clone());
        // Cancelled outside the lock: cancelling wakes the handler's task.
        call.map(|call| call.cancel()).is_some()
    }

    /// Cancels every running call.
    pub(crate) fn cancel_all(&self) {
        let calls: Vec<_> = lock(&self.calls).running.values().map(|entry| entry.call.clone()).collect();
        for call in calls {
            call.cancel();
        }
    }

    /// The number of calls running.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Completes when no call is running.
    pub(crate) async fn idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if lock(&self.calls).running.is_empty() {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(in_flight: &InFlight, id: u64, limit: usize) -> Result<Arc<CallState>, Refused> {
        in_flight.admit(id, limit, Peer::Unknown, Metadata::new()).map_err(|(why, _)| why)
    }

    #[test]
    fn admits_up_to_the_limit_and_never_a_running_id() {
        let in_flight = InFlight::default();
        assert!(admit(&in_flight, 1, 1).is_ok());
        assert_eq!(admit(&in_flight, 1, 5).err(), Some(Refused::Duplicate));
        assert_eq!(admit(&in_flight, 2, 1).err(), Some(Refused::Full));
        assert_eq!(in_flight.len(), 1);
        in_flight.end(1);
        assert_eq!(in_flight.len(), 0);
        assert!(admit(&in_flight, 1, 1).is_ok(), "an ended call's id may be used again");
    }

    #[test]
    fn an_ended_calls_state_is_reused_fresh_once_nothing_refers_to_it() {
        let in_flight = InFlight::default();
        let mut metadata = Metadata::new();
        metadata.insert("k", "v");
        let first = in_flight.admit(1, 10, Peer::Memory, metadata).expect("admitted");
        first.cancel();
        let first_at = Arc::as_ptr(&first);
        drop(first);
        in_flight.end(1);
        let second = admit(&in_flight, 2, 10).expect("admitted");
        assert_eq!(Arc::as_ptr(&second), first_at, "the state was reused");
        assert!(!second.is_cancelled(), "a reused state starts afresh");
        let ctx = crate::Context::for_call(second.clone(), crate::Method::new("S", "m"), None);
        assert!(ctx.metadata().get("k").is_none(), "a reused state holds no old metadata");
        assert!(matches!(ctx.peer(), Peer::Unknown));

        // A state that a handler's context still refers to is not reused.
        drop(second);
        in_flight.end(2);
        let held = ctx.state().clone();
        let third = admit(&in_flight, 3, 10).expect("admitted");
        drop(third);
        in_flight.end(3);
        let fourth = admit(&in_flight, 4, 10).expect("admitted");
        assert_ne!(Arc::as_ptr(&fourth), Arc::as_ptr(&held));
    }

    #[tokio::test]
    async fn idle_completes_when_the_last_call_ends() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.idle().await;
        admit(&in_flight, 7, 10).expect("admitted");
        in_flight.set_stream(7, Arc::new(Stream::new(0)));
        assert_eq!(in_flight.streams(), 1);
        assert!(in_flight.cancel(7));
        assert!(!in_flight.cancel(8));
        let waiter = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        in_flight.end(7);
        assert_eq!(in_flight.streams(), 0);
        waiter.await.expect("idle");
    }
}
