//! The runtime with no aspect compiled in: the same API on zero-sized types
//! with empty bodies, so code written against poolscope compiles unchanged and
//! the optimizer removes every call.

pub(crate) mod alerts;
pub(crate) mod correlation;
pub(crate) mod events;
#[cfg(feature = "metrics")]
pub(crate) mod exposition;
pub(crate) mod pool;
pub(crate) mod private;
#[cfg(feature = "queue")]
pub(crate) mod queue;
pub(crate) mod stats;
pub(crate) mod worker;

pub use pool::{BusyGuard, Pool, PoolBuilder, Worker};

/// Does nothing: no aspect is compiled in.
#[inline(always)]
pub fn set_enabled(_on: bool) {}

/// Always `false`: no aspect is compiled in.
#[inline(always)]
pub fn is_enabled() -> bool {
    false
}

/// Nothing to install.
#[inline(always)]
pub(crate) fn panic_hook() {}

/// Never known: no panic hook.
#[inline(always)]
pub(crate) fn panic_location() -> Option<String> {
    None
}
