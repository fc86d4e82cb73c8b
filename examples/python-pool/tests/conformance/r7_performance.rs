//! Requirement 7: performance monitoring.

use std::time::Duration;

use poolscope::alerts::{watch_with_clock, AlertRule, Measure};
use poolscope::clock::ManualClock;
use poolscope::events::Event;
use serde_json::json;

use crate::harness::{run, Harness, POOL, SIZE};

async fn detailed_pool(h: &Harness) -> serde_json::Value {
    h.get("/health/detailed").await.json()["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool"] == POOL)
        .expect("the pool")
        .clone()
}

/// R7.1: each request's duration is measured and recorded: in its event,
/// in the series, on `/metrics`.
#[test]
fn r7_1_request_durations_are_measured_and_recorded() {
    run(|h| async move {
        let before = poolscope::stats::series(poolscope::Kind::Request, POOL, "sleep")
            .map_or(0, |s| s.outcome(poolscope::Outcome::Ok).count());
        let mark = h.event_mark();
        h.pool
            .execute("sleep", json!({ "ms": 60 }), None)
            .await
            .unwrap();
        let done = crate::common::completions(&h.events_since(mark))
            .into_iter()
            .find(|c| c.command.as_str() == "sleep")
            .cloned()
            .unwrap();
        let took = done.duration.expect("a duration");
        assert!(
            took >= Duration::from_millis(60) && took < Duration::from_secs(30),
            "{took:?}"
        );
        let series = poolscope::stats::series(poolscope::Kind::Request, POOL, "sleep").unwrap();
        let ok = series.outcome(poolscope::Outcome::Ok);
        assert_eq!(ok.count(), before + 1);
        assert!(ok.sum_seconds >= 0.06);
    });
}

/// R7.2: worker utilization is tracked: busy time over wall time, on
/// `/health/detailed` and as `poolscope_pool_utilization`.
#[test]
fn r7_2_worker_utilization_is_tracked() {
    run(|h| async move {
        // Both workers busy for a while.
        let calls: Vec<_> = (0..SIZE * 4)
            .map(|_| {
                let pool = h.pool.clone();
                tokio::spawn(async move { pool.execute("sleep", json!({ "ms": 100 }), None).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let pool = detailed_pool(h).await;
        let utilization = pool["utilization"].as_f64().expect("utilization");
        assert!(utilization > 0.0 && utilization <= 1.0, "{pool}");
        // The sampler sets the gauge every second.
        let gauge = format!("poolscope_pool_utilization{{pool=\"{POOL}\"}}");
        crate::common::eventually_async("the utilization gauge", async || {
            h.sample(&gauge).await.is_some_and(|u| u > 0.0 && u <= 1.0)
        })
        .await;
        let busy = format!("poolscope_worker_busy_duration_seconds_count{{pool=\"{POOL}\"}}");
        assert!(h
            .sample(&busy)
            .await
            .is_some_and(|n| n >= (SIZE * 4) as f64));
    });
}

/// R7.3: a queue building up is seen: its depth while it waits, then the
/// waits in the queue-wait histogram and percentiles.
#[test]
fn r7_3_queue_depth_and_wait_times_are_monitored() {
    run(|h| async move {
        let count = format!("poolscope_queue_wait_duration_seconds_count{{pool=\"{POOL}\"}}");
        let before = h.sample(&count).await.unwrap_or(0.0);
        let held = h.hold(SIZE, "r7-3").await;
        let queued = h.queue(4).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        held.release().await;
        queued.finish().await;
        // The held requests and the four queued behind them.
        let after = h.sample(&count).await.unwrap();
        assert!(after >= before + 4.0, "{before} → {after}");
        let pool = detailed_pool(h).await;
        let p99 = pool["queue_wait_seconds"]["p99"]
            .as_f64()
            .expect("queue-wait p99");
        assert!(p99 >= 0.3, "the four waited over 300 ms: {pool}");
    });
}

/// R7.4: memory is sampled: this process, the allocator, and the workers'
/// resident size, which follows a worker that grows.
#[test]
fn r7_4_memory_metrics_are_updated() {
    run(|h| async move {
        let workers = format!("poolscope_pool_workers_resident_bytes{{pool=\"{POOL}\"}}");
        let before = crate::common::until_async("the workers' resident size", async || {
            h.sample(&workers).await.filter(|b| *b > 0.0)
        })
        .await;
        assert!(h
            .sample("poolscope_process_resident_memory_bytes")
            .await
            .is_some_and(|b| b > 0.0));
        assert!(h
            .sample("poolscope_jemalloc_bytes{kind=\"allocated\"}")
            .await
            .is_some_and(|b| b > 0.0));
        // Both workers hold 40 MiB more.
        for _ in 0..SIZE * 2 {
            h.pool
                .execute("leak", json!({ "mb": 40 }), None)
                .await
                .unwrap();
        }
        crate::common::eventually_async("the workers grown on /metrics", async || {
            h.sample(&workers)
                .await
                .is_some_and(|b| b >= before + 60.0 * 1024.0 * 1024.0)
        })
        .await;
    });
}

/// R7.5: a performance threshold exceeded raises an alert: a p99 latency
/// rule fires on slow requests.
#[test]
fn r7_5_performance_thresholds_exceeded_generate_alerts() {
    run(|h| async move {
        let rule = AlertRule::new("slow_p99", Measure::Latency { quantile: 0.99 }, 0.05)
            .unwrap()
            .with_window(Duration::from_secs(5))
            .with_min_requests(5)
            .for_pool(POOL);
        // Judged now, before the requests, and at the clock's advance.
        let clock = ManualClock::new();
        let every = Duration::from_millis(100);
        let _watch = watch_with_clock(vec![rule], every, clock.clone()).unwrap();
        let mark = h.event_mark();
        for _ in 0..6 {
            h.pool
                .execute("sleep", json!({ "ms": 150 }), None)
                .await
                .unwrap();
        }
        clock.advance(every);
        let fired = h
            .wait_event(mark, "alert.fired", |e| match e {
                Event::AlertFired(a) if a.rule == "slow_p99" => Some(a.clone()),
                _ => None,
            })
            .await;
        assert!(fired.value > 0.05, "{fired:?}");
        assert_eq!(
            fired.pool.map(|p| p.as_str().to_owned()).as_deref(),
            Some(POOL)
        );
    });
}

/// R7.6: performance data comes as percentiles (`/health/detailed`) and
/// histograms (`/metrics`).
#[test]
fn r7_6_performance_data_includes_percentiles_and_histograms() {
    run(|h| async move {
        for ms in [5, 10, 20, 40, 80] {
            h.pool
                .execute("sleep", json!({ "ms": ms }), None)
                .await
                .unwrap();
        }
        let pool = detailed_pool(h).await;
        let latency = &pool["latency_seconds"];
        let (p50, p90, p99) = (
            latency["p50"].as_f64().unwrap(),
            latency["p90"].as_f64().unwrap(),
            latency["p99"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p90 && p90 <= p99, "{latency}");
        let text = h.get("/metrics").await.body;
        let buckets = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "poolscope_request_duration_seconds_bucket{{pool=\"{POOL}\",command=\"sleep\""
                ))
            })
            .count();
        assert!(buckets >= 10, "{buckets} buckets");
    });
}
