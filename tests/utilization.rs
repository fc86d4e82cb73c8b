//! Utilization, queue waits and time in worker, from the pool API, as
//! `/health/detailed` and `/metrics` report them. Its own binary: the
//! Prometheus recorder is process-wide.

#[path = "common/http.rs"]
mod client;

mod common;
use std::time::{Duration, Instant};

use client::get;
use poolscope::http::{HealthConfig, Server};
use poolscope::{Pool, WorkerState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_busy_half_the_time_read_half_utilized() {
    let metrics = poolscope::metrics::install().expect("recorder");
    let window = Duration::from_secs(3);
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_metrics(metrics.clone())
        .with_health(HealthConfig::default().with_window(window))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let pool = Pool::new("half-busy");
    pool.set_size(2);
    // Two workers, each busy 50 ms then idle 50 ms, for longer than the window.
    let run_for = window + Duration::from_millis(2500);
    let workers: Vec<_> = (0..2)
        .map(|id| {
            let worker = pool.worker(id);
            std::thread::spawn(move || {
                worker.set_state(WorkerState::Available);
                let start = Instant::now();
                let mut periods = 0u64;
                while start.elapsed() < run_for {
                    worker.set_state(WorkerState::Busy);
                    std::thread::sleep(Duration::from_millis(50));
                    worker.set_state(WorkerState::Available);
                    periods += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                (worker, periods)
            })
        })
        .collect();
    // Queue waits: 200 of them, 1 ms to 20 ms.
    for i in 0..200u64 {
        pool.queue_wait(Duration::from_micros(1_000 + (i % 20) * 1_000));
    }
    tokio::time::sleep(window + Duration::from_millis(1500)).await;
    let detailed = get(server.local_addr(), "/health/detailed").await.json();
    let report = detailed["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool"] == "half-busy")
        .expect("the pool")
        .clone();
    let utilization = report["utilization"].as_f64().expect("utilization");
    assert!(
        (utilization - 0.5).abs() <= 0.1,
        "utilization {utilization}, expected 0.5 ± 0.1: {report}"
    );
    let gauge = common::expect_sample(
        &metrics.render(),
        "poolscope_pool_utilization{pool=\"half-busy\"}",
    );
    assert!((gauge - 0.5).abs() <= 0.1, "gauge {gauge}");
    // Time in worker: one busy period, 50 ms, within its bucket.
    let p50 = report["time_in_worker_seconds"]["p50"].as_f64().unwrap();
    assert!((0.025..=0.1).contains(&p50), "time in worker p50 {p50}");
    let mut periods = 0;
    for worker in workers {
        let (worker, n) = worker.join().unwrap();
        periods += n;
        drop(worker);
    }

    // Every queue wait and busy period counted once, on /metrics.
    let text = metrics.render();
    assert_eq!(
        common::expect_sample(
            &text,
            "poolscope_queue_wait_duration_seconds_count{pool=\"half-busy\"}"
        ),
        200.0
    );
    assert_eq!(
        common::expect_sample(
            &text,
            "poolscope_worker_busy_duration_seconds_count{pool=\"half-busy\"}"
        ),
        periods as f64
    );
    // In /health/detailed, percentiles over the window (the waits were
    // reported more than a window ago, so the window holds none of them now).
    let p99 = report["queue_wait_seconds"]["p99"].as_f64();
    assert!(p99.is_none() || p99.unwrap() <= 0.025, "{report}");
    pool.retire();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_wait_percentiles_cover_the_waits_of_the_window() {
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_health(HealthConfig::default().with_window(Duration::from_secs(2)))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let pool = Pool::new("waits");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // 100 waits: 90 of 1 ms, 10 of 80 ms.
    for i in 0..100 {
        let ms = if i % 10 == 9 { 80 } else { 1 };
        pool.queue_wait(Duration::from_millis(ms));
    }
    let detailed = get(server.local_addr(), "/health/detailed").await.json();
    let report = detailed["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool"] == "waits")
        .unwrap()
        .clone();
    assert_eq!(report["window"]["queue_waits"], 100, "{report}");
    let p50 = report["queue_wait_seconds"]["p50"].as_f64().unwrap();
    let p99 = report["queue_wait_seconds"]["p99"].as_f64().unwrap();
    // Within the bucket that holds the exact value (1 ms in (0.5, 1] ms;
    // 80 ms in (50, 100] ms).
    assert!((0.0005..=0.001).contains(&p50), "p50 {p50}");
    assert!((0.05..=0.1).contains(&p99), "p99 {p99}");
    pool.retire();
    server.shutdown().await;
}
