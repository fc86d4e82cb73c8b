use crate::interner::Label;
use crate::model::Outcome;

/// A consistent-enough copy of one outcome's histogram, for tests and health.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds in seconds; the last count is `+Inf`.
    pub bounds: Vec<f64>,
    /// Per-bucket (not cumulative) counts, one more than `bounds`.
    pub counts: Vec<u64>,
    /// Sum of all samples, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A copy of one series' statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSnapshot {
    /// Calls started and not yet completed.
    pub in_flight: u64,
    /// One histogram per outcome, in [`Outcome::ALL`] order.
    pub by_outcome: [HistogramSnapshot; Outcome::COUNT],
}

impl SeriesSnapshot {
    /// The histogram of one outcome.
    pub fn outcome(&self, outcome: Outcome) -> &HistogramSnapshot {
        &self.by_outcome[outcome.index()]
    }
}

/// Workers of a pool by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Spawned, not yet ready.
    pub starting: u64,
    /// Ready and waiting for work.
    pub available: u64,
    /// Running a request.
    pub busy: u64,
    /// Crashed and not yet restarted.
    pub crashed: u64,
    /// Shut down on purpose.
    pub stopped: u64,
}

impl WorkerCounts {
    /// Workers that can take a request now or when they finish one:
    /// available plus busy.
    pub fn up(&self) -> u64 {
        self.available + self.busy
    }
}

/// What the imperative pool API reported for one pool.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolState {
    /// The pool.
    pub pool: Label,
    /// Workers it is configured to run.
    pub size: u64,
    /// Workers by state.
    pub workers: WorkerCounts,
    /// Requests waiting for a worker.
    pub queue_depth: u64,
    /// Requests the queue holds at most, when the pool reported it
    /// (`Pool::set_queue_capacity`).
    pub queue_capacity: Option<u64>,
    /// The shortest busy period running now, over the workers that are
    /// busy: with none available, how long every worker has been busy.
    pub shortest_busy: Option<std::time::Duration>,
    /// Saturation episodes begun.
    pub saturations: u64,
    /// Whether the pool is saturated now (an episode runs and has not come
    /// clear).
    pub saturated: bool,
    /// Nanoseconds spent saturated, the open episode included.
    pub saturated_nanos: u64,
    /// Worker crashes.
    pub crashes: u64,
    /// Sessions alive.
    pub sessions_active: u64,
    /// Sessions removed by cleanup.
    pub sessions_expired: u64,
    /// Nanoseconds its workers have been busy, summed, including busy
    /// periods still running: utilization is its growth over wall time.
    pub busy_nanos: u64,
    /// Queue waits reported with `Pool::queue_wait`.
    pub queue_wait: HistogramSnapshot,
    /// Busy periods of its workers (from `Busy` to another state): the time
    /// a request spent in a worker.
    pub time_in_worker: HistogramSnapshot,
    /// The live worker handles, in creation order (at most
    /// [`MAX_LISTED_WORKERS`]).
    pub worker_list: Vec<WorkerInfo>,
}

/// Most workers a [`PoolState`] lists one by one.
pub const MAX_LISTED_WORKERS: usize = 256;

/// One worker, as the pool API reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: crate::model::WorkerState,
    /// Time since its handle was created (for a restarted worker: since the
    /// restart).
    pub uptime: std::time::Duration,
    /// Its process id, when reported (`Worker::set_pid`, `Worker::started`).
    pub pid: Option<u32>,
}

/// Every observed request of one pool, summed over its commands.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestTotals {
    /// Completed requests by outcome, in [`Outcome::ALL`] order.
    pub by_outcome: [u64; Outcome::COUNT],
    /// Started and not yet completed.
    pub in_flight: u64,
    /// Durations of every outcome together.
    pub durations: HistogramSnapshot,
}

impl RequestTotals {
    /// Completed requests.
    pub fn completed(&self) -> u64 {
        self.by_outcome.iter().sum()
    }

    /// Completed requests that did not end `ok`.
    pub fn failed(&self) -> u64 {
        self.completed() - self.by_outcome[Outcome::Ok.index()]
    }
}

/// A pool's state and its requests; see `stats::pools`.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSnapshot {
    /// The pool.
    pub pool: Label,
    /// What the pool API reported, if a `Pool` handle was built for it
    /// (`None` for a pool only seen through `#[observe]`).
    pub state: Option<PoolState>,
    /// Its observed requests, if any were recorded (`timing` aspect).
    pub requests: Option<RequestTotals>,
}

impl HistogramSnapshot {
    /// The `q` quantile (0 ≤ q ≤ 1) by linear interpolation inside the
    /// bucket that holds it, as Prometheus's `histogram_quantile` does: the
    /// error is at most the width of that bucket. `None` without samples;
    /// a quantile in the `+Inf` bucket reads as the largest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            if count > 0 && (below + count) as f64 >= rank {
                let Some(&upper) = self.bounds.get(i) else {
                    return self.bounds.last().copied();
                };
                let lower = if i == 0 { 0.0 } else { self.bounds[i - 1] };
                let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            below += count;
        }
        self.bounds.last().copied()
    }

    /// This histogram minus an earlier one of the same series (counts that
    /// only grow): what happened in between. `None` if the bounds differ.
    pub fn since(&self, earlier: &HistogramSnapshot) -> Option<HistogramSnapshot> {
        if self.bounds != earlier.bounds {
            return None;
        }
        Some(HistogramSnapshot {
            bounds: self.bounds.clone(),
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            sum_seconds: (self.sum_seconds - earlier.sum_seconds).max(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(bounds: &[f64], counts: &[u64]) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: bounds.to_vec(),
            counts: counts.to_vec(),
            sum_seconds: 0.0,
        }
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        // 10 samples in (0, 1], 10 in (1, 2].
        let h = hist(&[1.0, 2.0], &[10, 10, 0]);
        assert_eq!(h.quantile(0.5), Some(1.0));
        assert_eq!(h.quantile(0.25), Some(0.5));
        assert_eq!(h.quantile(0.75), Some(1.5));
        assert_eq!(h.quantile(1.0), Some(2.0));
        assert_eq!(
            hist(&[1.0], &[0, 3]).quantile(0.5),
            Some(1.0),
            "+Inf reads as the last bound"
        );
        assert_eq!(hist(&[1.0], &[0, 0]).quantile(0.5), None);
        assert_eq!(h.quantile(1.5), None);
    }

    #[test]
    fn since_subtracts_an_earlier_snapshot() {
        let now = hist(&[1.0], &[5, 2]);
        let then = hist(&[1.0], &[3, 2]);
        assert_eq!(now.since(&then).unwrap().counts, vec![2, 0]);
        assert!(now.since(&hist(&[2.0], &[0, 0])).is_none());
    }

    /// Percentiles from the default buckets against exact percentiles of
    /// known data: each estimate lies in the bucket that holds the exact
    /// value, so the error is at most that bucket's width (documented in
    /// docs/metrics.md).
    #[test]
    fn estimates_stay_within_the_bucket_of_the_exact_percentile() {
        let bounds = crate::buckets::DEFAULT_DURATION_BUCKETS.to_vec();
        // Three shapes: uniform over 0-200 ms, log-uniform over 50 µs-5 s,
        // and a bimodal mix of fast calls and slow ones.
        let uniform: Vec<f64> = (0..10_000).map(|i| (i as f64 + 0.5) * 0.000_02).collect();
        let log_uniform: Vec<f64> = (0..10_000)
            .map(|i| 0.000_05 * (100_000f64).powf((i as f64 + 0.5) / 10_000.0))
            .collect();
        let bimodal: Vec<f64> = (0..10_000)
            .map(|i| {
                if i % 10 == 0 {
                    0.8 + (i % 7) as f64 * 0.01
                } else {
                    0.003 + (i % 5) as f64 * 0.0001
                }
            })
            .collect();
        for (name, mut data) in [
            ("uniform", uniform),
            ("log-uniform", log_uniform),
            ("bimodal", bimodal),
        ] {
            let mut counts = vec![0u64; bounds.len() + 1];
            for &v in &data {
                counts[bounds.partition_point(|&b| b < v)] += 1;
            }
            let h = HistogramSnapshot {
                bounds: bounds.clone(),
                counts,
                sum_seconds: data.iter().sum(),
            };
            data.sort_by(f64::total_cmp);
            for q in [0.5, 0.9, 0.99, 0.999] {
                let exact = data[((q * data.len() as f64).ceil() as usize).saturating_sub(1)];
                let estimate = h.quantile(q).unwrap();
                let bucket = bounds.partition_point(|&b| b < exact);
                let lower = if bucket == 0 { 0.0 } else { bounds[bucket - 1] };
                let upper = bounds[bucket];
                assert!(
                    (lower..=upper).contains(&estimate),
                    "{name} q{q}: exact {exact}, estimate {estimate}, bucket ({lower}, {upper}]"
                );
            }
        }
    }
}
