//! A watchdog for handler polls that run for long: a CPU-bound handler must not leave the server
//! without a worker polling for I/O.
//!
//! Every handler poll is bracketed by [`Polling::enter`], which stamps the polling thread's slot
//! (two relaxed atomic stores, no clock read). A thread of its own samples every slot every
//! millisecond while handlers are being polled (backing off to 10 ms when none is): a slot that
//! shows the same poll in two samples in a row belongs to a worker stuck in one handler poll.
//! The watchdog then spawns an empty task on that worker's runtime from outside it; tokio queues
//! it on the shared injection queue and wakes an idle worker, which runs it, steals what waits
//! in the stuck worker's queue, and parks on the I/O driver, so connections are read again.
//! This is Go's `sysmon`, reduced to what tidl needs: it cannot stop the handler, only keep the
//! rest of the server going. A read's batch of first polls (`sched::batch`) is sampled the same
//! way: a drain still running a whole period later hands the rest of its batch to a task of its
//! own, which another worker can take.

use crate::sync::lock;
use std::cell::{Cell, OnceCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// How often the slots are sampled while handlers are being polled.
const BUSY_PERIOD: Duration = Duration::from_millis(1);

/// How often they are sampled when no handler poll was seen.
const IDLE_PERIOD: Duration = Duration::from_millis(10);

/// One thread's current handler poll.
#[derive(Debug)]
struct Slot {
    /// 0 when no handler poll runs on the thread, else a number unique to the poll.
    stamp: AtomicU64,
    /// The runtime the thread works for.
    runtime: tokio::runtime::Handle,
    /// The batch of first polls the thread is draining, if it is, under a number unique to the
    /// drain.
    draining: Mutex<Option<(u64, Arc<dyn Rescue>)>>,
}

/// Work that another task can take over from a thread stuck in a poll.
pub(crate) trait Rescue: Send + Sync {
    /// Spawns, on `runtime`, a task that takes over what is left.
    fn rescue(self: Arc<Self>, runtime: &tokio::runtime::Handle);
}

/// A batch of first polls being drained on this thread; ends when dropped.
#[derive(Debug)]
pub(crate) struct Draining(());

impl Draining {
    /// Marks `batch` as being drained on this thread: if the drain is still running a whole
    /// sampling period later, the watchdog calls its [`Rescue::rescue`].
    pub(crate) fn enter(batch: Arc<dyn Rescue>) -> Draining {
        SLOT.with(|slot| {
            if let Some(slot) = slot.get_or_init(register) {
                let n = next_number();
                *lock(&slot.draining) = Some((n, batch));
            }
        });
        Draining(())
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        SLOT.with(|slot| {
            if let Some(Some(slot)) = slot.get() {
                lock(&slot.draining).take();
            }
        });
    }
}

impl std::fmt::Debug for dyn Rescue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rescue")
    }
}

/// The slots of every thread that has polled a handler.
static SLOTS: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

/// Started with the first slot.
static WATCHDOG: OnceLock<()> = OnceLock::new();

thread_local! {
    static SLOT: OnceCell<Option<Arc<Slot>>> = const { OnceCell::new() };
    /// Numbers this thread's polls and drains.
    static POLLS: Cell<u64> = const { Cell::new(0) };
}

/// A handler poll in progress on this thread; ends when dropped.
#[derive(Debug)]
pub(crate) struct Polling(());

impl Polling {
    /// Marks the start of a handler poll on this thread.
    pub(crate) fn enter() -> Polling {
        SLOT.with(|slot| {
            if let Some(slot) = slot.get_or_init(register) {
                let n = next_number();
                slot.stamp.store(n, Ordering::Relaxed);
            }
        });
        Polling(())
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        SLOT.with(|slot| {
            if let Some(Some(slot)) = slot.get() {
                slot.stamp.store(0, Ordering::Relaxed);
            }
        });
    }
}

/// A number for a poll or a drain on this thread, never 0, and not the last one's.
#[inline]
fn next_number() -> u64 {
    POLLS.with(|polls| {
        let n = polls.get().wrapping_add(1).max(1);
        polls.set(n);
        n
    })
}

/// This thread's slot, registered with the watchdog; `None` outside a multi-thread runtime,
/// where there is no other worker to wake.
fn register() -> Option<Arc<Slot>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return None;
    }
    let slot = Arc::new(Slot { stamp: AtomicU64::new(0), runtime, draining: Mutex::new(None) });
    lock(&SLOTS).push(Arc::downgrade(&slot));
    WATCHDOG.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("tidl-watchdog".to_owned()).spawn(watch);
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start tidl's watchdog thread; a handler that computes \
                without awaiting may delay other connections");
        }
    });
    Some(slot)
}

/// The watchdog thread: samples the slots for ever.
fn watch() {
    // Per slot (by address), the stamp seen at the last sample, whether it was acted on, and the
    // drain seen at the last sample.
    let mut seen: Vec<(Weak<Slot>, u64, bool, u64)> = Vec::new();
    loop {
        let mut busy = false;
        {
            let mut slots = lock(&SLOTS);
            slots.retain(|slot| slot.strong_count() > 0);
            seen.retain(|(slot, ..)| slot.strong_count() > 0);
            for weak in slots.iter() {
                if !seen.iter().any(|(s, ..)| s.ptr_eq(weak)) {
                    seen.push((weak.clone(), 0, false, 0));
                }
            }
        }
        for (weak, last, kicked, last_drain) in &mut seen {
            let Some(slot) = weak.upgrade() else { continue };
            let stamp = slot.stamp.load(Ordering::Relaxed);
            if stamp != 0 {
                busy = true;
                if stamp == *last && !*kicked {
                    // The same poll for a whole period: wake another worker.
                    drop(slot.runtime.spawn(async {}));
                    *kicked = true;
                }
            }
            // The same drain of a batch for a whole period: the rest of the batch goes on in a
            // task that another worker can take.
            let stuck = {
                let mut draining = lock(&slot.draining);
                let drain = draining.as_ref().map_or(0, |(n, _)| *n);
                let stuck = drain != 0 && drain == *last_drain;
                *last_drain = drain;
                if drain != 0 {
                    busy = true;
                }
                if stuck { draining.take() } else { None }
            };
            if let Some((_, batch)) = stuck {
                // Spawning may drop the batch here (a runtime that has shut down drops what is
                // spawned on it), and with it handlers' futures: their panics must not end the
                // watchdog.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch.rescue(&slot.runtime)));
            }
            if stamp != *last {
                *kicked = false;
            }
            *last = stamp;
        }
        std::thread::sleep(if busy { BUSY_PERIOD } else { IDLE_PERIOD });
    }
}
