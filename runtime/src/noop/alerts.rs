//! Alert rules checked as in the real build, and never evaluated.

pub use crate::model::alert_rule::{
    AlertError, AlertRule, ErrorRateRule, Measure, ERROR_RATE_RULE,
};

/// Watches nothing: with no aspect there are no request statistics.
#[derive(Debug)]
pub struct AlertWatcher;

/// Holds nothing: there is no watcher thread.
#[derive(Clone, Debug, Default)]
pub struct AlertControls;

impl AlertControls {
    /// Checks the rules, as in the real build.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range.
    pub fn set_rules(&self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
        crate::model::alert_rule::validate_all(&rules)
    }
}

impl AlertWatcher {
    /// A handle that checks rules and keeps none.
    pub fn controls(&self) -> AlertControls {
        AlertControls
    }

    /// Checks the rules, as in the real build.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range.
    pub fn set_rules(&self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
        AlertControls.set_rules(rules)
    }
}

// Empty, but present as in the real build, so code that drops a watcher
// explicitly compiles (and lints) the same.
impl Drop for AlertWatcher {
    #[inline(always)]
    fn drop(&mut self) {}
}

/// Checks the rule and returns a watcher that does nothing.
///
/// # Errors
///
/// [`AlertError::Rule`] for a rule out of range, as in the real build.
pub fn watch_error_rate(rule: ErrorRateRule) -> Result<AlertWatcher, AlertError> {
    rule.validate()?;
    Ok(AlertWatcher)
}

/// Checks the rules and returns a watcher that does nothing.
///
/// # Errors
///
/// [`AlertError::Rule`] for a rule out of range, as in the real build.
pub fn watch(
    rules: Vec<AlertRule>,
    every: std::time::Duration,
) -> Result<AlertWatcher, AlertError> {
    crate::model::alert_rule::validate_watch(&rules, every)?;
    Ok(AlertWatcher)
}

/// Checks the rules and returns a watcher that does nothing; the clock is
/// never read.
///
/// # Errors
///
/// [`AlertError::Rule`] for a rule out of range, as in the real build.
pub fn watch_with_clock(
    rules: Vec<AlertRule>,
    every: std::time::Duration,
    _clock: impl Into<crate::clock::Clock>,
) -> Result<AlertWatcher, AlertError> {
    watch(rules, every)
}

/// Evaluates nothing: with no aspect there are no request statistics.
#[derive(Debug)]
pub struct AlertEvaluator;

impl AlertEvaluator {
    /// Checks the rules, as in the real build.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range.
    pub fn new(rules: Vec<AlertRule>) -> Result<AlertEvaluator, AlertError> {
        crate::model::alert_rule::validate_all(&rules)?;
        Ok(AlertEvaluator)
    }

    /// Does nothing.
    #[inline(always)]
    pub fn evaluate_at(&mut self, _now: std::time::Instant) {}

    /// Checks the rules, as in the real build.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range.
    pub fn set_rules(&mut self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
        crate::model::alert_rule::validate_all(&rules)
    }
}

/// Nothing fires without aspects.
#[cfg(feature = "http")]
pub(crate) fn readiness_failures() -> Vec<(String, Option<String>, f64, f64)> {
    Vec::new()
}
