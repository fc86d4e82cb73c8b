//! `/health/ready` follows the Python pool: 503 while its queue is past the
//! threshold, 200 once it drains. Its own binary: readiness looks at every
//! pool in the process.

use poolscope_testkit as common;
use poolscope_testkit::client;
use python_pool as pool;

use std::time::Duration;

use client::get;
use hyper::StatusCode;
use poolscope::http::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_the_queue_is_past_its_threshold() {
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_health(poolscope::http::HealthConfig::default().with_max_queue_depth(2))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    let mut config = pool::PoolConfig::new("pp-busy");
    config.size = 1;
    config.start_timeout = Duration::from_secs(120);
    config.request_timeout = Duration::from_secs(600);
    let pool = pool::start(config).await.unwrap();
    // The first request holds the one worker until the test opens its gate
    // (a file the worker's `wait` command looks for); five more queue.
    let gate = common::GateFile::new("pp-busy");
    let held = {
        let (pool, args) = (pool.clone(), gate.args());
        tokio::spawn(async move { pool.execute("wait", args, None).await })
    };
    if common::ANY {
        common::eventually_async("the worker held", async || {
            common::pool_state("pp-busy").is_some_and(|s| s.workers.busy == 1)
        })
        .await;
    }
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.execute("sleep", json!({ "ms": 10 }), None).await })
        })
        .collect();
    if common::ANY {
        common::eventually_async("five requests queued", async || {
            common::pool_state("pp-busy").is_some_and(|s| s.queue_depth == 5)
        })
        .await;
        let busy = get(addr, "/health/ready").await;
        assert_eq!(
            busy.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            busy.body
        );
        let failed = &busy.json()["failed"][0];
        assert_eq!(
            (failed["check"].as_str(), failed["pool"].as_str()),
            (Some("queue_depth"), Some("pp-busy"))
        );
        assert!(failed["value"].as_f64().unwrap() > 2.0);
    }
    gate.open();
    held.await.unwrap().unwrap();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(
        get(addr, "/health/ready").await.status,
        StatusCode::OK,
        "ready again once the queue drains"
    );
    pool.shutdown();
    server.shutdown().await;
}
