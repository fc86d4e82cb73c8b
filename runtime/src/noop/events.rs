//! No events: handlers are dropped at once.

use crate::model::events::{Event, Interest};

/// Drops `handler`: with no aspect compiled in there are no events.
#[inline(always)]
pub fn subscribe(handler: impl Fn(&Event) + Send + Sync + 'static) -> Subscription {
    subscribe_with(Interest::All, std::sync::Arc::new(handler))
}

/// Drops `handler`: there are no events.
pub(crate) fn subscribe_with(
    _interest: Interest,
    handler: std::sync::Arc<dyn Fn(&Event) + Send + Sync>,
) -> Subscription {
    drop(handler);
    Subscription
}

/// Does nothing: there are no events to sample.
#[inline(always)]
pub fn set_sample_rate(_rate: f64) {}

/// Does nothing: there are no events.
#[inline(always)]
pub fn set_worker<W: std::fmt::Display + ?Sized>(_worker: &W) {}

/// Always 1.
#[inline(always)]
pub fn sample_rate() -> f64 {
    1.0
}

/// A subscription that holds nothing.
#[derive(Debug)]
pub struct Subscription;

impl Subscription {
    /// Does nothing.
    #[inline(always)]
    pub fn forever(self) {}
}
