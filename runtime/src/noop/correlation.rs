//! No correlation scope: nothing is current.

use crate::model::correlation::CorrelationId;
use std::future::Future;

/// Always `None`: no aspect is compiled in.
#[inline(always)]
pub fn current() -> Option<CorrelationId> {
    None
}

/// Runs `f`.
#[inline(always)]
pub fn with_id<R>(_id: CorrelationId, f: impl FnOnce() -> R) -> R {
    f()
}

/// The future itself.
pub type Bound<F> = F;

/// Returns `future` unchanged.
#[inline(always)]
pub fn bind<F: Future>(_id: Option<CorrelationId>, future: F) -> Bound<F> {
    future
}
