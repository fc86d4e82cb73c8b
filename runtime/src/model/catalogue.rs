//! Every metric poolscope exports, in one place: what tests hold `/metrics`
//! and `docs/metrics.md` to, and what dashboards and alerting rules can be
//! generated from.

/// A Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows.
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_bucket`, `_sum`, `_count` with `le`.
    Histogram,
}

impl MetricKind {
    /// As in a `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    /// Its name on `/metrics` (histograms: without `_bucket`/`_sum`/`_count`).
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// Its labels (besides `le`), in order.
    pub labels: &'static [&'static str],
    /// What it measures.
    pub help: &'static str,
    /// The feature or part that exports it.
    pub source: &'static str,
}

const fn def(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
    source: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind,
        labels,
        help,
        source,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric poolscope exports.
pub const METRICS: &[MetricDef] = &[
    def(
        "poolscope_requests_total",
        Counter,
        &["pool", "command", "outcome"],
        "Requests completed, by outcome.",
        "timing",
    ),
    def(
        "poolscope_request_duration_seconds",
        Histogram,
        &["pool", "command", "outcome"],
        "Time from the start of a request to its completion, by outcome.",
        "timing",
    ),
    def(
        "poolscope_requests_in_flight",
        Gauge,
        &["pool", "command"],
        "Requests started and not yet completed.",
        "timing",
    ),
    def(
        "poolscope_pool_starts_total",
        Counter,
        &["pool", "outcome"],
        "Pool starts, by outcome.",
        "timing",
    ),
    def(
        "poolscope_pool_startup_duration_seconds",
        Histogram,
        &["pool", "outcome"],
        "Time taken to start a pool, by outcome.",
        "timing",
    ),
    def(
        "poolscope_worker_starts_total",
        Counter,
        &["pool", "outcome"],
        "Worker starts, by outcome.",
        "timing",
    ),
    def(
        "poolscope_worker_startup_duration_seconds",
        Histogram,
        &["pool", "outcome"],
        "Time from spawning a worker to it being ready, by outcome.",
        "timing",
    ),
    def(
        "poolscope_sessions_created_total",
        Counter,
        &["pool", "outcome"],
        "Session creations, by outcome.",
        "timing",
    ),
    def(
        "poolscope_session_create_duration_seconds",
        Histogram,
        &["pool", "outcome"],
        "Time taken to create a session, by outcome.",
        "timing",
    ),
    def(
        "poolscope_pool_size",
        Gauge,
        &["pool"],
        "Workers the pool is configured to run.",
        "pool API",
    ),
    def(
        "poolscope_workers",
        Gauge,
        &["pool", "state"],
        "Workers by state.",
        "pool API",
    ),
    def(
        "poolscope_queue_depth",
        Gauge,
        &["pool"],
        "Requests waiting for a worker.",
        "pool API",
    ),
    def(
        "poolscope_pool_saturated_total",
        Counter,
        &["pool"],
        "Saturation episodes: times the pool became saturated.",
        "pool API",
    ),
    def(
        "poolscope_pool_saturated_seconds_total",
        Counter,
        &["pool"],
        "Time the pool spent saturated.",
        "pool API",
    ),
    def(
        "poolscope_worker_crashes_total",
        Counter,
        &["pool", "kind"],
        "Worker crashes, by kind: exit (non-zero exit code), signal, lost (channel broke).",
        "pool API",
    ),
    def(
        "poolscope_sessions_active",
        Gauge,
        &["pool"],
        "Sessions alive.",
        "pool API",
    ),
    def(
        "poolscope_sessions_expired_total",
        Counter,
        &["pool"],
        "Sessions removed by cleanup.",
        "pool API",
    ),
    def(
        "poolscope_session_cleanup_duration_seconds",
        Histogram,
        &["pool"],
        "Time taken by one session cleanup pass.",
        "pool API",
    ),
    def(
        "poolscope_queue_wait_duration_seconds",
        Histogram,
        &["pool"],
        "Time a request waited in the queue, from enqueue to dispatch.",
        "pool API",
    ),
    def(
        "poolscope_worker_busy_duration_seconds",
        Histogram,
        &["pool"],
        "Time a worker stayed busy with one request (time in worker).",
        "pool API",
    ),
    def(
        "poolscope_pool_utilization",
        Gauge,
        &["pool"],
        "Busy time over wall time times workers, over the health window (0 to 1).",
        "http",
    ),
    def(
        "poolscope_alerts_firing",
        Gauge,
        &["rule", "pool"],
        "1 while an alert rule fires (for a pool), else 0.",
        "alerts",
    ),
    def(
        "poolscope_alerts_fired_total",
        Counter,
        &["rule", "pool"],
        "Times an alert rule fired.",
        "alerts",
    ),
    def(
        "poolscope_log_lines_total",
        Counter,
        &[],
        "Log lines emitted, whether written or dropped.",
        "logging",
    ),
    def(
        "poolscope_log_lines_dropped_total",
        Counter,
        &[],
        "Log lines dropped because the non-blocking writer's buffer was full.",
        "logging",
    ),
    def(
        "poolscope_process_resident_memory_bytes",
        Gauge,
        &[],
        "Resident set size of this process (/proc/self/status VmRSS).",
        "memory sampler",
    ),
    def(
        "poolscope_process_virtual_memory_bytes",
        Gauge,
        &[],
        "Virtual memory size of this process (/proc/self/status VmSize).",
        "memory sampler",
    ),
    def(
        "poolscope_jemalloc_bytes",
        Gauge,
        &["kind"],
        "jemalloc statistics: allocated, active, resident, mapped, retained, metadata.",
        "jemalloc",
    ),
    def(
        "poolscope_pool_workers_resident_bytes",
        Gauge,
        &["pool"],
        "Resident set size of a pool's worker processes, summed.",
        "memory sampler",
    ),
    def(
        "poolscope_dashboard_viewers",
        Gauge,
        &[],
        "Dashboard event streams open.",
        "dashboard",
    ),
    def(
        "poolscope_dashboard_viewers_dropped_total",
        Counter,
        &[],
        "Dashboard viewers disconnected for falling behind.",
        "dashboard",
    ),
];

/// Whether `name` can be a Prometheus metric name
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
#[cfg(any(feature = "dashboard", feature = "config"))]
pub(crate) fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The metric named `name` (a histogram's `_bucket`, `_sum` and `_count`
/// series name their histogram).
pub fn find(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| {
        m.name == name
            || (m.kind == MetricKind::Histogram
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(m.name)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for m in METRICS {
            assert!(m.name.starts_with("poolscope_"), "{}", m.name);
            assert_eq!(
                m.kind == MetricKind::Counter,
                m.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                m.name
            );
        }
        assert_eq!(
            find("poolscope_request_duration_seconds_bucket").map(|m| m.name),
            Some("poolscope_request_duration_seconds")
        );
        assert!(find("poolscope_requests_total_sum").is_none());
    }
}
