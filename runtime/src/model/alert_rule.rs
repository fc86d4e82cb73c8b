//! Alert rules: plain data, the same with and without aspects.

use std::time::Duration;

/// The rule's name in events and metrics.
pub const ERROR_RATE_RULE: &str = "error_rate";

/// When to alert on a pool's error rate.
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::alerts::ErrorRateRule;
/// let rule = ErrorRateRule::new(0.05).unwrap().with_window(Duration::from_secs(120));
/// assert_eq!(rule.threshold, 0.05);
/// assert!(ErrorRateRule::new(1.5).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct ErrorRateRule {
    /// Fire when failed / completed requests over the window exceeds this.
    pub threshold: f64,
    /// Resolve when the rate falls to this fraction of the threshold or
    /// below. Default 0.8.
    pub resolve_ratio: f64,
    /// The sliding window. Default 60 s.
    pub window: Duration,
    /// Judge only windows with at least this many requests. Default 20.
    pub min_requests: u64,
    /// How often the rule is evaluated. Default 1 s.
    pub every: Duration,
}

/// A rule that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertError {
    /// A setting is out of range.
    #[error("invalid alert rule: {0}")]
    Rule(String),
    /// The evaluation thread could not start.
    #[error("could not start the alert thread: {0}")]
    Thread(String),
}

impl ErrorRateRule {
    /// A rule firing above `threshold` (a fraction, 0 to 1).
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] outside 0 to 1.
    pub fn new(threshold: f64) -> Result<ErrorRateRule, AlertError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(AlertError::Rule(format!(
                "error-rate threshold {threshold} is not between 0 and 1"
            )));
        }
        Ok(ErrorRateRule {
            threshold,
            resolve_ratio: 0.8,
            window: Duration::from_secs(60),
            min_requests: 20,
            every: Duration::from_secs(1),
        })
    }

    /// Sets [`ErrorRateRule::window`].
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets [`ErrorRateRule::min_requests`].
    pub fn with_min_requests(mut self, requests: u64) -> Self {
        self.min_requests = requests;
        self
    }

    /// Sets [`ErrorRateRule::every`].
    pub fn with_every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Sets [`ErrorRateRule::resolve_ratio`] (0 to 1).
    pub fn with_resolve_ratio(mut self, ratio: f64) -> Self {
        self.resolve_ratio = ratio;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), AlertError> {
        if self.window.is_zero() || self.every.is_zero() {
            return Err(AlertError::Rule(
                "the window and the evaluation period must be more than zero".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.resolve_ratio) {
            return Err(AlertError::Rule(format!(
                "resolve ratio {} is not between 0 and 1",
                self.resolve_ratio
            )));
        }
        Ok(())
    }
}

/// What a threshold rule measures, per pool unless said otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measure {
    /// Failed ÷ completed requests over the window (0 to 1).
    ErrorRate,
    /// A request-duration quantile over the window, in seconds.
    Latency {
        /// The quantile, 0 to 1 (0.99 for p99).
        quantile: f64,
    },
    /// Requests waiting in the queue now.
    QueueDepth,
    /// A queue-wait quantile over the window, in seconds.
    QueueWait {
        /// The quantile, 0 to 1.
        quantile: f64,
    },
    /// Busy time ÷ (wall time × workers) over the window (0 to 1).
    Utilization,
    /// Worker crashes per minute over the window.
    CrashRate,
    /// The resident size of the pool's worker processes, summed, in bytes
    /// (needs a running `memory::MemorySampler` and worker pids).
    WorkersResidentBytes,
    /// This process's resident size, in bytes (not per pool).
    ProcessResidentBytes,
}

impl Measure {
    /// Whether the value is about the process rather than one pool.
    pub fn is_process_wide(self) -> bool {
        matches!(self, Measure::ProcessResidentBytes)
    }

    /// Whether the value needs [`AlertRule::min_requests`] requests in the
    /// window to be judged.
    pub fn needs_requests(self) -> bool {
        matches!(self, Measure::ErrorRate | Measure::Latency { .. })
    }
}

/// A threshold alert rule: fires when the measured value goes above
/// `threshold`, resolves when it falls to `resolve_at` or below (hysteresis:
/// a value hovering at the threshold does not flap).
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::alerts::{AlertRule, Measure};
/// let rule = AlertRule::new("slow", Measure::Latency { quantile: 0.99 }, 0.5)
///     .unwrap()
///     .with_window(Duration::from_secs(120))
///     .for_readiness(true);
/// assert_eq!(rule.resolve_at, 0.4);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(from = "spec::RuleSpec"))]
pub struct AlertRule {
    /// The rule's name in events, logs and the `rule` label.
    pub name: String,
    /// What it measures.
    pub measure: Measure,
    /// Fire above this.
    pub threshold: f64,
    /// Resolve at or below this. Default 80% of the threshold.
    pub resolve_at: f64,
    /// The sliding window of rates and percentiles, 1 s to 1 h. Default
    /// 60 s.
    pub window: Duration,
    /// Error-rate and latency rules judge only windows with at least this
    /// many requests (and a firing alert resolves when there are fewer).
    /// Default 20.
    pub min_requests: u64,
    /// Only these pools; empty means every pool.
    pub pools: Vec<String>,
    /// While firing, `/health/ready` answers 503 with this rule as the
    /// failed check.
    pub readiness: bool,
}

impl AlertRule {
    /// A rule named `name` firing when `measure` goes above `threshold`.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for an empty name, a threshold that is negative
    /// or not finite, a fraction above 1, or a quantile outside 0 to 1.
    pub fn new(
        name: impl Into<String>,
        measure: Measure,
        threshold: f64,
    ) -> Result<AlertRule, AlertError> {
        let rule = AlertRule::unchecked(name.into(), measure, threshold);
        rule.validate()?;
        Ok(rule)
    }

    /// The rule with every default, not yet checked.
    fn unchecked(name: String, measure: Measure, threshold: f64) -> AlertRule {
        AlertRule {
            name,
            measure,
            threshold,
            resolve_at: threshold * 0.8,
            window: Duration::from_secs(60),
            min_requests: 20,
            pools: Vec::new(),
            readiness: false,
        }
    }

    /// Sets [`AlertRule::resolve_at`].
    pub fn with_resolve_at(mut self, value: f64) -> Self {
        self.resolve_at = value;
        self
    }

    /// Sets [`AlertRule::window`].
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets [`AlertRule::min_requests`].
    pub fn with_min_requests(mut self, requests: u64) -> Self {
        self.min_requests = requests;
        self
    }

    /// Adds a pool to [`AlertRule::pools`].
    pub fn for_pool(mut self, pool: impl Into<String>) -> Self {
        self.pools.push(pool.into());
        self
    }

    /// Sets [`AlertRule::readiness`].
    pub fn for_readiness(mut self, readiness: bool) -> Self {
        self.readiness = readiness;
        self
    }

    /// Checks every setting, naming the one out of range.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] with the rule's name and the problem.
    pub fn validate(&self) -> Result<(), AlertError> {
        let bad =
            |problem: String| Err(AlertError::Rule(format!("rule `{}`: {problem}", self.name)));
        if self.name.trim().is_empty() {
            return Err(AlertError::Rule("an alert rule needs a name".into()));
        }
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            return bad(format!(
                "threshold {} is not a finite value ≥ 0",
                self.threshold
            ));
        }
        if matches!(self.measure, Measure::ErrorRate | Measure::Utilization) && self.threshold > 1.0
        {
            return bad(format!(
                "threshold {} is a fraction: it must be at most 1",
                self.threshold
            ));
        }
        if let Measure::Latency { quantile } | Measure::QueueWait { quantile } = self.measure {
            if !(0.0..=1.0).contains(&quantile) {
                return bad(format!("quantile {quantile} is not between 0 and 1"));
            }
        }
        if !self.resolve_at.is_finite() || self.resolve_at > self.threshold || self.resolve_at < 0.0
        {
            return bad(format!(
                "resolve_at {} must be between 0 and the threshold {}",
                self.resolve_at, self.threshold
            ));
        }
        if self.window < Duration::from_secs(1) || self.window > Duration::from_secs(3600) {
            return bad(format!(
                "window {:?} is not between 1 s and 1 h (3600 s)",
                self.window
            ));
        }
        Ok(())
    }
}

impl From<&ErrorRateRule> for AlertRule {
    fn from(rule: &ErrorRateRule) -> AlertRule {
        AlertRule {
            name: ERROR_RATE_RULE.to_owned(),
            measure: Measure::ErrorRate,
            threshold: rule.threshold,
            resolve_at: rule.threshold * rule.resolve_ratio,
            window: rule.window,
            min_requests: rule.min_requests,
            pools: Vec::new(),
            readiness: false,
        }
    }
}

/// `[[alerts.rules]]` as a configuration file writes a rule: the measure
/// by name, its quantile beside it, durations in seconds, defaults for
/// what is left out. Only read into an [`AlertRule`], which
/// [`AlertRule::validate`] then checks like any other.
#[cfg(feature = "config")]
mod spec {
    use std::time::Duration;

    use serde::Deserialize;

    use super::{AlertRule, Measure};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RuleSpec {
        name: String,
        measure: MeasureName,
        /// For `latency` and `queue_wait`; p99 when left out.
        quantile: Option<f64>,
        threshold: f64,
        resolve_at: Option<f64>,
        #[serde(
            default,
            rename = "window_seconds",
            deserialize_with = "crate::model::seconds::optional"
        )]
        window: Option<Duration>,
        min_requests: Option<u64>,
        #[serde(default)]
        pools: Vec<String>,
        #[serde(default)]
        readiness: bool,
    }

    /// The tag that picks the [`Measure`] variant.
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum MeasureName {
        ErrorRate,
        Latency,
        QueueDepth,
        QueueWait,
        Utilization,
        CrashRate,
        WorkersResidentBytes,
        ProcessResidentBytes,
    }

    impl From<RuleSpec> for AlertRule {
        fn from(spec: RuleSpec) -> AlertRule {
            let quantile = spec.quantile.unwrap_or(0.99);
            let measure = match spec.measure {
                MeasureName::ErrorRate => Measure::ErrorRate,
                MeasureName::Latency => Measure::Latency { quantile },
                MeasureName::QueueDepth => Measure::QueueDepth,
                MeasureName::QueueWait => Measure::QueueWait { quantile },
                MeasureName::Utilization => Measure::Utilization,
                MeasureName::CrashRate => Measure::CrashRate,
                MeasureName::WorkersResidentBytes => Measure::WorkersResidentBytes,
                MeasureName::ProcessResidentBytes => Measure::ProcessResidentBytes,
            };
            // Checked once with the rest of the configuration, which names
            // the rule's place in the file.
            let mut rule = AlertRule::unchecked(spec.name, measure, spec.threshold);
            if let Some(resolve_at) = spec.resolve_at {
                rule.resolve_at = resolve_at;
            }
            if let Some(window) = spec.window {
                rule.window = window;
            }
            if let Some(requests) = spec.min_requests {
                rule.min_requests = requests;
            }
            rule.pools = spec.pools;
            rule.readiness = spec.readiness;
            rule
        }
    }
}

/// Checks every rule, naming the first one out of range.
pub(crate) fn validate_all(rules: &[AlertRule]) -> Result<(), AlertError> {
    rules.iter().try_for_each(AlertRule::validate)
}

/// What `alerts::watch` checks, in both builds: the rules and the period.
pub(crate) fn validate_watch(
    rules: &[AlertRule],
    every: std::time::Duration,
) -> Result<(), AlertError> {
    validate_all(rules)?;
    if every.is_zero() {
        return Err(AlertError::Rule(
            "the evaluation period must be more than zero".into(),
        ));
    }
    Ok(())
}
