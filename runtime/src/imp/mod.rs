//! The real runtime, compiled when at least one aspect feature is on.

use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) mod buckets;
mod call;
#[cfg(feature = "timing")]
mod clock;
pub(crate) mod correlation;
pub(crate) mod events;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod panic;
mod pool;
pub(crate) mod private;
mod series;
pub(crate) mod stats {
    pub use super::series::snapshot;
}

pub use pool::{Pool, PoolBuilder, Worker};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Switches recording on or off at run time, without a rebuild.
///
/// While off, an observed call costs one relaxed atomic load and the
/// imperative pool API records nothing. On by default.
///
/// ```
/// poolscope_runtime::set_enabled(false);
/// assert!(!poolscope_runtime::is_enabled());
/// poolscope_runtime::set_enabled(true);
/// ```
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether recording is on; see [`set_enabled`].
#[inline(always)]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
