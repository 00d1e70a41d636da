//! The handler tasks that one read of a connection starts, run as one task.
//!
//! A connection's reader often finds many requests in one read. Spawned one task each, they
//! cost a task apiece, and from the second on they wake an idle worker (tokio's LIFO slot holds
//! one task: the next spawn pushes it to the run queue and wakes a parked worker to steal it),
//! which then takes half of them and sends their replies from another thread. Instead, the
//! reader collects the tasks of a read ([`Open`]) and spawns one task that polls each of them
//! once ([`Batch::drain`]); a handler that answers at once never becomes a task of its own, and
//! one that waits is spawned then. A read that starts one call spawns it as before.
//!
//! A handler that computes for long in its first poll, or many that each take a while, would
//! hold up the handlers after them in the batch. The watchdog samples the batch being drained
//! as it samples handler polls, and when the same drain has been running for a whole period
//! (about a millisecond) it starts a rescue ([`watchdog::Rescue`]): a task, which another worker
//! can take, that drains the rest of the batch alongside. So the calls read with a slow handler
//! wait about a millisecond for it, and other reads not at all. A batch that spends its task's
//! cooperative budget goes on in a new task, and a panic in one first poll (outside the
//! handler's own, which fails its call) ends that task only, as it would in a task of its own.

use super::watchdog;
use crate::sync::lock;
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio_util::task::TaskTracker;

/// A handler's task, boxed to be held in a batch.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The tasks collected so far in the read in progress on this thread.
struct Collecting {
    tasks: Vec<Task>,
    /// The tracker the tasks belong to (that of the server whose connection is read).
    tracker: Option<TaskTracker>,
    /// Whether the read holds bytes after the frame being handled: another request may follow.
    more: bool,
}

thread_local! {
    static OPEN: RefCell<Option<Collecting>> = const { RefCell::new(None) };
}

/// A read in progress on this thread: handler tasks spawned until it is dropped are collected,
/// and then spawned together. Not `Send`: it must not be held across an `.await`.
#[derive(Debug)]
pub(crate) struct Open {
    /// False for a read that collects nothing, or that began while another was open on this
    /// thread (which collects).
    owner: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Open {
    /// Starts collecting on this thread, if `collect`: a reader whose frames start no handlers
    /// (a client's) opens an `Open` that does nothing, at no cost per frame.
    pub(crate) fn begin(collect: bool) -> Open {
        let owner = collect
            && OPEN.with(|open| {
                let mut open = open.borrow_mut();
                if open.is_some() {
                    return false;
                }
                *open = Some(Collecting { tasks: Vec::new(), tracker: None, more: false });
                true
            });
        Open { owner, _not_send: std::marker::PhantomData }
    }

    /// Says whether the read holds more bytes after the frame about to be handled. A request
    /// with nothing after it, and no task collected before it, is spawned at once, unboxed.
    pub(crate) fn more(&self, more: bool) {
        if self.owner {
            OPEN.with(|open| {
                if let Some(collecting) = open.borrow_mut().as_mut() {
                    collecting.more = more;
                }
            });
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let Some(Collecting { tasks, tracker: Some(tracker), .. }) = OPEN.with(|open| open.borrow_mut().take()) else {
            return;
        };
        match <[Task; 1]>::try_from(tasks) {
            Ok([task]) => drop(tracker.spawn(task)),
            Err(tasks) if tasks.is_empty() => {}
            Err(tasks) => {
                let batch = Arc::new(Batch { tasks: Mutex::new(tasks.into_iter()), tracker: tracker.clone() });
                drop(tracker.spawn(async move { batch.drain() }));
            }
        }
    }
}

/// Spawns `task` on `tracker`, or, while a read is open on this thread, adds it to the read's
/// batch.
pub(crate) fn spawn<F>(tracker: &TaskTracker, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let alone = OPEN.with(|open| {
        let mut open = open.borrow_mut();
        match open.as_mut() {
            Some(collecting) if collecting.more || !collecting.tasks.is_empty() => {
                if collecting.tasks.is_empty() {
                    collecting.tasks.reserve(16);
                }
                let batch_tracker = collecting.tracker.get_or_insert_with(|| tracker.clone());
                // One read is one connection's, of one server.
                debug_assert!(TaskTracker::ptr_eq(batch_tracker, tracker), "a batch mixes two servers' tasks");
                collecting.tasks.push(Box::pin(task));
                None
            }
            _ => Some(task),
        }
    });
    if let Some(task) = alone {
        drop(tracker.spawn(task));
    }
}

/// The tasks of one read not yet polled.
struct Batch {
    tasks: Mutex<std::vec::IntoIter<Task>>,
    tracker: TaskTracker,
}

impl Batch {
    /// Polls each task left once, and spawns those that wait. The batch's own task runs this,
    /// and so does a rescue: each task is taken by one of them.
    fn drain(self: &Arc<Self>) {
        // Lets the watchdog hand the rest of the batch to a rescue while this drain runs long.
        let _draining = watchdog::Draining::enter(self.clone());
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if !tokio::task::coop::has_budget_remaining() {
                // Every task polled now would return `Pending` at once: the rest goes on in a
                // task of its own, with a budget of its own.
                let rest = self.clone();
                drop(self.tracker.spawn(async move { rest.drain() }));
                return;
            }
            let next = lock(&self.tasks).next();
            let Some(mut task) = next else { return };
            // The first poll registers a waker that wakes nothing: the spawned task's own first
            // poll registers its own, as every future must expect. A panic (the handler's own is
            // caught inside its task) ends this task alone, as tokio would end a task of its own.
            match std::panic::catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut cx))) {
                Ok(Poll::Ready(())) => {}
                Ok(Poll::Pending) => drop(self.tracker.spawn(task)),
                Err(_) => {
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop(task)));
                }
            }
        }
    }
}

impl watchdog::Rescue for Batch {
    fn rescue(self: Arc<Self>, runtime: &tokio::runtime::Handle) {
        let tracker = self.tracker.clone();
        let tracked = tracker.track_future(async move { self.drain() });
        // Spawned from the watchdog's thread: tokio queues it where any worker takes it. (A
        // runtime that has shut down drops it here; the watchdog survives a panic in that.)
        drop(runtime.spawn(tracked));
    }
}
