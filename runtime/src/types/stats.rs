use crate::types::Outcome;

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
    pub by_outcome: [HistogramSnapshot; 4],
}

impl SeriesSnapshot {
    /// The histogram of one outcome.
    pub fn outcome(&self, outcome: Outcome) -> &HistogramSnapshot {
        &self.by_outcome[outcome.index()]
    }
}
