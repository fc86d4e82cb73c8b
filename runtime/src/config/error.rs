//! What can be wrong with a configuration: which field, and why, with the
//! subsystem's own error as the source.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DashboardError, HealthError};

/// A configuration that cannot be used: which field, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("invalid configuration{}: {}", in_file(path), at_key(key, source))]
    Parse {
        /// The key, as `section.key` (`alerts.rules[0].measure`); empty for
        /// a file that is not TOML.
        key: String,
        /// What the parser said.
        #[source]
        source: Box<toml::de::Error>,
        /// The file, when there is one.
        path: Option<PathBuf>,
    },
    /// An environment variable's value is not one its key takes: of the
    /// wrong type, or refused by the key's own type (an address that does
    /// not parse, a policy that does not exist, negative seconds).
    #[error("invalid configuration: `{key}` from {variable}={value:?}: {problem}")]
    Env {
        /// The key it sets (`sampling.requests`).
        key: String,
        /// The variable (`POOLSCOPE_SAMPLING_REQUESTS`).
        variable: String,
        /// Its value.
        value: String,
        /// What is wrong (`expected a number`).
        problem: String,
    },
    /// A value out of range.
    #[error("invalid configuration: `{field}`: {problem}")]
    Field {
        /// The field, as `section.key`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A readiness threshold out of range.
    #[error("invalid configuration: `{}`: {source}", source.key())]
    Health {
        /// Which, and why.
        #[source]
        source: HealthError,
    },
    /// A dashboard setting out of range.
    #[error("invalid configuration: `{}`: {source}", source.key())]
    Dashboard {
        /// Which, and why.
        #[source]
        source: DashboardError,
    },
    /// An alert rule that cannot be used.
    #[error("invalid configuration: `{field}`: {source}")]
    Alert {
        /// The rule, as `alerts.rules[0]`.
        field: String,
        /// Why.
        #[source]
        source: crate::alerts::AlertError,
    },
    /// Histogram buckets that cannot make a histogram.
    #[error("invalid configuration: `buckets.durations`: {source}")]
    Buckets {
        /// Why.
        #[source]
        source: crate::buckets::BucketsError,
    },
    /// An extra sanitizer key, pattern or rule file that cannot be used.
    #[error("invalid configuration: `{field}`: {source}")]
    Sanitizer {
        /// `sanitizer.extra_keys`, `sanitizer.extra_patterns`,
        /// `sanitizer.rules_file`, or `sanitizer` for the rules together.
        field: &'static str,
        /// Why.
        #[source]
        source: crate::sanitize::SanitizeError,
    },
    /// The log filter was refused.
    #[cfg(feature = "logging")]
    #[error("invalid configuration: `logging.level`: {source}")]
    Logging {
        /// Why.
        #[source]
        source: Arc<crate::logging::LogError>,
    },
    /// The watcher's thread could not start.
    #[error("cannot start the configuration watcher's thread: {source}")]
    Watcher {
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
}

/// Two errors are the same when they are the same variant and say the
/// same: an I/O error has no equality of its own.
impl PartialEq for ConfigError {
    fn eq(&self, other: &ConfigError) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl From<HealthError> for ConfigError {
    fn from(source: HealthError) -> ConfigError {
        ConfigError::Health { source }
    }
}

fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

/// toml's own message, after the key it is about; toml's key path names no
/// array index, the one given here does.
fn at_key(key: &str, source: &toml::de::Error) -> String {
    if key.is_empty() {
        // Not TOML: toml's own report, with the line and column.
        return source.to_string().trim_end().to_owned();
    }
    format!("`{key}`: {}", source.message().trim_end())
}

pub(super) fn field(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_owned(),
        problem: problem.into(),
    }
}
