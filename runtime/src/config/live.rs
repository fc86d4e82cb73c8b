//! Applying a configuration to what runs: every value that can change
//! live, all checked before any changes.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{Config, ConfigError};

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
    /// changes, so an invalid configuration changes nothing; the changes
    /// that can still be refused (the log filter, the server's settings)
    /// come first.
    ///
    /// # Errors
    ///
    /// As [`Config::validate`]; [`ConfigError::Logging`] when the log
    /// subscriber refuses the filter, [`ConfigError::Health`] when the
    /// thresholds do not suit the server's buckets.
    pub fn apply(&self, config: &Config) -> Result<(), ConfigError> {
        let sanitizer = config.checked()?;
        // Built whole (every rule compiled) before anything changes.
        let sanitizer = sanitizer.build().map_err(|source| ConfigError::Sanitizer {
            field: "sanitizer",
            source,
        })?;
        // The server checks thresholds against the buckets in force, which
        // a file cannot change live: ask it before anything changes.
        #[cfg(feature = "http")]
        if self.server.is_some() {
            config.health.validate()?;
        }
        // Checked above. The two that can still be refused go first, so a
        // refusal leaves the rest as it was.
        #[cfg(feature = "logging")]
        if let Some(logs) = &self.logs {
            logs.set_level(&config.logging.level)
                .map_err(|source| ConfigError::Logging {
                    source: Arc::new(source),
                })?;
        }
        #[cfg(feature = "http")]
        if let Some(server) = &self.server {
            apply_to_server(server, config)?;
        }
        crate::sanitize::install(sanitizer);
        crate::set_enabled(config.enabled);
        crate::events::set_sample_rate(config.sampling.requests);
        if let Some(alerts) = &self.alerts {
            alerts
                .set_rules(config.alerts.rules.clone())
                .map_err(|source| ConfigError::Alert {
                    field: "alerts.rules".into(),
                    source,
                })?;
        }
        CURRENT
            .get_or_init(|| ArcSwap::from_pointee(Config::default()))
            .store(Arc::new(config.clone()));
        Ok(())
    }
}

/// The endpoint switches, the dashboard's metrics and the readiness
/// thresholds.
#[cfg(feature = "http")]
fn apply_to_server(
    server: &crate::http::ServerControls,
    config: &Config,
) -> Result<(), ConfigError> {
    use crate::http::{Endpoint, HttpError};
    let refused = |error: HttpError| match error {
        HttpError::Health(source) => ConfigError::Health { source },
        #[cfg(feature = "dashboard")]
        HttpError::Dashboard(source) => ConfigError::Dashboard { source },
        other => ConfigError::Field {
            field: "http".into(),
            problem: other.to_string(),
        },
    };
    // The settings the server may refuse before the switches, which it
    // cannot.
    server.set_health(config.health.clone()).map_err(refused)?;
    #[cfg(feature = "dashboard")]
    server
        .set_dashboard_metrics(config.dashboard.metrics.clone())
        .map_err(refused)?;
    let e = &config.http.endpoints;
    server.set_enabled(Endpoint::Health, e.health);
    server.set_enabled(Endpoint::Ready, e.ready);
    server.set_enabled(Endpoint::Detailed, e.detailed);
    server.set_enabled(Endpoint::Metrics, e.metrics);
    #[cfg(feature = "dashboard")]
    server.set_enabled(Endpoint::Dashboard, e.dashboard);
    Ok(())
}
