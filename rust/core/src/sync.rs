//! Locking that survives a panicking delegate.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poison: every critical section in this crate leaves its data
/// consistent at each step, and delegates never run under one, so a poisoned lock only
/// means some other thread panicked nearby.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
