//! The real runtime, compiled when at least one aspect feature is on.

use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) mod alerts;
mod call;
#[cfg(feature = "timing")]
mod clock;
pub(crate) mod correlation;
pub(crate) mod events;
#[cfg(feature = "metrics")]
pub(crate) mod exposition;
mod panic;
pub(crate) mod pool;
mod pool_state;
pub(crate) mod private;
#[cfg(feature = "queue")]
pub(crate) mod queue;
pub(crate) mod series;
pub(crate) mod worker;
pub(crate) mod stats {
    pub use super::series::snapshot;
    use crate::model::stats::PoolSnapshot;

    /// Every pool known to poolscope — built with `Pool`, or seen in an
    /// observed request — with its state and its requests, in name order.
    pub fn pools() -> Vec<PoolSnapshot> {
        let mut states = super::pool::pool_states();
        let mut labels: Vec<_> = states.iter().map(|s| s.pool).collect();
        labels.extend(super::series::request_pools());
        labels.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        labels.dedup();
        labels
            .into_iter()
            .map(|pool| PoolSnapshot {
                pool,
                state: states
                    .iter()
                    .position(|s| s.pool == pool)
                    .map(|i| states.swap_remove(i)),
                requests: super::series::request_totals(pool),
            })
            .collect()
    }
}

pub use pool::{BusyGuard, Pool, PoolBuilder, Worker};

/// Installs the hook that sees a panic's location (with `errors`).
#[inline]
pub(crate) fn panic_hook() {
    if cfg!(feature = "errors") {
        panic::install_hook();
    }
}

/// The location of the panic just caught on this thread, unless an observed
/// call inside the job took it first.
pub(crate) fn panic_location() -> Option<String> {
    panic::take().and_then(|(_, location)| location)
}

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
