use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::types::events::Event;

type Handler = Arc<dyn Fn(&Event) + Send + Sync>;

struct Entry {
    id: usize,
    handler: Handler,
}

static HANDLERS: RwLock<Vec<Entry>> = RwLock::new(Vec::new());
// Read on every observed call, so that with no subscriber no event is even
// built; kept apart from the lock so that read is one relaxed load.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// Calls `handler` with every event from now until the returned
/// [`Subscription`] is dropped.
///
/// Handlers run on the thread that produced the event, so they should be
/// quick (hand the event to a channel for slow work). A handler that panics
/// is contained: the panic is caught and the other handlers still run.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let subscription = poolscope_runtime::events::subscribe(move |event| {
///     sink.lock().unwrap().push(event.name());
/// });
/// drop(subscription);
/// ```
#[must_use = "the handler is removed when the subscription is dropped"]
pub fn subscribe(handler: impl Fn(&Event) + Send + Sync + 'static) -> Subscription {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut handlers = HANDLERS.write().unwrap_or_else(|e| e.into_inner());
    handlers.push(Entry {
        id,
        handler: Arc::new(handler),
    });
    COUNT.store(handlers.len(), Ordering::Relaxed);
    Subscription { id }
}

/// Keeps a handler subscribed; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    id: usize,
}

impl Subscription {
    /// Keeps the handler for the rest of the process.
    pub fn forever(self) {
        std::mem::forget(self);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut handlers = HANDLERS.write().unwrap_or_else(|e| e.into_inner());
        handlers.retain(|entry| entry.id != self.id);
        COUNT.store(handlers.len(), Ordering::Relaxed);
    }
}

/// Whether any handler is subscribed: the gate before building an event.
#[inline(always)]
pub(crate) fn active() -> bool {
    COUNT.load(Ordering::Relaxed) != 0
}

/// Hands `event` to every handler.
pub(crate) fn emit(event: Event) {
    let handlers: Vec<Handler> = {
        let guard = HANDLERS.read().unwrap_or_else(|e| e.into_inner());
        guard.iter().map(|entry| entry.handler.clone()).collect()
    };
    for handler in handlers {
        // Emitting can happen while a panic unwinds (an observed call that
        // panicked); a second panic there would abort the process.
        let _ = catch_unwind(AssertUnwindSafe(|| handler(&event)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::events::{PoolSaturated, SessionCleanup};
    use crate::types::label::Label;
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    fn saturated(pool: &'static str) -> Event {
        Event::PoolSaturated(PoolSaturated {
            at: SystemTime::now(),
            pool: Label::from_static(pool),
            queue_size: 1,
            available_workers: 0,
        })
    }

    #[test]
    fn handlers_see_events_until_unsubscribed_and_a_panicking_one_is_contained() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let keep = subscribe(move |e| {
            if e.pool()
                .is_some_and(|p| p.as_str().starts_with("events-unit"))
            {
                sink.lock().unwrap().push(e.pool().map(Label::as_str));
            }
        });
        let bad = subscribe(|e| {
            if e.pool().is_some_and(|p| p.as_str() == "events-unit-a") {
                panic!("handler bug");
            }
        });
        assert!(active());
        emit(saturated("events-unit-a"));
        drop(bad);
        drop(keep);
        emit(saturated("events-unit-b"));
        assert_eq!(*seen.lock().unwrap(), [Some("events-unit-a")]);
    }

    #[test]
    fn event_accessors_name_and_locate_the_event() {
        let e = Event::SessionCleanup(SessionCleanup {
            at: SystemTime::UNIX_EPOCH,
            pool: Label::from_static("p"),
            count: 3,
            duration: Duration::from_millis(1),
        });
        assert_eq!(
            (e.name(), e.at(), e.pool(), e.correlation_id()),
            (
                "session.cleanup",
                SystemTime::UNIX_EPOCH,
                Some(Label::from_static("p")),
                None
            )
        );
    }
}
