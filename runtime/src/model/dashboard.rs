//! Settings of the live dashboard, as the server and the configuration
//! file both take them.

use std::time::Duration;

/// Settings of the dashboard; see [`ServerBuilder::with_dashboard`].
///
/// [`ServerBuilder::with_dashboard`]: crate::http::ServerBuilder::with_dashboard
///
/// ```
/// # #[cfg(feature = "dashboard")] {
/// use std::time::Duration;
/// use poolscope_runtime::http::DashboardConfig;
/// let dashboard = DashboardConfig::default()
///     .with_interval(Duration::from_millis(250))
///     .with_max_viewers(16);
/// assert_eq!(dashboard.recent_errors, 50);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(default, deny_unknown_fields))]
pub struct DashboardConfig {
    /// How often a snapshot is pushed, 100 ms to 500 ms. Errors, alerts and
    /// worker starts and crashes push one at once besides. Default 500 ms.
    #[cfg_attr(
        feature = "config",
        serde(
            rename = "interval_seconds",
            deserialize_with = "super::seconds::deserialize"
        )
    )]
    pub interval: Duration,
    /// How far back the request-rate and latency chart goes. Default 5 min.
    #[cfg_attr(
        feature = "config",
        serde(
            rename = "chart_span_seconds",
            deserialize_with = "super::seconds::deserialize"
        )
    )]
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
pub(crate) fn check_metrics(names: &[String]) -> Result<(), DashboardError> {
    match names
        .iter()
        .find(|n| !crate::model::catalogue::is_metric_name(n))
    {
        Some(bad) => Err(DashboardError::Metric(bad.clone())),
        None => Ok(()),
    }
}

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

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// The first [`DashboardError`].
    pub fn validate(&self) -> Result<(), DashboardError> {
        if self.interval < MIN_INTERVAL || self.interval > Duration::from_millis(500) {
            return Err(DashboardError::Interval(self.interval));
        }
        if self.chart_span < Duration::from_secs(10) || self.chart_span > Duration::from_secs(3600)
        {
            return Err(DashboardError::ChartSpan(self.chart_span));
        }
        check_metrics(&self.metrics)?;
        for (name, key, value, max) in [
            (
                "max_viewers",
                "dashboard.max_viewers",
                self.max_viewers,
                10_000,
            ),
            (
                "viewer_buffer",
                "dashboard.viewer_buffer",
                self.viewer_buffer,
                1_000,
            ),
            (
                "recent_errors",
                "dashboard.recent_errors",
                self.recent_errors,
                10_000,
            ),
            (
                "recent_alerts",
                "dashboard.recent_alerts",
                self.recent_alerts,
                10_000,
            ),
        ] {
            if value == 0 || value > max {
                return Err(DashboardError::Limit {
                    name,
                    key,
                    value,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// The shortest push interval: bursts of errors push at most this often,
/// so an error storm costs a bounded number of snapshots.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A dashboard setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DashboardError {
    /// The push interval is outside 100 ms to 500 ms.
    #[error("dashboard `interval` is {0:?}: it must be between 100 ms and 500 ms, so the page is never more than a second behind")]
    Interval(Duration),
    /// The chart span is outside 10 s to 1 h.
    #[error("dashboard `chart_span` is {0:?}: it must be between 10 s and 1 h")]
    ChartSpan(Duration),
    /// An application metric's name is not a Prometheus metric name.
    #[error("dashboard metric `{0}` is not a Prometheus metric name")]
    Metric(String),
    /// A count is zero or above its limit.
    #[error("dashboard `{name}` is {value}: it must be between 1 and {max}")]
    Limit {
        /// The setting.
        name: &'static str,
        /// Its configuration key (`dashboard.max_viewers`).
        key: &'static str,
        /// Its value.
        value: usize,
        /// The most it may be.
        max: usize,
    },
}

impl DashboardError {
    /// The configuration key of the setting (`dashboard.interval_seconds`).
    pub fn key(&self) -> &'static str {
        match self {
            DashboardError::Interval(_) => "dashboard.interval_seconds",
            DashboardError::ChartSpan(_) => "dashboard.chart_span_seconds",
            DashboardError::Metric(_) => "dashboard.metrics",
            DashboardError::Limit { key, .. } => key,
        }
    }
}
