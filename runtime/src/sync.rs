//! The one lock idiom of the crate.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, carrying on if a panic poisoned it.
///
/// Every critical section in this crate leaves its data consistent at every step (a panic inside
/// one can only come from an allocation failure or a bug in tidl), so a poisoned lock still
/// guards valid data, and one panicking task must not take a whole connection down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
