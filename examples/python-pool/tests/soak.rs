//! Load and soak: the flagship pool driven as fast as it goes, scraped every
//! second, with a dashboard stream open and a log destination that accepts
//! nothing until the load is over. Asserts no request is lost (each answered
//! once and counted once by outcome), the host's RSS stays flat after
//! warm-up, every scrape finishes within its one-second interval, the pool
//! never waits for its logs, and every log line is either written or counted
//! as dropped.
//!
//! CI runs it for 20 s. The long run:
//!
//! ```text
//! POOLSCOPE_SOAK_SECONDS=300 cargo test --release --features full --test soak -- --nocapture
//! ```

use poolscope_testkit::client;
use poolscope_testkit::sse;
use python_pool as pool;

use poolscope_testkit as common;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::get;
use poolscope::http::{DashboardConfig, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_under_load_loses_nothing_and_stays_flat() {
    let seconds: u64 = std::env::var("POOLSCOPE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let metrics = poolscope::metrics::install().expect("recorder");
    // Shut for the whole load: the buffer fills and lines are dropped
    // however fast or slow this machine runs the pool.
    let written = common::Gated::default();
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
        // A viewer may fall this far behind a storm of error pushes before
        // it is cut off: room for a slow machine, where the test's reader
        // shares two cores with the pool.
        .with_dashboard(DashboardConfig::default().with_viewer_buffer(1000))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    let mut config = pool::PoolConfig::new("soak");
    config.size = 4;
    config.queue_capacity = 256;
    config.start_timeout = common::PATIENCE * 2;
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
    // Scrapes stay fast while the pool runs flat out: each one well within
    // its interval (a second here), which is what a scraper needs, with
    // room for a machine several times slower than the one that measured
    // the figures in BENCHMARKS.md (2.5 ms in release, 16 ms in debug).
    assert!(
        latencies.len() as u64 >= seconds / 2,
        "{} scrapes",
        latencies.len()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "slowest scrape {slowest:?}"
    );
    // The viewer kept up: it was never cut off, and the dashboard ticks
    // every 500 ms, so at least one snapshot a second even if every other
    // tick came late.
    assert!(!viewing.is_finished(), "the dashboard stream ended");
    assert_eq!(
        common::sample(&text, "poolscope_dashboard_viewers_dropped_total"),
        Some(0.0)
    );
    assert!(
        snapshots.load(Ordering::Relaxed) >= seconds,
        "{} snapshots",
        snapshots.load(Ordering::Relaxed)
    );

    // The pool answered everything above while its log destination
    // accepted nothing: logging never waits for the writer. Every line is
    // written or counted as dropped, and none is lost once the destination
    // accepts again.
    let lines = |text: &str| {
        (
            common::sample(text, "poolscope_log_lines_total").unwrap_or(0.0) as u64,
            common::sample(text, "poolscope_log_lines_dropped_total").unwrap_or(0.0) as u64,
        )
    };
    written.open();
    common::eventually_async("the log buffer drains", async || {
        let (emitted, dropped) = lines(&metrics.render());
        written.lines() + dropped == emitted
    })
    .await;
    let (emitted, dropped) = lines(&metrics.render());
    println!(
        "log lines: {emitted} emitted, {} written, {dropped} dropped",
        written.lines()
    );
    assert!(
        emitted >= ok + failed,
        "every request logs a line: {emitted} lines for {} requests",
        ok + failed
    );
    assert!(
        dropped > 0,
        "a shut destination must make the buffer drop lines"
    );
    drop(logs);

    viewing.abort();
    pool.shutdown();
    server.shutdown().await;
}
