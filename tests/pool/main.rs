//! The observed call and the pool API: sync and async calls, the kinds,
//! error context, correlation and its W3C trace context, the building
//! blocks, saturation episodes.
//!
//! One binary, its tests in parallel: each captures its own pool's events
//! and reads its own series or a local recorder. None changes what is
//! process-wide (the switch, the sample rate, the label interner, the
//! recorder, the sanitizer); the tests that do are in binaries of their own.

mod async_fns;
#[cfg(feature = "queue")]
mod building_blocks;
mod correlation;
mod errors;
#[cfg(feature = "grpc")]
mod grpc;
mod kinds;
mod saturation;
mod sync;
mod trace_context;
