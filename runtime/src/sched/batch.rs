//! The handler tasks that one read of a connection starts, first polled together on the
//! reader's own task.
//!
//! A connection's reader often finds many requests in one read. Spawned one task each, they
//! cost a task apiece, and from the second on they wake an idle worker (tokio's LIFO slot holds
//! one task: the next spawn pushes it to the run queue and wakes a parked worker to steal it),
//! which then takes half of them and sends their replies from another thread. Instead, the
//! reader collects the tasks of a read ([`Open`]), a few at a time ([`BATCH_MAX`]: the reader
//! stops handling the read's frames while a full batch runs), and polls each of them once itself
//! ([`Ready::run_here`]); a handler that answers at once never becomes a task of its own, and one
//! that waits is spawned then. A read that starts one call spawns it as
//! before. Polling on the reader, rather than in a task spawned for the batch, keeps each
//! handler's allocations on the thread that made them: a batch task that another worker took
//! freed them there, and the two threads then contended for glibc's arena lock (a futex call
//! per read) and split each read's replies over two writes.
//!
//! A handler that computes for long in its first poll, or many that each take a while, would
//! hold up the handlers after them in the batch, and the reading of the connection. The
//! watchdog samples the batch being drained as it samples handler polls, and when the same
//! drain has been running for a whole period (about a millisecond) it starts a rescue
//! ([`watchdog::Rescue`]): a task, which another worker can take, that drains the rest of the
//! batch alongside, and a rescue of the connection's reading: a new task that reads it on (the
//! reader's state is kept where that task can take it). So the calls read with a slow handler
//! wait about a millisecond for it, later ones on its connection as long, and other reads not
//! at all. A batch that spends its task's cooperative budget goes on in a new task, and a panic
//! in one first poll (outside the handler's own, which fails its call) ends that poll's task
//! only, as it would in a task of its own.

use super::watchdog;
use crate::sync::lock;
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio_util::task::TaskTracker;

/// The most tasks a batch collects. Their boxes are all alive from the first one's collection to
/// their first polls: a batch of a few lets the allocator hand the same few blocks round
/// (glibc's per-thread cache holds 7 of each size), where a batch of a read of dozens of
/// requests took each block from the arena, under its lock, and freed it there.
const BATCH_MAX: usize = 6;

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

/// A read in progress on this thread: handler tasks spawned until it is finished are collected,
/// to be first polled together. Not `Send`: it must not be held across an `.await`.
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

    /// Whether the read has collected as many tasks as a batch takes: the reader then hands the
    /// batch over ([`Open::finish`]) and handles the rest of what it read after it.
    pub(crate) fn is_full(&self) -> bool {
        self.owner
            && OPEN.with(|open| open.borrow().as_ref().is_some_and(|collecting| collecting.tasks.len() >= BATCH_MAX))
    }

    /// Ends the read: a task collected alone is spawned, and two or more are handed back, for
    /// the reader to run their first polls ([`Ready::run_here`]) or spawn them ([`Ready::spawn`]).
    pub(crate) fn finish(mut self) -> Ready {
        let collected = self.take();
        // Nothing left for `drop` to spawn.
        self.owner = false;
        Ready(collected.and_then(|(tasks, tracker)| batch(tasks, tracker)))
    }

    /// The tasks collected, and their tracker, if this read collected any.
    fn take(&mut self) -> Option<(Vec<Task>, TaskTracker)> {
        if !self.owner {
            return None;
        }
        match OPEN.with(|open| open.borrow_mut().take()) {
            Some(Collecting { tasks, tracker: Some(tracker), .. }) => Some((tasks, tracker)),
            _ => None,
        }
    }
}

/// The batch of `tasks`, if there are two or more; a task alone is spawned at once.
fn batch(tasks: Vec<Task>, tracker: TaskTracker) -> Option<Arc<Batch>> {
    match <[Task; 1]>::try_from(tasks) {
        Ok([task]) => {
            drop(tracker.spawn(task));
            None
        }
        Err(tasks) if tasks.is_empty() => None,
        Err(tasks) => Some(Arc::new(Batch { tasks: Mutex::new(tasks.into_iter()), tracker, reading: None })),
    }
}

impl Drop for Open {
    /// A read that ends without [`finish`](Open::finish) (its connection closed) spawns what it
    /// collected.
    fn drop(&mut self) {
        if let Some((tasks, tracker)) = self.take() {
            Ready(batch(tasks, tracker)).spawn();
        }
    }
}

/// The first polls of a read's handlers, to run or to spawn; spawned if dropped.
#[derive(Debug)]
pub(crate) struct Ready(Option<Arc<Batch>>);

impl Ready {
    /// Whether there is a batch to run.
    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// Runs the first polls in a task of their own.
    pub(crate) fn spawn(mut self) {
        if let Some(batch) = self.0.take() {
            let tracker = batch.tracker.clone();
            drop(tracker.spawn(async move { batch.drain() }));
        }
    }

    /// Runs the first polls here, on the reader's task, which then reads on: the handlers are
    /// made, run and freed on the thread that read them, with no task in between. Should one
    /// first poll take long, the watchdog's rescue spawns a task that drains the rest, and
    /// rescues `reading`, which starts another task reading the connection, so that neither the
    /// calls read with it nor the connection wait for it.
    pub(crate) fn run_here(mut self, reading: Arc<dyn watchdog::Rescue>) {
        if let Some(mut batch) = self.0.take() {
            // Not shared yet: the batch is set up without a lock (a `OnceLock` cost about 2 %
            // of a busy server's time).
            let unshared = Arc::get_mut(&mut batch);
            debug_assert!(unshared.is_some(), "a batch is shared before it runs: its reading cannot be rescued");
            if let Some(unshared) = unshared {
                unshared.reading = Some(reading);
            }
            batch.drain();
        }
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        if self.0.is_some() {
            Ready(self.0.take()).spawn();
        }
    }
}

/// Spawns `task` on `tracker`, or, while a read is open on this thread, adds it to the read's
/// batch.
#[inline]
pub(crate) fn spawn<F>(tracker: &TaskTracker, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    // Decided first, and the task moved only once it is known where it goes: a handler's task
    // is large (about 900 bytes), and moving it into the closure below and out again copied it
    // twice more (`memmove` was about 5 % of a busy server's time).
    let collect = OPEN
        .with(|open| open.borrow().as_ref().is_some_and(|collecting| collecting.more || !collecting.tasks.is_empty()));
    if !collect {
        drop(tracker.spawn(task));
        return;
    }
    let task: Task = Box::pin(task);
    let alone = OPEN.with(|open| match open.borrow_mut().as_mut() {
        Some(collecting) => {
            if collecting.tasks.is_empty() {
                collecting.tasks.reserve(BATCH_MAX);
            }
            let batch_tracker = collecting.tracker.get_or_insert_with(|| tracker.clone());
            // One read is one connection's, of one server.
            debug_assert!(TaskTracker::ptr_eq(batch_tracker, tracker), "a batch mixes two servers' tasks");
            collecting.tasks.push(task);
            None
        }
        // Not reached: nothing in between closes the read.
        None => Some(task),
    });
    if let Some(task) = alone {
        drop(tracker.spawn(task));
    }
}

/// The tasks of one read not yet polled.
struct Batch {
    tasks: Mutex<std::vec::IntoIter<Task>>,
    tracker: TaskTracker,
    /// Set when the batch runs on its reader's task: the connection's reading, to rescue too if
    /// the batch gets stuck there.
    reading: Option<Arc<dyn watchdog::Rescue>>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
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
        if let Some(reading) = &self.reading {
            reading.clone().rescue(runtime);
        }
        let tracker = self.tracker.clone();
        let tracked = tracker.track_future(async move { self.drain() });
        // Spawned from the watchdog's thread: tokio queues it where any worker takes it. (A
        // runtime that has shut down drops it here; the watchdog survives a panic in that.)
        drop(runtime.spawn(tracked));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_is_full_at_the_batch_limit_and_its_tasks_run_once_each() {
        let tracker = TaskTracker::new();
        let polled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open = Open::begin(true);
        open.more(true);
        for n in 0..BATCH_MAX {
            assert!(!open.is_full(), "full after {n} tasks");
            let polled = polled.clone();
            spawn(&tracker, async move {
                polled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        assert!(open.is_full());
        assert_eq!(polled.load(std::sync::atomic::Ordering::SeqCst), 0, "collected, not run");
        let ready = open.finish();
        assert!(ready.is_some());
        ready.spawn();
        tracker.close();
        tracker.wait().await;
        assert_eq!(polled.load(std::sync::atomic::Ordering::SeqCst), BATCH_MAX);
        assert!(!Open::begin(false).is_full(), "a reader that collects nothing is never full");
    }
}
