//! Health: a bounded history of pool statistics, the readiness checks, and
//! the JSON bodies of `/health`, `/health/ready` and `/health/detailed`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::model::stats::PoolSnapshot;
pub(crate) use crate::model::window::{History, WindowStats};

/// Thresholds of the readiness checks behind `/health/ready`.
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::http::HealthConfig;
/// let health = HealthConfig::default()
///     .with_max_queue_depth(100)
///     .with_max_error_rate(0.05)
///     .with_max_p99(Duration::from_millis(500));
/// assert_eq!(health.min_ready_workers, 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct HealthConfig {
    /// Each pool built with `Pool` needs at least this many workers up
    /// (available or busy). Default 1.
    pub min_ready_workers: usize,
    /// A pool whose queue holds more requests is not ready. Default: no limit.
    pub max_queue_depth: Option<usize>,
    /// A pool whose requests failed (error, panic, cancelled) more often than
    /// this fraction over the window is not ready. Default: no limit.
    pub max_error_rate: Option<f64>,
    /// A pool whose p99 latency over the window is above this is not ready.
    /// Default: no limit.
    pub max_p99: Option<Duration>,
    /// The recent window for rates and percentiles. Default 60 s.
    pub window: Duration,
    /// Error-rate and latency checks apply only when the window holds at
    /// least this many requests, so one early failure cannot fail a probe.
    /// Default 10.
    pub min_requests: u64,
    /// When a pool with no available worker is still ready (the `capacity`
    /// check). Default [`ReadinessPolicy::Capacity`].
    pub readiness: ReadinessPolicy,
    /// Under [`ReadinessPolicy::Capacity`], how long a new request may have
    /// to wait for a worker before the pool is not ready. Default 5 s.
    pub max_queue_wait: Duration,
}

/// When a pool with no available worker can still serve traffic: the
/// `capacity` readiness check.
///
/// A load balancer takes a pod that answers 503 out of rotation; taking
/// out every pod whose workers are all busy for a moment would send the
/// traffic round in circles (a pool at full use flaps between ready and
/// not ready with every request). [`Capacity`](ReadinessPolicy::Capacity)
/// answers 503 only when a new request would wait too long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadinessPolicy {
    /// Not ready when no worker is available *and* a new request could not
    /// start within [`HealthConfig::max_queue_wait`]: the queue is full
    /// (`Pool::set_queue_capacity`), or every worker has been busy for
    /// longer than that wait. (A pool with no worker up fails the
    /// `workers` check instead.)
    #[default]
    Capacity,
    /// Not ready whenever no worker is available (idle): "no available
    /// workers, 503", word for word. Expect it to flap under load.
    Strict,
}

impl ReadinessPolicy {
    /// `capacity` or `strict`, as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadinessPolicy::Capacity => "capacity",
            ReadinessPolicy::Strict => "strict",
        }
    }
}

impl std::str::FromStr for ReadinessPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "capacity" => Ok(ReadinessPolicy::Capacity),
            "strict" => Ok(ReadinessPolicy::Strict),
            other => Err(format!(
                "`{other}` is not a readiness policy: expected `capacity` or `strict`"
            )),
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            min_ready_workers: 1,
            max_queue_depth: None,
            max_error_rate: None,
            max_p99: None,
            window: Duration::from_secs(60),
            min_requests: 10,
            readiness: ReadinessPolicy::Capacity,
            max_queue_wait: Duration::from_secs(5),
        }
    }
}

impl HealthConfig {
    /// Sets [`HealthConfig::min_ready_workers`].
    pub fn with_min_ready_workers(mut self, workers: usize) -> Self {
        self.min_ready_workers = workers;
        self
    }

    /// Sets [`HealthConfig::max_queue_depth`].
    pub fn with_max_queue_depth(mut self, depth: usize) -> Self {
        self.max_queue_depth = Some(depth);
        self
    }

    /// Sets [`HealthConfig::max_error_rate`] (a fraction, 0 to 1).
    pub fn with_max_error_rate(mut self, rate: f64) -> Self {
        self.max_error_rate = Some(rate);
        self
    }

    /// Sets [`HealthConfig::max_p99`].
    pub fn with_max_p99(mut self, p99: Duration) -> Self {
        self.max_p99 = Some(p99);
        self
    }

    /// Sets [`HealthConfig::window`].
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets [`HealthConfig::min_requests`].
    pub fn with_min_requests(mut self, requests: u64) -> Self {
        self.min_requests = requests;
        self
    }

    /// Sets [`HealthConfig::readiness`].
    pub fn with_readiness(mut self, policy: ReadinessPolicy) -> Self {
        self.readiness = policy;
        self
    }

    /// Sets [`HealthConfig::max_queue_wait`].
    pub fn with_max_queue_wait(mut self, wait: Duration) -> Self {
        self.max_queue_wait = wait;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(rate) = self.max_error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "`max_error_rate` is {rate}: it is a fraction between 0 and 1"
                ));
            }
        }
        if let Some(p99) = self.max_p99 {
            if let Err(largest) = crate::buckets::below_largest(p99.as_secs_f64(), None) {
                return Err(format!("`max_p99` is {p99:?}: it must be below the largest duration bucket ({largest} s)"));
            }
        }
        if self.window < Duration::from_secs(1) {
            return Err(format!(
                "`window` is {:?}: it must be at least one second",
                self.window
            ));
        }
        Ok(())
    }
}

/// A readiness check of the application's own, e.g. "the database answers".
pub(crate) type CustomCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The result of one readiness check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Check {
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    pub passed: bool,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
}

/// Runs every readiness check.
pub(crate) fn checks(
    config: &HealthConfig,
    pools: &[(PoolSnapshot, WindowStats)],
    custom: Vec<Check>,
) -> Vec<Check> {
    let mut out = Vec::new();
    for (pool, window) in pools {
        let name = pool.pool.as_str();
        if let Some(state) = &pool.state {
            out.push(workers(config, name, state));
            out.push(capacity(config, name, state));
            if let Some(max) = config.max_queue_depth {
                out.push(Check {
                    check: "queue_depth".into(),
                    pool: Some(name.into()),
                    passed: state.queue_depth <= max as u64,
                    value: Some(state.queue_depth as f64),
                    threshold: Some(max as f64),
                    message: format!(
                        "{} requests queued, at most {max} allowed",
                        state.queue_depth
                    ),
                });
            }
        }
        out.extend(error_rate(config, name, window));
        out.extend(p99_latency(config, name, window));
    }
    // Readiness alert rules: failing while they fire.
    for (rule, pool, value, threshold) in crate::seam::readiness_failures() {
        out.push(Check {
            check: format!("alert:{rule}"),
            message: format!("alert `{rule}` is firing: {value} over {threshold}"),
            pool,
            passed: false,
            value: Some(value),
            threshold: Some(threshold),
        });
    }
    out.extend(custom);
    out
}

/// The `workers` check: enough workers up.
fn workers(config: &HealthConfig, pool: &str, state: &crate::model::stats::PoolState) -> Check {
    let up = state.workers.up();
    Check {
        check: "workers".into(),
        pool: Some(pool.into()),
        passed: up >= config.min_ready_workers as u64,
        value: Some(up as f64),
        threshold: Some(config.min_ready_workers as f64),
        message: format!(
            "{up} workers up (available {}, busy {}), at least {} required",
            state.workers.available, state.workers.busy, config.min_ready_workers
        ),
    }
}

/// Why a rate check over the window passes without judging.
fn too_few(config: &HealthConfig, window: &WindowStats) -> String {
    format!(
        "{} requests over {:.0} s, fewer than the {} needed to judge",
        window.requests, window.seconds, config.min_requests
    )
}

/// The `error_rate` check, when a maximum is set.
fn error_rate(config: &HealthConfig, pool: &str, window: &WindowStats) -> Option<Check> {
    let max = config.max_error_rate?;
    let enough = window.requests >= config.min_requests;
    let rate = window.error_rate.unwrap_or(0.0);
    Some(Check {
        check: "error_rate".into(),
        pool: Some(pool.into()),
        passed: !enough || rate <= max,
        value: window.error_rate,
        threshold: Some(max),
        message: if enough {
            format!(
                "{} of {} requests failed over {:.0} s",
                window.failed, window.requests, window.seconds
            )
        } else {
            too_few(config, window)
        },
    })
}

/// The `p99_latency` check, when a maximum is set.
fn p99_latency(config: &HealthConfig, pool: &str, window: &WindowStats) -> Option<Check> {
    let max = config.max_p99?.as_secs_f64();
    let enough = window.requests >= config.min_requests;
    Some(Check {
        check: "p99_latency".into(),
        pool: Some(pool.into()),
        passed: !enough || window.p99.is_none_or(|p99| p99 <= max),
        value: window.p99,
        threshold: Some(max),
        message: match window.p99 {
            Some(p99) if enough => format!("p99 {:.6} s over {} requests", p99, window.requests),
            _ => too_few(config, window),
        },
    })
}

/// The `capacity` check: whether a new request could start soon enough,
/// under the configured policy.
fn capacity(config: &HealthConfig, pool: &str, state: &crate::model::stats::PoolState) -> Check {
    let workers = &state.workers;
    let max_wait = config.max_queue_wait.as_secs_f64();
    let (passed, value, threshold, message) = match config.readiness {
        ReadinessPolicy::Strict => (
            workers.available > 0,
            workers.available as f64,
            Some(1.0),
            format!(
                "{} workers available, {} busy; the strict policy needs one available",
                workers.available, workers.busy
            ),
        ),
        ReadinessPolicy::Capacity if workers.available > 0 => (
            true,
            0.0,
            Some(max_wait),
            format!("{} workers available", workers.available),
        ),
        ReadinessPolicy::Capacity => {
            let busy_for = state.shortest_busy.map_or(0.0, |d| d.as_secs_f64());
            let full = state
                .queue_capacity
                .is_some_and(|capacity| state.queue_depth >= capacity);
            let message = if workers.busy == 0 {
                "no worker is up: the `workers` check judges that".to_owned()
            } else if full {
                format!(
                    "no worker available and the queue is full ({} of {})",
                    state.queue_depth,
                    state.queue_capacity.unwrap_or_default()
                )
            } else {
                format!(
                    "no worker available; every one of the {} busy workers has been busy for at least {busy_for:.3} s, at most {max_wait} s allowed",
                    workers.busy
                )
            };
            (
                workers.busy == 0 || (!full && busy_for <= max_wait),
                busy_for,
                Some(max_wait),
                message,
            )
        }
    };
    Check {
        check: "capacity".into(),
        pool: Some(pool.into()),
        passed,
        value: Some(value),
        threshold,
        message,
    }
}

/// Runs the application's own readiness checks; a panic fails its check.
pub(crate) fn run_custom(custom: &[(String, CustomCheck)]) -> Vec<Check> {
    let mut out = Vec::with_capacity(custom.len());
    for (name, check) in custom {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check()))
            .unwrap_or_else(|_| Err("the check panicked".to_owned()));
        out.push(Check {
            check: name.clone(),
            pool: None,
            passed: result.is_ok(),
            value: None,
            threshold: None,
            // The application's text: it could hold anything.
            message: result.err().map_or_else(
                || "ok".to_owned(),
                |m| crate::sanitize::sanitize(&m).into_owned(),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interner::Label;
    use crate::model::stats::{HistogramSnapshot, PoolState, RequestTotals, WorkerCounts};
    use std::time::Instant;

    fn snapshot(
        pool: &'static str,
        ok: u64,
        failed: u64,
        fast: u64,
        slow: u64,
        up: u64,
    ) -> PoolSnapshot {
        PoolSnapshot {
            pool: Label::from_static(pool),
            state: Some(PoolState {
                pool: Label::from_static(pool),
                size: 2,
                workers: WorkerCounts {
                    available: up,
                    ..WorkerCounts::default()
                },
                queue_depth: 7,
                queue_capacity: None,
                shortest_busy: None,
                saturations: 0,
                saturated: false,
                saturated_nanos: 0,
                crashes: 0,
                sessions_active: 0,
                sessions_expired: 0,
                busy_nanos: 0,
                queue_wait: HistogramSnapshot {
                    bounds: vec![1.0],
                    counts: vec![0, 0],
                    sum_seconds: 0.0,
                },
                time_in_worker: HistogramSnapshot {
                    bounds: vec![1.0],
                    counts: vec![0, 0],
                    sum_seconds: 0.0,
                },
                worker_list: Vec::new(),
            }),
            requests: Some(RequestTotals {
                by_outcome: [ok, failed, 0, 0, 0, 0],
                in_flight: 0,
                durations: HistogramSnapshot {
                    bounds: vec![0.01, 1.0],
                    counts: vec![fast, slow, 0],
                    sum_seconds: 0.0,
                },
            }),
        }
    }

    #[test]
    fn the_window_subtracts_the_sample_at_its_start() {
        let t0 = Instant::now();
        let mut history = History::new(Duration::from_secs(60));
        history.record(t0, &[snapshot("p", 100, 0, 100, 0, 1)]);
        history.record(
            t0 + Duration::from_secs(30),
            &[snapshot("p", 150, 0, 150, 0, 1)],
        );
        let now = t0 + Duration::from_secs(40);
        // Over 10 s: the sample at 30 s is the start; over 60 s: the first.
        let recent = history.window(
            now,
            Duration::from_secs(10),
            &snapshot("p", 160, 40, 160, 40, 1),
        );
        assert_eq!(
            (recent.requests, recent.failed, recent.seconds),
            (50, 40, 10.0)
        );
        assert_eq!(recent.error_rate, Some(0.8));
        assert!(
            recent.p99.is_some_and(|p99| p99 > 0.01 && p99 <= 1.0),
            "{:?}",
            recent.p99
        );
        let all = history.window(
            now,
            Duration::from_secs(60),
            &snapshot("p", 160, 40, 160, 40, 1),
        );
        assert_eq!(all.requests, 100);
        assert!((all.request_rate - 2.5).abs() < 1e-9);
    }

    #[test]
    fn checks_fail_with_the_measured_value_and_threshold() {
        let config = HealthConfig::default()
            .with_max_queue_depth(5)
            .with_max_error_rate(0.1);
        let window = WindowStats {
            requests: 20,
            failed: 10,
            error_rate: Some(0.5),
            ..WindowStats::default()
        };
        let custom: Vec<(String, CustomCheck)> =
            vec![("db".into(), Arc::new(|| Err("connection refused".into())))];
        let out = checks(
            &config,
            &[(snapshot("p", 0, 0, 0, 0, 0), window)],
            run_custom(&custom),
        );
        let failed: Vec<(&str, Option<f64>, Option<f64>)> = out
            .iter()
            .filter(|c| !c.passed)
            .map(|c| (c.check.as_str(), c.value, c.threshold))
            .collect();
        assert_eq!(
            failed,
            [
                ("workers", Some(0.0), Some(1.0)),
                ("queue_depth", Some(7.0), Some(5.0)),
                ("error_rate", Some(0.5), Some(0.1)),
                ("db", None, None)
            ]
        );
        let db = out.iter().find(|c| c.check == "db").unwrap();
        assert_eq!(db.message, "connection refused");
    }

    #[test]
    fn too_few_requests_do_not_fail_rate_checks() {
        let config = HealthConfig::default()
            .with_max_error_rate(0.1)
            .with_max_p99(Duration::from_millis(1));
        let window = WindowStats {
            requests: 3,
            failed: 3,
            error_rate: Some(1.0),
            p99: Some(5.0),
            ..WindowStats::default()
        };
        let out = checks(
            &config,
            &[(snapshot("p", 0, 0, 0, 0, 1), window)],
            Vec::new(),
        );
        assert!(out.iter().all(|c| c.passed), "{out:?}");
    }

    #[test]
    fn config_validation_names_the_field() {
        assert!(HealthConfig::default()
            .with_max_error_rate(2.0)
            .validate()
            .unwrap_err()
            .contains("max_error_rate"));
        assert!(HealthConfig::default()
            .with_window(Duration::ZERO)
            .validate()
            .unwrap_err()
            .contains("window"));
    }
}
