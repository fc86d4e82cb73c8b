//! Health: a bounded history of pool statistics, the readiness checks, and
//! the JSON bodies of `/health`, `/health/ready` and `/health/detailed`.

use std::sync::Arc;

use serde::Serialize;

pub use crate::model::health::{HealthConfig, HealthError, ReadinessPolicy};
use crate::model::stats::PoolSnapshot;
pub(crate) use crate::model::window::{History, WindowStats};

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
    use std::time::{Duration, Instant};

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
            .to_string()
            .contains("max_error_rate"));
        assert!(HealthConfig::default()
            .with_window(Duration::ZERO)
            .validate()
            .unwrap_err()
            .to_string()
            .contains("window"));
    }
}
