//! Requirement 3: Prometheus metrics.

use hyper::StatusCode;
use poolscope::http::Endpoint;
use serde_json::json;

use crate::harness::{run, POOL, SIZE};

fn requests(command: &str, outcome: &str) -> String {
    format!(
        "poolscope_requests_total{{pool=\"{POOL}\",command=\"{command}\",outcome=\"{outcome}\"}}"
    )
}

/// R3.1: `/metrics` answers Prometheus text (format 0.0.4) that Prometheus's
/// own linter accepts.
#[test]
fn r3_1_metrics_returns_prometheus_formatted_metrics() {
    run(|h| async move {
        h.pool.execute("echo", json!({}), None).await.unwrap();
        let reply = h.get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header("content-type"),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        crate::common::promtool_check(&reply.body);
        assert!(reply
            .body
            .contains("# TYPE poolscope_requests_total counter"));
        assert!(reply
            .body
            .contains("# TYPE poolscope_request_duration_seconds histogram"));
    });
}

/// R3.2: each request increments `poolscope_requests_total` with its pool,
/// command and outcome, exactly once.
#[test]
fn r3_2_requests_increment_counters_with_labels() {
    run(|h| async move {
        let before = |command, outcome| {
            let series = requests(command, outcome);
            async move { h.sample(&series).await.unwrap_or(0.0) }
        };
        let (echo, fail) = (before("echo", "ok").await, before("fail", "error").await);
        for i in 0..7 {
            h.pool
                .execute("echo", json!({ "i": i }), None)
                .await
                .unwrap();
        }
        for _ in 0..3 {
            let _ = h
                .pool
                .execute("fail", json!({ "message": "r3.2" }), None)
                .await
                .unwrap_err();
        }
        assert_eq!(h.sample(&requests("echo", "ok")).await, Some(echo + 7.0));
        assert_eq!(h.sample(&requests("fail", "error")).await, Some(fail + 3.0));
    });
}

/// R3.3: each request's duration lands in `poolscope_request_duration_seconds`,
/// a real histogram: `_count`, `_sum` and cumulative buckets.
#[test]
fn r3_3_request_durations_update_histograms() {
    run(|h| async move {
        let count = format!("poolscope_request_duration_seconds_count{{pool=\"{POOL}\",command=\"sleep\",outcome=\"ok\"}}");
        let sum = format!("poolscope_request_duration_seconds_sum{{pool=\"{POOL}\",command=\"sleep\",outcome=\"ok\"}}");
        let (count0, sum0) = (
            h.sample(&count).await.unwrap_or(0.0),
            h.sample(&sum).await.unwrap_or(0.0),
        );
        for _ in 0..4 {
            h.pool
                .execute("sleep", json!({ "ms": 25 }), None)
                .await
                .unwrap();
        }
        let text = h.get("/metrics").await.body;
        assert_eq!(crate::common::sample(&text, &count), Some(count0 + 4.0));
        let added = crate::common::sample(&text, &sum).unwrap() - sum0;
        assert!(added >= 0.1, "four sleeps of 25 ms took {added} s");
        // Cumulative buckets: the +Inf bucket is the count, each bucket at
        // least the one before, and none below 25 ms holds the sleeps.
        let buckets: Vec<(String, f64)> = text
            .lines()
            .filter(|l| l.starts_with(&format!("poolscope_request_duration_seconds_bucket{{pool=\"{POOL}\",command=\"sleep\",outcome=\"ok\"")))
            .map(|l| {
                let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
                (le, l.rsplit(' ').next().unwrap().parse().unwrap())
            })
            .collect();
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        assert_eq!(buckets.last().unwrap(), &("+Inf".to_owned(), count0 + 4.0));
        let below = buckets
            .iter()
            .filter(|(le, _)| le.parse::<f64>().is_ok_and(|le| le < 0.025))
            .map(|(_, n)| *n)
            .fold(0.0, f64::max);
        assert!(below <= count0, "{buckets:?}");
    });
}

/// R3.4: `poolscope_workers{state}` follows the workers: busy while they
/// run, available after, crashed while one is down.
#[test]
fn r3_4_worker_state_changes_update_worker_gauges() {
    run(|h| async move {
        let gauge = |state: &str| format!("poolscope_workers{{pool=\"{POOL}\",state=\"{state}\"}}");
        assert_eq!(h.sample(&gauge("available")).await, Some(SIZE as f64));
        assert_eq!(h.sample(&gauge("busy")).await, Some(0.0));
        let held = h.hold(1, "r3-4").await;
        assert_eq!(h.sample(&gauge("busy")).await, Some(1.0));
        assert_eq!(h.sample(&gauge("available")).await, Some(SIZE as f64 - 1.0));
        held.release().await;
        crate::common::eventually_async("the worker available again", async || {
            h.sample(&gauge("available")).await == Some(SIZE as f64)
        })
        .await;
        assert_eq!(h.sample(&gauge("busy")).await, Some(0.0));
        assert_eq!(
            h.sample(&format!("poolscope_pool_size{{pool=\"{POOL}\"}}"))
                .await,
            Some(SIZE as f64)
        );
    });
}

/// R3.5: `poolscope_queue_depth` follows the queue.
#[test]
fn r3_5_queue_size_changes_update_queue_gauges() {
    run(|h| async move {
        let depth = format!("poolscope_queue_depth{{pool=\"{POOL}\"}}");
        assert_eq!(h.sample(&depth).await, Some(0.0));
        let held = h.hold(SIZE, "r3-5").await;
        let queued = h.queue(4).await;
        crate::common::eventually_async("four queued on /metrics", async || {
            h.sample(&depth).await == Some(4.0)
        })
        .await;
        held.release().await;
        queued.finish().await;
        crate::common::eventually_async("the queue empty on /metrics", async || {
            h.sample(&depth).await == Some(0.0)
        })
        .await;
    });
}

/// R3.6: a disabled `/metrics` answers 404.
#[test]
fn r3_6_disabled_metrics_endpoint_answers_404() {
    run(|h| async move {
        h.controls.set_enabled(Endpoint::Metrics, false);
        assert_eq!(h.get("/metrics").await.status, StatusCode::NOT_FOUND);
        h.controls.set_enabled(Endpoint::Metrics, true);
        assert_eq!(h.get("/metrics").await.status, StatusCode::OK);
    });
}
