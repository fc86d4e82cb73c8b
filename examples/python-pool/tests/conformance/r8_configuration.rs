//! Requirement 8: configuration and control.

use std::time::Duration;

use hyper::StatusCode;
use poolscope::events::Event;
use poolscope::http::HealthConfig;
use serde_json::json;

use crate::harness::{run, POOL, SIZE};

fn requests_ok(command: &str) -> String {
    format!("poolscope_requests_total{{pool=\"{POOL}\",command=\"{command}\",outcome=\"ok\"}}")
}

/// R8.1: with observability off, the pool runs with minimal overhead: no
/// event, no count, no log line is made. What "minimal" costs is measured
/// where it can be, in the criterion benches (`benches/overhead.rs`: an
/// observed call switched off is one load; compiled out, the same machine
/// code, shown by `tests/disabled` and the macro's expansion tests);
/// here the switch is shown on the real pool, whose requests still work.
#[test]
fn r8_1_disabled_observability_operates_with_minimal_overhead() {
    run(|h| async move {
        let before = h.sample(&requests_ok("echo")).await.unwrap_or(0.0);
        let mark = h.event_mark();
        let logs = h.log_mark();
        poolscope::set_enabled(false);
        for i in 0..20 {
            assert_eq!(
                h.pool
                    .execute("echo", json!({ "i": i }), None)
                    .await
                    .unwrap(),
                json!({ "i": i })
            );
        }
        poolscope::set_enabled(true);
        assert_eq!(h.sample(&requests_ok("echo")).await.unwrap_or(0.0), before);
        let requests = h
            .events_since(mark)
            .into_iter()
            .filter(|e| matches!(e, Event::RequestStarted(_) | Event::RequestCompleted(_)))
            .count();
        assert_eq!(requests, 0);
        assert!(!h.text_since(logs).contains("\"request.started\""));
        // Back on, it records again.
        h.pool.execute("echo", json!({}), None).await.unwrap();
        assert_eq!(
            h.sample(&requests_ok("echo")).await.unwrap_or(0.0),
            before + 1.0
        );
    });
}

/// R8.2: with a sampling rate, high-volume events (request start and
/// success) are sampled, whole requests at a time; failures never are.
#[test]
fn r8_2_sampling_rates_sample_high_volume_events() {
    run(|h| async move {
        poolscope::events::set_sample_rate(0.1);
        let mark = h.event_mark();
        for i in 0..400 {
            h.pool
                .execute("echo", json!({ "i": i }), None)
                .await
                .unwrap();
        }
        for _ in 0..5 {
            let _ = h
                .pool
                .execute("fail", json!({ "message": "r8.2" }), None)
                .await
                .unwrap_err();
        }
        poolscope::events::set_sample_rate(1.0);
        let events = h.events_since(mark);
        let started = events
            .iter()
            .filter(|e| matches!(e, Event::RequestStarted(s) if s.command.as_str() == "echo"))
            .count();
        let completed = crate::common::completions(&events)
            .into_iter()
            .filter(|c| c.command.as_str() == "echo")
            .count();
        // 400 requests at 10%: 40 expected; these bounds fail one run in
        // about a billion (binomial, ±6 standard deviations).
        assert!((5..=76).contains(&started), "{started} of 400 kept");
        assert_eq!(started, completed, "a request is kept or dropped whole");
        let failures = crate::common::completions(&events)
            .into_iter()
            .filter(|c| c.command.as_str() == "fail")
            .count();
        assert_eq!(failures, 5, "no failure is sampled away");
        // The counters count every request, sampled or not.
        assert!(h
            .sample(&requests_ok("echo"))
            .await
            .is_some_and(|n| n >= 400.0));
    });
}

/// R8.3: with a log level set, only entries at that level or above are
/// written.
#[test]
fn r8_3_log_levels_emit_only_appropriate_entries() {
    run(|h| async move {
        h.levels.set_level("warn").unwrap();
        let logs = h.log_mark();
        h.pool
            .execute("echo", json!({ "r": 83 }), None)
            .await
            .unwrap();
        let err = h
            .pool
            .execute("fail", json!({ "message": "r8.3" }), None)
            .await
            .unwrap_err();
        let _ = err;
        let failed = h
            .wait_line(logs, "the ERROR line", |l| {
                l["event"] == "request.completed" && l["command"] == "fail"
            })
            .await;
        assert_eq!(failed["level"], "ERROR");
        // The worker's lines come through its stderr, in order: once its
        // ERROR line is out, its INFO lines before it were judged.
        h.wait_line(logs, "the worker's ERROR line", |l| {
            l["event"] == "worker.log" && l["message"] == "command raised"
        })
        .await;
        h.levels.set_level("info").unwrap();
        let lines = h.lines_since(logs);
        assert!(
            lines
                .iter()
                .all(|l| matches!(l["level"].as_str(), Some("WARN" | "ERROR"))),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l["message"] == "executing"),
            "the worker's INFO lines are filtered too"
        );
    });
}

/// R8.4: custom health thresholds are used: a queue-depth limit and a
/// minimum of workers up, set at run time.
#[test]
fn r8_4_configured_health_criteria_use_custom_thresholds() {
    run(|h| async move {
        h.controls
            .set_health(HealthConfig::default().with_min_ready_workers(SIZE + 1))
            .unwrap();
        let reply = h.get("/health/ready").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        let workers = reply.json()["failed"][0].clone();
        assert_eq!(workers["check"], "workers");
        assert_eq!(workers["threshold"], (SIZE + 1) as f64);
        h.controls
            .set_health(HealthConfig::default().with_min_ready_workers(SIZE))
            .unwrap();
        assert_eq!(h.get("/health/ready").await.status, StatusCode::OK);
        // A bad threshold is refused and changes nothing.
        assert!(h
            .controls
            .set_health(HealthConfig::default().with_max_error_rate(2.0))
            .is_err());
        assert_eq!(h.controls.health().min_ready_workers, SIZE);
    });
}

/// R8.5: the application's own metrics appear beside poolscope's on
/// `/metrics`.
#[test]
fn r8_5_application_specific_metrics_are_supported() {
    run(|h| async move {
        metrics::describe_counter!("app_predictions_total", "Predictions served, by model.");
        metrics::counter!("app_predictions_total", "model" => "resnet").increment(3);
        metrics::describe_gauge!("app_model_loaded", "1 while the model is loaded.");
        metrics::gauge!("app_model_loaded").set(1.0);
        let text = h.get("/metrics").await.body;
        assert_eq!(
            crate::common::sample(&text, "app_predictions_total{model=\"resnet\"}"),
            Some(3.0)
        );
        assert_eq!(crate::common::sample(&text, "app_model_loaded"), Some(1.0));
        crate::common::promtool_check(&text);
    });
}

/// R8.6: a change to the configuration file applies without a restart:
/// sampling, endpoints, health thresholds, log level; a broken file is
/// refused and changes nothing.
#[test]
fn r8_6_configuration_changes_apply_without_restart() {
    run(|h| async move {
        let dir =
            std::env::temp_dir().join(format!("poolscope-conformance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("poolscope.toml");
        std::fs::write(&path, "[health]\nmin_ready_workers = 1\n").unwrap();
        let watcher = poolscope::config::ConfigWatcher::start(
            &path,
            poolscope::config::Live::new()
                .with_server(h.controls.clone())
                .with_logs(h.levels.clone()),
        )
        .unwrap();
        assert_eq!(h.get("/metrics").await.status, StatusCode::OK);
        std::fs::write(
            &path,
            "[http.endpoints]\nmetrics = false\n[health]\nmin_ready_workers = 3\n",
        )
        .unwrap();
        crate::common::eventually_async("/metrics off", async || {
            h.get("/metrics").await.status == StatusCode::NOT_FOUND
        })
        .await;
        assert_eq!(
            h.get("/health/ready").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // The pool served all along.
        h.pool.execute("echo", json!({}), None).await.unwrap();
        // A broken file changes nothing.
        std::fs::write(&path, "[health]\nmin_ready_workers = \"many\"\n").unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(h.get("/metrics").await.status, StatusCode::NOT_FOUND);
        // Back.
        std::fs::write(&path, "[health]\nmin_ready_workers = 1\n").unwrap();
        crate::common::eventually_async("/metrics on", async || {
            h.get("/metrics").await.status == StatusCode::OK
        })
        .await;
        assert_eq!(h.get("/health/ready").await.status, StatusCode::OK);
        drop(watcher);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
