//! The client's calls in flight on one connection: the only count of them.

use crate::conn::stream::Stream;
use crate::error::Status;
use crate::sync::lock;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

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
///
/// Each call's reply is left in its entry, and its caller's waker woken: the table is the
/// calls' only rendezvous, with no channel (and no allocation) per call. The table is split in
/// [`SHARDS`] shards, each under a lock of its own, with its own ids and its own count; each
/// thread starts its calls in the shards in turn, and a call's id says which shard it is in.
/// The callers of many calls in flight, on every worker, and the connection's reader each take
/// a lock several times per call; one lock, one id counter and one count for them all were
/// contended (about a fifth of a client's CPU with 256 calls in flight).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    shards: [Shard; SHARDS],
    /// Set once new calls must fail (the server said go away, or the connection is gone); set
    /// after `refusal` is, and read again under a shard's lock before a call is added to it.
    refused: AtomicBool,
    /// Why new calls fail, once they do: the first reason given.
    refusal: Mutex<Option<Status>>,
}

/// Adds `n` to a shard's count of waiting calls, under the shard's lock: a load and a store, not
/// an atomic addition, which would wait for the writes before it (the slot just written, a
/// cache line the reader's thread had) to complete: about a third of `start`'s time.
fn change_waiting(waiting: &AtomicUsize, n: isize) {
    waiting.store(waiting.load(Ordering::Relaxed).wrapping_add_signed(n), Ordering::Relaxed);
}

/// Shards of the table. A call's id is `SHARDS` times the shard's own sequence number, plus the
/// shard's index: ids are unique on the connection and never reused (the protocol asks only that
/// an id is not reused while its call may be running), and not in the order calls start.
const SHARDS: usize = 8;

/// One shard: its calls, and its count, on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    calls: Mutex<Calls>,
    /// How many of `calls` are waiting for their outcome, readable without the lock; changed only
    /// under it ([`change_waiting`]).
    waiting: AtomicUsize,
}

/// The calls of one shard: every call whose outcome its caller has not taken yet, each in the
/// slot its id names.
///
/// The client chooses its ids, so it chooses them to fit the table: a call's slot is its
/// sequence number modulo the number of slots (a power of two), and a new call takes the next
/// sequence number whose slot is free. At most half the slots are taken (the table doubles
/// before), so a free one is a probe or two away, and doubling moves no two calls to one slot
/// (two sequence numbers that differ in their low bits still do with one more bit). A lookup
/// is one slot, with no hashing: the shard's lock, a hash's control bytes and its bucket were
/// three cache misses per lookup, each lookup taking a line the other thread had written.
#[derive(Debug, Default)]
struct Calls {
    slots: Vec<Slot>,
    /// How many slots hold a call.
    taken: usize,
    /// The shard's last sequence number.
    sequence: u64,
}

/// A slot: the id of the call it last held, and that call if it is still there.
#[derive(Debug, Default)]
struct Slot {
    id: u64,
    entry: Option<Entry>,
}

impl Calls {
    /// Adds a call waiting with `stream` to shard `home`: its id.
    fn add(&mut self, home: usize, stream: Option<Arc<Stream>>) -> u64 {
        if (self.taken + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        loop {
            self.sequence += 1;
            let slot = &mut self.slots[self.sequence as usize & mask];
            if slot.entry.is_none() {
                let id = self.sequence * SHARDS as u64 + home as u64;
                *slot = Slot { id, entry: Some(Entry::Waiting { waker: None, stream }) };
                self.taken += 1;
                return id;
            }
        }
    }

    /// Doubles the slots (to 16 at first), each call moving to the slot its id names.
    #[cold]
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, std::iter::repeat_with(Slot::default).take(len).collect());
        for slot in old.into_iter().filter(|slot| slot.entry.is_some()) {
            let index = Calls::index(slot.id, len - 1);
            self.slots[index] = slot;
        }
    }

    /// The slot of call `id` among slots `mask + 1`.
    fn index(id: u64, mask: usize) -> usize {
        (id / SHARDS as u64) as usize & mask
    }

    /// The slot of call `id`, if it holds that call (or held it last).
    fn slot_mut(&mut self, id: u64) -> Option<&mut Slot> {
        let mask = self.slots.len().checked_sub(1)?;
        self.slots.get_mut(Calls::index(id, mask)).filter(|slot| slot.id == id)
    }

    /// Call `id`, if the shard has it.
    fn get(&self, id: u64) -> Option<&Entry> {
        let mask = self.slots.len().checked_sub(1)?;
        self.slots.get(Calls::index(id, mask)).filter(|slot| slot.id == id)?.entry.as_ref()
    }

    /// Call `id`, if the shard has it.
    fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.slot_mut(id)?.entry.as_mut()
    }

    /// Takes call `id` out of the shard, if it has it.
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let removed = self.slot_mut(id)?.entry.take()?;
        self.taken -= 1;
        Some(removed)
    }

    /// Every call in the shard.
    fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.slots.iter_mut().filter_map(|slot| slot.entry.as_mut())
    }
}

thread_local! {
    /// This thread's turn: each thread goes round the shards (offset by the table), so that
    /// many calls in flight spread over them, with no counter shared between threads.
    static NEXT_SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One call: waiting for its outcome, with its caller's waker and its stream if it has one, or
/// ended, with its outcome.
#[derive(Debug)]
enum Entry {
    Waiting { waker: Option<Waker>, stream: Option<Arc<Stream>> },
    Ended(Reply),
}

impl Entry {
    /// Ends a waiting entry with `reply`; what is left to do once the lock is released.
    fn end(&mut self, reply: Reply) -> Aftermath {
        match std::mem::replace(self, Entry::Ended(reply)) {
            Entry::Waiting { waker, stream } => Aftermath { waker, stream },
            Entry::Ended(_) => Aftermath::default(),
        }
    }
}

/// What ending a waiting call leaves to do once the table's lock is released: its stream stops
/// sending, and its caller is woken. Neither is done under the lock: finishing a stream wakes
/// its own waiters, and a waker may run code of its own.
#[derive(Default)]
struct Aftermath {
    waker: Option<Waker>,
    stream: Option<Arc<Stream>>,
}

impl Aftermath {
    fn run(self) {
        if let Some(stream) = self.stream {
            stream.finish();
        }
        if let Some(waker) = self.waker {
            waker.wake();
        }
    }
}

impl InFlight {
    /// The shard of call `id`, locked.
    fn shard(&self, id: u64) -> (MutexGuard<'_, Calls>, &AtomicUsize) {
        let shard = &self.shards[(id % SHARDS as u64) as usize];
        (lock(&shard.calls), &shard.waiting)
    }

    /// Registers a new call, with its stream if it is a streaming call: its id. Fails with the
    /// reason if the connection takes no new calls.
    pub(crate) fn start(&self, stream: Option<Arc<Stream>>) -> Result<u64, Status> {
        if self.refused.load(Ordering::Acquire) {
            return Err(self.refused_with());
        }
        let turn = NEXT_SHARD
            .try_with(|next| {
                let turn = next.get();
                next.set(turn.wrapping_add(1));
                turn
            })
            .unwrap_or(0);
        // Offset by the table's address, so that a thread calling several connections in turn
        // does not keep each of them to a few shards.
        let home = turn.wrapping_add(std::ptr::from_ref(self).addr() >> 7) % SHARDS;
        let shard = &self.shards[home];
        let mut calls = lock(&shard.calls);
        // Again under the lock: `fail_all` sets the flag before it empties the shards, so a call
        // added after it emptied this one sees it.
        if self.refused.load(Ordering::Acquire) {
            drop(calls);
            return Err(self.refused_with());
        }
        let id = calls.add(home, stream);
        change_waiting(&shard.waiting, 1);
        Ok(id)
    }

    /// The reason new calls fail, once `refused` is set.
    #[cold]
    fn refused_with(&self) -> Status {
        lock(&self.refusal).clone().unwrap_or_else(|| Status::unavailable("the connection takes no new calls"))
    }

    /// Ends call `id` with `reply` and wakes its caller, if it is still waiting; a reply to a
    /// call that was stopped or forgotten is dropped. Whether the call was waiting.
    pub(crate) fn complete(&self, id: u64, reply: Reply) -> bool {
        self.end_waiting(id, Some(reply))
    }

    /// Stops call `id` if it is still waiting: with `status` as its outcome for its caller to
    /// take, or, with `None`, forgetting it (its caller is gone). Whether it was waiting; an
    /// ended call keeps its outcome.
    pub(crate) fn stop(&self, id: u64, status: Option<Status>) -> bool {
        self.end_waiting(id, status.map(Reply::Status))
    }

    /// Ends call `id` if it is still waiting: with `outcome`, waking its caller, or forgotten.
    fn end_waiting(&self, id: u64, outcome: Option<Reply>) -> bool {
        let (aftermath, removed) = {
            let (mut calls, waiting) = self.shard(id);
            let Some(entry @ Entry::Waiting { .. }) = calls.get_mut(id) else {
                return false;
            };
            let ended = match outcome {
                Some(outcome) => (entry.end(outcome), None),
                None => {
                    let mut removed = calls.remove(id);
                    let aftermath = match &mut removed {
                        Some(Entry::Waiting { stream, .. }) => Aftermath { waker: None, stream: stream.take() },
                        _ => Aftermath::default(),
                    };
                    (aftermath, removed)
                }
            };
            change_waiting(waiting, -1);
            ended
        };
        drop(removed);
        aftermath.run();
        true
    }

    /// Forgets call `id`, waiting or ended: a reply that comes later is dropped.
    pub(crate) fn forget(&self, id: u64) {
        let removed = {
            let (mut calls, waiting) = self.shard(id);
            let removed = calls.remove(id);
            if let Some(Entry::Waiting { .. }) = removed {
                change_waiting(waiting, -1);
            }
            removed
        };
        // Outside the lock: the stream's waiters are woken, and an unread reply may hand a
        // large buffer back to its pool.
        if let Some(Entry::Waiting { stream: Some(stream), .. }) = removed {
            stream.finish();
        }
    }

    /// Takes call `id`'s outcome if it has ended, or registers `cx`'s waker to be woken when it
    /// does. A call the table does not know (forgotten, or its outcome taken) is `None`.
    pub(crate) fn poll(&self, id: u64, cx: &mut std::task::Context<'_>) -> Poll<Option<Reply>> {
        let (mut calls, _) = self.shard(id);
        match calls.get_mut(id) {
            Some(Entry::Waiting { waker, .. }) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Some(Entry::Ended(_)) => match calls.remove(id) {
                Some(Entry::Ended(reply)) => Poll::Ready(Some(reply)),
                _ => Poll::Ready(None),
            },
            None => Poll::Ready(None),
        }
    }

    /// Takes call `id`'s outcome if it has ended (forgetting it), for a caller that is going away.
    pub(crate) fn take(&self, id: u64) -> Option<Reply> {
        let (mut calls, _) = self.shard(id);
        match calls.get(id) {
            Some(Entry::Ended(_)) => match calls.remove(id) {
                Some(Entry::Ended(reply)) => Some(reply),
                _ => None,
            },
            _ => None,
        }
    }

    /// The stream of call `id`, if it is a waiting streaming call.
    pub(crate) fn stream(&self, id: u64) -> Option<Arc<Stream>> {
        match self.shard(id).0.get(id) {
            Some(Entry::Waiting { stream, .. }) => stream.clone(),
            _ => None,
        }
    }

    /// Makes new calls fail with `status` from now on; the first reason given is kept.
    pub(crate) fn refuse(&self, status: Status) {
        lock(&self.refusal).get_or_insert(status);
        self.refused.store(true, Ordering::Release);
    }

    /// Why new calls fail, if they do.
    pub(crate) fn refusal(&self) -> Option<Status> {
        if !self.refused.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.refusal).clone()
    }

    /// Refuses new calls and ends every waiting one with `status`.
    pub(crate) fn fail_all(&self, status: &Status) {
        self.refuse(status.clone());
        let mut ended: Vec<Aftermath> = Vec::new();
        for shard in &self.shards {
            let mut calls = lock(&shard.calls);
            let before = ended.len();
            ended.extend(
                calls
                    .entries_mut()
                    .filter(|entry| matches!(entry, Entry::Waiting { .. }))
                    .map(|entry| entry.end(Reply::Status(status.clone()))),
            );
            change_waiting(&shard.waiting, -((ended.len() - before) as isize));
        }
        for aftermath in ended {
            aftermath.run();
        }
    }

    /// The number of calls in flight (waiting for their outcome).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.waiting.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;

    /// A waker that records that it was woken.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn poll(in_flight: &InFlight, id: u64, flag: &Arc<Flag>) -> Poll<Option<Reply>> {
        let waker = Waker::from(flag.clone());
        in_flight.poll(id, &mut std::task::Context::from_waker(&waker))
    }

    #[test]
    fn ids_are_fresh_and_the_count_follows_the_waiting_calls() {
        let in_flight = InFlight::default();
        let a = in_flight.start(None).expect("open");
        let b = in_flight.start(None).expect("open");
        assert_ne!(a, b);
        assert_eq!(in_flight.len(), 2);
        assert!(in_flight.complete(a, Reply::Ok(Bytes::from_static(b"x"))));
        assert!(!in_flight.complete(a, Reply::Ok(Bytes::new())), "a call ends once");
        assert_eq!(in_flight.len(), 1);
        assert!(in_flight.stop(b, None));
        assert!(!in_flight.stop(b, None));
        assert_eq!(in_flight.len(), 0);
    }

    #[test]
    fn a_reply_wakes_its_caller_and_is_taken_once() {
        let in_flight = InFlight::default();
        let id = in_flight.start(None).expect("open");
        let flag = Arc::new(Flag::default());
        assert!(poll(&in_flight, id, &flag).is_pending());
        assert!(!flag.0.load(Ordering::SeqCst));
        assert!(in_flight.complete(id, Reply::Ok(Bytes::from_static(b"hi"))));
        assert!(flag.0.load(Ordering::SeqCst), "the reply woke the caller");
        assert!(!in_flight.stop(id, Some(Status::cancelled("late"))), "a cancel after the reply changes nothing");
        assert!(matches!(poll(&in_flight, id, &flag), Poll::Ready(Some(Reply::Ok(b))) if b == "hi"));
        assert!(matches!(poll(&in_flight, id, &flag), Poll::Ready(None)), "taken once, and forgotten");
    }

    #[test]
    fn calls_stay_found_as_the_table_grows_and_slots_are_reused_and_old_ids_find_nothing() {
        let in_flight = InFlight::default();
        // One call that runs for the whole test, while thousands come and go around it.
        let long = in_flight.start(None).expect("open");
        let mut live: Vec<u64> = Vec::new();
        let mut gone: Vec<u64> = Vec::new();
        let mut seen = std::collections::HashSet::from([long]);
        for round in 0..40u64 {
            for _ in 0..100 {
                let id = in_flight.start(None).expect("open");
                assert!(seen.insert(id), "id {id} given out twice");
                live.push(id);
            }
            // End every other call, in an order unlike the ids', some with a reply, some forgotten.
            let (end, keep): (Vec<_>, Vec<_>) = live.drain(..).enumerate().partition(|(i, _)| i % 2 == 0);
            for (i, id) in end.into_iter().rev() {
                if i % 4 == 0 {
                    assert!(in_flight.complete(id, Reply::Ok(Bytes::from(id.to_string()))));
                    assert!(matches!(in_flight.take(id), Some(Reply::Ok(b)) if b == id.to_string()));
                } else {
                    in_flight.forget(id);
                }
                gone.push(id);
            }
            live = keep.into_iter().map(|(_, id)| id).collect();
            assert_eq!(in_flight.len(), live.len() + 1, "round {round}");
        }
        for &id in &gone {
            assert!(!in_flight.complete(id, Reply::Ok(Bytes::new())), "an ended call's id {id} found a call");
            assert!(in_flight.take(id).is_none());
        }
        // An id nobody was given, naming a live call's slot (the same sequence number modulo any
        // table size), finds nothing.
        assert!(!in_flight.complete(long + ((SHARDS as u64) << 20), Reply::Ok(Bytes::new())));
        for &id in live.iter().chain([&long]) {
            assert!(in_flight.complete(id, Reply::Ok(Bytes::from(id.to_string()))), "call {id} was lost");
            assert!(matches!(in_flight.take(id), Some(Reply::Ok(b)) if b == id.to_string()));
        }
        assert_eq!(in_flight.len(), 0);
    }

    #[test]
    fn failing_all_reaches_every_call_of_a_grown_table_and_keeps_outcomes_already_in() {
        let in_flight = InFlight::default();
        let ids: Vec<u64> = (0..500).map(|_| in_flight.start(None).expect("open")).collect();
        // Every third call has its reply in and not taken: it keeps it.
        for &id in ids.iter().step_by(3) {
            assert!(in_flight.complete(id, Reply::Ok(Bytes::from(id.to_string()))));
        }
        // More calls, so that the table grows with ended calls in it.
        let more: Vec<u64> = (0..500).map(|_| in_flight.start(None).expect("open")).collect();
        in_flight.fail_all(&Status::unavailable("gone"));
        assert_eq!(in_flight.len(), 0);
        for (i, &id) in ids.iter().enumerate() {
            match in_flight.take(id) {
                Some(Reply::Ok(b)) => assert!(i % 3 == 0 && b == id.to_string(), "call {id}"),
                Some(Reply::Status(s)) => assert!(i % 3 != 0 && s.message() == "gone", "call {id}"),
                other => panic!("call {id}: {other:?}"),
            }
        }
        for id in more {
            assert!(matches!(in_flight.take(id), Some(Reply::Status(s)) if s.message() == "gone"), "call {id}");
        }
    }

    #[test]
    fn a_stop_with_a_status_is_the_outcome_and_a_forgotten_call_drops_its_reply() {
        let in_flight = InFlight::default();
        let stopped = in_flight.start(None).expect("open");
        let flag = Arc::new(Flag::default());
        assert!(poll(&in_flight, stopped, &flag).is_pending());
        assert!(in_flight.stop(stopped, Some(Status::cancelled("by caller"))));
        assert!(flag.0.load(Ordering::SeqCst));
        assert!(!in_flight.complete(stopped, Reply::Ok(Bytes::new())), "the reply after a cancel is dropped");
        assert!(matches!(in_flight.take(stopped), Some(Reply::Status(s)) if s.message() == "by caller"));

        let forgotten = in_flight.start(None).expect("open");
        in_flight.forget(forgotten);
        assert_eq!(in_flight.len(), 0);
        assert!(!in_flight.complete(forgotten, Reply::Ok(Bytes::new())));
        assert!(in_flight.take(forgotten).is_none());
    }

    #[test]
    fn ending_a_call_in_any_way_finishes_its_stream() {
        let in_flight = InFlight::default();
        type End<'a> = &'a dyn Fn(&InFlight, u64);
        let ends: [End<'_>; 4] = [
            &|t, id| assert!(t.complete(id, Reply::Ok(Bytes::new()))),
            &|t, id| assert!(t.stop(id, Some(Status::cancelled("x")))),
            &|t, id| assert!(t.stop(id, None)),
            &|t, id| t.forget(id),
        ];
        for end in ends {
            let stream = Arc::new(Stream::new(0));
            let id = in_flight.start(Some(stream.clone())).expect("open");
            assert!(in_flight.stream(id).is_some());
            assert!(!stream.is_finished());
            end(&in_flight, id);
            assert!(stream.is_finished());
            assert!(in_flight.stream(id).is_none(), "an ended call's items have nowhere to go");
            in_flight.forget(id);
        }
        let stream = Arc::new(Stream::new(0));
        in_flight.start(Some(stream.clone())).expect("open");
        in_flight.fail_all(&Status::unavailable("gone"));
        assert!(stream.is_finished());
        assert_eq!(in_flight.len(), 0);
    }

    #[test]
    fn a_call_started_while_all_fail_is_refused_or_failed_never_left_waiting() {
        let in_flight = Arc::new(InFlight::default());
        let starters: Vec<_> = (0..4)
            .map(|_| {
                let in_flight = in_flight.clone();
                std::thread::spawn(move || {
                    let mut ids = Vec::new();
                    while let Ok(id) = in_flight.start(None) {
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        while in_flight.len() < 1_000 {
            std::thread::yield_now();
        }
        in_flight.fail_all(&Status::unavailable("gone"));
        let mut seen = std::collections::HashSet::new();
        for starter in starters {
            for id in starter.join().expect("a starter") {
                assert!(seen.insert(id), "id {id} given out twice");
                assert!(matches!(in_flight.take(id), Some(Reply::Status(s)) if s.message() == "gone"), "call {id}");
            }
        }
        assert_eq!(in_flight.len(), 0);
    }

    #[test]
    fn failing_all_ends_waiting_calls_and_refuses_new_ones() {
        let in_flight = InFlight::default();
        let ended = in_flight.start(None).expect("open");
        in_flight.complete(ended, Reply::Ok(Bytes::from_static(b"kept")));
        let waiting = in_flight.start(None).expect("open");
        let flag = Arc::new(Flag::default());
        assert!(poll(&in_flight, waiting, &flag).is_pending());
        in_flight.fail_all(&Status::unavailable("gone"));
        assert!(flag.0.load(Ordering::SeqCst));
        assert!(matches!(in_flight.take(waiting), Some(Reply::Status(s)) if s.message() == "gone"));
        assert!(matches!(in_flight.take(ended), Some(Reply::Ok(b)) if b == "kept"), "an outcome already in is kept");
        assert_eq!(in_flight.len(), 0);
        assert_eq!(in_flight.start(None).map(|_| ()), Err(Status::unavailable("gone")));
        in_flight.refuse(Status::unavailable("later reason"));
        assert_eq!(in_flight.refusal(), Some(Status::unavailable("gone")), "the first reason is kept");
    }
}
