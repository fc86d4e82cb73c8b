//! The runtime half of poolscope: events, correlation ids, call-site
//! statistics, the imperative pool API and the Prometheus sink.
//!
//! Users depend on the `poolscope` facade, which re-exports this crate and the
//! `#[observe]` attribute and forwards the aspect features. With no aspect
//! feature (`timing`, `correlation`, `errors`) on, every handle here is a
//! zero-sized type whose methods are empty `#[inline(always)]` bodies, so code
//! written against poolscope compiles unchanged and costs nothing.
#![warn(missing_docs)]
#![cfg_attr(not(feature = "aspects"), allow(unused_variables))]

pub mod clock;
#[cfg(any(feature = "metrics", feature = "aspects"))]
mod describe;
mod interner;
mod model;
mod sync;
mod task;
mod traceback;

// The real runtime, or with no aspect compiled in the no-op one: the same
// API, file for file, on zero-sized types with empty bodies. The rest of
// the crate names `imp` for the public API and `seam` for what only the
// sinks need, and compiles the same against either.
#[cfg(feature = "aspects")]
mod imp;
#[cfg(not(feature = "aspects"))]
mod noop;
#[cfg(not(feature = "aspects"))]
use noop as imp;
mod seam;

pub use imp::{is_enabled, set_enabled, BusyGuard, Pool, PoolBuilder, Worker};
pub use model::{compiled_in, Kind, Outcome, WorkerState, COMPILED_IN, DEFAULT_SATURATION_HOLD};

/// Correlation ids: which request a piece of work belongs to.
///
/// An observed call opens a correlation scope: it adopts the id given with
/// `#[observe(correlation = ..)]`, or the enclosing observed call's id, or a
/// fresh one. `current()` reads it anywhere inside the call, across `.await`s
/// and nested observed calls.
pub mod correlation {
    pub use crate::imp::correlation::{bind, current, with_id, Bound};
    pub use crate::model::correlation::{CorrelationId, IntoCorrelation, ParseCorrelationError};
    pub use crate::model::trace_context::{
        SpanId, TraceContextError, TraceFlags, TraceParent, TraceState, MAX_TRACESTATE_MEMBERS,
    };
}

/// Threshold alerts: `alert.fired` / `alert.resolved` events, a warn log
/// line, and the `poolscope_alerts_firing` gauge.
pub mod alerts {
    pub use crate::imp::alerts::{
        watch, watch_error_rate, watch_with_clock, AlertControls, AlertError, AlertEvaluator,
        AlertRule, AlertWatcher, ErrorRateRule, Measure, ERROR_RATE_RULE,
    };
}

/// Typed telemetry events and the subscriber API.
pub mod events {
    pub use crate::imp::events::{
        sample_rate, set_sample_rate, set_worker, subscribe, Subscription,
    };
    pub use crate::model::events::*;
}

/// Structured error context carried by events.
pub mod error {
    pub use crate::model::error::*;
    pub use crate::traceback::fault_stack;
}

/// Interned metric labels.
pub mod label {
    pub use crate::interner::{AsLabel, Label, MAX_LABEL_VALUES, OVERFLOW_LABEL};
}
pub use label::Label;

/// The Prometheus sink: installs the `metrics-exporter-prometheus` recorder and
/// renders it together with poolscope's per-call-site histograms.
///
/// The sink is a part, not an aspect: with no aspect compiled in,
/// [`install`](metrics::install) still installs the recorder and `/metrics`
/// serves the application's own metrics; only what `#[observe]` and the pool
/// API record is absent.
///
/// The `metrics` crate's macros and handle types are re-exported at the
/// version poolscope records with, so an application needs no `metrics`
/// dependency of its own (and cannot pick one whose recorder poolscope
/// never sees):
///
/// ```
/// use poolscope_runtime::metrics::{counter, describe_counter};
/// describe_counter!("app_jobs_total", "Jobs the application ran.");
/// counter!("app_jobs_total", "queue" => "fast").increment(1);
/// ```
#[cfg(feature = "metrics")]
pub mod metrics {
    pub use crate::prometheus::{install, installed, render, MetricsError, MetricsHandle};
    pub use ::metrics::{
        counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
        Gauge, Histogram, Unit,
    };
}

/// Removes secrets from text: one implementation for logs, events, error
/// context, HTTP bodies and the dashboard. Rules and how to extend them are
/// in `docs/logging.md`.
pub mod sanitize;

/// Read access to the statistics of observed calls.
pub mod stats {
    pub use crate::imp::stats::{pools, snapshot as series};
    pub use crate::model::stats::{
        HistogramSnapshot, PoolSnapshot, PoolState, RequestTotals, SeriesSnapshot, WorkerCounts,
        WorkerInfo, MAX_LISTED_WORKERS,
    };
}

/// Structured logs: JSON or human lines on `tracing`, with correlation ids,
/// sampled, sanitized, written without blocking.
#[cfg(feature = "logging")]
pub mod logging;

/// The HTTP server: health endpoints for load balancers and orchestrators,
/// and `/metrics` for Prometheus.
#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "config")]
pub mod config;

#[cfg(feature = "process")]
pub mod process;

#[cfg(feature = "queue")]
pub mod queue;

#[cfg(any(feature = "metrics", feature = "aspects"))]
pub mod memory;

/// Every metric poolscope exports: names, types, labels, help.
pub mod catalogue {
    pub use crate::model::catalogue::{find, MetricDef, MetricKind, METRICS};
}

pub mod buckets;

// The Prometheus sink is a part, not an aspect: it serves the
// application's own metrics in every build, with poolscope's exposition
// empty when no aspect is compiled in.
#[cfg(feature = "metrics")]
mod prometheus;

#[doc(hidden)]
pub mod __private {
    #[allow(unused_imports)] // empty when no aspect is compiled in
    pub use crate::imp::private::*;
}
