//! The configuration parser never panics, and what it accepts is usable.
//!
//! Input: TOML text, optionally followed by a NUL byte and an environment,
//! one `NAME=value` per line (NUL cannot appear in a TOML document, so plain
//! `.toml` files are inputs as they are). Names are free: unknown ones must
//! be ignored. Plain lines, not an `arbitrary` encoding, so that inserting a
//! token (`POOLSCOPE_HEALTH_WINDOW_SECONDS`, `1e300`) makes a meaningful
//! input.
//!
//! Checked for every input:
//! - `Config::from_toml` never panics;
//! - a configuration it accepts passes `validate()` again, its alert rules
//!   (one per `[[alerts.rules]]`) are each valid, with the file's values and
//!   documented defaults, its readiness thresholds are the file's, and its
//!   `sanitizer.extra_keys` build one sanitizer that treats every key as
//!   secret and redacts its value;
//! - re-serializing the parsed TOML table and parsing it again gives the
//!   same table, hence the same configuration or the same error;
//! - `Config::load_with_env` never panics; with no override it agrees with
//!   `from_toml` (same configuration or same error, only the file name
//!   added); with overrides, a configuration it accepts is usable as above
//!   and holds each overridden value (the last one of each name).
//!
//! `Live::apply` is not called: it changes process-wide state.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use poolscope_runtime::config::{env_keys, env_name, Config, ConfigError, Format};
use poolscope_runtime::sanitize::Sanitizer;

/// A value no configuration key holds, to check redaction with.
const SECRET: &str = "zq7vXsecretvalue";

fuzz_target!(|data: &[u8]| {
    let (text, env_bytes) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    let text = String::from_utf8_lossy(text);

    let parsed = Config::from_toml(&text);
    match &parsed {
        Ok(config) => check_usable(config),
        Err(err) => assert!(!err.to_string().is_empty()),
    }

    // Round trip through the TOML table the parser reads first: serialized
    // and read again, it is the same table, so it makes the same `Config`
    // (or the same error). Tables are compared as text: a NaN equals itself.
    if let Ok(table) = toml::from_str::<toml::Table>(&text) {
        let again = toml::to_string(&table).expect("a parsed TOML table serializes");
        let reread: toml::Table = toml::from_str(&again)
            .unwrap_or_else(|e| panic!("serialized table does not parse: {e}\n{again}"));
        assert_eq!(format!("{table:?}"), format!("{reread:?}"), "{again}");
    }

    // The file-and-environment path, once per input.
    let path = scratch_file();
    std::fs::write(path, text.as_bytes()).expect("write the scratch file");
    let env = env_bytes.map(decode_env).unwrap_or_default();
    let loaded = Config::load_with_env(path, |name| env.get(name).cloned());
    let overridden: Vec<(&str, &String)> = env_keys()
        .into_iter()
        .filter_map(|key| env.get(&env_name(key)).map(|value| (key, value)))
        .collect();
    if overridden.is_empty() {
        // Nothing the runtime reads (unknown names are ignored): the same
        // as `from_toml`, only the file name added to a parse error.
        assert_same(&parsed, &loaded);
    } else if let Ok(config) = &loaded {
        check_usable(config);
        for (key, value) in overridden {
            check_override(config, key, value);
        }
    }
});

/// A file of this process's own: `load_with_env` reads a path.
fn scratch_file() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("poolscope-fuzz-config-{}.toml", std::process::id()))
    })
}

/// `NAME=value` lines; the last of a name wins, as in an environment.
fn decode_env(bytes: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, value)| !name.is_empty() && !value.contains('\0'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// `from_toml` and `load_with_env` without overrides agree: equal
/// configurations (compared as text, so a NaN equals itself) or equal
/// errors, but for the file name in a parse error.
fn assert_same(a: &Result<Config, ConfigError>, b: &Result<Config, ConfigError>) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (
            Err(ConfigError::Parse {
                key: ka, source: sa, ..
            }),
            Err(ConfigError::Parse {
                key: kb, source: sb, ..
            }),
        ) => {
            assert_eq!((ka, sa.to_string()), (kb, sb.to_string()))
        }
        (Err(ConfigError::Parse { .. }), _) | (_, Err(ConfigError::Parse { .. })) => {
            panic!("from_toml and load_with_env differ:\n{a:?}\n{b:?}")
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("from_toml and load_with_env differ:\n{a:?}\n{b:?}"),
    }
}

/// What an accepted configuration must allow.
fn check_usable(config: &Config) {
    config
        .validate()
        .expect("an accepted configuration validates again");

    assert!((0.0..=1.0).contains(&config.sampling.requests));
    assert!(matches!(config.logging.format, Format::Json | Format::Human));
    let durations = &config.buckets.durations;
    assert!(durations.len() <= poolscope_runtime::buckets::MAX_BUCKETS);
    assert!(durations.iter().all(|b| b.is_finite() && *b > 0.0));
    assert!(durations.windows(2).all(|w| w[0] < w[1]));

    // Alert rules, as `alerts::watch` and `Live::apply` take them.
    for rule in &config.alerts.rules {
        rule.validate().expect("an accepted rule is valid");
        assert!(rule.window >= Duration::from_secs(1));
    }

    // Readiness thresholds, as the server and `Live::apply` take them.
    config
        .health
        .validate()
        .expect("accepted thresholds suit the server");
    config
        .dashboard
        .validate()
        .expect("an accepted dashboard suits the server");

    // The extra sanitizer keys, all at once as `Live::apply` installs them.
    let keys = config.sanitizer.keys();
    if !keys.is_empty() {
        let sanitizer =
            Sanitizer::with_extra(&keys, &[]).expect("accepted extra keys build a sanitizer");
        for key in keys {
            assert!(
                sanitizer.is_secret_key(key),
                "extra key {key:?} is not secret"
            );
            let line = format!("{key}={SECRET}");
            let clean = sanitizer.sanitize(&line);
            assert!(
                !clean.contains(SECRET),
                "extra key {key:?}: {line:?} sanitized to {clean:?}"
            );
        }
    }
}

/// An accepted configuration holds the overridden value of `key`.
fn check_override(config: &Config, key: &str, value: &str) {
    // The loader trims what the environment gives.
    let value = value.trim();
    // A TOML array, or comma-separated items.
    let items = || -> Vec<String> {
        if value.trim_start().starts_with('[') {
            let table: toml::Table = toml::from_str(&format!("v = {value}"))
                .unwrap_or_else(|_| panic!("{key}: accepted a broken array {value:?}"));
            return table["v"]
                .as_array()
                .expect("an array")
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect();
        }
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let float = || -> f64 {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{key}: accepted non-number {value:?}"))
    };
    let int = || -> u64 {
        let n: i64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{key}: accepted non-integer {value:?}"));
        u64::try_from(n).unwrap_or_else(|_| panic!("{key}: accepted negative {value:?}"))
    };
    let boolean = || -> bool {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{key}: accepted non-boolean {value:?}"))
    };
    let seconds = || Duration::try_from_secs_f64(float()).unwrap_or(Duration::MAX);
    let e = &config.http.endpoints;
    let h = &config.health;
    let d = &config.dashboard;
    match key {
        "enabled" => assert_eq!(config.enabled, boolean()),
        "sampling.requests" => assert_eq!(config.sampling.requests, float()),
        "logging.level" => assert_eq!(config.logging.level, value),
        "logging.format" => assert_eq!(
            config.logging.format,
            match value {
                "json" => Format::Json,
                "human" => Format::Human,
                other => panic!("{key}: accepted {other:?}"),
            }
        ),
        "http.address" => assert_eq!(config.http.address, value.parse().unwrap()),
        "http.endpoints.health" => assert_eq!(e.health, boolean()),
        "http.endpoints.ready" => assert_eq!(e.ready, boolean()),
        "http.endpoints.detailed" => assert_eq!(e.detailed, boolean()),
        "http.endpoints.metrics" => assert_eq!(e.metrics, boolean()),
        "http.endpoints.dashboard" => assert_eq!(e.dashboard, boolean()),
        "health.min_ready_workers" => assert_eq!(h.min_ready_workers as u64, int()),
        "health.max_queue_depth" => assert_eq!(h.max_queue_depth.map(|d| d as u64), Some(int())),
        "health.max_error_rate" => assert_eq!(h.max_error_rate, Some(float())),
        "health.max_p99_seconds" => assert_eq!(h.max_p99, Some(seconds())),
        "health.window_seconds" => assert_eq!(h.window, seconds()),
        "health.min_requests" => assert_eq!(h.min_requests, int()),
        "health.readiness" => assert_eq!(h.readiness.as_str(), value.trim()),
        "health.max_queue_wait_seconds" => assert_eq!(h.max_queue_wait, seconds()),
        "buckets.durations" => {
            let expected: Vec<f64> = items()
                .iter()
                .map(|s| {
                    s.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("{key}: accepted non-number {s:?}"))
                })
                .collect();
            assert_eq!(config.buckets.durations, expected);
        }
        "sanitizer.extra_keys" => assert_eq!(config.sanitizer.extra_keys, items()),
        "sanitizer.extra_patterns" => assert_eq!(config.sanitizer.extra_patterns, items()),
        "sanitizer.rules_file" => assert_eq!(config.sanitizer.rules_file.as_deref(), Some(value.trim())),
        "alerts.every_seconds" => assert_eq!(config.alerts.every, seconds()),
        "dashboard.metrics" => assert_eq!(d.metrics, items()),
        "dashboard.interval_seconds" => assert_eq!(d.interval, seconds()),
        "dashboard.chart_span_seconds" => assert_eq!(d.chart_span, seconds()),
        "dashboard.max_viewers" => assert_eq!(d.max_viewers as u64, int()),
        "dashboard.viewer_buffer" => assert_eq!(d.viewer_buffer as u64, int()),
        "dashboard.recent_errors" => assert_eq!(d.recent_errors as u64, int()),
        "dashboard.recent_alerts" => assert_eq!(d.recent_alerts as u64, int()),
        other => unreachable!("no check for {other}"),
    }
}
