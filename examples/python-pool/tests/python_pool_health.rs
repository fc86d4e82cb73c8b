//! `/health/ready` follows the Python pool: 503 while every worker is dead,
//! 200 once they are back; the readiness policies with every worker busy.
//! Its own binary: readiness looks at every pool in the process, so its
//! tests take turns.

use poolscope_testkit as common;
use poolscope_testkit::client;
use python_pool as pool;

use std::sync::Arc;
use std::time::Duration;

use client::get;
use hyper::StatusCode;
use poolscope::http::{HealthConfig, ReadinessPolicy, Server};
use serde_json::json;

/// Readiness judges every pool in the process: one test at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_every_worker_is_dead_and_200_after() {
    let _turn = TURN.lock().await;
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    let mut config = pool::PoolConfig::new("pp-health");
    config.size = 2;
    config.start_timeout = Duration::from_secs(120);
    // Crashed workers stay down until the test lets them restart.
    let restarts = Arc::new(tokio::sync::Semaphore::new(0));
    config.restart_gate = Some(restarts.clone());
    let pool = pool::start(config).await.unwrap();
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);

    // Both workers die at once; until they are restarted nothing can serve.
    // (The pool reports a crash before it answers the request.)
    let crashes: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.execute("crash", json!({ "mode": "exit", "code": 9 }), None)
                    .await
            })
        })
        .collect();
    for crash in crashes {
        assert!(crash.await.unwrap().is_err());
    }
    let ready = get(addr, "/health/ready").await;
    if common::ANY {
        assert_eq!(
            ready.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            ready.body
        );
        assert_eq!(ready.json()["failed"][0]["check"], "workers");
    }

    // Back once they may restart.
    restarts.add_permits(2);
    common::eventually_async("the pool ready again", async || {
        get(addr, "/health/ready").await.status == StatusCode::OK
    })
    .await;
    assert_eq!(
        pool.execute("echo", json!({ "ok": true }), None)
            .await
            .unwrap(),
        json!({ "ok": true })
    );
    pool.shutdown();
    server.shutdown().await;
}

/// The failed checks of a 503, by name.
fn failed(reply: &client::Reply) -> Vec<String> {
    reply.json()["failed"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .map(|c| c["check"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readiness_policies_judge_a_pool_whose_workers_are_all_busy() {
    let _turn = TURN.lock().await;
    let health = HealthConfig::default().with_max_queue_wait(Duration::from_secs(600));
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_health(health.clone())
        .build()
        .unwrap()
        .start()
        .unwrap();
    let (addr, controls) = (server.local_addr(), server.controls());
    let mut config = pool::PoolConfig::new("pp-policy");
    config.size = 1;
    config.queue_capacity = 2;
    config.start_timeout = Duration::from_secs(120);
    config.request_timeout = Duration::from_secs(600);
    let pool = pool::start(config).await.unwrap();
    let status = async || get(addr, "/health/ready").await;
    assert_eq!(status().await.status, StatusCode::OK);

    // The one worker is held busy.
    let gate = common::GateFile::new("pp-policy");
    let held = {
        let (pool, args) = (pool.clone(), gate.args());
        tokio::spawn(async move { pool.execute("wait", args, None).await })
    };
    if !common::ANY {
        gate.open();
        held.await.unwrap().unwrap();
        pool.shutdown();
        server.shutdown().await;
        return;
    }
    common::eventually_async("the worker busy", async || {
        common::pool_state("pp-policy").is_some_and(|s| s.workers.busy == 1)
    })
    .await;
    // Capacity: busy for less than the longest wait allowed, and the
    // queue has room: a new request would start soon enough.
    let ready = status().await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    // Strict: no worker available, so not ready.
    controls
        .set_health(health.clone().with_readiness(ReadinessPolicy::Strict))
        .unwrap();
    let strict = status().await;
    assert_eq!(
        strict.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        strict.body
    );
    assert_eq!(failed(&strict), ["capacity"]);
    // Capacity again, with a shorter wait than the worker has been busy.
    controls
        .set_health(
            health
                .clone()
                .with_max_queue_wait(Duration::from_millis(50)),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waited = status().await;
    assert_eq!(
        waited.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        waited.body
    );
    assert_eq!(failed(&waited), ["capacity"]);
    assert!(waited.body.contains("busy for at least"), "{}", waited.body);
    // Capacity with the long wait, and the queue full: two more requests.
    controls.set_health(health.clone()).unwrap();
    let queued: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.execute("echo", json!({}), None).await })
        })
        .collect();
    common::eventually_async("the queue full", async || {
        common::pool_state("pp-policy").is_some_and(|s| s.queue_depth >= 2)
    })
    .await;
    let full = status().await;
    assert_eq!(
        full.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        full.body
    );
    assert_eq!(failed(&full), ["capacity"]);
    assert!(full.body.contains("queue is full"), "{}", full.body);

    // The worker free: ready under both policies.
    gate.open();
    held.await.unwrap().unwrap();
    for call in queued {
        call.await.unwrap().unwrap();
    }
    common::eventually_async("a worker available", async || {
        common::pool_state("pp-policy").is_some_and(|s| s.workers.available == 1)
    })
    .await;
    assert_eq!(status().await.status, StatusCode::OK);
    controls
        .set_health(health.with_readiness(ReadinessPolicy::Strict))
        .unwrap();
    assert_eq!(status().await.status, StatusCode::OK);
    pool.shutdown();
    server.shutdown().await;
}
