//! The server's calls running on one connection: the only count of them.

use crate::conn::stream::Stream;
use crate::context::CallState;
use crate::sync::lock;
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
    calls: Mutex<HashMap<u64, Entry>>,
    /// The number of calls in `calls`, readable without its lock.
    count: AtomicUsize,
    /// How many of them are streaming calls.
    streams: AtomicUsize,
    /// Signalled when the last running call ends.
    idle: Notify,
}

#[derive(Debug)]
struct Entry {
    call: Arc<CallState>,
    stream: Option<Arc<Stream>>,
}

impl InFlight {
    /// Records that call `id` is running, if it may: not while a call of that id runs, and not
    /// beyond `limit` calls.
    pub(crate) fn admit(&self, id: u64, limit: usize, call: Arc<CallState>) -> Result<(), Refused> {
        let mut calls = lock(&self.calls);
        if calls.contains_key(&id) {
            return Err(Refused::Duplicate);
        }
        if calls.len() >= limit {
            return Err(Refused::Full);
        }
        calls.insert(id, Entry { call, stream: None });
        self.count.store(calls.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Gives running call `id` its stream: it is a streaming call.
    pub(crate) fn set_stream(&self, id: u64, stream: Arc<Stream>) {
        if let Some(entry) = lock(&self.calls).get_mut(&id)
            && entry.stream.replace(stream).is_none()
        {
            self.streams.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The stream of call `id`, if it is a running streaming call.
    pub(crate) fn stream(&self, id: u64) -> Option<Arc<Stream>> {
        lock(&self.calls).get(&id).and_then(|entry| entry.stream.clone())
    }

    /// The number of streaming calls running.
    pub(crate) fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// Records that call `id` has ended (its reply, if any, is queued).
    pub(crate) fn end(&self, id: u64) {
        let now_idle = {
            let mut calls = lock(&self.calls);
            if let Some(Entry { stream: Some(stream), .. }) = calls.remove(&id) {
                self.streams.fetch_sub(1, Ordering::Relaxed);
                stream.finish();
            }
            self.count.store(calls.len(), Ordering::Relaxed);
            calls.is_empty()
        };
        if now_idle {
            self.idle.notify_waiters();
        }
    }

    /// Cancels call `id`; whether it was running.
    pub(crate) fn cancel(&self, id: u64) -> bool {
        let call = lock(&self.calls).get(&id).map(|entry| entry.call.clone());
        // Cancelled outside the lock: cancelling wakes the handler's task.
        call.map(|call| call.cancel()).is_some()
    }

    /// Cancels every running call.
    pub(crate) fn cancel_all(&self) {
        let calls: Vec<_> = lock(&self.calls).values().map(|entry| entry.call.clone()).collect();
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
            if lock(&self.calls).is_empty() {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Method;
    use crate::transport::Peer;

    fn call() -> Arc<CallState> {
        let call = CallState::new(Peer::Unknown, crate::Metadata::new());
        call.set_method(Method::new("S", "m"));
        Arc::new(call)
    }

    #[test]
    fn admits_up_to_the_limit_and_never_a_running_id() {
        let in_flight = InFlight::default();
        assert_eq!(in_flight.admit(1, 1, call()), Ok(()));
        assert_eq!(in_flight.admit(1, 5, call()), Err(Refused::Duplicate));
        assert_eq!(in_flight.admit(2, 1, call()), Err(Refused::Full));
        assert_eq!(in_flight.len(), 1);
        in_flight.end(1);
        assert_eq!(in_flight.len(), 0);
        assert_eq!(in_flight.admit(1, 1, call()), Ok(()), "an ended call's id may be used again");
    }

    #[tokio::test]
    async fn idle_completes_when_the_last_call_ends() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.idle().await;
        in_flight.admit(7, 10, call()).expect("admitted");
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
