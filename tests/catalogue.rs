//! The metric catalogue is the truth: a process using every part exports
//! exactly the catalogue's metrics, with the catalogue's types, and
//! docs/metrics.md describes each of them.

use poolscope_testkit as common;
use poolscope_testkit::sse;

use std::collections::BTreeMap;
use std::time::Duration;

use poolscope::alerts::{watch_with_clock, AlertRule, Measure};
use poolscope::catalogue::{MetricKind, METRICS};
use poolscope::clock::ManualClock;
use poolscope::error::CrashContext;
use poolscope::memory::MemorySampler;
use poolscope::{observe, Pool, WorkerState};

#[observe(pool = "cat", command = "run")]
fn run() -> Result<(), std::fmt::Error> {
    Ok(())
}

#[observe(kind = pool_start, pool = "cat", size = 1)]
fn start_pool() {}

#[observe(kind = worker_start, pool = "cat")]
fn start_worker() {}

#[observe(kind = session_create, pool = "cat", ttl = Duration::from_secs(1))]
fn create_session() {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_using_every_part_exports_exactly_the_catalogue() {
    let metrics = poolscope::metrics::install().expect("recorder");
    let _logs = poolscope::logging::init(
        poolscope::logging::LogConfig::json().with_writer(std::io::sink()),
    )
    .unwrap();
    // The server's sampler and the alert watcher take their turn when the
    // test advances this clock.
    let clock = ManualClock::new();
    let server = common::start_server!(|server| {
        server
            .with_metrics(metrics.clone())
            .with_clock(clock.clone())
    });
    let _sampler = MemorySampler::start(Duration::from_millis(100)).unwrap();
    let _alerts = watch_with_clock(
        vec![AlertRule::new("cat_queue", Measure::QueueDepth, 1.0).unwrap()],
        Duration::from_millis(50),
        clock.clone(),
    )
    .unwrap();

    run().unwrap();
    start_pool();
    start_worker();
    create_session();
    let pool = Pool::new("cat");
    pool.set_size(1);
    let worker = pool.worker(0);
    worker.set_pid(std::process::id());
    worker.set_state(WorkerState::Busy);
    worker.set_state(WorkerState::Available);
    pool.queue_depth(5);
    pool.queue_wait(Duration::from_millis(2));
    pool.saturated(5, 0);
    pool.session_created("s", Duration::from_secs(1), Vec::new());
    pool.sessions_cleaned(1, Duration::from_millis(1));
    pool.worker(1)
        .crashed("exit code 1", CrashContext::default());
    let mut events = sse::Events::open(server.local_addr(), &[]).await.unwrap();
    events.next().await.unwrap();
    // A second passes: the utilization gauge is set over it, the queue
    // alert fires.
    clock.advance(Duration::from_secs(1));
    let exported = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_once(' '))
            .filter(|(name, _)| name.starts_with("poolscope_"))
            .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
            .collect()
    };
    let catalogue: BTreeMap<String, String> = METRICS
        .iter()
        .map(|m| (m.name.to_owned(), m.kind.as_str().to_owned()))
        .collect();
    // Some families appear only when the memory sampler, a background
    // thread, has read the workers: wait until every catalogued name is
    // there, or until the comparison below can only show what is missing.
    let waiting = std::time::Instant::now();
    while !catalogue
        .keys()
        .all(|name| exported(&metrics.render()).contains_key(name))
        && waiting.elapsed() < common::PATIENCE
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = metrics.render();
    let exported = exported(&text);
    assert_eq!(
        exported, catalogue,
        "exported (left) and catalogued (right) differ:\n{text}"
    );
    // One HELP line per family, the catalogue's text, whichever code
    // writes the family (the `metrics` recorder or poolscope's own
    // exposition).
    for m in METRICS {
        let helps: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# HELP "))
            .filter_map(|rest| rest.split_once(' '))
            .filter(|(name, _)| *name == m.name)
            .map(|(_, help)| help)
            .collect();
        assert_eq!(
            helps,
            [m.help],
            "HELP of {} differs from the catalogue",
            m.name
        );
    }
    // Every series line belongs to a catalogued metric, with its labels.
    for line in text.lines().filter(|l| l.starts_with("poolscope_")) {
        let name = &line[..line.find(['{', ' ']).unwrap()];
        let def = poolscope::catalogue::find(name).unwrap_or_else(|| panic!("{line}"));
        for label in def.labels {
            assert!(
                def.labels.is_empty() || line.contains(&format!("{label}=\"")),
                "{line} lacks `{label}`"
            );
        }
        if def.kind == MetricKind::Histogram && name.ends_with("_bucket") {
            assert!(line.contains("le=\""), "{line}");
        }
    }
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    for m in METRICS {
        assert!(
            docs.contains(&format!("`{}`", m.name)),
            "docs/metrics.md does not describe {}",
            m.name
        );
    }
    drop(events);
    drop(worker);
    pool.retire();
    server.shutdown().await;
}
