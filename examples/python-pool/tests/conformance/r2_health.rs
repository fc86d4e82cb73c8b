//! Requirement 2: health endpoints for load balancers and orchestrators.

use hyper::StatusCode;
use poolscope::http::{Endpoint, HealthConfig, ReadinessPolicy};
use serde_json::json;

use crate::harness::{run, POOL, SIZE};

fn failed_checks(body: &serde_json::Value) -> Vec<String> {
    body["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["check"].as_str().map(str::to_owned))
        .collect()
}

/// R2.1: `/health` answers 200 while the process is responsive.
#[test]
fn r2_1_health_answers_200_while_the_system_is_responsive() {
    run(|h| async move {
        for path in ["/health", "/healthz", "/livez"] {
            let reply = h.get(path).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            let body = reply.json();
            assert_eq!(body["status"], "ok");
            assert!(body["uptime_seconds"].as_f64().is_some_and(|s| s > 0.0));
        }
        // While the workers are all busy too: liveness is the process.
        let held = h.hold(SIZE, "r2-1").await;
        assert_eq!(h.get("/health").await.status, StatusCode::OK);
        held.release().await;
    });
}

/// R2.2: `/health/ready` answers 200 when the pool can serve traffic.
#[test]
fn r2_2_ready_answers_200_when_the_system_can_serve_traffic() {
    run(|h| async move {
        let reply = h.get("/health/ready").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["status"], "ready");
        let checks: Vec<_> = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["pool"] == POOL)
            .map(|c| {
                (
                    c["check"].as_str().unwrap().to_owned(),
                    c["passed"].as_bool().unwrap(),
                )
            })
            .collect();
        assert!(checks.contains(&("workers".into(), true)), "{checks:?}");
        assert!(checks.contains(&("capacity".into(), true)), "{checks:?}");
        // And it does serve.
        h.pool.execute("echo", json!({}), None).await.unwrap();
        assert_eq!(h.get("/readyz").await.status, StatusCode::OK);
    });
}

/// R2.3: with no worker available, `/health/ready` answers 503: at once
/// under the strict policy, and under the default capacity policy once a
/// new request could not start within `max_queue_wait`.
#[test]
fn r2_3_ready_answers_503_when_no_worker_is_available() {
    run(|h| async move {
        let held = h.hold(SIZE, "r2-3").await;
        // Capacity, with a wait longer than the workers have been busy:
        // still ready, a new request would start soon enough.
        h.controls
            .set_health(
                HealthConfig::default().with_max_queue_wait(std::time::Duration::from_secs(600)),
            )
            .unwrap();
        assert_eq!(h.get("/health/ready").await.status, StatusCode::OK);
        // Strict: no worker available, not ready.
        h.controls
            .set_health(HealthConfig::default().with_readiness(ReadinessPolicy::Strict))
            .unwrap();
        let strict = h.get("/health/ready").await;
        assert_eq!(
            strict.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            strict.body
        );
        assert_eq!(failed_checks(&strict.json()), ["capacity"]);
        // Capacity, with every worker busy past the wait.
        h.controls
            .set_health(
                HealthConfig::default().with_max_queue_wait(std::time::Duration::from_millis(10)),
            )
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let capacity = h.get("/health/ready").await;
        assert_eq!(
            capacity.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            capacity.body
        );
        assert_eq!(failed_checks(&capacity.json()), ["capacity"]);
        held.release().await;
        crate::common::eventually_async("a worker available", async || {
            h.get("/health/ready").await.status == StatusCode::OK
        })
        .await;
    });
}

/// R2.4: `/health/detailed` reports the pool's statistics.
#[test]
fn r2_4_detailed_returns_comprehensive_health_data_with_pool_statistics() {
    run(|h| async move {
        for i in 0..5 {
            h.pool
                .execute("echo", json!({ "i": i }), None)
                .await
                .unwrap();
        }
        let reply = h.get("/health/detailed").await;
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        let pool = body["pools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pool"] == POOL)
            .expect("the pool")
            .clone();
        assert_eq!(pool["size"], SIZE);
        assert_eq!(pool["workers"]["available"], SIZE);
        assert_eq!(pool["worker_list"].as_array().unwrap().len(), SIZE);
        assert!(pool["worker_list"][0]["pid"].as_u64().is_some(), "{pool}");
        assert_eq!(pool["queue_depth"], 0);
        assert!(
            pool["requests_total"].as_u64().is_some_and(|n| n >= 5),
            "{pool}"
        );
        assert!(pool["requests_by_outcome"]["ok"]
            .as_u64()
            .is_some_and(|n| n >= 5));
        assert!(pool["latency_seconds"]["p99"].as_f64().is_some(), "{pool}");
        assert!(body["checks"].as_array().is_some());
        assert!(body["memory"].is_object(), "{body}");
    });
}

/// R2.5: a readiness criterion not met answers 503 with the failed check;
/// a method the endpoint does not serve, 405.
#[test]
fn r2_5_failed_health_criteria_answer_appropriate_error_codes() {
    run(|h| async move {
        h.controls
            .set_health(HealthConfig::default().with_max_queue_depth(1))
            .unwrap();
        let held = h.hold(SIZE, "r2-5").await;
        let queued = h.queue(3).await;
        let reply = h.get("/health/ready").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        let body = reply.json();
        let failed = body["failed"].as_array().unwrap();
        let queue = failed
            .iter()
            .find(|c| c["check"] == "queue_depth")
            .expect("queue_depth failed");
        assert_eq!(
            (queue["value"].as_f64(), queue["threshold"].as_f64()),
            (Some(3.0), Some(1.0))
        );
        held.release().await;
        queued.finish().await;
        let post = crate::client::request(h.addr, "POST", "/health/ready").await;
        assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.header("allow"), "GET, HEAD");
    });
}

/// R2.6: a disabled health endpoint answers 404, as an unknown path does.
#[test]
fn r2_6_disabled_health_endpoints_answer_404() {
    run(|h| async move {
        for (endpoint, path) in [
            (Endpoint::Health, "/health"),
            (Endpoint::Ready, "/health/ready"),
            (Endpoint::Detailed, "/health/detailed"),
        ] {
            h.controls.set_enabled(endpoint, false);
            let reply = h.get(path).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.body, h.get("/no-such-path").await.body);
            h.controls.set_enabled(endpoint, true);
            assert_eq!(h.get(path).await.status, StatusCode::OK, "{path}");
        }
    });
}
