//! A lock that outlives a panic. Every mutex here guards plain data
//! (samples, rules, viewers) that a panicking holder cannot leave half
//! written in a way the next reader would misread, so a poisoned lock is
//! taken as it is rather than spreading the panic to every later caller.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, poisoned or not.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
