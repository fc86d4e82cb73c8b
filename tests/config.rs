//! Configuration reloaded live from a file: endpoint switches, readiness
//! thresholds, sampling, the log level and alert rules change without a
//! restart, at the watcher's next look at the file (every 250 ms); a broken
//! file is rejected, reported, and the configuration in force keeps
//! working; sampling at 0.01 keeps every error.
//! Its own binary: the configuration, the logger and the runtime switches
//! are process-wide.

use poolscope_testkit as common;
use poolscope_testkit::client;

use std::path::Path;
use std::time::Duration;

use client::get;
use hyper::StatusCode;
use poolscope::config::{ConfigWatcher, Live};
use poolscope::events::Event;
use poolscope::{observe, Pool, WorkerState};

fn write(path: &Path, text: &str) {
    // Write then rename: the watcher never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[observe(pool = "config-pool", command = "maybe_fail")]
fn maybe_fail(i: u64) -> Result<u64, std::fmt::Error> {
    if i.is_multiple_of(10) {
        Err(std::fmt::Error)
    } else {
        Ok(i)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_applies_live_and_a_broken_one_is_rejected() {
    let metrics = poolscope::metrics::install().expect("recorder");
    let logs = common::Buffer::default();
    let guard = poolscope::logging::init(
        poolscope::logging::LogConfig::json()
            .with_flush_timeout(common::PATIENCE)
            .with_writer(logs.clone()),
    )
    .expect("logger");
    let server = common::start_server!(|server| server.with_metrics(metrics.clone()));
    let addr = server.local_addr();
    let alerts = poolscope::alerts::watch(Vec::new(), Duration::from_millis(50)).unwrap();
    let pool = Pool::new("config-pool");
    pool.set_size(1);
    let worker = pool.worker(0);
    worker.set_state(WorkerState::Available);
    pool.queue_depth(10);

    let dir = std::env::temp_dir().join(format!("poolscope-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("poolscope.toml");
    write(&path, "[logging]\nlevel = \"info\"\n");
    let live = Live::new()
        .with_server(server.controls())
        .with_logs(guard.level_control())
        .with_alerts(alerts.controls());
    let watcher = ConfigWatcher::start(&path, live).expect("the first load");
    assert_eq!(watcher.applied(), 1);
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);
    tracing::info!(marker = "before", "an info line");

    // Everything at once, in a new file.
    write(
        &path,
        r#"
[sampling]
requests = 0.01

[logging]
level = "warn"

[http.endpoints]
metrics = false

[health]
max_queue_depth = 5

[[alerts.rules]]
name = "deep"
measure = "queue_depth"
threshold = 8

[dashboard]
metrics = ["app_jobs_total"]
"#,
    );
    // Counted once the whole file is in force: the endpoint switch alone
    // shows before the readiness thresholds and the rest are set.
    let took =
        common::eventually_async("the new configuration", async || watcher.applied() == 2).await;
    println!("applied {took:?} after the write");
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::NOT_FOUND);
    let ready = get(addr, "/health/ready").await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    assert!(ready.body.contains("queue_depth"), "{}", ready.body);
    assert!((poolscope::events::sample_rate() - 0.01).abs() < 1e-9);
    assert_eq!(poolscope::config::current().health.max_queue_depth, Some(5));
    tracing::info!(
        marker = "hidden",
        "an info line after the level went to warn"
    );
    tracing::warn!(marker = "shown", "a warn line");
    // An application metric declared for the dashboard shows there.
    metrics::counter!("app_jobs_total", "queue" => "fast").increment(3);
    metrics::counter!("app_other_total").increment(1);
    let snapshot = get(addr, "/dashboard/snapshot").await.json();
    assert_eq!(
        snapshot["custom_metrics"],
        serde_json::json!([["app_jobs_total{queue=\"fast\"}", 3.0]]),
        "{}",
        snapshot["custom_metrics"]
    );
    // The new alert rule runs: the queue of 10 is over its 8.
    common::eventually_async("the alert from the new rule", async || {
        metrics
            .render()
            .contains("poolscope_alerts_firing{rule=\"deep\",pool=\"config-pool\"} 1")
    })
    .await;

    // Sampling at 0.01 keeps every error.
    let seen = std::sync::Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let sink = seen.clone();
    let subscription = poolscope::events::subscribe(move |event| {
        if let Event::RequestCompleted(c) = event {
            let mut seen = sink.lock().unwrap();
            if c.outcome == poolscope::Outcome::Ok {
                seen.0 += 1;
            } else {
                seen.1 += 1;
            }
        }
    });
    for i in 0..2_000 {
        let _ = maybe_fail(i);
    }
    drop(subscription);
    let (ok, failed) = *seen.lock().unwrap();
    assert_eq!(failed, 200, "every failure kept");
    assert!(ok < 100, "{ok} of 1,800 successes kept at a rate of 0.01");

    // A broken file: rejected, reported, and the configuration in force stays.
    write(&path, "[sampling]\nrequests = 7\n");
    common::eventually_async("the broken file reported", async || {
        watcher.last_error().is_some()
    })
    .await;
    let error = watcher.last_error().unwrap().to_string();
    assert!(error.contains("sampling.requests"), "{error}");
    assert!((poolscope::events::sample_rate() - 0.01).abs() < 1e-9);
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::NOT_FOUND);
    write(&path, "[sampling\nrequests = 0.5\n");
    common::eventually_async("bad TOML reported", async || {
        watcher
            .last_error()
            .is_some_and(|e| e.to_string().contains("invalid configuration in"))
    })
    .await;
    assert!((poolscope::events::sample_rate() - 0.01).abs() < 1e-9);

    // Fixed again: applied, and the error clears.
    write(&path, "[sampling]\nrequests = 1.0\n");
    common::eventually_async("the fixed file", async || watcher.last_error().is_none()).await;
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
    assert_eq!(poolscope::events::sample_rate(), 1.0);
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);
    let snapshot = get(addr, "/dashboard/snapshot").await.json();
    assert_eq!(snapshot["custom_metrics"], serde_json::json!([]));

    drop(watcher);
    drop(guard); // waits until every line is written
    let text = logs.text();
    assert!(text.contains("\"before\""), "{text}");
    assert!(text.contains("\"shown\""), "{text}");
    assert!(
        !text.contains("\"hidden\""),
        "an info line passed the warn level:\n{text}"
    );
    assert!(text.contains("configuration rejected"), "{text}");
    drop(worker);
    pool.retire();
    drop(alerts);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
