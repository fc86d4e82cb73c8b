//! The worker a body names once it knows it (`events::set_worker`), for a
//! pool that picks the worker after the request began. It waits in a
//! thread-local slot behind a flag, so a call that names none reads one
//! flag and nothing else.

use std::fmt::Display;

thread_local! {
    /// The worker named by [`set_worker`] in the body running on this
    /// thread, for the observed call that completes next here.
    static WORKER: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// Whether [`WORKER`] holds one: the only thing a call that named no
    /// worker reads (one flag, no destructor, no borrow), so the hot path
    /// stays as it was.
    static WORKER_SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Takes the worker named on this thread, if any.
#[inline(always)]
pub(super) fn take_worker() -> Option<String> {
    if !WORKER_SET.try_with(std::cell::Cell::get).unwrap_or(false) {
        return None;
    }
    take_named_worker()
}

#[cold]
#[inline(never)]
fn take_named_worker() -> Option<String> {
    let _ = WORKER_SET.try_with(|set| set.set(false));
    WORKER
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
}

/// Names `worker` for the observed call that completes next on this thread.
#[cold]
pub(super) fn put_worker(worker: String) {
    if WORKER
        .try_with(|slot| *slot.borrow_mut() = Some(worker))
        .is_ok()
    {
        let _ = WORKER_SET.try_with(|set| set.set(true));
    }
}

/// Names the worker that runs the observed request this code runs in: its
/// `request.completed` event (and log line) carries it, sampled or not.
/// For a pool that picks the worker after the request began (a queue, a
/// dispatcher), where `#[observe(worker = ..)]`, read at entry, cannot
/// know it: call it in the observed function's body once the worker is
/// known, e.g. with the reply. Call it in the observed function's own
/// body: a sync function's worker goes to the next observed call that
/// completes on the thread (so name it after calling other observed
/// functions, not before), an async function's to the call whose poll named
/// it.
pub fn set_worker<W: Display + ?Sized>(worker: &W) {
    if crate::imp::is_enabled() {
        put_worker(worker.to_string());
    }
}
