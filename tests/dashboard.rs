//! The dashboard over real sockets, without a browser: the page and its
//! security headers, the event stream's full snapshot then deltas, a
//! failure pushed sanitized, one snapshot shared by every viewer, the viewer
//! limit, the bearer token, graceful shutdown with open streams, and the
//! health verdict agreeing with `/health/ready`.
//!
//! How soon things happen (the cadence, a push within 100 ms, a late
//! viewer's full snapshot at the very next tick, a stalled viewer dropped)
//! is proven on a paused clock by the unit tests in
//! `runtime/src/http/dashboard/sse.rs`; here every wait is for a
//! condition, with a deadline that only catches a hang.

use poolscope_testkit as common;
use poolscope_testkit::client;
use poolscope_testkit::sse;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::{get, Reply};
use common::{eventually_async, PATIENCE};
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use poolscope::error::CrashContext;
use poolscope::http::{DashboardConfig, Endpoint, HealthConfig, Server, ServerBuilder};
use poolscope::{observe, Pool, WorkerState};
use serde_json::Value;
use sse::Events;
use tokio::net::TcpStream;

const TOKEN: &str = "s3cret-token-0123456789";

fn builder() -> ServerBuilder {
    Server::builder().with_address("127.0.0.1:0".parse().unwrap())
}

#[tokio::test]
async fn the_page_is_self_contained_and_locked_down() {
    let server = common::start_server!();
    let page = get(server.local_addr(), "/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    let policy = page.header("content-security-policy").to_owned();
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy");
    assert!(nonce.len() >= 32, "an unguessable nonce: {nonce}");
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
    assert_eq!(
        page.body.matches(&format!("nonce=\"{nonce}\"")).count(),
        2,
        "the inline style and script carry this response's nonce"
    );
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    // Nothing is fetched from elsewhere: no external script, style, font or image.
    for outside in ["<link", " src=", "@import", "url(", "https://"] {
        assert!(
            !page.body.contains(outside),
            "the page refers to {outside:?}"
        );
    }
    // The page renders through textContent only.
    assert!(!page.body.contains("innerHTML") && !page.body.contains("insertAdjacentHTML"));
    // Another response, another nonce.
    let again = get(server.local_addr(), "/dashboard").await;
    assert_ne!(again.header("content-security-policy"), policy);
    let head = client::request(server.local_addr(), "HEAD", "/dashboard").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn switching_the_dashboard_off_ends_open_streams() {
    let server = common::start_server!();
    let mut events = Events::open(server.local_addr(), &[]).await.unwrap();
    events.next().await.unwrap();
    server.set_enabled(Endpoint::Dashboard, false);
    // At once, not at the next tick: `switching_the_dashboard_off_ends_open_
    // streams_at_once` in dashboard/sse.rs shows it on a paused clock.
    let ended =
        tokio::time::timeout(PATIENCE, async { while events.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the stream outlived the switch");
    assert_eq!(
        get(server.local_addr(), "/dashboard/events").await.status,
        StatusCode::NOT_FOUND
    );
    let head = client::request(server.local_addr(), "HEAD", "/dashboard/events").await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    server.set_enabled(Endpoint::Dashboard, true);
    let head = client::request(server.local_addr(), "HEAD", "/dashboard/events").await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-type"), "text/event-stream");
    server.shutdown().await;
}

#[tokio::test]
async fn disabled_the_dashboard_answers_404_everywhere() {
    let server = common::start_server!(|server| server.with_endpoint(Endpoint::Dashboard, false));
    let addr = server.local_addr();
    for path in [
        "/dashboard",
        "/dashboard/",
        "/dashboard/events",
        "/dashboard/snapshot",
    ] {
        let reply = get(addr, path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.body, get(addr, "/no-such-path").await.body);
    }
    server.set_enabled(Endpoint::Dashboard, true);
    assert_eq!(get(addr, "/dashboard").await.status, StatusCode::OK);
    assert_eq!(get(addr, "/health").await.status, StatusCode::OK);
    server.shutdown().await;
}

/// One viewer's stream, checked frame by frame: a viewer's first snapshot
/// is full, and a delta only ever follows the snapshot it is against. A
/// viewer whose feeder missed a tick (a starved task on a loaded machine)
/// rightly gets a full snapshot again; how many ticks a viewer that keeps
/// up gets as deltas is for the paused-clock unit tests to say.
struct Checked {
    events: Events,
    seq: Option<u64>,
    /// The newest error id received.
    error_id: u64,
    deltas: usize,
}

impl Checked {
    async fn open(addr: SocketAddr) -> Checked {
        Checked {
            events: Events::open(addr, &[]).await.unwrap(),
            seq: None,
            error_id: 0,
            deltas: 0,
        }
    }

    async fn next(&mut self) -> Value {
        let snapshot = self.events.next().await.expect("the stream goes on");
        let seq = snapshot["seq"].as_u64().unwrap();
        let ids: Vec<u64> = snapshot["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect();
        match (snapshot["kind"].as_str(), self.seq) {
            (Some("full"), _) => {}
            (Some("delta"), Some(previous)) => {
                assert_eq!(seq, previous + 1, "a delta against a snapshot not held");
                assert!(
                    ids.iter().all(|id| *id > self.error_id),
                    "a delta repeats an error: {ids:?} after {}",
                    self.error_id
                );
                self.deltas += 1;
            }
            (kind, previous) => panic!("a {kind:?} snapshot after {previous:?}: {snapshot}"),
        }
        self.seq = Some(seq);
        self.error_id = ids.into_iter().fold(self.error_id, u64::max);
        snapshot
    }

    /// Reads until `deltas` deltas came in all, within [`PATIENCE`].
    async fn until_deltas(&mut self, deltas: usize) -> Value {
        within("the deltas", async {
            loop {
                let snapshot = self.next().await;
                if self.deltas >= deltas {
                    return snapshot;
                }
            }
        })
        .await
    }

    /// Reads until a snapshot lists an error `found` picks, within
    /// [`PATIENCE`].
    async fn until_error(&mut self, found: impl Fn(&Value) -> bool) -> Value {
        within("the error", async {
            loop {
                let snapshot = self.next().await;
                if let Some(error) = snapshot["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| found(e))
                {
                    return error.clone();
                }
            }
        })
        .await
    }
}

/// `work`, failing the test if it takes longer than [`PATIENCE`]: frames
/// keep coming, so a read that never finds what it waits for would
/// otherwise never end.
async fn within<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, work)
        .await
        .unwrap_or_else(|_| panic!("{what} did not come within {PATIENCE:?}"))
}

#[tokio::test]
async fn snapshots_come_first_full_then_deltas() {
    let server = common::start_server!();
    let mut viewer = Checked::open(server.local_addr()).await;
    let first = viewer.next().await;
    assert_eq!(first["kind"], "full");
    assert_eq!(first["interval_ms"], 500);
    // Every interval, exactly, and none skipped for a reader that keeps up:
    // `snapshots_come_exactly_one_interval_apart_first_full_then_deltas`
    // in dashboard/sse.rs, on a paused clock.
    viewer.until_deltas(6).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_late_viewer_gets_a_full_snapshot_while_the_first_keeps_getting_deltas() {
    let server = common::start_server!();
    let addr = server.local_addr();
    let mut first = Checked::open(addr).await;
    assert_eq!(first.next().await["kind"], "full");
    first.until_deltas(2).await;
    // Frames are encoded full only when a viewer needs one: the late viewer
    // asks, and gets it (at the next tick, shown on a paused clock by the
    // unit test of the same name in dashboard/sse.rs).
    let mut late = Checked::open(addr).await;
    let joined = late.next().await;
    assert_eq!(joined["kind"], "full", "{joined}");
    late.until_deltas(1).await;
    first.until_deltas(first.deltas + 3).await;
    server.shutdown().await;
}

#[observe(pool = "dash-push", command = "fails")]
fn fails(message: &str) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(message.to_owned()))
}

#[observe(pool = "dash-push", command = "panics")]
fn panics() {
    panic!("db login failed password=hunter2 user=bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_pushed_sanitized() {
    // Every server in this process hears every failure; a longer list keeps
    // the other tests' failures from pushing this one out.
    let server = common::start_server!(|server| server.with_dashboard(
        DashboardConfig::default()
            .with_interval(Duration::from_millis(500))
            .with_recent_errors(500),
    ));
    let mut viewer = Checked::open(server.local_addr()).await;
    viewer.next().await;
    // Pushed at once (within 100 ms, not at the next tick): shown on a
    // paused clock by `a_failure_is_pushed_at_once_or_min_gap_after_the_
    // last_push_never_at_the_next_tick` in dashboard/sse.rs.
    let _ = fails("upstream said no; password=hunter2 user=bob");
    let error = viewer.until_error(|e| e["pool"] == "dash-push").await;
    assert_eq!(error["command"], "fails");
    assert_eq!(error["kind"], "error");
    assert!(error["correlation_id"]
        .as_str()
        .is_some_and(|c| c.len() == 32));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("user=bob") && !message.contains("hunter2"),
        "{message}"
    );
    // A panic's message goes through the sanitizer too.
    let _ = std::panic::catch_unwind(panics);
    let panicked = viewer.until_error(|e| e["command"] == "panics").await;
    assert_eq!(panicked["kind"], "panic");
    let message = panicked["message"].as_str().unwrap();
    assert!(
        message.contains("user=bob") && !message.contains("hunter2"),
        "{message}"
    );
    // The next delta does not repeat either (`Checked` asserts it of every
    // delta).
    viewer.until_deltas(viewer.deltas + 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn every_viewer_gets_the_same_snapshot_computed_once_per_tick() {
    let server = common::start_server!(|server| {
        server.with_dashboard(
            DashboardConfig::default()
                .with_interval(Duration::from_millis(100))
                // Viewers read one after another are not dropped meanwhile.
                .with_viewer_buffer(1000),
        )
    });
    let addr = server.local_addr();
    let opened = Instant::now();
    let mut viewers = Vec::new();
    for _ in 0..20 {
        viewers.push(Events::open(addr, &[]).await.unwrap());
    }
    let mut first = 0;
    for (i, viewer) in viewers.iter_mut().enumerate() {
        let snapshot = viewer.next().await.unwrap();
        assert_eq!(snapshot["kind"], "full");
        if i == 0 {
            first = snapshot["seq"].as_u64().unwrap();
        }
    }
    let mut later = Value::Null;
    for _ in 0..10 {
        later = viewers[0].next().await.unwrap();
    }
    // Sequence numbers count computations, and two are at least 100 ms
    // apart (MIN_GAP), whatever the number of viewers: computed per viewer,
    // 20 viewers would count 20 a tick. Both the first and the last
    // snapshot were computed within `elapsed`, so this holds at any speed.
    let computed = later["seq"].as_u64().unwrap() - first;
    let elapsed = opened.elapsed();
    assert!(
        Duration::from_millis(100) * u32::try_from(computed).unwrap() <= elapsed,
        "{computed} snapshots computed in {elapsed:?} for 20 viewers: computed per viewer?"
    );
    assert_eq!(later["viewers"], 20);
    // That every viewer gets the very same snapshot each tick, computed
    // once: `every_viewer_gets_the_same_snapshot_computed_once_per_tick` in
    // dashboard/sse.rs.
    server.shutdown().await;
}

#[tokio::test]
async fn custom_checks_run_on_every_probe_but_at_most_once_a_second_for_the_dashboard() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicU64::new(0));
    let counted = runs.clone();
    let server = common::start_server!(|server| {
        server.with_readiness_check("db", move || {
            counted.fetch_add(1, Ordering::Relaxed);
            Err("connection refused".into())
        })
    });
    let addr = server.local_addr();
    // With no viewer open nothing else computes a snapshot: the test makes
    // every one of them.
    let started = Instant::now();
    for _ in 0..20 {
        let snapshot = get(addr, "/dashboard/snapshot").await;
        assert!(
            snapshot.body.contains("connection refused"),
            "the dashboard shows the check's result: {}",
            snapshot.body
        );
    }
    let elapsed = started.elapsed();
    let dashboard_runs = runs.load(Ordering::Relaxed);
    // Runs start at least a second apart, so within `elapsed` there are at
    // most elapsed / 1 s + 1 of them, however slow the machine. Exactly
    // one run for ten snapshots within a second: `the_dashboard_reuses_
    // custom_check_results_for_a_second_and_probes_never_do` in
    // runtime/src/http/dashboard/mod.rs, on a paused clock.
    assert!(
        dashboard_runs >= 1 && dashboard_runs <= elapsed.as_secs() + 1,
        "{dashboard_runs} runs for 20 snapshots in {elapsed:?}"
    );
    let mut viewer = Events::open(addr, &[]).await.unwrap();
    let streamed = viewer.next().await.unwrap();
    assert!(
        streamed.to_string().contains("connection refused"),
        "the stream shows it too: {streamed}"
    );
    // Probes always run it.
    let before = runs.load(Ordering::Relaxed);
    for _ in 0..5 {
        assert_eq!(
            get(addr, "/health/ready").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert!(runs.load(Ordering::Relaxed) >= before + 5);
    server.shutdown().await;
}

#[tokio::test]
async fn viewers_beyond_the_limit_get_503_until_one_leaves() {
    let server = common::start_server!(
        |server| server.with_dashboard(DashboardConfig::default().with_max_viewers(2))
    );
    let addr = server.local_addr();
    let first = Events::open(addr, &[]).await.unwrap();
    let _second = Events::open(addr, &[]).await.unwrap();
    let refused = Events::open(addr, &[])
        .await
        .err()
        .expect("a third is refused");
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), "5");
    drop(first);
    // The server notices the closed connection and lets its slot go.
    eventually_async("a freed viewer slot", async || {
        match Events::open(addr, &[]).await {
            Ok(_) => true,
            Err(reply) => {
                assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
                false
            }
        }
    })
    .await;
    server.shutdown().await;
}

async fn get_with(addr: SocketAddr, path: &str, header: (&str, &str)) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .header(header.0, header.1)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[tokio::test]
async fn the_bearer_token_guards_dashboard_metrics_and_details_but_not_probes() {
    let server = common::start_server!(|server| server.with_bearer_token(TOKEN));
    let addr = server.local_addr();
    let bearer = format!("Bearer {TOKEN}");
    for path in [
        "/dashboard",
        "/dashboard/snapshot",
        "/metrics",
        "/health/detailed",
    ] {
        let refused = get(addr, path).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            refused.header("www-authenticate"),
            "Bearer realm=\"poolscope\""
        );
        let wrong = get_with(addr, path, ("authorization", "Bearer not-the-token-at-all")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path}");
        let allowed = get_with(addr, path, ("authorization", &bearer)).await;
        assert_eq!(allowed.status, StatusCode::OK, "{path}");
    }
    for path in ["/health", "/health/ready"] {
        assert_eq!(get(addr, path).await.status, StatusCode::OK, "{path}");
    }
    assert!(Events::open(addr, &[]).await.is_err());

    // A browser signs in once with the query; the cookie does the rest.
    let signed_in = get(addr, &format!("/dashboard?token={TOKEN}")).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.header("location"), "/dashboard");
    let cookie = signed_in.header("set-cookie").to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/dashboard"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(
        get_with(addr, "/dashboard", ("cookie", &pair)).await.status,
        StatusCode::OK
    );
    let mut events = Events::open(addr, &[("cookie", &pair)])
        .await
        .expect("stream with the cookie");
    assert!(events.next().await.is_some());
    let wrong_query = get(addr, "/dashboard?token=guess").await;
    assert_eq!(wrong_query.status, StatusCode::UNAUTHORIZED);
    server.shutdown().await;

    // What is guarded is configurable.
    let server = common::start_server!(|server| {
        server
            .with_bearer_token(TOKEN)
            .with_protected(Endpoint::Metrics, false)
    });
    assert_eq!(
        get(server.local_addr(), "/metrics").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(server.local_addr(), "/dashboard").await.status,
        StatusCode::UNAUTHORIZED
    );
    server.shutdown().await;
}

#[test]
fn bad_settings_are_refused_with_the_reason() {
    let err = builder()
        .with_dashboard(DashboardConfig::default().with_interval(Duration::from_secs(2)))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("interval"), "{err}");
    let err = builder()
        .with_dashboard(DashboardConfig::default().with_max_viewers(0))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_viewers"), "{err}");
    let err = builder().with_bearer_token("short").build().unwrap_err();
    assert!(err.to_string().contains("at least 16"), "{err}");
}

#[tokio::test]
async fn shutdown_closes_open_streams_instead_of_waiting_for_them() {
    // A grace period far beyond any test's patience: a shutdown that waited
    // for the stream could not end in time.
    let server =
        common::start_server!(|server| server.with_shutdown_grace(Duration::from_secs(3600)));
    let mut events = Events::open(server.local_addr(), &[]).await.unwrap();
    events.next().await.unwrap();
    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shutdown waited for a dashboard stream");
    while events.next().await.is_some() {}
}

#[tokio::test]
async fn the_verdict_matches_readiness_and_names_what_is_wrong() {
    let server = common::start_server!(
        |server| server.with_health(HealthConfig::default().with_min_ready_workers(1))
    );
    let addr = server.local_addr();
    let verdict = || async {
        let snapshot = get(addr, "/dashboard/snapshot").await.json();
        let ready = get(addr, "/health/ready").await.status;
        (snapshot["health"].clone(), ready)
    };
    let pool = Pool::new("dash-verdict");
    pool.set_size(2);
    let first = pool.worker(0);
    let second = pool.worker(1);
    let (health, ready) = verdict().await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["status"], "unavailable", "{health}");
    assert_eq!(health["failed"][0]["check"], "workers");
    first.set_state(WorkerState::Available);
    let (health, ready) = verdict().await;
    assert_eq!(ready, StatusCode::OK);
    assert_eq!(
        health["status"], "degraded",
        "one of two workers is up: {health}"
    );
    assert!(
        health["reasons"][0].as_str().unwrap().contains("1 of 2"),
        "{health}"
    );
    second.set_state(WorkerState::Busy);
    let (health, ready) = verdict().await;
    assert_eq!(ready, StatusCode::OK);
    assert_eq!(health["status"], "healthy", "{health}");
    second.crashed("killed by SIGKILL", CrashContext::default());
    let (health, _) = verdict().await;
    assert_eq!(health["status"], "degraded", "{health}");
    first.crashed("exit code 1", CrashContext::default());
    let (health, ready) = verdict().await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["status"], "unavailable", "{health}");
    let snapshot = get(addr, "/dashboard/snapshot").await.json();
    let crashes: Vec<_> = snapshot["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pool"] == "dash-verdict" && e["kind"] == "crash")
        .collect();
    assert_eq!(
        crashes.len(),
        2,
        "both crashes are listed: {}",
        snapshot["errors"]
    );
    pool.retire();
    server.shutdown().await;
}
