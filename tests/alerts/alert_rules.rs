//! Threshold rules beyond the error rate: queue depth with hysteresis
//! (stepped through on an evaluator, so each value is judged exactly once),
//! a readiness rule failing `/health/ready`, utilization, latency
//! quantiles, and rules refused with the reason. Each rule is for a pool of
//! its own, readiness is judged on the rule alone, and the Prometheus
//! recorder is the binary's (`common::recorder!`).

use poolscope_testkit as common;
use poolscope_testkit::client;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::get;
use common::eventually as wait_until;
use hyper::StatusCode;
use poolscope::alerts::{watch, watch_with_clock, AlertEvaluator, AlertRule, Measure};
use poolscope::clock::ManualClock;
use poolscope::events::Event;
use poolscope::http::HealthConfig;
use poolscope::{observe, Pool, WorkerState};

const EVERY: Duration = Duration::from_millis(50);

/// Alert transitions seen: `(fired?, rule, pool, value)`.
type Seen = Arc<Mutex<Vec<(bool, String, String, f64)>>>;

fn transitions() -> (Seen, poolscope::events::Subscription) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let subscription = poolscope::events::subscribe(move |event| {
        let (fired, alert) = match event {
            Event::AlertFired(a) => (true, a),
            Event::AlertResolved(a) => (false, a),
            _ => return,
        };
        sink.lock().unwrap().push((
            fired,
            alert.rule.clone(),
            alert
                .pool
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            alert.value,
        ));
    });
    (seen, subscription)
}

#[test]
fn queue_depth_fires_above_the_threshold_and_resolves_only_below_resolve_at() {
    let metrics = common::recorder!();
    let (seen, _subscription) = transitions();
    let pool = Pool::new("alert-queue");
    let mut alerts = AlertEvaluator::new(vec![AlertRule::new(
        "deep_queue",
        Measure::QueueDepth,
        100.0,
    )
    .unwrap()
    .with_resolve_at(50.0)
    .for_pool("alert-queue")])
    .unwrap();
    let start = Instant::now();
    let mut step = 0u32;
    let mut judge = |depth: usize| {
        pool.queue_depth(depth);
        step += 1;
        alerts.evaluate_at(start + EVERY * step);
        seen.lock()
            .unwrap()
            .iter()
            .filter(|t| t.1 == "deep_queue")
            .map(|t| (t.0, t.3))
            .collect::<Vec<_>>()
    };
    assert_eq!(judge(150), vec![(true, 150.0)]);
    let gauge = "poolscope_alerts_firing{rule=\"deep_queue\",pool=\"alert-queue\"}";
    assert!(metrics.render().contains(&format!("{gauge} 1")));
    // Hovering between resolve_at and the threshold: no flapping.
    for depth in [90, 101, 60, 120, 51] {
        assert_eq!(judge(depth), vec![(true, 150.0)], "at {depth}");
    }
    assert_eq!(judge(40), vec![(true, 150.0), (false, 40.0)]);
    assert!(metrics.render().contains(&format!("{gauge} 0")));
    drop(alerts);
    pool.retire();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_rule_fails_health_ready_while_it_fires() {
    // Readiness judged on the rule alone: the other tests' pools, short of
    // workers at times, do not take part.
    let server = common::start_server!(
        |server| server.with_health(HealthConfig::default().with_min_ready_workers(0))
    );
    let addr = server.local_addr();
    let pool = Pool::new("alert-ready");
    pool.set_size(1);
    let worker = pool.worker(0);
    worker.set_state(WorkerState::Available);
    // The watcher evaluates when the test advances its clock.
    let clock = ManualClock::new();
    let _watcher = watch_with_clock(
        vec![AlertRule::new("backlog", Measure::QueueDepth, 10.0)
            .unwrap()
            .for_pool("alert-ready")
            .for_readiness(true)],
        EVERY,
        clock.clone(),
    )
    .unwrap();
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);
    pool.queue_depth(25);
    clock.advance(EVERY);
    let reply = get(addr, "/health/ready").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "never unready: {}",
        reply.body
    );
    let failed = reply.json()["failed"].clone();
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{failed}");
    let failed = &failed[0];
    assert_eq!(failed["check"], "alert:backlog");
    assert_eq!(failed["pool"], "alert-ready");
    assert_eq!(failed["value"], 25.0);
    assert_eq!(failed["threshold"], 10.0);
    pool.queue_depth(0);
    clock.advance(EVERY);
    assert_eq!(
        get(addr, "/health/ready").await.status,
        StatusCode::OK,
        "still unready after the queue drained"
    );
    drop(worker);
    pool.retire();
    server.shutdown().await;
}

#[observe(pool = "alert-latency", command = "slow")]
fn slow(ms: u64) -> Result<(), std::fmt::Error> {
    std::thread::sleep(Duration::from_millis(ms));
    Ok(())
}

#[test]
fn latency_and_utilization_rules_fire_on_what_they_measure() {
    let (seen, _subscription) = transitions();
    // Latency is judged on a clock the test advances. Busy time is
    // measured on the real clock, so the utilization rule is watched on
    // it, and its window has to pass for real.
    let clock = ManualClock::new();
    let _latency = watch_with_clock(
        vec![
            AlertRule::new("p90_slow", Measure::Latency { quantile: 0.9 }, 0.02)
                .unwrap()
                .with_min_requests(10)
                .for_pool("alert-latency"),
        ],
        EVERY,
        clock.clone(),
    )
    .unwrap();
    let _busy = watch(
        vec![AlertRule::new("busy", Measure::Utilization, 0.7)
            .unwrap()
            .with_window(Duration::from_secs(1))
            .for_pool("alert-busy")],
        EVERY,
    )
    .unwrap();
    // 20 calls, 3 of which are slow: p90 goes past 20 ms.
    for i in 0..20 {
        slow(if i % 7 == 0 { 40 } else { 1 }).unwrap();
    }
    clock.advance(EVERY);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|t| t.0 && t.1 == "p90_slow"),
        "the latency alert"
    );
    let value = seen
        .lock()
        .unwrap()
        .iter()
        .find(|t| t.1 == "p90_slow")
        .unwrap()
        .3;
    assert!(value > 0.02, "p90 {value}");

    // One worker busy all the time: utilization 1 over the window.
    let pool = Pool::new("alert-busy");
    pool.set_size(1);
    let worker = pool.worker(0);
    worker.set_state(WorkerState::Busy);
    wait_until("the utilization alert", || {
        seen.lock().unwrap().iter().any(|t| t.0 && t.1 == "busy")
    });
    worker.set_state(WorkerState::Available);
    wait_until("the utilization alert resolving", || {
        seen.lock().unwrap().iter().any(|t| !t.0 && t.1 == "busy")
    });
    drop(worker);
    pool.retire();
}

#[test]
fn rules_out_of_range_are_refused_with_the_field_and_the_problem() {
    let err = AlertRule::new("rate", Measure::ErrorRate, 1.5).unwrap_err();
    assert!(
        err.to_string().contains("rule `rate`") && err.to_string().contains("at most 1"),
        "{err}"
    );
    let err = AlertRule::new("p", Measure::Latency { quantile: 1.2 }, 0.5).unwrap_err();
    assert!(err.to_string().contains("quantile 1.2"), "{err}");
    let err = AlertRule::new("", Measure::QueueDepth, 1.0).unwrap_err();
    assert!(err.to_string().contains("needs a name"), "{err}");
    let rule = AlertRule::new("q", Measure::QueueDepth, 10.0)
        .unwrap()
        .with_resolve_at(20.0);
    let err = watch(vec![rule], EVERY).unwrap_err();
    assert!(err.to_string().contains("resolve_at 20"), "{err}");
    let rule = AlertRule::new("q", Measure::QueueDepth, 10.0).unwrap();
    assert!(watch(vec![rule], Duration::ZERO).is_err());
}
