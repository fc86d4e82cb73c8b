//! A bounded history of pool statistics, one cumulative sample per tick:
//! what "over the last window" rates and percentiles are computed from,
//! without keeping a single request. Used by the health checks and by alerts.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::interner::Label;
use crate::model::stats::{HistogramSnapshot, PoolSnapshot};
use crate::model::Outcome;

/// Cumulative counts of one pool at one moment.
struct PoolSample {
    by_outcome: [u64; Outcome::COUNT],
    durations: Option<HistogramSnapshot>,
    saturations: u64,
    crashes: u64,
    busy_nanos: u64,
    queue_wait: Option<HistogramSnapshot>,
    time_in_worker: Option<HistogramSnapshot>,
}

impl PoolSample {
    fn of(pool: &PoolSnapshot) -> PoolSample {
        PoolSample {
            by_outcome: pool
                .requests
                .as_ref()
                .map_or([0; Outcome::COUNT], |r| r.by_outcome),
            durations: pool.requests.as_ref().map(|r| r.durations.clone()),
            saturations: pool.state.as_ref().map_or(0, |s| s.saturations),
            crashes: pool.state.as_ref().map_or(0, |s| s.crashes),
            busy_nanos: pool.state.as_ref().map_or(0, |s| s.busy_nanos),
            queue_wait: pool.state.as_ref().map(|s| s.queue_wait.clone()),
            time_in_worker: pool.state.as_ref().map(|s| s.time_in_worker.clone()),
        }
    }
}

/// A bounded history of cumulative samples, one a second: what rates and
/// percentiles "over the last window" are computed from, without keeping a
/// single request.
pub(crate) struct History {
    samples: VecDeque<(Instant, HashMap<Label, PoolSample>)>,
    keep: Duration,
}

/// What happened to one pool over the recent window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowStats {
    /// Seconds actually covered (less than the window just after start).
    pub seconds: f64,
    /// Requests completed.
    pub requests: u64,
    /// Of them, not `ok`.
    pub failed: u64,
    /// Requests per second.
    pub request_rate: f64,
    /// `failed / requests`; `None` without requests.
    pub error_rate: Option<f64>,
    /// Median duration, seconds.
    pub p50: Option<f64>,
    /// 90th percentile, seconds.
    pub p90: Option<f64>,
    /// 99th percentile, seconds.
    pub p99: Option<f64>,
    /// 99.9th percentile, seconds.
    pub p999: Option<f64>,
    /// Saturations reported.
    pub saturations: u64,
    /// Worker crashes reported.
    pub crashes: u64,
    /// Busy time of the pool's workers over wall time times its size (or,
    /// without a size, its listed workers), 0 to 1; `None` for a pool
    /// without the pool API or without workers.
    pub utilization: Option<f64>,
    /// Queue waits reported over the window.
    pub queue_waits: u64,
    /// Median queue wait, seconds.
    pub queue_wait_p50: Option<f64>,
    /// 99th percentile queue wait, seconds.
    pub queue_wait_p99: Option<f64>,
    /// Median time in worker (one busy period), seconds.
    pub time_in_worker_p50: Option<f64>,
    /// 99th percentile time in worker, seconds.
    pub time_in_worker_p99: Option<f64>,
    /// The request durations of the window, for any other quantile.
    pub durations: Option<HistogramSnapshot>,
    /// The queue waits of the window.
    pub queue_wait: Option<HistogramSnapshot>,
}

impl History {
    pub(crate) fn new(keep: Duration) -> History {
        History {
            samples: VecDeque::new(),
            keep,
        }
    }

    /// Keeps at least `keep` from now on (a longer window reaches back only
    /// as far as the samples already kept).
    #[cfg(feature = "http")]
    pub(crate) fn set_keep(&mut self, keep: Duration) {
        self.keep = keep;
    }

    pub(crate) fn record(&mut self, now: Instant, pools: &[PoolSnapshot]) {
        self.samples.push_back((
            now,
            pools.iter().map(|p| (p.pool, PoolSample::of(p))).collect(),
        ));
        // Keep one sample older than the window so the window is always covered.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) > self.keep)
        {
            self.samples.pop_front();
        }
    }

    /// `current` against the oldest sample inside the window (or just before it).
    pub(crate) fn window(
        &self,
        now: Instant,
        window: Duration,
        current: &PoolSnapshot,
    ) -> WindowStats {
        let start = self
            .samples
            .iter()
            .rev()
            .find(|(at, _)| now.duration_since(*at) >= window)
            .or_else(|| self.samples.front());
        let Some((at, pools)) = start else {
            return WindowStats::default();
        };
        let seconds = now.duration_since(*at).as_secs_f64();
        let now_sample = PoolSample::of(current);
        let then = pools.get(&current.pool);
        let diff = |f: fn(&PoolSample) -> u64| f(&now_sample).saturating_sub(then.map_or(0, f));
        let by_outcome: [u64; Outcome::COUNT] = std::array::from_fn(|i| {
            now_sample.by_outcome[i].saturating_sub(then.map_or(0, |t| t.by_outcome[i]))
        });
        let requests: u64 = by_outcome.iter().sum();
        let failed = requests - by_outcome[Outcome::Ok.index()];
        // What a histogram gained over the window (all of it when the
        // window reaches back past the pool's first sample).
        let growth =
            |now: &Option<HistogramSnapshot>, then: Option<&Option<HistogramSnapshot>>| match (
                now,
                then.and_then(|t| t.as_ref()),
            ) {
                (Some(now), Some(then)) => now.since(then),
                (Some(now), None) => Some(now.clone()),
                _ => None,
            };
        let durations = growth(&now_sample.durations, then.map(|t| &t.durations));
        let quantile = |q| durations.as_ref().and_then(|d| d.quantile(q));
        let queue_wait = growth(&now_sample.queue_wait, then.map(|t| &t.queue_wait));
        let time_in_worker = growth(&now_sample.time_in_worker, then.map(|t| &t.time_in_worker));
        let utilization = current.state.as_ref().and_then(|state| {
            let capacity = if state.size > 0 {
                state.size
            } else {
                state.worker_list.len() as u64
            };
            if capacity == 0 || seconds <= 0.0 {
                return None;
            }
            let busy = diff(|s| s.busy_nanos) as f64 / 1e9;
            Some((busy / (seconds * capacity as f64)).clamp(0.0, 1.0))
        });
        WindowStats {
            seconds,
            requests,
            failed,
            request_rate: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            error_rate: (requests > 0).then(|| failed as f64 / requests as f64),
            p50: quantile(0.5),
            p90: quantile(0.9),
            p99: quantile(0.99),
            p999: quantile(0.999),
            saturations: diff(|s| s.saturations),
            crashes: diff(|s| s.crashes),
            utilization,
            queue_waits: queue_wait.as_ref().map_or(0, HistogramSnapshot::count),
            queue_wait_p50: queue_wait.as_ref().and_then(|h| h.quantile(0.5)),
            queue_wait_p99: queue_wait.as_ref().and_then(|h| h.quantile(0.99)),
            time_in_worker_p50: time_in_worker.as_ref().and_then(|h| h.quantile(0.5)),
            time_in_worker_p99: time_in_worker.as_ref().and_then(|h| h.quantile(0.99)),
            durations,
            queue_wait,
        }
    }
}
