//! Readiness through every state a pool goes through, and the shape of
//! `/health/detailed`. One test: the pool registry is process-wide, so the
//! states must not interleave with other tests'.

use poolscope_testkit as common;
use poolscope_testkit::client;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use client::get;
use hyper::StatusCode;
use poolscope::clock::ManualClock;
use poolscope::http::{Endpoint, HealthConfig};
use poolscope::{observe, WorkerState};
use poolscope_testkit::TIMING;
use serde_json::Value;

#[observe(pool = "health", command = "run")]
fn run(fail: bool) -> Result<(), std::fmt::Error> {
    std::thread::sleep(Duration::from_millis(2));
    if fail {
        return Err(std::fmt::Error);
    }
    Ok(())
}

/// The failed checks of a 503, as (check, value, threshold).
fn failed(body: &Value) -> Vec<(String, Value, Value)> {
    body["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["value"].clone(),
                c["threshold"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_pool_and_detailed_reports_it() {
    let db_up = Arc::new(AtomicBool::new(true));
    let db = db_up.clone();
    // The window's time: it passes when the test says.
    let clock = ManualClock::new();
    let server = common::start_server!(|server| {
        server
            .with_health(
                HealthConfig::default()
                    .with_max_queue_depth(5)
                    .with_max_error_rate(0.5)
                    .with_max_p99(Duration::from_secs(1))
                    .with_min_requests(5)
                    // An hour, reaching back to the first sample, taken when
                    // the server starts.
                    .with_window(Duration::from_secs(3600)),
            )
            .with_clock(clock.clone())
            .with_readiness_check("database", move || {
                if db.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("connection refused".to_owned())
                }
            })
    });
    let addr = server.local_addr();

    // No pool yet: live and ready.
    assert_eq!(get(addr, "/health").await.status, StatusCode::OK);
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);

    if !common::ANY {
        // Compiled out: no pool is ever registered; the application's own
        // checks still decide.
        db_up.store(false, Ordering::Relaxed);
        let body = get(addr, "/health/ready").await.json();
        assert_eq!(
            failed(&body),
            [("database".to_owned(), Value::Null, Value::Null)]
        );
        let detailed = get(addr, "/health/detailed").await.json();
        assert_eq!(detailed["pools"], Value::Array(Vec::new()));
        server.shutdown().await;
        return;
    }

    // Workers starting: none up, so not ready; the body says which check and
    // what it measured.
    let pool = poolscope::Pool::new("health");
    pool.set_size(2);
    let workers = [pool.worker(0), pool.worker(1)];
    let ready = get(addr, "/health/ready").await;
    let body = ready.json();
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
    assert_eq!(
        failed(&body),
        [("workers".to_owned(), Value::from(0.0), Value::from(1.0))]
    );
    assert_eq!(body["failed"][0]["pool"], "health");
    assert_eq!(
        get(addr, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(addr, "/health").await.status,
        StatusCode::OK,
        "liveness does not depend on readiness"
    );

    // Up: ready. All busy: still ready (busy workers are up).
    for worker in &workers {
        worker.started(Some(100), Duration::from_millis(5));
    }
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);
    for worker in &workers {
        worker.set_state(WorkerState::Busy);
    }
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);

    // Saturated past the threshold: not ready, until the queue drains.
    pool.queue_depth(9);
    pool.saturated(9, 0);
    let body = get(addr, "/health/ready").await.json();
    assert_eq!(
        failed(&body),
        [("queue_depth".to_owned(), Value::from(9.0), Value::from(5.0))]
    );
    pool.queue_depth(0);
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);

    // Every worker crashed: not ready.
    for worker in &workers {
        worker.crashed(
            "exit code 1",
            poolscope::error::CrashContext {
                exit_code: Some(1),
                ..Default::default()
            },
        );
    }
    let body = get(addr, "/health/ready").await.json();
    assert_eq!(failed(&body)[0].0, "workers");
    for worker in &workers {
        worker.set_state(WorkerState::Available);
    }

    // The application's own check.
    db_up.store(false, Ordering::Relaxed);
    let body = get(addr, "/health/ready").await.json();
    assert_eq!(
        failed(&body),
        [("database".to_owned(), Value::Null, Value::Null)]
    );
    assert_eq!(body["failed"][0]["message"], "connection refused");
    db_up.store(true, Ordering::Relaxed);
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);

    // Requests: 4 ok, then 6 failures; the error rate over the window (0.6)
    // passes 0.5 once there are enough requests to judge. The window starts
    // at the history's first sample, which the server took when it
    // started, before the requests, so none of them is subtracted; a second
    // passes so that the window has a length to take rates over.
    clock.advance(Duration::from_secs(1));
    for _ in 0..4 {
        run(false).unwrap();
    }
    assert_eq!(
        get(addr, "/health/ready").await.status,
        StatusCode::OK,
        "4 requests: too few to judge"
    );
    for _ in 0..6 {
        run(true).unwrap_err();
    }
    let detailed = get(addr, "/health/detailed").await;
    assert_eq!(detailed.status, StatusCode::OK);
    let detailed = detailed.json();
    let ready = get(addr, "/health/ready").await;
    if TIMING {
        let body = ready.json();
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        let (check, value, threshold) = &failed(&body)[0];
        assert_eq!(
            (check.as_str(), value.as_f64(), threshold.as_f64()),
            ("error_rate", Some(0.6), Some(0.5))
        );
    }

    // The detailed report.
    assert_eq!(detailed["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(detailed["window_seconds"], 3600.0);
    assert!(detailed["uptime_seconds"].as_f64().unwrap() >= 0.0);
    let pools = detailed["pools"].as_array().unwrap();
    let report = pools
        .iter()
        .find(|p| p["pool"] == "health")
        .expect("the pool is reported");
    assert_eq!(report["size"], 2);
    assert_eq!(report["workers"]["available"], 2);
    assert_eq!(report["workers"]["busy"], 0);
    let list = report["worker_list"].as_array().unwrap();
    assert_eq!(
        list.iter()
            .map(|w| (w["id"].as_str(), w["state"].as_str()))
            .collect::<Vec<_>>(),
        [
            (Some("0"), Some("available")),
            (Some("1"), Some("available"))
        ]
    );
    assert!(list
        .iter()
        .all(|w| w["uptime_seconds"].as_f64().is_some_and(|u| u >= 0.0)));
    assert_eq!(report["queue_depth"], 0);
    assert_eq!(report["saturations_total"], 1);
    assert_eq!(report["crashes_total"], 2);
    assert_eq!(report["sessions"]["active"], 0);
    for key in [
        "in_flight",
        "requests_total",
        "request_rate",
        "error_rate",
        "latency_seconds",
        "window",
        "requests_by_outcome",
    ] {
        assert!(report.get(key).is_some(), "`{key}` is part of the shape");
    }
    if TIMING {
        assert_eq!(report["requests_total"], 10);
        assert_eq!(report["requests_by_outcome"]["error"], 6);
        assert_eq!(report["window"]["requests"], 10);
        assert_eq!(report["error_rate"], 0.6);
        let p50 = report["latency_seconds"]["p50"].as_f64().unwrap();
        let p99 = report["latency_seconds"]["p99"].as_f64().unwrap();
        // Sleeps of 2 ms, in seconds: never shorter, and far below a second
        // (the `max_p99` above) unless a unit is wrong.
        assert!(
            (0.001..=1.0).contains(&p50) && p50 <= p99,
            "p50 {p50} p99 {p99}"
        );
        assert!(report["request_rate"].as_f64().unwrap() > 0.0);
    }
    let checks = detailed["checks"].as_array().unwrap();
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for name in [
        "workers",
        "queue_depth",
        "error_rate",
        "p99_latency",
        "database",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert!(checks.iter().all(|c| c.get("passed").is_some()
        && c.get("threshold").is_some()
        && c.get("message").is_some()));

    // A pool shut down on purpose stops counting once it is retired.
    for worker in &workers {
        worker.set_state(WorkerState::Stopped);
    }
    assert_eq!(
        get(addr, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    pool.retire();
    let body = get(addr, "/health/ready").await.json();
    assert!(
        body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["check"] != "workers"),
        "{body}"
    );

    // Disabled: 404.
    server.set_enabled(Endpoint::Ready, false);
    assert_eq!(
        get(addr, "/health/ready").await.status,
        StatusCode::NOT_FOUND
    );
    server.shutdown().await;
}
