//! One configuration for everything poolscope tunes: loaded from a TOML
//! file, overridden by `POOLSCOPE_...` environment variables, validated
//! whole (an error names the field), and applied live — the runtime switch,
//! sampling, the log level, endpoint switches, readiness thresholds, alert
//! rules, extra sanitizer keys and the dashboard's metrics change without a
//! restart; the bind address, the log format, histogram buckets, the alert
//! period and the dashboard's other settings are read at start.
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
//! The sections are the types the runtime itself takes ([`HealthConfig`],
//! [`DashboardConfig`], [`AlertRule`], [`Format`]), read with serde: each
//! range is written once, in its own type's check, and the keys the
//! environment can set are read from the types too ([`env_keys`]).
//!
//! Every key, its default and whether it reloads live: `docs/configuration.md`.

mod env;
mod error;
mod live;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::model::alert_rule::AlertRule;
pub use crate::model::dashboard::{DashboardConfig, DashboardError};
pub use crate::model::health::{HealthConfig, HealthError, ReadinessPolicy};
pub use crate::model::Format;
pub use env::env_name;
use error::field;
pub use error::ConfigError;
pub use live::{current, Live};
pub use watch::{ConfigWatcher, MAX_CONFIG_BYTES};

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
    /// Readiness thresholds, as the server takes them (`*_seconds` keys
    /// in the file). Live.
    pub health: HealthConfig,
    /// Histogram buckets.
    pub buckets: Buckets,
    /// The sanitizer's extra secret keys.
    pub sanitizer: SanitizerKeys,
    /// Alert rules.
    pub alerts: Alerts,
    /// The dashboard, as the server takes it: `metrics` live, the rest read
    /// at start.
    pub dashboard: DashboardConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            sampling: Sampling::default(),
            logging: Logging::default(),
            http: Http::default(),
            health: HealthConfig::default(),
            buckets: Buckets::default(),
            sanitizer: SanitizerKeys::default(),
            alerts: Alerts::default(),
            dashboard: DashboardConfig::default(),
        }
    }
}

/// `[health]`, by its former name.
#[deprecated(note = "the `[health]` section is `HealthConfig` itself")]
pub type Health = HealthConfig;

/// `[dashboard]`, by its former name.
#[deprecated(note = "the `[dashboard]` section is `DashboardConfig` itself")]
pub type Dashboard = DashboardConfig;

/// `[[alerts.rules]]`, by its former name.
#[deprecated(note = "each `[[alerts.rules]]` is an `AlertRule` itself")]
pub type Rule = AlertRule;

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

impl Sampling {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.requests) {
            return Err(field(
                "sampling.requests",
                format!("{} is not between 0 and 1", self.requests),
            ));
        }
        Ok(())
    }
}

/// `[logging]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    /// The filter: `info`, `warn,poolscope=debug`, ... Live. Default `info`.
    pub level: String,
    /// `json` or `human`. Read at start. Default `json`.
    pub format: Format,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "info".into(),
            format: Format::Json,
        }
    }
}

impl Logging {
    fn validate(&self) -> Result<(), ConfigError> {
        if tracing_filter_ok(&self.level).is_err() {
            return Err(field(
                "logging.level",
                format!(
                    "`{}` is not a log filter (e.g. `info`, `warn,poolscope=debug`)",
                    self.level
                ),
            ));
        }
        Ok(())
    }
}

/// `[http]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Where to listen. Read at start. Default `127.0.0.1:9464`.
    #[serde(deserialize_with = "address")]
    pub address: SocketAddr,
    /// Endpoint switches.
    pub endpoints: Endpoints,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            address: SocketAddr::from(([127, 0, 0, 1], 9464)),
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
        let refused = |field| move |source| ConfigError::Sanitizer { field, source };
        for key in &self.extra_keys {
            crate::sanitize::check_key(key).map_err(refused("sanitizer.extra_keys"))?;
        }
        let patterns = self
            .extra_patterns
            .iter()
            .map(|p| crate::sanitize::Pattern::new(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(refused("sanitizer.extra_patterns"))?;
        let mut builder = crate::sanitize::Sanitizer::builder()
            .extra_keys(&self.extra_keys)
            .extra_patterns(&patterns);
        if let Some(path) = &self.rules_file {
            let rules = crate::sanitize::RuleSet::from_file(path)
                .map_err(refused("sanitizer.rules_file"))?;
            builder = builder.rules(rules);
        }
        Ok(builder)
    }

    /// The sanitizer this section asks for: the built-in rules plus its
    /// keys, patterns and rule file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Sanitizer`] naming the key, pattern or rule (and why).
    pub fn build(&self) -> Result<crate::sanitize::Sanitizer, ConfigError> {
        self.check()?
            .build()
            .map_err(|source| ConfigError::Sanitizer {
                field: "sanitizer",
                source,
            })
    }
}

/// `[alerts]`. Live.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Alerts {
    /// Between evaluations (`every_seconds`). Read at start. Default 1 s.
    #[serde(
        rename = "every_seconds",
        deserialize_with = "crate::model::seconds::deserialize"
    )]
    pub every: Duration,
    /// `[[alerts.rules]]`: `measure` names the [`Measure`] variant
    /// (`quantile` beside it for `latency` and `queue_wait`), durations are
    /// in seconds (`window_seconds`).
    ///
    /// [`Measure`]: crate::alerts::Measure
    pub rules: Vec<AlertRule>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            every: Duration::from_secs(1),
            rules: Vec::new(),
        }
    }
}

impl Alerts {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.every >= Duration::from_millis(50) && self.every <= Duration::from_secs(3600)) {
            return Err(field(
                "alerts.every_seconds",
                format!("{} is not between 0.05 and 3600", self.every.as_secs_f64()),
            ));
        }
        self.validate_rules()
    }

    /// Each rule, by its own check, named by its place in the file.
    fn validate_rules(&self) -> Result<(), ConfigError> {
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate().map_err(|source| ConfigError::Alert {
                field: format!("alerts.rules[{i}]"),
                source,
            })?;
        }
        Ok(())
    }
}

/// The keys an environment variable can override, read from the types;
/// the variable is [`env_name`] of the key (lists: comma-separated, or a
/// TOML array). Values are trimmed.
///
/// ```
/// use poolscope_runtime::config::{env_keys, env_name};
/// assert!(env_keys().contains(&"health.window_seconds"));
/// assert_eq!(env_name("health.window_seconds"), "POOLSCOPE_HEALTH_WINDOW_SECONDS");
/// ```
pub fn env_keys() -> Vec<&'static str> {
    env::paths()
}

/// The keys an environment variable could override before they were read
/// from the types ([`env_keys`] has every one of them, and more).
#[deprecated(note = "use `env_keys()`, read from the configuration types")]
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

impl Config {
    /// Parses TOML (no environment), then validates.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] for bad TOML, unknown keys and wrong types;
    /// the other variants for values out of range.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_table(parse(text, None)?, None)
    }

    /// Reads `path` (TOML), applies `POOLSCOPE_...` overrides from the
    /// environment, and validates.
    ///
    /// # Errors
    ///
    /// As [`Config::from_toml`], [`ConfigError::Read`] and
    /// [`ConfigError::Env`].
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
        let text = watch::read_limited(path)?;
        let mut table = parse(&text, Some(path))?;
        let set = env::apply(&mut table, env)?;
        Config::from_table(table, Some(path.to_owned())).map_err(|e| env::blame(e, &set))
    }

    fn from_table(table: toml::Table, path: Option<PathBuf>) -> Result<Config, ConfigError> {
        let config: Config =
            serde_path_to_error::deserialize(table).map_err(|e| ConfigError::Parse {
                key: e.path().to_string(),
                source: Box::new(e.into_inner()),
                path,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value, naming the first one out of range.
    ///
    /// # Errors
    ///
    /// The variant of the section at fault: [`ConfigError::Field`],
    /// [`ConfigError::Health`], [`ConfigError::Alert`], ...
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    /// As [`Config::validate`], keeping the sanitizer's builder it makes on
    /// the way.
    fn checked(&self) -> Result<crate::sanitize::SanitizerBuilder, ConfigError> {
        self.sampling.validate()?;
        self.logging.validate()?;
        // The file's buckets if it sets them, else those in force: the
        // p99 limit must be below the largest.
        let buckets = (!self.buckets.durations.is_empty()).then_some(&self.buckets.durations[..]);
        if let Some(durations) = buckets {
            crate::buckets::validate(durations)
                .map_err(|source| ConfigError::Buckets { source })?;
        }
        self.health.validate_with(buckets)?;
        let sanitizer = self.sanitizer.check()?;
        self.alerts.validate()?;
        self.dashboard
            .validate()
            .map_err(|source| ConfigError::Dashboard { source })?;
        Ok(sanitizer)
    }

    /// The `[[alerts.rules]]`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Alert`] naming the first rule out of range.
    #[deprecated(note = "the rules are `config.alerts.rules`, checked by `validate`")]
    pub fn alert_rules(&self) -> Result<Vec<AlertRule>, ConfigError> {
        self.alerts.validate_rules()?;
        Ok(self.alerts.rules.clone())
    }

    /// The `[health]` section as readiness thresholds.
    #[cfg(feature = "http")]
    #[deprecated(note = "the `[health]` section is `config.health`, a `HealthConfig`")]
    pub fn health_config(&self) -> HealthConfig {
        self.health.clone()
    }
}

/// An address as `127.0.0.1:9464`, saying so when it is not one.
fn address<'de, D: serde::Deserializer<'de>>(text: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(text)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!("`{text}` is not an address like 127.0.0.1:9464"))
    })
}

/// `text` as a TOML table.
fn parse(text: &str, path: Option<&Path>) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse {
        key: String::new(),
        source: Box::new(source),
        path: path.map(Path::to_owned),
    })
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
        let health = &config.health;
        assert_eq!(health.readiness, crate::http::ReadinessPolicy::Strict);
        assert_eq!(health.max_queue_wait, Duration::from_millis(250));
        let defaults = Config::from_toml("").unwrap().health;
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
        assert_eq!(ok.health.max_p99, Some(Duration::from_millis(500)));
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
        assert_eq!(config.health.window, Duration::from_secs(30));
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

    #[test]
    #[allow(deprecated)] // the old table, kept for callers, checked against the types
    fn every_key_of_the_old_table_is_still_settable() {
        let keys = env_keys();
        for key in ENV_KEYS {
            assert!(keys.contains(key), "{key} is no longer settable");
        }
        assert!(keys.contains(&"sanitizer.extra_patterns"));
        assert!(keys.contains(&"dashboard.interval_seconds"));
        // The keys the types' errors name are keys.
        let errors = [
            HealthError::ErrorRate(2.0).key(),
            HealthError::P99Zero.key(),
            HealthError::Window(Duration::ZERO).key(),
            HealthError::QueueWait(Duration::MAX).key(),
            DashboardError::Interval(Duration::ZERO).key(),
            DashboardError::ChartSpan(Duration::ZERO).key(),
            DashboardError::Metric(String::new()).key(),
        ];
        for key in errors {
            assert!(keys.contains(&key), "{key}");
        }
        let limits = DashboardConfig::default()
            .with_max_viewers(0)
            .validate()
            .unwrap_err();
        assert!(keys.contains(&limits.key()), "{limits}");
    }

    #[test]
    fn a_list_with_commas_comes_as_a_toml_array() {
        let dir =
            std::env::temp_dir().join(format!("poolscope-config-array-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.toml");
        std::fs::write(&path, "").unwrap();
        let env = |name: &str| {
            (name == "POOLSCOPE_SANITIZER_EXTRA_PATTERNS")
                .then(|| r#"["pin-[0-9]{4,8}"]"#.to_owned())
        };
        let config = Config::load_with_env(&path, env).unwrap();
        assert_eq!(config.sanitizer.extra_patterns, ["pin-[0-9]{4,8}"]);
        let wrong =
            |name: &str| (name == "POOLSCOPE_HEALTH_MIN_REQUESTS").then(|| "many".to_owned());
        let err = Config::load_with_env(&path, wrong).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Env { key, problem, .. } if key == "health.min_requests" && problem == "expected a whole number"),
            "{err}"
        );
        // Refused by the key's own type: still the variable that is named.
        for (variable, value, key) in [
            ("POOLSCOPE_HTTP_ADDRESS", "nowhere", "http.address"),
            ("POOLSCOPE_HEALTH_READINESS", "lenient", "health.readiness"),
            (
                "POOLSCOPE_HEALTH_WINDOW_SECONDS",
                "-1",
                "health.window_seconds",
            ),
        ] {
            let err =
                Config::load_with_env(&path, |name| (name == variable).then(|| value.to_owned()))
                    .unwrap_err();
            assert!(
                matches!(&err, ConfigError::Env { key: k, variable: v, .. } if k == key && v == variable),
                "{err}"
            );
        }
        // Starts like an array, is one pattern.
        let one = |name: &str| {
            (name == "POOLSCOPE_SANITIZER_EXTRA_PATTERNS").then(|| "[0-9]{16}".to_owned())
        };
        let config = Config::load_with_env(&path, one).unwrap();
        assert_eq!(config.sanitizer.extra_patterns, ["[0-9]{16}"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
