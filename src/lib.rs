//! # poolscope
//!
//! Production observability for Rust worker pools that costs nothing when it
//! is off.
//!
//! Annotate pool and worker functions with [`observe`], turn instrumentation
//! on with a Cargo feature, and get telemetry [`events`], Prometheus metrics
//! (the `metrics` module) and [`correlation`] ids. With no aspect
//! feature on, `#[observe]` hands the function back with only a type check
//! of its argument expressions that never runs, and every runtime type is
//! zero-sized: the machine code is the one you would have built without
//! poolscope. The parts (the Prometheus sink, the HTTP server, logs, the
//! queue) work in that build too, for the application's own metrics and
//! lines.
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `timing` | duration, outcome counters, fixed-bucket histograms per call site |
//! | `correlation` | correlation-id scopes, inherited by nested calls and across `.await` |
//! | `errors` | structured error capture: `Display`, source chain, type name, panics |
//! | `observe` | all three aspects |
//! | `metrics` (default) | the Prometheus sink (`metrics-exporter-prometheus`), the `metrics` macros re-exported |
//! | `queue` (default) | the observed bounded queue (`queue::channel`) |
//! | `http` | the HTTP server: `/health`, `/health/ready`, `/health/detailed`, `/metrics` |
//! | `config` | one `Config` from TOML and `POOLSCOPE_...` variables, reloaded live |
//! | `jemalloc` | jemalloc as an opt-in global allocator, its statistics as gauges |
//! | `dashboard` | the live dashboard at `/dashboard`, streamed over Server-Sent Events (brings `http`) |
//! | `logging` | structured logs on `tracing`: JSON or human, correlation ids, sampling, sanitized |
//! | `grpc` | `tonic::Status` captured as structured error context |
//! | `process` | worker processes bound to the host's life, their stderr read into the host's logs |
//!
//! Libraries depend on poolscope with no aspect feature; applications turn
//! them on.
//!
//! ## `#[observe]` arguments
//!
//! | argument | meaning |
//! |---|---|
//! | `name = "..."` | the name in events (default: the function's path) |
//! | `kind = request \| pool_start \| worker_start \| session_create` | which catalogue event the call produces (default `request`) |
//! | `pool = <expr>` | pool label: a literal, or a `const` `&str` named in SCREAMING_CASE (`pool = POOL`), costs nothing per call; another expression implementing [`label::AsLabel`] is evaluated per call (pass a [`Label`] to avoid the interner) |
//! | `command = <expr>` | command label (requests; default: the function's name) |
//! | `worker = <expr>` | worker id (`Display`), for events |
//! | `correlation = <expr>` | adopt a correlation id ([`correlation::IntoCorrelation`]), e.g. from a request header |
//! | `size = <expr>` | pool size, for `pool.started` |
//! | `ttl = <expr>` | session time to live (`Duration`), for `session.created` |
//! | `skip(a, b)` / `skip_all` | arguments never formatted into events |
//! | `labels(tier = "gold")` | extra metric labels on the call site's series: names not set by poolscope, values string literals (so the number of series stays bounded), at most 8 |
//!
//! ```
//! use poolscope::observe;
//!
//! #[derive(Debug)]
//! struct Failed;
//! impl std::fmt::Display for Failed {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") }
//! }
//! impl std::error::Error for Failed {}
//!
//! #[observe(pool = "python", command = "echo", skip(token))]
//! fn execute(payload: &str, token: &str) -> Result<String, Failed> {
//!     if payload.is_empty() { Err(Failed) } else { Ok(payload.to_owned()) }
//! }
//!
//! assert_eq!(execute("hi", "secret").unwrap(), "hi");
//! ```
#![warn(missing_docs)]

extern crate self as poolscope;

pub use poolscope_macros::observe;
pub use poolscope_runtime::{
    alerts, buckets, catalogue, clock, compiled_in, correlation, error, events, is_enabled, label,
    sanitize, set_enabled, stats, BusyGuard, Kind, Label, Outcome, Pool, PoolBuilder, Worker,
    WorkerState, COMPILED_IN, DEFAULT_SATURATION_HOLD,
};

#[cfg(feature = "metrics")]
pub use poolscope_runtime::memory;
#[cfg(feature = "metrics")]
pub use poolscope_runtime::metrics;

#[cfg(feature = "http")]
pub use poolscope_runtime::http;
/// Serves every compiled-in endpoint in one call; see [`http::serve`].
#[cfg(feature = "http")]
pub use poolscope_runtime::http::serve;

#[cfg(feature = "config")]
pub use poolscope_runtime::config;

#[cfg(feature = "logging")]
pub use poolscope_runtime::logging;

#[cfg(feature = "process")]
pub use poolscope_runtime::process;

#[cfg(feature = "queue")]
pub use poolscope_runtime::queue;

#[doc(hidden)]
pub mod __private {
    #[allow(unused_imports)] // empty when no aspect is compiled in
    pub use poolscope_runtime::__private::*;
}
