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
