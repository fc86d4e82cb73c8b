//! Alerts: the error-rate rule with its hysteresis and watcher, and the
//! threshold rules (queue depth, readiness, latency, utilization).
//!
//! What is process-wide here: the Prometheus recorder, which both files
//! share through `common::recorder!`, and the error-rate rules, which
//! judge every pool. `alerts` takes turns within itself for that; the
//! pools of `alert_rules` never fail a call, so no error-rate rule fires
//! on them, and error-rate rules are no readiness rules, so they leave
//! `alert_rules`' readiness alone. Each test reads the transitions and
//! gauges of its own rule or pool.

#[cfg(all(feature = "observe", feature = "http"))]
mod alert_rules;
#[cfg(feature = "metrics")]
mod alerts;
