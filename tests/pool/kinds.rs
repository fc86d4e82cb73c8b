//! `kind = pool_start | worker_start | session_create` and the imperative pool
//! API: the catalogue events and the metrics they feed.

use poolscope_testkit as common;

use std::time::Duration;

use common::*;
use metrics_exporter_prometheus::PrometheusBuilder;
use poolscope::events::Event;
use poolscope::{observe, Kind, Outcome, WorkerState};

#[observe(kind = pool_start, pool = "kinds", size = workers)]
fn start_pool(workers: usize, mode: &str) -> Result<(), std::io::Error> {
    let _ = (workers, mode);
    Ok(())
}

#[observe(kind = worker_start, pool = "kinds", worker = id)]
fn start_worker(id: u32) -> Result<u32, std::io::Error> {
    if id == 99 {
        return Err(std::io::Error::other("spawn failed"));
    }
    Ok(1000 + id)
}

#[observe(kind = session_create, pool = "kinds", ttl = Duration::from_secs(ttl_s))]
fn create_session(user: &str, ttl_s: u64) -> String {
    let _ = ttl_s;
    format!("{user}-session")
}

#[test]
fn kinds_produce_their_catalogue_events() {
    let captured = capture("kinds");
    start_pool(4, "eager").unwrap();
    start_worker(1).unwrap();
    assert!(start_worker(99).is_err());
    assert_eq!(create_session("ann", 30), "ann-session");
    let events = captured.take();
    if !ANY {
        assert!(events.is_empty());
        return;
    }
    let names: Vec<_> = events.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "pool.started",
            "worker.started",
            "worker.started",
            "session.created"
        ]
    );
    let Event::PoolStarted(pool) = &events[0] else {
        unreachable!()
    };
    assert_eq!((pool.size, pool.outcome), (Some(4), Outcome::Ok));
    assert_eq!(
        pool.config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["workers=4", "mode=\"eager\""]
    );
    assert_eq!(pool.startup.is_some(), TIMING);
    let Event::WorkerStarted(failed) = &events[2] else {
        unreachable!()
    };
    assert_eq!(
        (failed.worker.as_deref(), failed.outcome),
        (Some("99"), Outcome::Error)
    );
    assert_eq!(
        failed.error.as_ref().map(|e| e.message.as_str()),
        ERRORS.then_some("spawn failed")
    );
    let Event::SessionCreated(session) = &events[3] else {
        unreachable!()
    };
    assert_eq!(session.ttl, Some(Duration::from_secs(30)));

    if TIMING {
        let workers = poolscope::stats::series(Kind::WorkerStart, "kinds", "").unwrap();
        assert_eq!(workers.by_outcome.map(|h| h.count()), [1, 1, 0, 0, 0, 0]);
        let pools = poolscope::stats::series(Kind::PoolStart, "kinds", "").unwrap();
        assert_eq!(pools.outcome(Outcome::Ok).count(), 1);
    }
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn the_pool_api_feeds_gauges_counters_and_events() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let captured = capture("pool-api");
    let pool = metrics::with_local_recorder(&recorder, || poolscope::Pool::new("pool-api"));

    pool.set_size(3);
    let workers: Vec<_> = (0..3).map(|i| pool.worker(i)).collect();
    workers[0].started(Some(4242), Duration::from_millis(15));
    workers[1].set_state(WorkerState::Available);
    workers[1].set_state(WorkerState::Busy);
    pool.queue_depth(5);
    pool.saturated(5, 0);
    workers[2].crashed(
        "signal SIGSEGV",
        poolscope::error::CrashContext {
            signal: Some("SIGSEGV".into()),
            stderr_tail: Some("Segmentation fault".into()),
            ..Default::default()
        },
    );
    pool.session_created(
        "s-1",
        Duration::from_secs(60),
        vec![
            ("user".into(), "ann".into()),
            ("api_key".into(), "k-123".into()),
            ("note".into(), "password=pw1".into()),
        ],
    );
    pool.session_created("s-2", Duration::from_secs(60), Vec::new());
    pool.sessions_cleaned(1, Duration::from_millis(2));

    let text = handle.render();
    if !ANY {
        assert_eq!(text.trim(), "");
        assert!(captured.take().is_empty());
        return;
    }
    let gauge = |series: &str| {
        value(&text, series).unwrap_or_else(|| panic!("{series} missing from\n{text}"))
    };
    let expected = [
        (r#"poolscope_pool_size{pool="pool-api"}"#, 3.0),
        (
            r#"poolscope_workers{pool="pool-api",state="available"}"#,
            1.0,
        ),
        (r#"poolscope_workers{pool="pool-api",state="busy"}"#, 1.0),
        (r#"poolscope_workers{pool="pool-api",state="crashed"}"#, 1.0),
        (
            r#"poolscope_workers{pool="pool-api",state="starting"}"#,
            0.0,
        ),
        (r#"poolscope_queue_depth{pool="pool-api"}"#, 5.0),
        (r#"poolscope_pool_saturated_total{pool="pool-api"}"#, 1.0),
        (
            r#"poolscope_worker_crashes_total{pool="pool-api",kind="signal"}"#,
            1.0,
        ),
        (
            r#"poolscope_worker_crashes_total{pool="pool-api",kind="exit"}"#,
            0.0,
        ),
        (r#"poolscope_sessions_active{pool="pool-api"}"#, 1.0),
        (r#"poolscope_sessions_expired_total{pool="pool-api"}"#, 1.0),
        (
            r#"poolscope_session_cleanup_duration_seconds_count{pool="pool-api"}"#,
            1.0,
        ),
    ];
    for (series, value) in expected {
        assert_eq!(gauge(series), value, "{series}");
    }
    drop(workers);
    let text = handle.render();
    assert_eq!(
        value(&text, r#"poolscope_workers{pool="pool-api",state="busy"}"#),
        Some(0.0),
        "dropped workers leave the gauges"
    );

    let events = captured.take();
    let names: Vec<_> = events.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "worker.started",
            "pool.saturated",
            "worker.crashed",
            "session.created",
            "session.created",
            "session.cleanup"
        ]
    );
    let Event::WorkerStarted(started) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        (started.pid, started.startup),
        (Some(4242), Some(Duration::from_millis(15)))
    );
    let Event::PoolSaturated(saturated) = &events[1] else {
        unreachable!()
    };
    assert_eq!((saturated.queue_size, saturated.available_workers), (5, 0));
    let Event::WorkerCrashed(crash) = &events[2] else {
        unreachable!()
    };
    assert_eq!(crash.reason, "signal SIGSEGV");
    assert_eq!(
        crash.error.crash.as_ref().unwrap().stderr_tail.as_deref(),
        Some("Segmentation fault")
    );
    assert!(crash.uptime.is_some());
    let Event::SessionCreated(session) = &events[3] else {
        unreachable!()
    };
    let metadata: Vec<(String, String)> = session
        .metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    assert_eq!(
        metadata,
        [
            ("user".to_owned(), "ann".to_owned()),
            ("api_key".to_owned(), "[REDACTED]".to_owned()),
            ("note".to_owned(), "password=[REDACTED]".to_owned())
        ],
        "event metadata is sanitized"
    );
    let Event::SessionCleanup(cleanup) = &events[5] else {
        unreachable!()
    };
    assert_eq!(
        (cleanup.count, cleanup.duration),
        (1, Duration::from_millis(2))
    );
    let startup = poolscope::stats::series(Kind::WorkerStart, "pool-api", "").unwrap();
    assert_eq!(startup.outcome(Outcome::Ok).count(), 1);
}
