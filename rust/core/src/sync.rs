//! Locking that survives a panicking delegate.

use std::sync::{Mutex, MutexGuard, TryLockError};

/// Locks `m`, ignoring poison: every critical section in this crate leaves its data
/// consistent at each step, and delegates never run under one (sinks run under
/// `RemoteStream`'s `delivering`, which guards no data), so a poisoned lock only means some
/// other thread panicked nearby.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `lock`, unless another holder has `m` (or this thread does): then None.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}
