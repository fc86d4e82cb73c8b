//! The one surface the sinks (the HTTP server, the dashboard, logs, the
//! Prometheus sink, memory readings) and the building blocks read the
//! runtime core through, beyond the public API. It names `imp`, which is
//! the real runtime or the no-op one: both define every name here, so a
//! sink compiles the same against either. Each name exists only with the
//! sinks that use it.

#[cfg(feature = "http")]
pub(crate) use crate::imp::alerts::readiness_failures;
#[cfg(any(feature = "logging", feature = "dashboard"))]
pub(crate) use crate::imp::events::subscribe_with;
#[cfg(feature = "metrics")]
pub(crate) use crate::imp::exposition::render_pools;
#[cfg(feature = "metrics")]
pub(crate) use crate::imp::exposition::render_series;
#[cfg(any(feature = "metrics", feature = "aspects"))]
pub(crate) use crate::imp::pool::note_resident;
#[cfg(feature = "queue")]
pub(crate) use crate::imp::queue::{Stamp, Ticket, Tracker};
pub(crate) use crate::imp::{panic_hook, panic_location};
