//! The generated monitoring assets: the rules file passes `promtool check
//! rules`, the Grafana dashboard is valid JSON with a query in every panel,
//! and every metric named in any PromQL expression is in the catalogue.

use poolscope_assets as assets;

use std::collections::BTreeSet;
use std::process::Command;

/// The identifiers in a PromQL expression that name metrics: everything
/// that starts with `poolscope_` (recording-rule names use `poolscope:`,
/// which the rules file defines itself).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("poolscope_") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
            out.insert(expr[start..end].to_owned());
        }
        i = end;
    }
    out
}

#[test]
fn the_rules_pass_promtool_and_name_only_catalogued_metrics() {
    let dir = std::env::temp_dir().join(format!("poolscope-assets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("poolscope-rules.yml");
    std::fs::write(&path, assets::prometheus_rules()).unwrap();
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool (Debian package `prometheus`)");
    assert!(
        output.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rules = assets::recording_rules().len() + assets::alerting_rules().len();
    assert!(stdout.contains(&format!("{rules} rules found")), "{stdout}");
    let recorded: BTreeSet<String> = assets::recording_rules()
        .into_iter()
        .map(|r| r.record)
        .collect();
    for expr in assets::recording_rules()
        .iter()
        .map(|r| r.expr.clone())
        .chain(assets::alerting_rules().iter().map(|r| r.expr.clone()))
    {
        for name in metric_names(&expr) {
            assert!(
                poolscope::catalogue::find(&name).is_some(),
                "`{name}` in `{expr}` is not in the catalogue"
            );
        }
        // Alerts on recording rules refer to ones the file defines.
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("poolscope:") {
                assert!(recorded.contains(word), "`{word}` is not recorded");
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_dashboard_parses_and_queries_only_catalogued_metrics() {
    let text = serde_json::to_string_pretty(&assets::grafana_dashboard()).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 9, "{} panels", panels.len());
    let mut named = BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "`{expr}` names no metric");
            for name in names {
                assert!(
                    poolscope::catalogue::find(&name).is_some(),
                    "`{name}` in `{expr}` is not in the catalogue"
                );
                named.insert(poolscope::catalogue::find(&name).unwrap().name);
            }
        }
    }
    // What the issue asks the dashboard to show, by metric.
    for needed in [
        "poolscope_requests_total",
        "poolscope_request_duration_seconds",
        "poolscope_queue_depth",
        "poolscope_queue_wait_duration_seconds",
        "poolscope_worker_busy_duration_seconds",
        "poolscope_workers",
        "poolscope_worker_crashes_total",
        "poolscope_process_resident_memory_bytes",
        "poolscope_alerts_firing",
    ] {
        assert!(named.contains(needed), "no panel shows {needed}");
    }
    // Percentiles come from the histograms' buckets.
    assert!(text.contains("histogram_quantile(0.99, sum by (pool, le) (rate(poolscope_request_duration_seconds_bucket"));
}

#[test]
fn a_name_outside_the_catalogue_is_refused() {
    let result = std::panic::catch_unwind(|| assets::metric("poolscope_made_up_total"));
    assert!(result.is_err());
    assert_eq!(
        metric_names("rate(poolscope_a_total[5m]) / poolscope:x + poolscope_b"),
        BTreeSet::from(["poolscope_a_total".to_owned(), "poolscope_b".to_owned()])
    );
}

#[test]
fn the_checked_in_assets_are_what_the_generator_writes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let rules = std::fs::read_to_string(format!("{root}/monitoring/poolscope-rules.yml")).unwrap();
    let dashboard =
        std::fs::read_to_string(format!("{root}/monitoring/poolscope-grafana.json")).unwrap();
    assert_eq!(
        rules,
        assets::prometheus_rules(),
        "monitoring/ is stale: run `cargo run -p poolscope-assets`"
    );
    // Compared as JSON: key order depends on serde_json's features, which
    // differ between feature sets of this workspace.
    let checked_in: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(
        checked_in == assets::grafana_dashboard(),
        "monitoring/ is stale: run `cargo run -p poolscope-assets`"
    );
}
