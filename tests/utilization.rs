//! Utilization, queue waits and time in worker, from the pool API, as
//! `/health/detailed` and `/metrics` report them. Its own binary: the
//! Prometheus recorder is process-wide.

use poolscope_testkit::client;

use poolscope_testkit as common;
use std::time::{Duration, Instant};

use client::get;
use poolscope::clock::ManualClock;
use poolscope::http::HealthConfig;
use poolscope::{Pool, WorkerState};

/// The pool's entry in `/health/detailed`.
async fn report(addr: std::net::SocketAddr, pool: &str) -> serde_json::Value {
    let detailed = get(addr, "/health/detailed").await.json();
    detailed["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool"] == pool)
        .unwrap_or_else(|| panic!("no pool {pool} in {detailed}"))
        .clone()
}

/// The bucket (lower, upper bound) of the default duration buckets that
/// holds `seconds`.
fn bucket(seconds: f64) -> (f64, f64) {
    let buckets = poolscope::buckets::DEFAULT_DURATION_BUCKETS;
    let upper = buckets.iter().position(|&b| seconds <= b).unwrap();
    (
        if upper == 0 { 0.0 } else { buckets[upper - 1] },
        buckets[upper],
    )
}

/// Utilization is busy time over wall time times the pool's size. One
/// worker stays idle; the other alternates and times its own busy periods
/// from outside and from inside its state changes, which bracket what the
/// pool measures. Every period ends before the report, so the expected
/// utilization follows from those times and the window the report covers,
/// however long the sleeps really took on this machine. The window's
/// clock is a manual one, advanced by the wall time the periods took, as
/// the pool measures busy time on the real clock. (A period still running
/// counts too: `busy_time_counts_workers_past_the_listed_ones` in
/// runtime/src/imp/pool.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utilization_is_the_workers_busy_time_over_wall_time() {
    let metrics = poolscope::metrics::install().expect("recorder");
    let pool = Pool::new("half-busy");
    pool.set_size(2);
    let idle = pool.worker(0);
    idle.set_state(WorkerState::Available);
    let alternating = pool.worker(1);
    alternating.set_state(WorkerState::Available);
    // The default 60 s window: every sample from the first, taken when the
    // server starts, on is in it.
    let clock = ManualClock::new();
    let server = common::start_server!(|server| {
        server
            .with_metrics(metrics.clone())
            .with_clock(clock.clone())
    });
    let addr = server.local_addr();

    let working = Instant::now();
    let (alternating, periods) = tokio::task::spawn_blocking(move || {
        let mut periods = Vec::new();
        for _ in 0..20 {
            let outside = Instant::now();
            alternating.set_state(WorkerState::Busy);
            let inside = Instant::now();
            std::thread::sleep(Duration::from_millis(50));
            let inside = inside.elapsed();
            alternating.set_state(WorkerState::Available);
            periods.push((inside, outside.elapsed()));
            std::thread::sleep(Duration::from_millis(50));
        }
        (alternating, periods)
    })
    .await
    .unwrap();
    // Queue waits: 200 of them, 1 ms to 20 ms.
    for i in 0..200u64 {
        pool.queue_wait(Duration::from_micros(1_000 + (i % 20) * 1_000));
    }
    clock.advance(working.elapsed());

    let asked = Instant::now();
    let report = report(addr, "half-busy").await;
    let seconds = report["window"]["seconds"].as_f64().unwrap();
    let inside: f64 = periods.iter().map(|p| p.0.as_secs_f64()).sum();
    let outside: f64 = periods.iter().map(|p| p.1.as_secs_f64()).sum();
    let utilization = report["utilization"].as_f64().expect("utilization");
    // The second worker's busy periods over two workers' window (read with
    // the busy times, at one moment), rounding aside.
    let least = inside / (2.0 * seconds) - 1e-9;
    let most = outside / (2.0 * seconds) + 1e-9;
    assert!(
        (least..=most).contains(&utilization),
        "utilization {utilization}, expected {least}..={most}: {report}"
    );
    // Time in worker: the median busy period, within its bucket. Only the
    // alternating worker's periods have ended.
    let median = |f: fn(&(Duration, Duration)) -> Duration| {
        let mut times: Vec<f64> = periods.iter().map(|p| f(p).as_secs_f64()).collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2 - 1]
    };
    let (lower, _) = bucket(median(|p| p.0));
    let (_, upper) = bucket(median(|p| p.1));
    let p50 = report["time_in_worker_seconds"]["p50"].as_f64().unwrap();
    assert!(
        (lower..=upper).contains(&p50),
        "time in worker p50 {p50}, expected {lower}..={upper}"
    );
    // The gauge is the same utilization, set by the server's sampler at
    // each sample over the window up to it: with a sample after the
    // report, the window is longer than the report's and shorter than the
    // report's plus the time since. A sample now, on the manual clock.
    clock.advance(Duration::ZERO);
    let gauge = common::expect_sample(
        &metrics.render(),
        "poolscope_pool_utilization{pool=\"half-busy\"}",
    );
    let longest = seconds + asked.elapsed().as_secs_f64();
    assert!(
        (inside / (2.0 * longest) - 1e-9..=most).contains(&gauge),
        "the utilization gauge after the busy periods: {gauge}, expected {}..={most}",
        inside / (2.0 * longest) - 1e-9
    );

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
        periods.len() as f64
    );
    // In /health/detailed, percentiles over the window: waits of 1 to
    // 20 ms, so the 99th in the (10, 25] ms bucket.
    let p99 = report["queue_wait_seconds"]["p99"].as_f64().unwrap();
    assert!((0.01..=0.025).contains(&p99), "{report}");
    drop((idle, alternating));
    pool.retire();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_wait_percentiles_cover_the_waits_of_the_window() {
    let clock = ManualClock::new();
    let server = common::start_server!(|server| {
        server
            .with_health(HealthConfig::default().with_window(Duration::from_secs(60)))
            .with_clock(clock.clone())
    });
    let pool = Pool::new("waits");
    // 100 waits: 90 of 1 ms, 10 of 80 ms.
    for i in 0..100 {
        let ms = if i % 10 == 9 { 80 } else { 1 };
        pool.queue_wait(Duration::from_millis(ms));
    }
    clock.advance(Duration::from_secs(1));
    let report = report(server.local_addr(), "waits").await;
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
