//! One snapshot of the dashboard: what the server measured ([`View`]), the
//! JSON the page reads ([`Snapshot`]), the overall verdict, and the delta
//! against the previous tick.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;

use super::chart::{ChartPoint, CHART_STEP};
use super::hub::Hub;
use super::recent;
use super::{lock, unix_ms};
use crate::http::health::Check;
use crate::http::report::{MemoryReport, PoolReport};
use crate::model::stats::PoolSnapshot;

/// Whether a tick must encode the full snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Need {
    /// A viewer just came or missed a tick: encode the full snapshot.
    Full,
    /// Every viewer holds the previous tick: the delta will do (the full
    /// snapshot is still encoded when there is no previous tick).
    Delta,
}

/// One tick, encoded.
pub(super) struct Rendered {
    /// The full snapshot, when it was needed.
    pub(super) full: Option<Vec<u8>>,
    /// The delta against the previous tick, when there was one.
    pub(super) delta: Option<Vec<u8>>,
    /// What this tick holds, for the next one's delta.
    pub(super) marks: Marks,
}

impl Hub {
    /// One tick as JSON: the full snapshot when `need` asks for it or there
    /// is no `previous`, and when `previous` says what the last tick held,
    /// the delta against it (only the errors and chart points that are
    /// new); with what this tick holds.
    pub(super) fn render(
        &self,
        view: &View,
        seq: u64,
        previous: Option<&Marks>,
        need: Need,
    ) -> Rendered {
        // Copied out (errors by reference count) so that encoding, the slow
        // part, runs without the locks: the event handler on a failing
        // call's thread takes `recent` and must not wait for it.
        let (held_errors, held_firing, held_alerts) = {
            let recent = lock(&self.recent);
            (recent.errors(), recent.firing(), recent.alerts())
        };
        let series: Vec<Vec<ChartPoint>> = {
            let chart = lock(&self.chart);
            view.pools
                .iter()
                .map(|(report, _)| chart.series(&report.pool))
                .collect()
        };
        let pools: Vec<DashPool<'_>> = view
            .pools
            .iter()
            .zip(series)
            .map(|((report, rate_now), series)| DashPool {
                series,
                report,
                rate_now: *rate_now,
            })
            .collect();
        let firing: Vec<&recent::AlertItem> = held_firing.iter().collect();
        let errors: Vec<&recent::ErrorItem> = held_errors.iter().map(|e| &**e).collect();
        let marks = Marks {
            seq,
            error_id: errors.first().map_or(0, |e| e.id),
            chart_point: pools
                .iter()
                .filter_map(|p| p.series.last().map(|point| point.seq))
                .max()
                .unwrap_or(0),
        };
        let mut snapshot = Snapshot {
            kind: "full",
            instance: self.instance,
            seq,
            at_ms: unix_ms(view.at),
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: view.uptime_seconds,
            window_seconds: view.window_seconds,
            interval_ms: self.config.interval.as_millis() as u64,
            chart_step_ms: CHART_STEP.as_millis() as u64,
            chart_span_ms: self.config.chart_span.as_millis() as u64,
            health: verdict(view, &firing),
            memory: memory(),
            pools,
            errors_min_id: errors.last().map_or(0, |e| e.id),
            errors,
            alerts: Alerts {
                firing,
                recent: held_alerts.iter().collect(),
            },
            viewers: self.viewers.load(Ordering::Relaxed),
            viewers_dropped: self.dropped.load(Ordering::Relaxed),
            custom_metrics: &view.custom,
        };
        let full = (need == Need::Full || previous.is_none()).then(|| encode(&snapshot));
        let delta = previous.map(|previous| {
            snapshot.kind = "delta";
            snapshot.errors.retain(|e| e.id > previous.error_id);
            for pool in &mut snapshot.pools {
                pool.series.retain(|point| point.seq > previous.chart_point);
            }
            encode(&snapshot)
        });
        Rendered { full, delta, marks }
    }

    /// One full snapshot, as `/dashboard/snapshot` answers it.
    pub(super) fn snapshot(&self, view: &View) -> Vec<u8> {
        self.render(view, 0, None, Need::Full)
            .full
            .unwrap_or_else(|| b"{}".to_vec())
    }
}

fn encode(snapshot: &Snapshot<'_>) -> Vec<u8> {
    serde_json::to_vec(snapshot).unwrap_or_else(|err| {
        tracing::error!(error = %err, "poolscope dashboard could not encode a snapshot");
        b"{}".to_vec()
    })
}

/// What one tick's frames held, for the next tick's delta.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Marks {
    pub(super) seq: u64,
    /// The newest error sent.
    error_id: u64,
    /// The newest chart point sent (points are numbered in order, so a
    /// wall clock stepping back cannot hide new ones).
    chart_point: u64,
}

/// What the server measured for this tick, handed to the snapshot.
pub(crate) struct View {
    /// When it was measured: a snapshot's `at_ms`, so that one stamped after
    /// an event shows its effects.
    pub at: SystemTime,
    /// Application metrics' series and values.
    pub custom: Vec<(String, f64)>,
    pub uptime_seconds: f64,
    pub window_seconds: f64,
    pub shutting_down: bool,
    pub pools: Vec<(PoolReport, f64)>,
    pub pool_states: Vec<PoolSnapshot>,
    pub checks: Vec<Check>,
}

#[derive(Serialize)]
struct Snapshot<'a> {
    /// `full`, or `delta`: `errors` and each pool's `series` hold only what
    /// is new since the previous frame.
    kind: &'static str,
    /// Changes when the server restarts: the page then starts over.
    instance: u64,
    seq: u64,
    /// When the numbers were measured (Unix ms).
    at_ms: u64,
    version: &'static str,
    uptime_seconds: f64,
    window_seconds: f64,
    interval_ms: u64,
    chart_step_ms: u64,
    chart_span_ms: u64,
    health: Verdict,
    memory: Memory,
    pools: Vec<DashPool<'a>>,
    /// Newest first.
    errors: Vec<&'a recent::ErrorItem>,
    /// The oldest error still kept: the page drops rows older than this.
    errors_min_id: u64,
    alerts: Alerts<'a>,
    viewers: usize,
    viewers_dropped: u64,
    /// Application metrics declared for the dashboard: `[series, value]`.
    custom_metrics: &'a [(String, f64)],
}

#[derive(Serialize)]
struct DashPool<'a> {
    #[serde(flatten)]
    report: &'a PoolReport,
    /// Requests a second over the last few seconds.
    rate_now: f64,
    /// `[unix ms, requests/s, p99 seconds or null]`, oldest first.
    series: Vec<ChartPoint>,
}

#[derive(Serialize)]
struct Alerts<'a> {
    firing: Vec<&'a recent::AlertItem>,
    recent: Vec<&'a recent::AlertItem>,
}

/// The overall health: `unavailable` exactly when `/health/ready` answers
/// 503, `degraded` when it is ready but something is wrong, else `healthy`.
#[derive(Serialize, Debug)]
struct Verdict {
    status: &'static str,
    /// One line per reason, the failing readiness checks first.
    reasons: Vec<String>,
    /// The failing readiness checks, as `/health/ready` reports them.
    failed: Vec<Check>,
}

fn verdict(view: &View, firing: &[&recent::AlertItem]) -> Verdict {
    let failed: Vec<Check> = view.checks.iter().filter(|c| !c.passed).cloned().collect();
    let mut reasons: Vec<String> = failed
        .iter()
        .map(|c| match &c.pool {
            Some(pool) => format!("{} ({pool}): {}", c.check, c.message),
            None => format!("{}: {}", c.check, c.message),
        })
        .collect();
    if view.shutting_down {
        reasons.insert(0, "the server is shutting down".into());
    }
    if !reasons.is_empty() {
        return Verdict {
            status: "unavailable",
            reasons,
            failed,
        };
    }
    for pool in &view.pool_states {
        let Some(state) = &pool.state else { continue };
        let up = state.workers.up();
        if state.size > 0 && up < state.size {
            reasons.push(format!(
                "pool {}: {up} of {} workers up ({} starting, {} crashed)",
                pool.pool, state.size, state.workers.starting, state.workers.crashed
            ));
        }
    }
    for alert in firing {
        reasons.push(match &alert.pool {
            Some(pool) => format!(
                "alert {} firing on pool {pool}: {} over {}",
                alert.rule, alert.value, alert.threshold
            ),
            None => format!(
                "alert {} firing: {} over {}",
                alert.rule, alert.value, alert.threshold
            ),
        });
    }
    Verdict {
        status: if reasons.is_empty() {
            "healthy"
        } else {
            "degraded"
        },
        reasons,
        failed,
    }
}

/// The process's memory. `allocated_bytes` needs jemalloc as the allocator
/// (feature `jemalloc`) and is `null` otherwise.
#[derive(Serialize, Debug, Default)]
struct Memory {
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    allocated_bytes: Option<u64>,
}

/// What `/health/detailed` reports, trimmed to what the header shows.
fn memory() -> Memory {
    let report = MemoryReport::now();
    Memory {
        resident_bytes: report.resident_bytes,
        virtual_bytes: report.virtual_bytes,
        allocated_bytes: report.jemalloc.map(|j| j.allocated),
    }
}

/// Most custom series a snapshot carries.
const MAX_CUSTOM_SERIES: usize = 200;

/// The series of `names` in Prometheus text, with their values.
pub(super) fn custom_series(text: &str, names: &[String]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        if !names.iter().any(|n| n == &line[..end]) {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if let Ok(value) = value.parse::<f64>() {
            // Application label values could hold anything.
            out.push((crate::sanitize::sanitize(series).into_owned(), value));
            if out.len() == MAX_CUSTOM_SERIES {
                break;
            }
        }
    }
    out
}
