//! The dashboard over real sockets, without a browser: the page and its
//! security headers, the event stream's cadence and deltas, immediate pushes,
//! one snapshot shared by every viewer, the viewer limit, the bearer token, graceful shutdown with open streams, and the
//! health verdict agreeing with `/health/ready`.

#[path = "common/http.rs"]
mod client;
#[path = "common/sse.rs"]
mod sse;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::{get, Reply};
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use poolscope::error::CrashContext;
use poolscope::http::{DashboardConfig, Endpoint, HealthConfig, Server, ServerBuilder};
use poolscope::{observe, Pool, WorkerState};
use sse::Events;
use tokio::net::TcpStream;

const TOKEN: &str = "s3cret-token-0123456789";

fn builder() -> ServerBuilder {
    Server::builder().with_address("127.0.0.1:0".parse().unwrap())
}

#[tokio::test]
async fn the_page_is_self_contained_and_locked_down() {
    let server = builder().build().unwrap().start().unwrap();
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
    let server = builder().build().unwrap().start().unwrap();
    let mut events = Events::open(server.local_addr(), &[]).await.unwrap();
    events.next().await.unwrap();
    server.set_enabled(Endpoint::Dashboard, false);
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while events.next().await.is_some() {}
    })
    .await;
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
    let server = builder()
        .with_endpoint(Endpoint::Dashboard, false)
        .build()
        .unwrap()
        .start()
        .unwrap();
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

#[tokio::test]
async fn snapshots_come_every_interval_first_full_then_deltas() {
    let server = builder().build().unwrap().start().unwrap();
    let mut events = Events::open(server.local_addr(), &[]).await.unwrap();
    let first = events.next().await.unwrap();
    assert_eq!(first["kind"], "full");
    assert_eq!(first["interval_ms"], 500);
    let mut last = Instant::now();
    let mut seq = first["seq"].as_u64().unwrap();
    let mut longest = Duration::ZERO;
    for _ in 0..6 {
        let next = events.next().await.unwrap();
        longest = longest.max(last.elapsed());
        last = Instant::now();
        assert_eq!(next["kind"], "delta", "{next}");
        let next_seq = next["seq"].as_u64().unwrap();
        assert_eq!(
            next_seq,
            seq + 1,
            "no tick skipped for a reader that keeps up"
        );
        seq = next_seq;
    }
    // 500 ms apart, with room for a loaded machine; never a second.
    assert!(
        longest < Duration::from_millis(900),
        "{longest:?} between snapshots"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_late_viewer_gets_a_full_snapshot_while_the_first_keeps_getting_deltas() {
    // The default 500 ms between ticks: a feeder starved for a whole tick on
    // a loaded machine would rightly send a full snapshot.
    let server = builder().build().unwrap().start().unwrap();
    let addr = server.local_addr();
    let mut first = Events::open(addr, &[]).await.unwrap();
    assert_eq!(first.next().await.unwrap()["kind"], "full");
    for _ in 0..2 {
        assert_eq!(first.next().await.unwrap()["kind"], "delta");
    }
    // Frames are encoded full only when a viewer needs one: the late viewer
    // asks, and gets it at the next tick.
    let mut late = Events::open(addr, &[]).await.unwrap();
    let joined = late.next().await.unwrap();
    assert_eq!(joined["kind"], "full", "{joined}");
    let seq = joined["seq"].as_u64().unwrap();
    let next = late.next().await.unwrap();
    assert_eq!(
        (next["kind"].as_str(), next["seq"].as_u64()),
        (Some("delta"), Some(seq + 1))
    );
    for _ in 0..3 {
        let frame = first.next().await.unwrap();
        assert_eq!(
            frame["kind"], "delta",
            "the first viewer never missed a tick"
        );
    }
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
async fn a_failure_is_pushed_at_once_sanitized() {
    // Every server in this process hears every failure; a longer list keeps
    // the other tests' failures from pushing this one out.
    let server = builder()
        .with_dashboard(
            DashboardConfig::default()
                .with_interval(Duration::from_millis(500))
                .with_recent_errors(500),
        )
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut events = Events::open(server.local_addr(), &[]).await.unwrap();
    events.next().await.unwrap();
    // Right after a tick: the next regular one is ~500 ms away.
    events.next().await.unwrap();
    let failed = Instant::now();
    let _ = fails("upstream said no; password=hunter2 user=bob");
    let snapshot = loop {
        assert!(
            failed.elapsed() < Duration::from_secs(5),
            "the failure never came"
        );
        let snapshot = events.next().await.unwrap();
        if snapshot["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["pool"] == "dash-push")
        {
            break snapshot;
        }
    };
    let after = failed.elapsed();
    assert!(
        after < Duration::from_millis(400),
        "the failure was pushed {after:?} after it happened, not at the next tick"
    );
    let error = snapshot["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pool"] == "dash-push")
        .unwrap();
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
    let panicked = loop {
        let snapshot = events.next().await.unwrap();
        let found = snapshot["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["command"] == "panics")
            .cloned();
        if let Some(found) = found {
            break found;
        }
    };
    assert_eq!(panicked["kind"], "panic");
    let message = panicked["message"].as_str().unwrap();
    assert!(
        message.contains("user=bob") && !message.contains("hunter2"),
        "{message}"
    );
    // The next delta does not repeat it.
    let next = events.next().await.unwrap();
    assert_eq!(next["kind"], "delta");
    assert!(next["errors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["id"] != error["id"]));
    server.shutdown().await;
}

#[tokio::test]
async fn every_viewer_gets_the_same_snapshot_computed_once_per_tick() {
    let interval = Duration::from_millis(100);
    let server = builder()
        .with_dashboard(DashboardConfig::default().with_interval(interval))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    let mut viewers = Vec::new();
    for _ in 0..20 {
        viewers.push(Events::open(addr, &[]).await.unwrap());
    }
    // Let every viewer catch up to the same tick.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seqs = Vec::new();
    for viewer in &mut viewers {
        let mut snapshot = viewer.next().await.unwrap();
        // Drain what queued while the others were read.
        while let Ok(Some(next)) =
            tokio::time::timeout(Duration::from_millis(5), viewer.next()).await
        {
            snapshot = next;
        }
        seqs.push(snapshot["seq"].as_u64().unwrap());
    }
    let started = Instant::now();
    let first = seqs[0];
    // Sequence numbers count computations: 20 viewers over ~N ticks advance
    // it by ~N, not 20 × N.
    let mut later = viewers[0].next().await.unwrap();
    while started.elapsed() < Duration::from_secs(1) {
        later = viewers[0].next().await.unwrap();
    }
    let ticks = later["seq"].as_u64().unwrap() - first;
    let elapsed = started.elapsed().as_secs_f64();
    let most = (elapsed / interval.as_secs_f64()) as u64 + 25; // + viewer-triggered pushes
    assert!(
        ticks <= most,
        "{ticks} snapshots in {elapsed:.2} s for 20 viewers: computed per viewer?"
    );
    assert_eq!(later["viewers"], 20);
    server.shutdown().await;
}

#[tokio::test]
async fn custom_checks_run_on_every_probe_but_at_most_once_a_second_for_the_dashboard() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicU64::new(0));
    let counted = runs.clone();
    let server = builder()
        .with_dashboard(DashboardConfig::default().with_interval(Duration::from_millis(100)))
        .with_readiness_check("db", move || {
            counted.fetch_add(1, Ordering::Relaxed);
            Err("connection refused".into())
        })
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    let mut viewer = Events::open(addr, &[]).await.unwrap();
    let started = Instant::now();
    let mut snapshots = 0u64;
    let mut last = serde_json::Value::Null;
    while started.elapsed() < Duration::from_millis(2_000) {
        last = viewer.next().await.unwrap();
        snapshots += 1;
    }
    let dashboard_runs = runs.load(Ordering::Relaxed);
    // Up to 10 snapshots a second; the check ran about twice (once a
    // second), however many snapshots a loaded machine managed.
    assert!(
        dashboard_runs <= 4 && snapshots >= 3 * dashboard_runs.max(1),
        "{dashboard_runs} runs for {snapshots} snapshots"
    );
    assert!(
        last.to_string().contains("connection refused"),
        "the dashboard still shows the check's result: {last}"
    );
    // Probes always run it.
    for _ in 0..5 {
        assert_eq!(
            get(addr, "/health/ready").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert!(runs.load(Ordering::Relaxed) >= dashboard_runs + 5);
    server.shutdown().await;
}

#[tokio::test]
async fn viewers_beyond_the_limit_get_503_until_one_leaves() {
    let server = builder()
        .with_dashboard(DashboardConfig::default().with_max_viewers(2))
        .build()
        .unwrap()
        .start()
        .unwrap();
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
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match Events::open(addr, &[]).await {
            Ok(_) => break,
            Err(_) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(reply) => panic!("still refused after a viewer left: {}", reply.status),
        }
    }
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
    let server = builder()
        .with_bearer_token(TOKEN)
        .build()
        .unwrap()
        .start()
        .unwrap();
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
    let server = builder()
        .with_bearer_token(TOKEN)
        .with_protected(Endpoint::Metrics, false)
        .build()
        .unwrap()
        .start()
        .unwrap();
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
    let server = builder()
        .with_shutdown_grace(Duration::from_secs(30))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let mut events = Events::open(server.local_addr(), &[]).await.unwrap();
    events.next().await.unwrap();
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for a dashboard stream",
        started.elapsed()
    );
    while events.next().await.is_some() {}
}

#[tokio::test]
async fn the_verdict_matches_readiness_and_names_what_is_wrong() {
    let server = builder()
        .with_health(HealthConfig::default().with_min_ready_workers(1))
        .build()
        .unwrap()
        .start()
        .unwrap();
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
