//! The live dashboard: `GET /dashboard` serves one self-contained page,
//! `GET /dashboard/events` streams snapshots to it as Server-Sent Events,
//! `GET /dashboard/snapshot` answers one snapshot as JSON.
//!
//! One task computes a snapshot per tick (and at once after an error, an
//! alert or a worker start or crash) and every viewer's stream shares it, so
//! a hundred viewers cost what one does. A viewer that falls
//! [`DashboardConfig::viewer_buffer`] snapshots behind is disconnected; its
//! page reconnects on its own.

mod recent;
mod stream;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::health::{Check, PoolReport};
use crate::types::label::Label;
use crate::types::stats::{HistogramSnapshot, PoolSnapshot};
use recent::Recent;
pub(crate) use stream::{open, tick, Refused, SseBody};

/// Settings of the dashboard; see [`ServerBuilder::with_dashboard`].
///
/// [`ServerBuilder::with_dashboard`]: super::ServerBuilder::with_dashboard
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::http::DashboardConfig;
/// let dashboard = DashboardConfig::default()
///     .with_interval(Duration::from_millis(250))
///     .with_max_viewers(16);
/// assert_eq!(dashboard.recent_errors, 50);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct DashboardConfig {
    /// How often a snapshot is pushed, 100 ms to 500 ms. Errors, alerts and
    /// worker starts and crashes push one at once besides. Default 500 ms.
    pub interval: Duration,
    /// How far back the request-rate and latency chart goes. Default 5 min.
    pub chart_span: Duration,
    /// Viewers streaming at once; more get 503 until one leaves. Default 64.
    pub max_viewers: usize,
    /// Snapshots a viewer may have unread before it is disconnected.
    /// Default 4 (two seconds at the default interval).
    pub viewer_buffer: usize,
    /// Failures kept for the recent-errors list. Default 50.
    pub recent_errors: usize,
    /// Alert transitions kept for the recent-alerts list. Default 50.
    pub recent_alerts: usize,
    /// Application metrics (names as on `/metrics`) shown on the page, with
    /// every series of each. Default none.
    pub metrics: Vec<String>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            interval: Duration::from_millis(500),
            chart_span: Duration::from_secs(300),
            max_viewers: 64,
            viewer_buffer: 4,
            recent_errors: 50,
            recent_alerts: 50,
            metrics: Vec::new(),
        }
    }
}

/// Checks the names of the application metrics to show.
pub(crate) fn check_metrics(names: &[String]) -> Result<(), String> {
    match names
        .iter()
        .find(|n| !crate::types::catalogue::is_metric_name(n))
    {
        Some(bad) => Err(format!(
            "dashboard metric `{bad}` is not a Prometheus metric name"
        )),
        None => Ok(()),
    }
}

/// Most custom series a snapshot carries.
const MAX_CUSTOM_SERIES: usize = 200;

/// The series of `names` in Prometheus text, with their values.
pub(crate) fn custom_series(text: &str, names: &[String]) -> Vec<(String, f64)> {
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

/// The chart gets one point a second.
const CHART_STEP: Duration = Duration::from_secs(1);
/// Bursts of errors push at most this often, so an error storm costs a
/// bounded number of snapshots.
const MIN_GAP: Duration = Duration::from_millis(100);

impl DashboardConfig {
    /// Sets [`DashboardConfig::interval`].
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`DashboardConfig::chart_span`].
    pub fn with_chart_span(mut self, span: Duration) -> Self {
        self.chart_span = span;
        self
    }

    /// Sets [`DashboardConfig::max_viewers`].
    pub fn with_max_viewers(mut self, viewers: usize) -> Self {
        self.max_viewers = viewers;
        self
    }

    /// Sets [`DashboardConfig::viewer_buffer`].
    pub fn with_viewer_buffer(mut self, snapshots: usize) -> Self {
        self.viewer_buffer = snapshots;
        self
    }

    /// Sets [`DashboardConfig::recent_errors`].
    pub fn with_recent_errors(mut self, errors: usize) -> Self {
        self.recent_errors = errors;
        self
    }

    /// Adds an application metric to [`DashboardConfig::metrics`].
    pub fn with_metric(mut self, name: impl Into<String>) -> Self {
        self.metrics.push(name.into());
        self
    }

    /// Sets [`DashboardConfig::recent_alerts`].
    pub fn with_recent_alerts(mut self, alerts: usize) -> Self {
        self.recent_alerts = alerts;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.interval < MIN_GAP || self.interval > Duration::from_millis(500) {
            return Err(format!(
                "dashboard `interval` is {:?}: it must be between 100 ms and 500 ms, so the page is never more than a second behind",
                self.interval
            ));
        }
        if self.chart_span < Duration::from_secs(10) || self.chart_span > Duration::from_secs(3600)
        {
            return Err(format!(
                "dashboard `chart_span` is {:?}: it must be between 10 s and 1 h",
                self.chart_span
            ));
        }
        check_metrics(&self.metrics)?;
        for (name, value, max) in [
            ("max_viewers", self.max_viewers, 10_000),
            ("viewer_buffer", self.viewer_buffer, 1_000),
            ("recent_errors", self.recent_errors, 10_000),
            ("recent_alerts", self.recent_alerts, 10_000),
        ] {
            if value == 0 || value > max {
                return Err(format!(
                    "dashboard `{name}` is {value}: it must be between 1 and {max}"
                ));
            }
        }
        Ok(())
    }
}

/// The dashboard's shared state: the latest snapshot, the recent errors and
/// alerts, the chart's points.
pub(crate) struct Hub {
    config: DashboardConfig,
    /// The latest tick's frames; every viewer's feeder watches them.
    frames: watch::Receiver<Arc<Frames>>,
    /// Taken by the ticker when the server starts.
    sender: Mutex<Option<watch::Sender<Arc<Frames>>>>,
    /// Rung by the event handler: push a snapshot now.
    wake: Notify,
    /// A viewer needs a full snapshot (it just came, or missed a tick):
    /// the next tick encodes one. Otherwise a tick encodes the delta only,
    /// a few KB instead of the whole snapshot.
    need_full: std::sync::atomic::AtomicBool,
    recent: Arc<Mutex<Recent>>,
    chart: Mutex<Chart>,
    viewers: AtomicUsize,
    dropped: AtomicU64,
    /// Application metrics shown on the page; replaced by configuration.
    pub(crate) custom: Mutex<Vec<String>>,
    /// The endpoint's switch: open streams end when it goes off. Set it
    /// through [`Hub::set_enabled`], which also (un)subscribes.
    pub(crate) enabled: std::sync::atomic::AtomicBool,
    /// Tells this server's snapshots from a restarted one's: error ids and
    /// sequence numbers start again with a new instance.
    instance: u64,
    /// Keeps the event handler subscribed while the hub lives.
    subscription: Mutex<Option<crate::imp::events::Subscription>>,
}

impl Hub {
    pub(crate) fn new(config: DashboardConfig) -> Arc<Hub> {
        let (sender, frames) = watch::channel(Arc::new(Frames::default()));
        let recent = Arc::new(Mutex::new(Recent::new(
            config.recent_errors,
            config.recent_alerts,
        )));
        let custom = Mutex::new(config.metrics.clone());
        let hub = Arc::new(Hub {
            chart: Mutex::new(Chart::new(config.chart_span)),
            config,
            frames,
            sender: Mutex::new(Some(sender)),
            wake: Notify::new(),
            need_full: std::sync::atomic::AtomicBool::new(true),
            recent,
            viewers: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            enabled: std::sync::atomic::AtomicBool::new(false),
            custom,
            instance: u64::from_str_radix(&nonce()[..12], 16).unwrap_or(0),
            subscription: Mutex::new(None),
        });
        describe();
        // Registered at zero, so a scrape shows "none dropped" rather than
        // nothing.
        metrics::counter!("poolscope_dashboard_viewers_dropped_total").increment(0);
        metrics::gauge!("poolscope_dashboard_viewers").increment(0.0);
        hub
    }

    /// Switches the dashboard on or off. Off, it also stops listening to
    /// events, so a failing call builds no event for it; back on, the
    /// recent-errors list resumes from then.
    pub(crate) fn set_enabled(self: &Arc<Self>, enabled: bool) {
        let mut subscription = lock(&self.subscription);
        self.enabled.store(enabled, Ordering::Relaxed);
        if !enabled {
            *subscription = None;
            // The ticker closes the open streams now, not at its next tick.
            self.wake.notify_one();
            return;
        }
        if subscription.is_some() {
            return;
        }
        let weak = Arc::downgrade(self);
        *subscription = Some(crate::imp::events::subscribe_with(
            crate::imp::events::Interest::Failures,
            Arc::new(move |event| {
                if let Some(hub) = weak.upgrade() {
                    hub.hear(event);
                }
            }),
        ));
    }

    /// Takes in an event (on the emitting thread); one the page should hear
    /// of at once rings the ticker.
    fn hear(&self, event: &crate::types::events::Event) {
        let urgent = lock(&self.recent).record(event);
        if urgent {
            self.wake.notify_one();
        }
    }

    /// Whether the dashboard listens to events (it does while it is on).
    #[cfg(test)]
    pub(crate) fn listening(&self) -> bool {
        lock(&self.subscription).is_some()
    }

    /// Whether someone is watching.
    fn watched(&self) -> bool {
        self.viewers.load(Ordering::Relaxed) > 0
    }

    /// Adds the chart's per-second point; called by the server's sampler.
    pub(crate) fn record_chart(&self, now: Instant, pools: &[PoolSnapshot]) {
        lock(&self.chart).record(now, SystemTime::now(), pools);
    }

    /// One tick as JSON: the full snapshot when `full` is asked or there is
    /// no `previous`, and when `previous` says what the last tick held, the
    /// delta against it (only the errors and chart points that are new);
    /// with what this tick holds.
    pub(crate) fn render(
        &self,
        view: &View,
        seq: u64,
        previous: Option<&Marks>,
        full: bool,
    ) -> (Option<Vec<u8>>, Option<Vec<u8>>, Marks) {
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
        let full = (full || previous.is_none()).then(|| encode(&snapshot));
        let delta = previous.map(|previous| {
            snapshot.kind = "delta";
            snapshot.errors.retain(|e| e.id > previous.error_id);
            for pool in &mut snapshot.pools {
                pool.series.retain(|point| point.seq > previous.chart_point);
            }
            encode(&snapshot)
        });
        (full, delta, marks)
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
pub(crate) struct Marks {
    seq: u64,
    /// The newest error sent.
    error_id: u64,
    /// The newest chart point sent (points are numbered in order, so a
    /// wall clock stepping back cannot hide new ones).
    chart_point: u64,
}

/// One tick, as SSE frames: the full snapshot for viewers that just came
/// or missed a tick, the delta for those that saw the previous one.
#[derive(Default)]
pub(crate) struct Frames {
    seq: u64,
    previous_seq: Option<u64>,
    /// Encoded only when a viewer needs it (`Hub::need_full`).
    full: Option<Bytes>,
    delta: Option<Bytes>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn describe() {
    metrics::describe_gauge!(
        "poolscope_dashboard_viewers",
        metrics::Unit::Count,
        "Dashboard event streams open."
    );
    metrics::describe_counter!(
        "poolscope_dashboard_viewers_dropped_total",
        metrics::Unit::Count,
        "Dashboard viewers disconnected for falling behind."
    );
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
    let report = super::health::MemoryReport::now();
    Memory {
        resident_bytes: report.resident_bytes,
        virtual_bytes: report.virtual_bytes,
        allocated_bytes: report.jemalloc.map(|j| j.allocated),
    }
}

/// One second of the chart; sent as `[unix ms, requests/s, p99 or null]`.
#[derive(Clone, Copy, Debug)]
struct ChartPoint {
    seq: u64,
    at_ms: u64,
    rate: f64,
    p99: Option<f64>,
}

impl Serialize for ChartPoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.at_ms, self.rate, self.p99).serialize(serializer)
    }
}

/// Per-pool points of the chart, one a second.
struct Chart {
    next_point: u64,
    span: Duration,
    pools: HashMap<Label, PoolChart>,
}

struct PoolChart {
    last: Option<(Instant, u64, HistogramSnapshot)>,
    points: VecDeque<ChartPoint>,
}

impl Chart {
    fn new(span: Duration) -> Chart {
        Chart {
            next_point: 0,
            span,
            pools: HashMap::new(),
        }
    }

    fn record(&mut self, now: Instant, wall: SystemTime, pools: &[PoolSnapshot]) {
        let keep = (self.span.as_secs() / CHART_STEP.as_secs()).max(1) as usize;
        for pool in pools {
            let Some(requests) = &pool.requests else {
                continue;
            };
            let entry = self.pools.entry(pool.pool).or_insert_with(|| PoolChart {
                last: None,
                points: VecDeque::new(),
            });
            let count = requests.completed();
            if let Some((then, then_count, then_durations)) = &entry.last {
                let seconds = now.duration_since(*then).as_secs_f64();
                if seconds > 0.0 {
                    let rate = count.saturating_sub(*then_count) as f64 / seconds;
                    let p99 = requests
                        .durations
                        .since(then_durations)
                        .and_then(|d| d.quantile(0.99));
                    self.next_point += 1;
                    entry.points.push_back(ChartPoint {
                        seq: self.next_point,
                        at_ms: unix_ms(wall),
                        rate,
                        p99,
                    });
                    while entry.points.len() > keep {
                        entry.points.pop_front();
                    }
                }
            }
            entry.last = Some((now, count, requests.durations.clone()));
        }
    }

    fn series(&self, pool: &str) -> Vec<ChartPoint> {
        self.pools
            .iter()
            .find(|(label, _)| label.as_str() == pool)
            .map(|(_, chart)| chart.points.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// The page, with its style and script inlined; `{nonce}` is replaced per
/// response so the Content-Security-Policy can forbid every other script.
pub(crate) fn page(nonce: &str) -> String {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            include_str!("page.html")
                .replace("/*STYLE*/", include_str!("page.css"))
                .replace("/*SCRIPT*/", include_str!("page.js"))
        })
        .replace("{nonce}", nonce)
}

/// The policy the page is served with: its own nonce'd script and style,
/// fetches to this server only, nothing else.
pub(crate) fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// An unguessable nonce: two SipHash outputs under fresh random keys
/// (std seeds `RandomState` from the OS).
pub(crate) fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let part = |salt: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(n);
        hasher.write_u64(salt);
        hasher.write_u128(unix_ms(SystemTime::now()) as u128);
        hasher.finish()
    };
    format!("{:016x}{:016x}", part(1), part(2))
}

#[cfg(test)]
mod switch_tests {
    use super::*;

    #[test]
    fn the_hub_listens_to_events_only_while_the_dashboard_is_on() {
        let hub = Hub::new(DashboardConfig::default());
        assert!(!hub.listening() && !hub.enabled.load(Ordering::Relaxed));
        hub.set_enabled(true);
        assert!(hub.listening() && hub.enabled.load(Ordering::Relaxed));
        hub.set_enabled(true);
        assert!(hub.listening());
        hub.set_enabled(false);
        assert!(!hub.listening() && !hub.enabled.load(Ordering::Relaxed));
    }
}
