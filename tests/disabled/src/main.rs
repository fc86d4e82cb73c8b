//! Built alone (`cargo run -p poolscope-disabled`), poolscope has no aspect
//! feature: this program calls every public item to prove the API compiles
//! unchanged, and checks that nothing is recorded.
#![deny(warnings, missing_docs)]

use std::time::Duration;

use poolscope::correlation::{bind, current, with_id, CorrelationId, IntoCorrelation};
use poolscope::error::{CrashContext, ErrorContext, ErrorKind};
use poolscope::events::Event;
use poolscope::{observe, Kind, Label, Outcome, Pool, WorkerState};

#[observe(pool = "disabled", command = "run", skip(secret))]
fn run(input: u32, secret: &str) -> Result<u32, std::fmt::Error> {
    Ok(input + secret.len() as u32)
}

#[observe(kind = pool_start, pool = "disabled", size = n)]
fn start(n: usize) -> usize {
    n
}

#[observe(kind = worker_start, worker = id)]
fn spawn(id: u32) -> u32 {
    id
}

#[observe(kind = session_create, ttl = Duration::from_secs(1), skip_all)]
fn session(user: &str) -> String {
    user.to_owned()
}

#[observe(correlation = header)]
async fn handle(header: &str) -> Option<CorrelationId> {
    let _ = header;
    current()
}

fn main() {
    if poolscope::COMPILED_IN {
        // Built together with the workspace, features are unified and an
        // aspect may be on; this check means something only when built alone.
        eprintln!("poolscope has an aspect compiled in: run this alone, `cargo run -p poolscope-disabled`");
        std::process::exit(2);
    }
    let subscription = poolscope::events::subscribe(|event: &Event| {
        panic!("no event expected, got {}", event.name())
    });

    assert_eq!(run(1, "ab"), Ok(3));
    assert_eq!(start(2), 2);
    assert_eq!(spawn(3), 3);
    assert_eq!(session("ann"), "ann");
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(bind(None, handle("4bf92f3577b34da6a3ce929d0e0e4736")));
    assert_eq!(
        std::future::Future::poll(fut.as_mut(), &mut cx),
        std::task::Poll::Ready(None)
    );

    poolscope::set_enabled(true);
    assert!(!poolscope::is_enabled());
    let id = CorrelationId::generate();
    assert_eq!(with_id(id, current), None);
    assert!("x".into_correlation().is_some());

    let pool = Pool::builder("disabled").build();
    let _ = Pool::new(&Label::new("disabled"));
    pool.set_size(2);
    pool.retire();
    pool.started(2, Duration::from_millis(1), vec![("k".into(), "v".into())]);
    pool.queue_depth(1);
    pool.saturated(1, 0);
    pool.session_created("s", Duration::from_secs(1), Vec::new());
    pool.sessions_cleaned(1, Duration::from_millis(1));
    let worker = pool.worker(1);
    worker.set_state(WorkerState::Busy);
    worker.started(Some(1), Duration::from_millis(1));
    worker.crashed(
        "exit code 1",
        CrashContext {
            exit_code: Some(1),
            ..CrashContext::default()
        },
    );
    assert_eq!((worker.id(), worker.state()), ("", WorkerState::Stopped));
    assert_eq!(pool.label().as_str(), "");
    assert_eq!(std::mem::size_of::<Pool>(), 0);
    assert_eq!(std::mem::size_of_val(&worker), 0);

    let handle = poolscope::metrics::install().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(handle.render(), "");
    assert_eq!(poolscope::metrics::render(), "");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _ = poolscope::metrics::MetricsHandle::from_prometheus(recorder.handle()).render();
    poolscope::buckets::set_duration_buckets(&[0.1, 1.0]).unwrap_or_else(|e| panic!("{e}"));
    assert!(poolscope::buckets::DEFAULT_DURATION_BUCKETS.len() > 1);
    assert_eq!(
        poolscope::stats::series(Kind::Request, "disabled", "run"),
        None
    );
    assert_eq!(Outcome::ALL.len(), Outcome::COUNT);
    let _ = ErrorContext::message(ErrorKind::Error, "t", "m");
    let watcher = poolscope::alerts::watch_error_rate(
        poolscope::alerts::ErrorRateRule::new(0.1).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    drop(watcher);
    let clock = poolscope::clock::ManualClock::new();
    let watcher =
        poolscope::alerts::watch_with_clock(Vec::new(), Duration::from_secs(1), clock.clone())
            .unwrap_or_else(|e| panic!("{e}"));
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        poolscope::clock::Clock::from(clock.clone()).now(),
        clock.now()
    );
    let _ = poolscope::clock::Clock::system().now();
    drop(watcher);
    let mut alerts =
        poolscope::alerts::AlertEvaluator::new(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    alerts.evaluate_at(std::time::Instant::now());
    alerts
        .set_rules(Vec::new())
        .unwrap_or_else(|e| panic!("{e}"));
    poolscope::events::set_sample_rate(0.5);
    assert_eq!(poolscope::events::sample_rate(), 1.0);
    assert_eq!(
        poolscope::sanitize::sanitize("password=hunter2"),
        "password=[REDACTED]"
    );
    assert!(poolscope::sanitize::check_key("my--pin").is_ok());
    let lost = poolscope::error::WorkerCrash::lost(b"", std::time::Duration::ZERO, None);
    assert_eq!(lost.context.signal, None);
    subscription.forever();
    println!("poolscope compiled out: every call compiled and recorded nothing");
}
