//! Writes the monitoring assets generated from poolscope's metric catalogue:
//! a Grafana dashboard and Prometheus recording and alerting rules.
//!
//! ```text
//! cargo run -p poolscope-assets                 # into monitoring/
//! cargo run -p poolscope-assets -- OUT_DIR
//! promtool check rules monitoring/poolscope-rules.yml
//! ```
//!
//! Every PromQL expression names metrics through [`metric`], which refuses
//! a name the catalogue does not hold, so the assets cannot drift from what
//! the runtime exports.

use std::fmt::Write as _;

use poolscope::catalogue;
use serde_json::{json, Value};

/// A catalogued metric's name (a histogram's series with its suffix).
///
/// # Panics
///
/// On a name the catalogue does not hold: the generator is wrong, not the
/// input.
pub fn metric(name: &str) -> &str {
    assert!(
        catalogue::find(name).is_some(),
        "`{name}` is not in poolscope's metric catalogue"
    );
    name
}

/// A recording rule: its name and expression.
pub struct Recording {
    pub record: String,
    pub expr: String,
}

/// An alerting rule, equivalent to one of `poolscope::alerts::Measure`.
pub struct Alerting {
    pub alert: &'static str,
    pub expr: String,
    pub for_: &'static str,
    pub summary: &'static str,
}

/// Recording rules over 5-minute windows, per pool.
pub fn recording_rules() -> Vec<Recording> {
    let requests = metric("poolscope_requests_total");
    let duration = metric("poolscope_request_duration_seconds_bucket");
    let wait = metric("poolscope_queue_wait_duration_seconds_bucket");
    let busy = metric("poolscope_worker_busy_duration_seconds_sum");
    let size = metric("poolscope_pool_size");
    let crashes = metric("poolscope_worker_crashes_total");
    vec![
        Recording {
            record: "poolscope:request_rate:5m".into(),
            expr: format!("sum by (pool) (rate({requests}[5m]))"),
        },
        Recording {
            record: "poolscope:error_ratio:5m".into(),
            expr: format!(
                "sum by (pool) (rate({requests}{{outcome!=\"ok\"}}[5m])) / sum by (pool) (rate({requests}[5m]))"
            ),
        },
        Recording {
            record: "poolscope:request_duration_p99:5m".into(),
            expr: format!("histogram_quantile(0.99, sum by (pool, le) (rate({duration}[5m])))"),
        },
        Recording {
            record: "poolscope:queue_wait_p99:5m".into(),
            expr: format!("histogram_quantile(0.99, sum by (pool, le) (rate({wait}[5m])))"),
        },
        Recording {
            record: "poolscope:utilization:5m".into(),
            expr: format!("sum by (pool) (rate({busy}[5m])) / sum by (pool) ({size})"),
        },
        Recording {
            record: "poolscope:crash_rate_per_minute:5m".into(),
            expr: format!("sum by (pool) (rate({crashes}[5m])) * 60"),
        },
    ]
}

/// Alerting rules with the built-in rules' defaults as thresholds.
pub fn alerting_rules() -> Vec<Alerting> {
    vec![
        Alerting {
            alert: "PoolscopeHighErrorRate",
            expr: "poolscope:error_ratio:5m > 0.05".into(),
            for_: "2m",
            summary: "More than 5% of a pool's requests fail.",
        },
        Alerting {
            alert: "PoolscopeSlowRequests",
            expr: "poolscope:request_duration_p99:5m > 0.5".into(),
            for_: "5m",
            summary: "A pool's p99 latency is above 500 ms.",
        },
        Alerting {
            alert: "PoolscopeQueueBacklog",
            expr: format!("{} > 100", metric("poolscope_queue_depth")),
            for_: "2m",
            summary: "More than 100 requests wait in a pool's queue.",
        },
        Alerting {
            alert: "PoolscopeSlowQueue",
            expr: "poolscope:queue_wait_p99:5m > 0.2".into(),
            for_: "5m",
            summary: "Requests wait more than 200 ms (p99) for a worker.",
        },
        Alerting {
            alert: "PoolscopeSaturatedWorkers",
            expr: "poolscope:utilization:5m > 0.9".into(),
            for_: "10m",
            summary: "A pool's workers are busy more than 90% of the time.",
        },
        Alerting {
            alert: "PoolscopeCrashingWorkers",
            expr: "poolscope:crash_rate_per_minute:5m > 3".into(),
            for_: "5m",
            summary: "A pool's workers crash more than 3 times a minute.",
        },
        Alerting {
            alert: "PoolscopeNoWorkers",
            expr: format!(
                "sum by (pool) ({workers}{{state=~\"available|busy\"}}) == 0",
                workers = metric("poolscope_workers")
            ),
            for_: "1m",
            summary: "No worker of a pool can serve.",
        },
        Alerting {
            alert: "PoolscopeHighMemory",
            expr: format!(
                "{} > 2e9",
                metric("poolscope_process_resident_memory_bytes")
            ),
            for_: "10m",
            summary: "The host process uses more than 2 GB resident.",
        },
        Alerting {
            alert: "PoolscopeAlertFiring",
            expr: format!("{} == 1", metric("poolscope_alerts_firing")),
            for_: "0m",
            summary: "A poolscope alert rule fires in the process.",
        },
    ]
}

/// The rules file, for Prometheus's `rule_files`.
pub fn prometheus_rules() -> String {
    let mut out = String::from(
        "# Generated by `cargo run -p poolscope-assets` from poolscope's metric catalogue.\ngroups:\n  - name: poolscope-recording\n    rules:\n",
    );
    for rule in recording_rules() {
        let _ = writeln!(
            out,
            "      - record: {}\n        expr: '{}'",
            rule.record, rule.expr
        );
    }
    out.push_str("  - name: poolscope-alerts\n    rules:\n");
    for rule in alerting_rules() {
        let _ = writeln!(
            out,
            "      - alert: {}\n        expr: '{}'\n        for: {}\n        labels:\n          severity: warning\n        annotations:\n          summary: '{}'",
            rule.alert,
            rule.expr,
            rule.for_,
            rule.summary.replace('\'', "''")
        );
    }
    out
}

fn panel(id: u64, title: &str, unit: &str, exprs: &[(&str, String)], x: u64, y: u64) -> Value {
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "gridPos": { "h": 8, "w": 12, "x": x, "y": y },
        "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
        "options": { "legend": { "displayMode": "list", "placement": "bottom" } },
        "targets": exprs
            .iter()
            .enumerate()
            .map(|(i, (legend, expr))| json!({
                "refId": ((b'A' + i as u8) as char).to_string(),
                "expr": expr,
                "legendFormat": legend,
            }))
            .collect::<Vec<_>>(),
    })
}

/// The Grafana dashboard, importable as is (a Prometheus data source is
/// chosen on import; `$pool` filters the pools).
pub fn grafana_dashboard() -> Value {
    let requests = metric("poolscope_requests_total");
    let duration = metric("poolscope_request_duration_seconds_bucket");
    let wait = metric("poolscope_queue_wait_duration_seconds_bucket");
    let busy = metric("poolscope_worker_busy_duration_seconds_sum");
    let size = metric("poolscope_pool_size");
    let sel = "pool=~\"$pool\"";
    let q = |quantile: f64, series: &str| {
        format!("histogram_quantile({quantile}, sum by (pool, le) (rate({series}{{{sel}}}[$__rate_interval])))")
    };
    let panels = vec![
        panel(1, "Request rate", "reqps", &[("{{pool}} {{outcome}}", format!("sum by (pool, outcome) (rate({requests}{{{sel}}}[$__rate_interval]))"))], 0, 0),
        panel(2, "Error rate", "percentunit", &[("{{pool}}", format!("sum by (pool) (rate({requests}{{{sel},outcome!=\"ok\"}}[$__rate_interval])) / sum by (pool) (rate({requests}{{{sel}}}[$__rate_interval]))"))], 12, 0),
        panel(3, "Latency", "s", &[("p50 {{pool}}", q(0.5, duration)), ("p90 {{pool}}", q(0.9, duration)), ("p99 {{pool}}", q(0.99, duration))], 0, 8),
        panel(4, "Queue depth and wait", "short", &[("depth {{pool}}", format!("{}{{{sel}}}", metric("poolscope_queue_depth"))), ("wait p99 (s) {{pool}}", q(0.99, wait))], 12, 8),
        panel(5, "Utilization", "percentunit", &[("{{pool}}", format!("sum by (pool) (rate({busy}{{{sel}}}[$__rate_interval])) / sum by (pool) ({size}{{{sel}}})"))], 0, 16),
        panel(6, "Workers by state", "short", &[("{{pool}} {{state}}", format!("sum by (pool, state) ({}{{{sel}}})", metric("poolscope_workers")))], 12, 16),
        panel(7, "Worker crashes", "short", &[("{{pool}} {{kind}}", format!("sum by (pool, kind) (increase({}{{{sel}}}[$__rate_interval]))", metric("poolscope_worker_crashes_total")))], 0, 24),
        panel(8, "Memory", "bytes", &[
            ("host resident", metric("poolscope_process_resident_memory_bytes").to_owned()),
            ("jemalloc {{kind}}", format!("{}{{kind=~\"allocated|resident\"}}", metric("poolscope_jemalloc_bytes"))),
            ("workers {{pool}}", format!("{}{{{sel}}}", metric("poolscope_pool_workers_resident_bytes"))),
        ], 12, 24),
        panel(9, "Alerts firing", "short", &[("{{rule}} {{pool}}", format!("{} == 1", metric("poolscope_alerts_firing")))], 0, 32),
        panel(10, "Saturation and dropped log lines", "short", &[
            ("saturated {{pool}}", format!("sum by (pool) (increase({}{{{sel}}}[$__rate_interval]))", metric("poolscope_pool_saturated_total"))),
            ("log lines dropped", format!("increase({}[$__rate_interval])", metric("poolscope_log_lines_dropped_total"))),
        ], 12, 32),
    ];
    json!({
        "title": "poolscope",
        "uid": "poolscope",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "time": { "from": "now-1h", "to": "now" },
        "refresh": "10s",
        "tags": ["poolscope"],
        "templating": { "list": [
            { "name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source" },
            {
                "name": "pool", "type": "query", "label": "Pool",
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "query": format!("label_values({}, pool)", metric("poolscope_workers")),
                "includeAll": true, "multi": true, "allValue": ".*",
                "current": { "text": "All", "value": "$__all" },
                "refresh": 2
            }
        ]},
        "panels": panels,
    })
}
