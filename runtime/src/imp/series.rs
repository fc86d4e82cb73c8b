//! Per-series statistics of observed calls: fixed-bucket atomic histograms.
//!
//! The exporter's own histogram handles keep every sample until upkeep drains
//! them, so memory grows with the call rate; here a sample is two relaxed
//! atomic adds into buckets fixed when the series is created, and memory is
//! constant. The registry is only locked to create a series or to render.

use std::collections::HashMap;
#[cfg(feature = "metrics")]
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::types::label::Label;
use crate::types::stats::{HistogramSnapshot, SeriesSnapshot};
use crate::types::{Kind, Outcome};

/// One fixed-bucket histogram: `counts[i]` holds samples `<= bounds[i]`, the
/// last slot those above every bound (`+Inf`).
pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

/// The statistics of one (kind, pool, command).
pub(crate) struct Series {
    pub(crate) kind: Kind,
    pub(crate) pool: Label,
    pub(crate) command: Label,
    bounds: Arc<[f64]>,
    bounds_ns: Box<[u64]>,
    started: AtomicU64,
    by_outcome: [Histogram; 4],
}

impl Histogram {
    fn new(len: usize) -> Histogram {
        Histogram { counts: (0..len).map(|_| AtomicU64::new(0)).collect(), sum_ns: AtomicU64::new(0) }
    }

    fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl Series {
    fn new(kind: Kind, pool: Label, command: Label, bounds: Arc<[f64]>) -> Series {
        let bounds_ns = bounds.iter().map(|s| (s * 1e9).round() as u64).collect();
        let len = bounds.len() + 1;
        Series {
            kind,
            pool,
            command,
            bounds,
            bounds_ns,
            started: AtomicU64::new(0),
            by_outcome: std::array::from_fn(|_| Histogram::new(len)),
        }
    }

    #[inline]
    pub(crate) fn start(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn record(&self, outcome: Outcome, nanos: u64) {
        let hist = &self.by_outcome[outcome.index()];
        let bucket = self.bounds_ns.partition_point(|&bound| bound < nanos);
        hist.counts[bucket].fetch_add(1, Ordering::Relaxed);
        hist.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Records a completed call that was never counted as started (the
    /// imperative API reports only completions).
    pub(crate) fn record_completed(&self, outcome: Outcome, nanos: u64) {
        self.start();
        self.record(outcome, nanos);
    }

    pub(crate) fn snapshot(&self, outcome: Outcome) -> HistogramSnapshot {
        let hist = &self.by_outcome[outcome.index()];
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts: hist.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum_seconds: hist.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    pub(crate) fn in_flight(&self) -> u64 {
        // Completions first: a call counted complete was counted started
        // before, so this order can only over-report, never go negative.
        let completed: u64 = self.by_outcome.iter().map(Histogram::count).sum();
        self.started.load(Ordering::Relaxed).saturating_sub(completed)
    }
}

type Key = (Kind, Label, Label);

struct Registry {
    by_key: HashMap<Key, &'static Series>,
    ordered: Vec<&'static Series>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Most series the registry creates; past it, calls share one overflow series
/// per kind so that a runaway label cannot exhaust memory.
pub(crate) const MAX_SERIES: usize = 10_000;

/// The series for `(kind, pool, command)`, created on first use and kept for
/// the life of the process.
pub(crate) fn series(kind: Kind, pool: Label, command: Label) -> &'static Series {
    let mut guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let registry = guard.get_or_insert_with(|| Registry { by_key: HashMap::new(), ordered: Vec::new() });
    let key = if registry.by_key.len() >= MAX_SERIES && !registry.by_key.contains_key(&(kind, pool, command)) {
        let overflow = Label::from_static(crate::types::label::OVERFLOW_LABEL);
        (kind, overflow, overflow)
    } else {
        (kind, pool, command)
    };
    if let Some(series) = registry.by_key.get(&key) {
        return series;
    }
    // Leaked on purpose: call sites cache the reference without a lock or a
    // reference count, and a series lives as long as the process.
    let series: &'static Series = Box::leak(Box::new(Series::new(key.0, key.1, key.2, super::buckets::current())));
    registry.by_key.insert(key, series);
    registry.ordered.push(series);
    series
}

/// The statistics of the observed calls of `kind` for `pool` and `command`
/// (use `""` as the command for kinds other than [`Kind::Request`]), or
/// `None` if no such call was recorded.
///
/// ```
/// use poolscope_runtime::{stats, Kind};
/// assert!(stats::series(Kind::Request, "no-such-pool", "x").is_none());
/// ```
pub fn snapshot(kind: Kind, pool: &str, command: &str) -> Option<SeriesSnapshot> {
    let series = {
        let guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref()?.ordered.iter().copied().find(|s| s.kind == kind && s.pool.as_str() == pool && s.command.as_str() == command)?
    };
    Some(SeriesSnapshot { in_flight: series.in_flight(), by_outcome: Outcome::ALL.map(|o| series.snapshot(o)) })
}

#[cfg(feature = "metrics")]
struct Family {
    total: &'static str,
    total_help: &'static str,
    duration: &'static str,
    duration_help: &'static str,
    has_command: bool,
}

#[cfg(feature = "metrics")]
fn family(kind: Kind) -> Family {
    match kind {
        Kind::Request => Family {
            total: "poolscope_requests_total",
            total_help: "Requests completed, by outcome.",
            duration: "poolscope_request_duration_seconds",
            duration_help: "Time from the start of a request to its completion, by outcome.",
            has_command: true,
        },
        Kind::PoolStart => Family {
            total: "poolscope_pool_starts_total",
            total_help: "Pool starts, by outcome.",
            duration: "poolscope_pool_startup_duration_seconds",
            duration_help: "Time taken to start a pool, by outcome.",
            has_command: false,
        },
        Kind::WorkerStart => Family {
            total: "poolscope_worker_starts_total",
            total_help: "Worker starts, by outcome.",
            duration: "poolscope_worker_startup_duration_seconds",
            duration_help: "Time from spawning a worker to it being ready, by outcome.",
            has_command: false,
        },
        Kind::SessionCreate => Family {
            total: "poolscope_sessions_created_total",
            total_help: "Session creations, by outcome.",
            duration: "poolscope_session_create_duration_seconds",
            duration_help: "Time taken to create a session, by outcome.",
            has_command: false,
        },
    }
}

#[cfg(feature = "metrics")]
/// Appends `value` with Prometheus label-value escaping.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(feature = "metrics")]
fn labels(out: &mut String, series: &Series, has_command: bool, outcome: Option<Outcome>, le: Option<&str>) {
    out.push_str("{pool=\"");
    escape_into(out, series.pool.as_str());
    out.push('"');
    if has_command {
        out.push_str(",command=\"");
        escape_into(out, series.command.as_str());
        out.push('"');
    }
    if let Some(outcome) = outcome {
        let _ = write!(out, ",outcome=\"{}\"", outcome.as_str());
    }
    if let Some(le) = le {
        let _ = write!(out, ",le=\"{le}\"");
    }
    out.push('}');
}

#[cfg(feature = "metrics")]
/// Appends the Prometheus text exposition of every series.
pub(crate) fn render(out: &mut String) {
    let ordered: Vec<&'static Series> = {
        let guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(registry) => registry.ordered.clone(),
            None => return,
        }
    };
    for kind in [Kind::Request, Kind::PoolStart, Kind::WorkerStart, Kind::SessionCreate] {
        let of_kind: Vec<&Series> = ordered.iter().copied().filter(|s| s.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let fam = family(kind);
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} counter", fam.total, fam.total_help, fam.total);
        for series in &of_kind {
            for outcome in Outcome::ALL {
                out.push_str(fam.total);
                labels(out, series, fam.has_command, Some(outcome), None);
                let _ = writeln!(out, " {}", series.by_outcome[outcome.index()].count());
            }
        }
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} histogram", fam.duration, fam.duration_help, fam.duration);
        for series in &of_kind {
            for outcome in Outcome::ALL {
                let hist = &series.by_outcome[outcome.index()];
                let counts: Vec<u64> = hist.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
                let total: u64 = counts.iter().sum();
                // Outcomes that never happened would add a full set of zero
                // buckets per series; the counter above already reports zero.
                if total == 0 && outcome != Outcome::Ok {
                    continue;
                }
                let mut cumulative = 0;
                for (i, count) in counts.iter().enumerate() {
                    cumulative += count;
                    let le = match series.bounds.get(i) {
                        Some(bound) => bound.to_string(),
                        None => "+Inf".to_owned(),
                    };
                    let _ = write!(out, "{}_bucket", fam.duration);
                    labels(out, series, fam.has_command, Some(outcome), Some(&le));
                    let _ = writeln!(out, " {cumulative}");
                }
                let _ = write!(out, "{}_sum", fam.duration);
                labels(out, series, fam.has_command, Some(outcome), None);
                let _ = writeln!(out, " {}", hist.sum_ns.load(Ordering::Relaxed) as f64 / 1e9);
                let _ = write!(out, "{}_count", fam.duration);
                labels(out, series, fam.has_command, Some(outcome), None);
                let _ = writeln!(out, " {cumulative}");
            }
        }
        if kind == Kind::Request {
            out.push_str(
                "# HELP poolscope_requests_in_flight Requests started and not yet completed.\n\
                 # TYPE poolscope_requests_in_flight gauge\n",
            );
            for series in &of_kind {
                out.push_str("poolscope_requests_in_flight");
                labels(out, series, true, None, None);
                let _ = writeln!(out, " {}", series.in_flight());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_into_the_bucket_whose_bound_is_not_below_the_sample() {
        let s = Series::new(Kind::Request, Label::new("t"), Label::new("c"), Arc::from(&[0.001, 0.01][..]));
        s.record(Outcome::Ok, 1_000_000); // exactly 1 ms: `le` is inclusive
        s.record(Outcome::Ok, 1_000_001);
        s.record(Outcome::Ok, 20_000_000);
        s.record(Outcome::Error, 5);
        let ok = s.snapshot(Outcome::Ok);
        assert_eq!(ok.counts, vec![1, 1, 1]);
        assert!((ok.sum_seconds - 0.022_000_001).abs() < 1e-12);
        assert_eq!(s.snapshot(Outcome::Error).counts, vec![1, 0, 0]);
    }

    #[test]
    fn in_flight_is_started_minus_completed() {
        let s = Series::new(Kind::Request, Label::new("t"), Label::new("c"), Arc::from(&[1.0][..]));
        s.start();
        s.start();
        s.record(Outcome::Panic, 1);
        assert_eq!(s.in_flight(), 1);
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn renders_cumulative_buckets_and_escaped_labels() {
        let pool = Label::new("render \"test\"\\pool");
        let s = series(Kind::Request, pool, Label::new("cmd\nline"));
        s.start();
        s.record(Outcome::Ok, 2_000_000_000);
        let mut out = String::new();
        render(&mut out);
        let labels = r#"pool="render \"test\"\\pool",command="cmd\nline""#;
        assert!(out.contains(&format!("poolscope_requests_total{{{labels},outcome=\"ok\"}} 1\n")), "{out}");
        assert!(out.contains(&format!("poolscope_request_duration_seconds_bucket{{{labels},outcome=\"ok\",le=\"1\"}} 0\n")));
        assert!(out.contains(&format!("poolscope_request_duration_seconds_bucket{{{labels},outcome=\"ok\",le=\"2.5\"}} 1\n")));
        assert!(out.contains(&format!("poolscope_request_duration_seconds_bucket{{{labels},outcome=\"ok\",le=\"+Inf\"}} 1\n")));
        assert!(out.contains(&format!("poolscope_request_duration_seconds_sum{{{labels},outcome=\"ok\"}} 2\n")));
        assert!(out.contains(&format!("poolscope_requests_in_flight{{{labels}}} 0\n")));
        assert_eq!(out.matches("# TYPE poolscope_requests_total counter").count(), 1);
    }
}
