//! One configuration for everything poolscope tunes: loaded from a TOML
//! file, overridden by `POOLSCOPE_...` environment variables, validated
//! whole (an error names the field), and applied live — the runtime switch,
//! sampling, the log level, endpoint switches, readiness thresholds, alert
//! rules and extra sanitizer keys change without a restart; the bind
//! address, the log format and histogram buckets are read at start.
//!
//! ```
//! use poolscope_runtime::config::Config;
//! let config = Config::from_toml(r#"
//!     [sampling]
//!     requests = 0.1
//!     [health]
//!     max_queue_depth = 100
//! "#).unwrap();
//! assert_eq!(config.sampling.requests, 0.1);
//! assert!(Config::from_toml("[sampling]\nrequest = 0.1").unwrap_err().to_string().contains("request"));
//! ```
//!
//! Every key, its default and whether it reloads live: `docs/configuration.md`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Deserialize;

use crate::model::alert_rule::{AlertRule, Measure};

/// The whole configuration. Every section and key is optional; what is
/// missing takes its default.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Observability on or off at run time (`poolscope::set_enabled`).
    /// Live. Default `true`.
    pub enabled: bool,
    /// Sampling rates.
    pub sampling: Sampling,
    /// Logs.
    pub logging: Logging,
    /// The HTTP server.
    pub http: Http,
    /// Readiness thresholds.
    pub health: Health,
    /// Histogram buckets.
    pub buckets: Buckets,
    /// The sanitizer's extra secret keys.
    pub sanitizer: SanitizerKeys,
    /// Alert rules.
    pub alerts: Alerts,
    /// The dashboard.
    pub dashboard: Dashboard,
}

/// `[dashboard]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Dashboard {
    /// Application metrics (names as on `/metrics`) the dashboard shows,
    /// every series of each. Live. Default none.
    pub metrics: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            sampling: Sampling::default(),
            logging: Logging::default(),
            http: Http::default(),
            health: Health::default(),
            buckets: Buckets::default(),
            sanitizer: SanitizerKeys::default(),
            alerts: Alerts::default(),
            dashboard: Dashboard::default(),
        }
    }
}

/// `[sampling]`: the share of high-volume events kept. Failures, crashes
/// and alerts are never sampled.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    /// Share (0 to 1) of successful requests whose `request.started` and
    /// `request.completed` events and log lines are kept. Live. Default 1.
    pub requests: f64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { requests: 1.0 }
    }
}

/// `[logging]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    /// The filter: `info`, `warn,poolscope=debug`, ... Live. Default `info`.
    pub level: String,
    /// `json` or `human`. Read at start. Default `json`.
    pub format: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// `[http]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Where to listen. Read at start. Default `127.0.0.1:9464`.
    pub address: String,
    /// Endpoint switches.
    pub endpoints: Endpoints,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            address: "127.0.0.1:9464".into(),
            endpoints: Endpoints::default(),
        }
    }
}

/// `[http.endpoints]`: each endpoint on or off. Live. All on by default.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // one switch per endpoint, named after it
pub struct Endpoints {
    pub health: bool,
    pub ready: bool,
    pub detailed: bool,
    pub metrics: bool,
    pub dashboard: bool,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            health: true,
            ready: true,
            detailed: true,
            metrics: true,
            dashboard: true,
        }
    }
}

/// `[health]`: readiness thresholds (see `HealthConfig`). Live.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Health {
    /// Default 1.
    pub min_ready_workers: usize,
    /// Default: no limit.
    pub max_queue_depth: Option<usize>,
    /// 0 to 1. Default: no limit.
    pub max_error_rate: Option<f64>,
    /// Seconds. Default: no limit.
    pub max_p99_seconds: Option<f64>,
    /// Seconds. Default 60.
    pub window_seconds: f64,
    /// Default 10.
    pub min_requests: u64,
    /// `capacity` (default) or `strict`: when a pool with no available
    /// worker is still ready (see `ReadinessPolicy`).
    pub readiness: String,
    /// Seconds a new request may have to wait for a worker under the
    /// `capacity` policy. Default 5.
    pub max_queue_wait_seconds: f64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            min_ready_workers: 1,
            max_queue_depth: None,
            max_error_rate: None,
            max_p99_seconds: None,
            window_seconds: 60.0,
            min_requests: 10,
            readiness: "capacity".into(),
            max_queue_wait_seconds: 5.0,
        }
    }
}

/// `[buckets]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Buckets {
    /// Upper bounds, in seconds, of every duration histogram; empty keeps
    /// the defaults. Read at start (a series keeps its buckets).
    pub durations: Vec<f64>,
}

/// `[sanitizer]`. Live: a reload builds the new sanitizer whole before it
/// replaces the one in force.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SanitizerKeys {
    /// Keys redacted besides the built-in ones.
    pub extra_keys: Vec<String>,
    /// Regular expressions redacted besides the built-in rules: the whole
    /// match, or the capture group named `secret`.
    pub extra_patterns: Vec<String>,
    /// A file of credential rules in gitleaks' TOML format, run beside the
    /// built-in ones (a path relative to the working directory).
    pub rules_file: Option<String>,
}

impl SanitizerKeys {
    /// The extra keys as `sanitize::configure` takes them.
    pub fn keys(&self) -> Vec<&str> {
        self.extra_keys.iter().map(String::as_str).collect()
    }

    /// Checks every key, pattern and rule, reading the rule file once,
    /// and gives the builder of the sanitizer they make (cheap next to
    /// building it: the built-in rules are not compiled).
    fn check(&self) -> Result<crate::sanitize::SanitizerBuilder, ConfigError> {
        for key in &self.extra_keys {
            crate::sanitize::check_key(key)
                .map_err(|e| field("sanitizer.extra_keys", e.to_string()))?;
        }
        let patterns = self
            .extra_patterns
            .iter()
            .map(|p| crate::sanitize::Pattern::new(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| field("sanitizer.extra_patterns", e.to_string()))?;
        let mut builder = crate::sanitize::Sanitizer::builder()
            .extra_keys(&self.extra_keys)
            .extra_patterns(&patterns);
        if let Some(path) = &self.rules_file {
            let rules = crate::sanitize::RuleSet::from_file(path)
                .map_err(|e| field("sanitizer.rules_file", e.to_string()))?;
            builder = builder.rules(rules);
        }
        Ok(builder)
    }

    /// The sanitizer this section asks for: the built-in rules plus its
    /// keys, patterns and rule file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Field`] naming the key, pattern or rule (and why).
    pub fn build(&self) -> Result<crate::sanitize::Sanitizer, ConfigError> {
        build_sanitizer(self.check()?)
    }
}

/// Compiles a checked sanitizer configuration.
fn build_sanitizer(
    builder: crate::sanitize::SanitizerBuilder,
) -> Result<crate::sanitize::Sanitizer, ConfigError> {
    builder
        .build()
        .map_err(|e| field("sanitizer", e.to_string()))
}

/// `[alerts]`. Live.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Alerts {
    /// Seconds between evaluations. Read at start. Default 1.
    pub every_seconds: f64,
    /// `[[alerts.rules]]`.
    pub rules: Vec<Rule>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            every_seconds: 1.0,
            rules: Vec::new(),
        }
    }
}

/// `[[alerts.rules]]`: one threshold rule (see `AlertRule`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// `error_rate`, `latency`, `queue_depth`, `queue_wait`, `utilization`,
    /// `crash_rate`, `workers_resident_bytes` or `process_resident_bytes`.
    pub measure: String,
    /// For `latency` and `queue_wait`. Default 0.99.
    #[serde(default)]
    pub quantile: Option<f64>,
    /// Fire above this.
    pub threshold: f64,
    /// Resolve at or below this. Default 80% of the threshold.
    #[serde(default)]
    pub resolve_at: Option<f64>,
    /// Seconds. Default 60.
    #[serde(default)]
    pub window_seconds: Option<f64>,
    /// Default 20.
    #[serde(default)]
    pub min_requests: Option<u64>,
    /// Only these pools. Default: every pool.
    #[serde(default)]
    pub pools: Vec<String>,
    /// Fail `/health/ready` while firing. Default false.
    #[serde(default)]
    pub readiness: bool,
}

/// A configuration that cannot be used: which field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("invalid configuration{where_}: {reason}", where_ = in_file(.path))]
    Parse {
        /// What the parser said (with the key and line).
        reason: String,
        /// The file, when there is one.
        path: Option<PathBuf>,
    },
    /// A value out of range.
    #[error("invalid configuration: `{field}`: {problem}")]
    Field {
        /// The field, as `section.key`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

fn field(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// The keys an environment variable can override; the variable is
/// [`env_name`] of the key (lists: comma-separated).
pub const ENV_KEYS: &[&str] = &[
    "enabled",
    "sampling.requests",
    "logging.level",
    "logging.format",
    "http.address",
    "http.endpoints.health",
    "http.endpoints.ready",
    "http.endpoints.detailed",
    "http.endpoints.metrics",
    "http.endpoints.dashboard",
    "health.min_ready_workers",
    "health.max_queue_depth",
    "health.max_error_rate",
    "health.max_p99_seconds",
    "health.window_seconds",
    "health.min_requests",
    "health.readiness",
    "health.max_queue_wait_seconds",
    "buckets.durations",
    "sanitizer.extra_keys",
    "sanitizer.rules_file",
    "alerts.every_seconds",
    "dashboard.metrics",
];

const FLOAT_KEYS: &[&str] = &[
    "sampling.requests",
    "health.max_error_rate",
    "health.max_p99_seconds",
    "health.window_seconds",
    "health.max_queue_wait_seconds",
    "alerts.every_seconds",
];

/// The environment variable that overrides `key` (`sampling.requests` →
/// `POOLSCOPE_SAMPLING_REQUESTS`).
pub fn env_name(key: &str) -> String {
    format!("POOLSCOPE_{}", key.replace('.', "_").to_uppercase())
}

impl Config {
    /// Parses TOML (no environment), then validates.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] for bad TOML, unknown keys and wrong types;
    /// [`ConfigError::Field`] for values out of range.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            reason: e.to_string(),
            path: None,
        })?;
        Config::from_table(table, None)
    }

    /// Reads `path` (TOML), applies `POOLSCOPE_...` overrides from the
    /// environment, and validates.
    ///
    /// # Errors
    ///
    /// As [`Config::from_toml`], and [`ConfigError::Read`].
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// As [`Config::load`], with the environment given as a lookup.
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn load_with_env(
        path: impl AsRef<Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = read_limited(path)?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            reason: e.to_string(),
            path: Some(path.to_owned()),
        })?;
        for key in ENV_KEYS {
            let name = env_name(key);
            if let Some(value) = env(&name) {
                set(&mut table, key, env_value(key, &value));
            }
        }
        Config::from_table(table, Some(path.to_owned()))
    }

    fn from_table(table: toml::Table, path: Option<PathBuf>) -> Result<Config, ConfigError> {
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                reason: e.to_string(),
                path,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value, naming the first one out of range.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Field`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    /// As [`Config::validate`], keeping the alert rules and the sanitizer's
    /// builder it makes on the way.
    fn checked(&self) -> Result<(Vec<AlertRule>, crate::sanitize::SanitizerBuilder), ConfigError> {
        if !(0.0..=1.0).contains(&self.sampling.requests) {
            return Err(field(
                "sampling.requests",
                format!("{} is not between 0 and 1", self.sampling.requests),
            ));
        }
        if tracing_filter_ok(&self.logging.level).is_err() {
            return Err(field(
                "logging.level",
                format!(
                    "`{}` is not a log filter (e.g. `info`, `warn,poolscope=debug`)",
                    self.logging.level
                ),
            ));
        }
        if !matches!(self.logging.format.as_str(), "json" | "human") {
            return Err(field(
                "logging.format",
                format!("`{}` is neither `json` nor `human`", self.logging.format),
            ));
        }
        if self.http.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(field(
                "http.address",
                format!(
                    "`{}` is not an address like 127.0.0.1:9464",
                    self.http.address
                ),
            ));
        }
        if !self.buckets.durations.is_empty() {
            crate::buckets::validate(&self.buckets.durations)
                .map_err(|e| field("buckets.durations", e.to_string()))?;
        }
        let health = &self.health;
        if !matches!(health.readiness.as_str(), "capacity" | "strict") {
            return Err(field(
                "health.readiness",
                format!(
                    "`{}` is not a readiness policy: expected `capacity` or `strict`",
                    health.readiness
                ),
            ));
        }
        if !(health.max_queue_wait_seconds >= 0.0 && health.max_queue_wait_seconds <= 86_400.0) {
            return Err(field(
                "health.max_queue_wait_seconds",
                format!(
                    "{} is not between 0 and 86400",
                    health.max_queue_wait_seconds
                ),
            ));
        }
        if !(health.window_seconds >= 1.0 && health.window_seconds <= 3600.0) {
            return Err(field(
                "health.window_seconds",
                format!("{} is not between 1 and 3600", health.window_seconds),
            ));
        }
        if let Some(rate) = health.max_error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(field(
                    "health.max_error_rate",
                    format!("{rate} is not between 0 and 1"),
                ));
            }
        }
        if let Some(p99) = health.max_p99_seconds {
            if !(p99.is_finite() && p99 > 0.0) {
                return Err(field(
                    "health.max_p99_seconds",
                    format!("{p99} is not a positive number of seconds"),
                ));
            }
            // The file's buckets if it sets them, else those in force (a
            // huge limit is also no duration).
            let buckets =
                (!self.buckets.durations.is_empty()).then_some(&self.buckets.durations[..]);
            if let Err(largest) = crate::buckets::below_largest(p99, buckets) {
                return Err(field(
                    "health.max_p99_seconds",
                    format!("{p99} is not below the largest duration bucket ({largest} s)"),
                ));
            }
        }
        let sanitizer = self.sanitizer.check()?;
        if !(self.alerts.every_seconds >= 0.05 && self.alerts.every_seconds <= 3600.0) {
            return Err(field(
                "alerts.every_seconds",
                format!("{} is not between 0.05 and 3600", self.alerts.every_seconds),
            ));
        }
        let rules = self.alert_rules()?;
        if let Some(bad) = self
            .dashboard
            .metrics
            .iter()
            .find(|n| !crate::model::catalogue::is_metric_name(n))
        {
            return Err(field(
                "dashboard.metrics",
                format!("`{bad}` is not a Prometheus metric name"),
            ));
        }
        Ok((rules, sanitizer))
    }

    /// The `[[alerts.rules]]` as rules.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Field`] naming the rule and the problem.
    pub fn alert_rules(&self) -> Result<Vec<AlertRule>, ConfigError> {
        self.alerts
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let at = format!("alerts.rules[{i}]");
                let quantile = rule.quantile.unwrap_or(0.99);
                let measure = match rule.measure.as_str() {
                    "error_rate" => Measure::ErrorRate,
                    "latency" => Measure::Latency { quantile },
                    "queue_depth" => Measure::QueueDepth,
                    "queue_wait" => Measure::QueueWait { quantile },
                    "utilization" => Measure::Utilization,
                    "crash_rate" => Measure::CrashRate,
                    "workers_resident_bytes" => Measure::WorkersResidentBytes,
                    "process_resident_bytes" => Measure::ProcessResidentBytes,
                    other => {
                        return Err(field(
                            &format!("{at}.measure"),
                            format!("`{other}` is not one of error_rate, latency, queue_depth, queue_wait, utilization, crash_rate, workers_resident_bytes, process_resident_bytes"),
                        ))
                    }
                };
                let problem = |e: crate::model::alert_rule::AlertError| field(&at, e.to_string());
                let mut out = AlertRule::new(rule.name.clone(), measure, rule.threshold).map_err(problem)?;
                if let Some(resolve_at) = rule.resolve_at {
                    out = out.with_resolve_at(resolve_at);
                }
                if let Some(seconds) = rule.window_seconds {
                    if !(1.0..=3600.0).contains(&seconds) {
                        return Err(field(
                            &format!("{at}.window_seconds"),
                            format!("{seconds} is not between 1 and 3600"),
                        ));
                    }
                    out = out.with_window(Duration::from_secs_f64(seconds));
                }
                if let Some(n) = rule.min_requests {
                    out = out.with_min_requests(n);
                }
                for pool in &rule.pools {
                    out = out.for_pool(pool.clone());
                }
                out = out.for_readiness(rule.readiness);
                out.validate().map_err(problem)?;
                Ok(out)
            })
            .collect()
    }

    /// The `[health]` section as readiness thresholds.
    #[cfg(feature = "http")]
    pub fn health_config(&self) -> crate::http::HealthConfig {
        let h = &self.health;
        let mut health = crate::http::HealthConfig::default()
            .with_min_ready_workers(h.min_ready_workers)
            .with_window(Duration::from_secs_f64(h.window_seconds));
        health.min_requests = h.min_requests;
        // `validate` keeps both to what they can be; a `Config` built in
        // code and never validated keeps the defaults for what is not.
        if let Ok(policy) = h.readiness.parse() {
            health.readiness = policy;
        }
        if let Ok(wait) = Duration::try_from_secs_f64(h.max_queue_wait_seconds) {
            health.max_queue_wait = wait;
        }
        health.max_queue_depth = h.max_queue_depth;
        health.max_error_rate = h.max_error_rate;
        // `validate` keeps it finite, positive and below the largest bucket;
        // a `Config` built in code and never validated loses a limit that is
        // no duration (the server would refuse it anyway).
        health.max_p99 = h
            .max_p99_seconds
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        health
    }
}

#[cfg(feature = "logging")]
fn tracing_filter_ok(filter: &str) -> Result<(), ()> {
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(drop)
        .map_err(drop)
}

#[cfg(not(feature = "logging"))]
fn tracing_filter_ok(filter: &str) -> Result<(), ()> {
    if filter.trim().is_empty() {
        Err(())
    } else {
        Ok(())
    }
}

/// An environment value as TOML: a number, a boolean, a list for list keys,
/// else a string.
fn env_value(key: &str, value: &str) -> toml::Value {
    if matches!(
        key,
        "buckets.durations" | "sanitizer.extra_keys" | "dashboard.metrics"
    ) {
        let items = value.split(',').map(str::trim).filter(|s| !s.is_empty());
        return toml::Value::Array(
            items
                .map(|item| match item.parse::<f64>() {
                    Ok(n) if key == "buckets.durations" => toml::Value::Float(n),
                    _ => toml::Value::String(item.to_owned()),
                })
                .collect(),
        );
    }
    if let Ok(b) = value.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = value.parse::<i64>() {
        // A float key given a whole number (`30`) must still be a float.
        return if FLOAT_KEYS.contains(&key) {
            toml::Value::Float(i as f64)
        } else {
            toml::Value::Integer(i)
        };
    }
    if let Ok(f) = value.parse::<f64>() {
        return toml::Value::Float(f);
    }
    toml::Value::String(value.to_owned())
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut at = table;
    for part in parts {
        let entry = at
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        at = next;
    }
    at.insert(last.to_owned(), value);
}

static CURRENT: std::sync::OnceLock<ArcSwap<Config>> = std::sync::OnceLock::new();

/// The configuration last applied (the defaults before any).
pub fn current() -> Arc<Config> {
    CURRENT
        .get_or_init(|| ArcSwap::from_pointee(Config::default()))
        .load_full()
}

/// What a configuration is applied to: the process-wide switches always,
/// and the handles given here.
#[derive(Clone, Debug, Default)]
pub struct Live {
    #[cfg(feature = "http")]
    server: Option<crate::http::ServerControls>,
    #[cfg(feature = "logging")]
    logs: Option<crate::logging::LevelControl>,
    alerts: Option<crate::alerts::AlertControls>,
}

impl Live {
    /// Nothing but the process-wide switches (runtime switch, sampling,
    /// sanitizer keys).
    pub fn new() -> Live {
        Live::default()
    }

    /// Also the server's endpoint switches and readiness thresholds.
    #[cfg(feature = "http")]
    pub fn with_server(mut self, server: crate::http::ServerControls) -> Live {
        self.server = Some(server);
        self
    }

    /// Also the log level.
    #[cfg(feature = "logging")]
    pub fn with_logs(mut self, logs: crate::logging::LevelControl) -> Live {
        self.logs = Some(logs);
        self
    }

    /// Also the alert rules.
    pub fn with_alerts(mut self, alerts: crate::alerts::AlertControls) -> Live {
        self.alerts = Some(alerts);
        self
    }

    /// Applies what can change live. Everything is checked before anything
    /// changes, so an invalid configuration changes nothing.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Field`] for a value out of range.
    pub fn apply(&self, config: &Config) -> Result<(), ConfigError> {
        let (rules, sanitizer) = config.checked()?;
        // Built whole (every rule compiled) before anything changes.
        let sanitizer = build_sanitizer(sanitizer)?;
        // The server checks thresholds against the buckets in force, which
        // a file cannot change live: ask it before anything changes.
        #[cfg(feature = "http")]
        if self.server.is_some() {
            config
                .health_config()
                .validate()
                .map_err(|e| field("health", e))?;
        }
        // Checked above; everything below only takes effect.
        crate::sanitize::install(sanitizer);
        crate::set_enabled(config.enabled);
        crate::events::set_sample_rate(config.sampling.requests);
        #[cfg(feature = "logging")]
        if let Some(logs) = &self.logs {
            logs.set_level(&config.logging.level)
                .map_err(|e| field("logging.level", e.to_string()))?;
        }
        #[cfg(feature = "http")]
        if let Some(server) = &self.server {
            use crate::http::Endpoint;
            let e = &config.http.endpoints;
            server.set_enabled(Endpoint::Health, e.health);
            server.set_enabled(Endpoint::Ready, e.ready);
            server.set_enabled(Endpoint::Detailed, e.detailed);
            server.set_enabled(Endpoint::Metrics, e.metrics);
            #[cfg(feature = "dashboard")]
            {
                server.set_enabled(Endpoint::Dashboard, e.dashboard);
                server
                    .set_dashboard_metrics(config.dashboard.metrics.clone())
                    .map_err(|e| field("dashboard.metrics", e.to_string()))?;
            }
            server
                .set_health(config.health_config())
                .map_err(|e| field("health", e.to_string()))?;
        }
        if let Some(alerts) = &self.alerts {
            alerts
                .set_rules(rules)
                .map_err(|e| field("alerts.rules", e.to_string()))?;
        }
        CURRENT
            .get_or_init(|| ArcSwap::from_pointee(Config::default()))
            .store(Arc::new(config.clone()));
        Ok(())
    }
}

/// Reloads a configuration file when it changes, until dropped.
#[derive(Debug)]
pub struct ConfigWatcher {
    state: Arc<WatchState>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct WatchState {
    last_error: Mutex<Option<ConfigError>>,
    applied: AtomicU64,
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How often the file's modification time and size are checked.
const POLL: Duration = Duration::from_millis(250);

impl ConfigWatcher {
    /// Loads `path` (with the environment), applies it to `live`, then
    /// reloads and applies it whenever the file changes (checked every
    /// 250 ms). A file that fails to load or apply is reported (a `tracing`
    /// error and [`ConfigWatcher::last_error`]) and the configuration in
    /// force stays.
    ///
    /// # Errors
    ///
    /// The first load's error: a watcher does not start from a broken file.
    pub fn start(path: impl Into<PathBuf>, live: Live) -> Result<ConfigWatcher, ConfigError> {
        let path = path.into();
        // Stamped before the first load: a change made while it loads (or
        // before the thread below first looks) is then seen as a change.
        let mut seen = stamp(&path);
        let config = Config::load(&path)?;
        live.apply(&config)?;
        let state = Arc::new(WatchState::default());
        state.applied.store(1, Ordering::Relaxed);
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("poolscope-config".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                    let now = stamp(&path);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    let result = Config::load(&path).and_then(|config| live.apply(&config));
                    match result {
                        Ok(()) => {
                            shared.applied.fetch_add(1, Ordering::Release);
                            *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                            tracing::info!(path = %path.display(), "poolscope configuration reloaded");
                        }
                        Err(err) => {
                            tracing::error!(path = %path.display(), error = %err, "poolscope configuration rejected; the previous one stays in force");
                            *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                        }
                    }
                }
            })
            .map_err(|e| ConfigError::Read {
                path: PathBuf::new(),
                reason: format!("cannot start the watcher thread: {e}"),
            })?;
        Ok(ConfigWatcher {
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Why the last reload was rejected; `None` once one succeeds.
    pub fn last_error(&self) -> Option<ConfigError> {
        self.state
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Configurations applied so far (the first load counts). One is
    /// counted once all of it is in force, so a change of this count tells
    /// a reload has finished.
    pub fn applied(&self) -> u64 {
        self.state.applied.load(Ordering::Acquire)
    }
}

/// Largest configuration file read. A real one is a few KiB; a larger file
/// is a mistake (a log or a binary written to the wrong path), and reading
/// it whole on every change would hold that much memory in the watcher.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

fn read_limited(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let error = |reason: String| ConfigError::Read {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
    let mut bytes = Vec::new();
    // One byte past the limit tells a file that is too large, even one
    // still growing while it is read.
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(error(format!(
            "larger than {MAX_CONFIG_BYTES} bytes, the most a configuration may be"
        )));
    }
    String::from_utf8(bytes).map_err(|e| error(format!("not UTF-8 text: {e}")))
}

/// What tells a changed file: modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_an_empty_file() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let err = Config::from_toml("[health]\nmax_queue = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_queue"), "{err}");
        let err = Config::from_toml("[sampling]\nrequests = 2.0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sampling.requests") && err.contains("between 0 and 1"),
            "{err}"
        );
        let err = Config::from_toml("[logging]\nformat = \"xml\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("logging.format"), "{err}");
        let err = Config::from_toml(
            "[[alerts.rules]]\nname = \"x\"\nmeasure = \"depth\"\nthreshold = 1.0",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("alerts.rules[0].measure"), "{err}");
        let err = Config::from_toml("[http]\naddress = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.address"), "{err}");
        let err = Config::from_toml("[health]\nreadiness = \"lenient\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("health.readiness") && err.contains("`capacity` or `strict`"),
            "{err}"
        );
        let err = Config::from_toml("[health]\nmax_queue_wait_seconds = -1.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("health.max_queue_wait_seconds"), "{err}");
    }

    #[cfg(feature = "http")]
    #[test]
    fn the_readiness_policy_and_its_wait_reach_the_health_config() {
        let config =
            Config::from_toml("[health]\nreadiness = \"strict\"\nmax_queue_wait_seconds = 0.25")
                .unwrap();
        let health = config.health_config();
        assert_eq!(health.readiness, crate::http::ReadinessPolicy::Strict);
        assert_eq!(health.max_queue_wait, Duration::from_millis(250));
        let defaults = Config::from_toml("").unwrap().health_config();
        assert_eq!(defaults, crate::http::HealthConfig::default());
    }

    #[test]
    fn a_p99_limit_beyond_the_buckets_is_refused_not_a_panic() {
        // `1e300` passed validation and then panicked converting to a
        // Duration (found reading the code behind the `config` fuzz target).
        for text in [
            "[health]\nmax_p99_seconds = 1e300",
            "[health]\nmax_p99_seconds = 120.0",
            "[buckets]\ndurations = [0.1, 1.0]\n[health]\nmax_p99_seconds = 1.0",
        ] {
            let err = Config::from_toml(text).unwrap_err().to_string();
            assert!(
                err.contains("health.max_p99_seconds") && err.contains("largest duration bucket"),
                "{text}: {err}"
            );
        }
        let ok = Config::from_toml("[health]\nmax_p99_seconds = 0.5").unwrap();
        #[cfg(feature = "http")]
        assert_eq!(ok.health_config().max_p99, Some(Duration::from_millis(500)));
        let _ = ok;
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("poolscope-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("env.toml");
        std::fs::write(
            &path,
            "[sampling]\nrequests = 0.5\n[health]\nmax_queue_depth = 10\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "POOLSCOPE_SAMPLING_REQUESTS" => Some("0.25".to_owned()),
            "POOLSCOPE_HTTP_ENDPOINTS_METRICS" => Some("false".to_owned()),
            "POOLSCOPE_HEALTH_WINDOW_SECONDS" => Some("30".to_owned()),
            "POOLSCOPE_SANITIZER_EXTRA_KEYS" => Some("x-api-key, pin".to_owned()),
            _ => None,
        };
        let config = Config::load_with_env(&path, env).unwrap();
        assert_eq!(config.sampling.requests, 0.25);
        assert!(!config.http.endpoints.metrics);
        assert_eq!(config.health.window_seconds, 30.0);
        assert_eq!(config.health.max_queue_depth, Some(10));
        assert_eq!(config.sanitizer.extra_keys, ["x-api-key", "pin"]);
        let bad = |name: &str| (name == "POOLSCOPE_SAMPLING_REQUESTS").then(|| "lots".to_owned());
        let err = Config::load_with_env(&path, bad).unwrap_err().to_string();
        assert!(err.contains("requests"), "{err}");
        assert_eq!(
            env_name("http.endpoints.dashboard"),
            "POOLSCOPE_HTTP_ENDPOINTS_DASHBOARD"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
