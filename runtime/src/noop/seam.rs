//! The one surface the sinks (the HTTP server, the dashboard, logs, the
//! Prometheus sink, memory readings) and the building blocks read the
//! runtime core through, beyond the public API. `imp/seam.rs` has the same
//! names, so a sink compiles the same against either runtime; each name
//! exists only with the sinks that use it.

#[cfg(feature = "http")]
pub(crate) use super::alerts::readiness_failures;
#[cfg(any(feature = "logging", feature = "dashboard"))]
pub(crate) use super::events::subscribe_with;
#[cfg(feature = "metrics")]
pub(crate) use super::exposition::render_pools;
#[cfg(feature = "metrics")]
pub(crate) use super::exposition::render_series;
#[cfg(any(feature = "metrics", feature = "aspects"))]
pub(crate) use super::pool::note_resident;
#[cfg(feature = "queue")]
pub(crate) use super::queue::{Stamp, Ticket, Tracker};
pub(crate) use super::{panic_hook, panic_location};
