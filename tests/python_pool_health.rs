//! `/health/ready` follows the Python pool: 503 while every worker is dead,
//! 200 once they are back. Its own binary: readiness looks at every pool in
//! the process.

#[path = "common/http.rs"]
mod client;
mod common;
#[path = "../examples/python_pool/pool.rs"]
#[allow(dead_code)] // the example's pool, of which each test uses a part
mod pool;

use std::sync::Arc;
use std::time::Duration;

use client::get;
use hyper::StatusCode;
use poolscope::http::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_every_worker_is_dead_and_200_after() {
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
