//! The exposition passes Prometheus's own linter, `promtool check metrics`,
//! after a workload that touches every metric family. Needs `promtool`
//! (Debian package `prometheus`); `.ci/run` installs it.

use poolscope_testkit as common;

use std::time::Duration;

use common::*;
use metrics_exporter_prometheus::PrometheusBuilder;
use poolscope::{observe, WorkerState};
use poolscope_testkit::TIMING;

#[observe(pool = "lint", command = "run")]
fn run(n: u32) -> Result<u32, std::fmt::Error> {
    if n.is_multiple_of(3) {
        return Err(std::fmt::Error);
    }
    Ok(n)
}

#[observe(kind = pool_start, pool = "lint")]
fn start() {}

#[observe(kind = worker_start, pool = "lint", worker = id)]
fn spawn(id: u32) -> u32 {
    id
}

#[observe(kind = session_create, pool = "lint")]
fn session() {}

#[observe(pool = "lint", command = "boom")]
fn boom() {
    panic!("lint workload panic");
}

#[test]
fn the_exposition_passes_promtool() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Prefix("poolscope_".into()),
            poolscope::buckets::DEFAULT_DURATION_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let handle = poolscope::metrics::MetricsHandle::from_prometheus(recorder.handle());
    let pool = metrics::with_local_recorder(&recorder, || poolscope::Pool::new("lint"));
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("app_jobs_total", "Jobs the application ran.");
        metrics::counter!("app_jobs_total", "queue" => "default").increment(2);
    });

    start();
    pool.set_size(2);
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    workers[0].started(Some(1), Duration::from_millis(3));
    workers[1].set_state(WorkerState::Busy);
    spawn(1);
    session();
    pool.session_created("s", Duration::from_secs(1), Vec::new());
    pool.sessions_cleaned(1, Duration::from_millis(1));
    pool.queue_depth(4);
    pool.saturated(4, 0);
    workers[1].crashed(
        "exit code 1",
        poolscope::error::CrashContext {
            exit_code: Some(1),
            ..Default::default()
        },
    );
    for n in 0..50 {
        let _ = run(n);
    }
    let _ = std::panic::catch_unwind(boom);

    let text = handle.render();
    if ANY {
        assert!(text.contains("poolscope_workers{"), "{text}");
        assert!(text.contains("app_jobs_total{queue=\"default\"} 2"));
    }
    if TIMING {
        assert!(text.contains("poolscope_request_duration_seconds_bucket{"));
        assert!(text.contains("outcome=\"panic\""));
    }

    promtool_check(&text);
}
