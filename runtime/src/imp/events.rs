pub use super::call::set_worker;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::model::correlation::CorrelationId;
use crate::model::events::Event;

type Handler = Arc<dyn Fn(&Event) + Send + Sync>;

pub(crate) use crate::model::events::Interest;

struct Entry {
    id: usize,
    interest: Interest,
    handler: Handler,
}

static HANDLERS: RwLock<Vec<Entry>> = RwLock::new(Vec::new());
// Read on every observed call, so that with no subscriber no event is even
// built; kept apart from the lock so that a read is one relaxed load.
static ALL: AtomicUsize = AtomicUsize::new(0);
static LOGS: AtomicUsize = AtomicUsize::new(0);
static ANY: AtomicUsize = AtomicUsize::new(0);
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
    subscribe_with(Interest::All, Arc::new(handler))
}

pub(crate) fn subscribe_with(interest: Interest, handler: Handler) -> Subscription {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut handlers = HANDLERS.write().unwrap_or_else(|e| e.into_inner());
    handlers.push(Entry {
        id,
        interest,
        handler,
    });
    recount(&handlers);
    Subscription { id }
}

/// Whether `interest` is the log sink's (there is none without logging).
fn is_logs(interest: Interest) -> bool {
    match interest {
        #[cfg(feature = "logging")]
        Interest::Logs => true,
        _ => false,
    }
}

fn recount(handlers: &[Entry]) {
    let all = handlers
        .iter()
        .filter(|e| e.interest == Interest::All)
        .count();
    let logs = handlers.iter().filter(|e| is_logs(e.interest)).count();
    ALL.store(all, Ordering::Relaxed);
    LOGS.store(logs, Ordering::Relaxed);
    ANY.store(handlers.len(), Ordering::Relaxed);
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
        recount(&handlers);
    }
}

/// Whether any handler is subscribed: the gate before building an event
/// that is not request-shaped (pool, worker, session, alert events are rare).
#[inline(always)]
pub(crate) fn active() -> bool {
    ANY.load(Ordering::Relaxed) != 0
}

/// Whether someone wants the request events of a call that succeeds: a
/// subscriber, or the log sink while `info` lines get through.
#[inline(always)]
pub(crate) fn wants_requests() -> bool {
    ALL.load(Ordering::Relaxed) != 0 || (LOGS.load(Ordering::Relaxed) != 0 && info_enabled())
}

#[cfg(feature = "logging")]
#[inline(always)]
fn info_enabled() -> bool {
    tracing::level_enabled!(tracing::Level::INFO)
}

#[cfg(not(feature = "logging"))]
#[inline(always)]
fn info_enabled() -> bool {
    false
}

/// Sampling of request events (and so of request log lines): a request is
/// kept when its hash falls under this threshold. `u64::MAX` keeps all.
static SAMPLE_BELOW: AtomicU64 = AtomicU64::new(u64::MAX);

/// Keeps `rate` (0 to 1) of requests' `request.started` and
/// `request.completed` events, and so of their log lines. A request is kept
/// or dropped whole, by its correlation id when it has one. Failures are
/// never sampled away: a failed request's completion is always emitted.
/// Out-of-range rates are clamped.
///
/// ```
/// poolscope_runtime::events::set_sample_rate(0.1);
/// assert!((poolscope_runtime::events::sample_rate() - 0.1).abs() < 1e-9);
/// poolscope_runtime::events::set_sample_rate(1.0);
/// ```
pub fn set_sample_rate(rate: f64) {
    let rate = if rate.is_nan() {
        1.0
    } else {
        rate.clamp(0.0, 1.0)
    };
    let below = if rate >= 1.0 {
        u64::MAX
    } else {
        (rate * u64::MAX as f64) as u64
    };
    SAMPLE_BELOW.store(below, Ordering::Relaxed);
}

/// The request sampling rate in force.
pub fn sample_rate() -> f64 {
    match SAMPLE_BELOW.load(Ordering::Relaxed) {
        u64::MAX => 1.0,
        below => below as f64 / u64::MAX as f64,
    }
}

/// Whether this request's events are kept.
#[inline(always)]
pub(crate) fn sampled(correlation: Option<CorrelationId>) -> bool {
    let below = SAMPLE_BELOW.load(Ordering::Relaxed);
    if below == u64::MAX {
        return true;
    }
    let hash = match correlation {
        // Ids are counters in their low half: mix before comparing.
        Some(id) => mix(id.as_u128() as u64 ^ (id.as_u128() >> 64) as u64),
        None => {
            thread_local! {
                static STATE: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
            }
            STATE.with(|s| {
                let next = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
                s.set(next);
                mix(next)
            })
        }
    };
    hash < below
}

/// SplitMix64's finalizer: spreads nearby inputs over the whole range.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
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
    use crate::interner::Label;
    use crate::model::events::{PoolSaturated, SessionCleanup};
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
        assert!(active() && wants_requests());
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

#[cfg(test)]
mod sampling_tests {
    use super::*;

    #[test]
    fn sampling_keeps_about_the_rate_and_a_request_whole() {
        set_sample_rate(0.25);
        let kept = (0..100_000u128)
            .filter(|i| sampled(Some(CorrelationId::from_u128((7 << 64) | i))))
            .count();
        assert!((23_000..27_000).contains(&kept), "{kept}");
        let id = Some(CorrelationId::from_u128(12345));
        assert_eq!(
            sampled(id),
            sampled(id),
            "the same request is always kept or dropped"
        );
        set_sample_rate(1.0);
        assert!(sampled(None) && sample_rate() == 1.0);
        set_sample_rate(f64::NAN);
        assert_eq!(sample_rate(), 1.0);
    }
}
