//! Panic messages for the `errors` aspect.
//!
//! A drop guard sees that a call unwinds but not why: the payload is only
//! visible to the panic hook. A hook installed once (chained in front of the
//! one in place, which still runs) leaves the message and location in a
//! thread-local for the guard to pick up.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

static ONCE: Once = Once::new();

#[inline(always)]
pub(crate) fn install_hook() {
    if !ONCE.is_completed() {
        install_slow();
    }
}

#[cold]
#[inline(never)]
fn install_slow() {
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = crate::model::error::Panicked::from_payload(info.payload()).message;
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let _ = LAST.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = Some((message, location));
                }
            });
            previous(info);
        }));
    });
}

/// The message and location of the panic now unwinding on this thread.
pub(crate) fn take() -> Option<(String, Option<String>)> {
    LAST.try_with(|last| last.try_borrow_mut().ok().and_then(|mut l| l.take()))
        .ok()
        .flatten()
}
