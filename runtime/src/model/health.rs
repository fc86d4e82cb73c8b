//! Readiness thresholds: what `/health/ready` checks, as the server and
//! the configuration file both take them.

use std::time::Duration;

/// Thresholds of the readiness checks behind `/health/ready`.
///
/// ```
/// # #[cfg(feature = "http")] {
/// use std::time::Duration;
/// use poolscope_runtime::http::HealthConfig;
/// let health = HealthConfig::default()
///     .with_max_queue_depth(100)
///     .with_max_error_rate(0.05)
///     .with_max_p99(Duration::from_millis(500));
/// assert_eq!(health.min_ready_workers, 1);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(default, deny_unknown_fields))]
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
    #[cfg_attr(
        feature = "config",
        serde(
            rename = "max_p99_seconds",
            deserialize_with = "super::seconds::optional"
        )
    )]
    pub max_p99: Option<Duration>,
    /// The recent window for rates and percentiles, 1 s to 1 h. Default
    /// 60 s.
    #[cfg_attr(
        feature = "config",
        serde(
            rename = "window_seconds",
            deserialize_with = "super::seconds::deserialize"
        )
    )]
    pub window: Duration,
    /// Error-rate and latency checks apply only when the window holds at
    /// least this many requests, so one early failure cannot fail a probe.
    /// Default 10.
    pub min_requests: u64,
    /// When a pool with no available worker is still ready (the `capacity`
    /// check). Default [`ReadinessPolicy::Capacity`].
    pub readiness: ReadinessPolicy,
    /// Under [`ReadinessPolicy::Capacity`], how long a new request may have
    /// to wait for a worker before the pool is not ready, at most a day.
    /// Default 5 s.
    #[cfg_attr(
        feature = "config",
        serde(
            rename = "max_queue_wait_seconds",
            deserialize_with = "super::seconds::deserialize"
        )
    )]
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
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(rename_all = "lowercase"))]
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

    /// Checks every threshold against the duration buckets in force.
    ///
    /// # Errors
    ///
    /// The first [`HealthError`].
    pub fn validate(&self) -> Result<(), HealthError> {
        self.validate_with(None)
    }

    /// As [`HealthConfig::validate`], with the duration buckets a
    /// configuration file sets (`None`: those in force), since percentiles
    /// come from them.
    pub(crate) fn validate_with(&self, buckets: Option<&[f64]>) -> Result<(), HealthError> {
        if let Some(rate) = self.max_error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(HealthError::ErrorRate(rate));
            }
        }
        if let Some(p99) = self.max_p99 {
            let seconds = p99.as_secs_f64();
            if p99.is_zero() {
                return Err(HealthError::P99Zero);
            }
            if let Err(largest) = crate::buckets::below_largest(seconds, buckets) {
                return Err(HealthError::P99 { seconds, largest });
            }
        }
        if self.window < Duration::from_secs(1) || self.window > MAX_WINDOW {
            return Err(HealthError::Window(self.window));
        }
        if self.max_queue_wait > MAX_QUEUE_WAIT {
            return Err(HealthError::QueueWait(self.max_queue_wait));
        }
        Ok(())
    }
}

/// The longest window: the history behind it holds a sample a second.
const MAX_WINDOW: Duration = Duration::from_secs(3600);

/// The longest queue wait a policy may allow: a day.
const MAX_QUEUE_WAIT: Duration = Duration::from_secs(86_400);

/// A readiness threshold out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HealthError {
    /// `max_error_rate` is not a fraction.
    #[error("`max_error_rate` is {0}: it is a fraction between 0 and 1")]
    ErrorRate(f64),
    /// `max_p99` is zero: every request would fail it.
    #[error("`max_p99` is 0: it must be a positive number of seconds")]
    P99Zero,
    /// `max_p99` is at or above the largest duration bucket, where a
    /// percentile computed from the buckets cannot reach.
    #[error("`max_p99` is {seconds} s: it is not below the largest duration bucket ({largest} s)")]
    P99 {
        /// The limit, seconds.
        seconds: f64,
        /// The largest bucket bound, seconds.
        largest: f64,
    },
    /// `window` is under a second or over an hour.
    #[error("`window` is {0:?}: it must be between 1 s and 1 h (3600 s)")]
    Window(Duration),
    /// `max_queue_wait` is over a day.
    #[error("`max_queue_wait` is {0:?}: it must be at most a day (86400 s)")]
    QueueWait(Duration),
}

impl HealthError {
    /// The configuration key of the threshold (`health.window_seconds`).
    pub fn key(&self) -> &'static str {
        match self {
            HealthError::ErrorRate(_) => "health.max_error_rate",
            HealthError::P99Zero | HealthError::P99 { .. } => "health.max_p99_seconds",
            HealthError::Window(_) => "health.window_seconds",
            HealthError::QueueWait(_) => "health.max_queue_wait_seconds",
        }
    }
}
