//! Load and soak: the flagship pool driven as fast as it goes, scraped every
//! second, with a dashboard stream open and a log writer too slow to keep
//! up. Asserts no request is lost (each answered once and counted once by
//! outcome), the host's RSS stays flat after warm-up, scrapes stay fast,
//! and dropped log lines are counted.
//!
//! CI runs it for 20 s. The long run:
//!
//! ```text
//! POOLSCOPE_SOAK_SECONDS=300 cargo test --release --features full --test soak -- --nocapture
//! ```

#[path = "common/http.rs"]
mod client;
#[path = "../examples/python_pool/pool.rs"]
#[allow(dead_code)] // the example's pool, of which each test uses a part
mod pool;
#[path = "common/sse.rs"]
mod sse;

mod common;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::get;
use poolscope::http::{DashboardConfig, Server};
use serde_json::json;

/// A log destination slower than the pool: the non-blocking writer's
/// buffer fills and lines are dropped.
#[derive(Clone, Default)]
struct SlowSink(Arc<AtomicU64>);

impl Write for SlowSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_micros(200));
        self.0.fetch_add(
            bytes.iter().filter(|b| **b == b'\n').count() as u64,
            Ordering::Relaxed,
        );
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_under_load_loses_nothing_and_stays_flat() {
    let seconds: u64 = std::env::var("POOLSCOPE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let metrics = poolscope::metrics::install().expect("recorder");
    let written = SlowSink::default();
    let logs = poolscope::logging::init(
        poolscope::logging::LogConfig::json()
            .with_level("info")
            .unwrap()
            .with_buffer_lines(64)
            .unwrap()
            .with_writer(written.clone()),
    )
    .unwrap();
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_metrics(metrics.clone())
        .with_dashboard(DashboardConfig::default())
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    let mut config = pool::PoolConfig::new("soak");
    config.size = 4;
    config.queue_capacity = 256;
    let pool = pool::start(config).await.expect("the Python pool");

    // A dashboard viewer reading everything.
    let mut viewer = sse::Events::open(addr, &[]).await.unwrap();
    let snapshots = Arc::new(AtomicU64::new(0));
    let seen = snapshots.clone();
    let viewing = tokio::spawn(async move {
        while viewer.next().await.is_some() {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    });

    // A scrape every second, timed.
    let stop = Arc::new(AtomicBool::new(false));
    let scraping = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let reply = get(addr, "/metrics").await;
                latencies.push(start.elapsed());
                assert!(reply.status.is_success());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            latencies
        })
    };

    // 32 callers as fast as the pool answers; every answer counted.
    let answered = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let callers: Vec<_> = (0..32u64)
        .map(|caller| {
            let pool = pool.clone();
            let answered = answered.clone();
            tokio::spawn(async move {
                let mut i = caller;
                while Instant::now() < deadline {
                    let result = if i % 50 == 49 {
                        pool.execute("fail", json!({ "message": "soak" }), None)
                            .await
                    } else {
                        pool.execute("echo", json!({ "i": i }), None).await
                    };
                    answered[usize::from(result.is_err())].fetch_add(1, Ordering::Relaxed);
                    i += 32;
                }
            })
        })
        .collect();
    // RSS after a quarter of the run (warm-up), and at the end.
    tokio::time::sleep(Duration::from_secs(seconds / 4)).await;
    let warm = poolscope::memory::process(None).unwrap().resident_bytes;
    for caller in callers {
        caller.await.unwrap();
    }
    let end = poolscope::memory::process(None).unwrap().resident_bytes;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = scraping.await.unwrap();

    let ok = answered[0].load(Ordering::Relaxed);
    let failed = answered[1].load(Ordering::Relaxed);
    let text = metrics.render();
    let counted_ok = common::sample(
        &text,
        "poolscope_requests_total{pool=\"soak\",command=\"echo\",outcome=\"ok\"}",
    )
    .unwrap_or(0.0);
    let counted_failed = common::sample(
        &text,
        "poolscope_requests_total{pool=\"soak\",command=\"fail\",outcome=\"error\"}",
    )
    .unwrap_or(0.0);
    latencies.sort_unstable();
    let slowest = *latencies.last().unwrap();
    let growth = end as f64 / warm as f64 - 1.0;
    println!(
        "{seconds} s: {ok} ok + {failed} failed ({:.0} req/s); RSS {warm} -> {end} ({:+.2}%); {} scrapes, slowest {slowest:?}; {} snapshots",
        (ok + failed) as f64 / seconds as f64,
        growth * 100.0,
        latencies.len(),
        snapshots.load(Ordering::Relaxed)
    );
    // No request lost: each answered once, counted once by outcome.
    assert!(ok > 0 && failed > 0);
    assert_eq!(counted_ok, ok as f64, "ok answers and ok counted");
    assert_eq!(
        counted_failed, failed as f64,
        "failed answers and errors counted"
    );
    // The host's memory is flat after warm-up.
    assert!(
        growth < 0.05,
        "RSS grew {:.2}% after warm-up",
        growth * 100.0
    );
    // Scrapes stay fast while the pool runs flat out.
    assert!(
        latencies.len() as u64 >= seconds / 2,
        "{} scrapes",
        latencies.len()
    );
    assert!(
        slowest < Duration::from_millis(50),
        "slowest scrape {slowest:?}"
    );
    // The viewer kept up (a snapshot at least every second).
    assert!(
        snapshots.load(Ordering::Relaxed) >= seconds,
        "{} snapshots",
        snapshots.load(Ordering::Relaxed)
    );

    // Dropped log lines are counted, not silent.
    drop(logs); // flushes and stops the counter thread after a last update
    let text = metrics.render();
    let dropped = common::sample(&text, "poolscope_log_lines_dropped_total").unwrap_or(0.0);
    let lines = written.0.load(Ordering::Relaxed);
    println!("log lines: {lines} written, {dropped} dropped");
    assert!(dropped > 0.0, "the slow writer must have dropped lines");
    assert!(
        lines as f64 + dropped >= (ok + failed) as f64,
        "every request's lines written or counted"
    );

    viewing.abort();
    pool.shutdown();
    server.shutdown().await;
}
