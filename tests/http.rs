//! The HTTP server over real sockets on 127.0.0.1: methods, paths, disabled
//! endpoints, malformed and hostile requests, `/metrics` under load and
//! through `promtool`, shutdown. Readiness states are in tests/health.rs (a
//! process-wide pool registry would let these tests disturb them).

use poolscope_testkit as common;
use poolscope_testkit::client;

use std::time::Duration;

use client::{get, raw, request};
use common::*;
use hyper::StatusCode;
use poolscope::http::{Endpoint, HttpError, Server, ServerHandle};
use poolscope::{observe, WorkerState};
use poolscope_testkit::TIMING;

/// A server with the default settings; the 5 s header read timeout is far
/// longer than any of these clients takes to send its head.
fn start() -> ServerHandle {
    common::start_server!()
}

#[tokio::test]
async fn endpoints_answer_get_and_head_with_their_content_types() {
    let server = start();
    let addr = server.local_addr();
    for path in ["/health", "/healthz", "/livez"] {
        let reply = get(addr, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.json()["status"], "ok");
        assert_eq!(reply.json()["version"], env!("CARGO_PKG_VERSION"));
    }
    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(metrics.header("cache-control"), "no-store");
    for path in [
        "/health",
        "/health/ready",
        "/readyz",
        "/health/detailed",
        "/metrics",
    ] {
        let head = request(addr, "HEAD", path).await;
        let full = get(addr, path).await;
        assert_eq!(head.status, full.status, "{path}");
        assert_eq!(head.body, "", "HEAD has no body: {path}");
        assert!(
            head.header("content-length").parse::<usize>().is_ok(),
            "{path}"
        );
        assert_eq!(head.header("content-type"), full.header("content-type"));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn other_methods_get_405_with_allow_and_unknown_paths_404() {
    let server = start();
    let addr = server.local_addr();
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let reply = request(addr, method, "/metrics").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.header("allow"), "GET, HEAD");
    }
    for path in [
        "/",
        "/nope",
        "/health/",
        "/metrics/x",
        "/HEALTH",
        "/health/ready/x",
    ] {
        assert_eq!(
            get(addr, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            request(addr, "POST", path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_disabled_endpoint_answers_exactly_like_an_unknown_path() {
    let server = common::start_server!(|server| server.with_endpoint(Endpoint::Metrics, false));
    let addr = server.local_addr();
    let unknown = get(addr, "/no-such-path").await;
    let disabled = get(addr, "/metrics").await;
    assert_eq!(disabled.status, StatusCode::NOT_FOUND);
    assert_eq!(
        (disabled.body.as_str(), disabled.header("content-type")),
        (unknown.body.as_str(), unknown.header("content-type"))
    );
    assert_eq!(
        request(addr, "POST", "/metrics").await.status,
        StatusCode::NOT_FOUND
    );

    // Switched at run time, both ways.
    server.set_enabled(Endpoint::Metrics, true);
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
    for endpoint in [Endpoint::Health, Endpoint::Ready, Endpoint::Detailed] {
        server.set_enabled(endpoint, false);
        assert!(!server.is_enabled(endpoint));
    }
    for path in [
        "/health",
        "/healthz",
        "/livez",
        "/health/ready",
        "/readyz",
        "/health/detailed",
    ] {
        assert_eq!(
            get(addr, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_hostile_requests_are_refused_and_the_server_keeps_serving() {
    let server = start();
    let addr = server.local_addr();
    // How long a refused request may take to be closed: a bound on a hang.
    let wait = PATIENCE;

    let (reply, closed) = raw(addr, b"\x00\x01\x02 garbage \r\n\r\n", wait).await;
    assert!(closed);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
        "{reply:?}"
    );

    let (reply, closed) = raw(addr, b"GET /health HTTP/9.9\r\n\r\n", wait).await;
    assert!(
        closed
            && (reply.is_empty()
                || reply.starts_with("HTTP/1.1 4")
                || reply.starts_with("HTTP/1.1 5")),
        "{reply:?}"
    );

    let huge = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let (reply, closed) = raw(addr, huge.as_bytes(), wait).await;
    assert!(
        closed
            && (reply.is_empty()
                || reply.starts_with("HTTP/1.1 431")
                || reply.starts_with("HTTP/1.1 400")),
        "{reply:?}"
    );

    let (reply, _) = raw(
        addr,
        b"GET /health HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999\r\n\r\n",
        wait,
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply:?}");

    assert_eq!(
        get(addr, "/health").await.status,
        StatusCode::OK,
        "still serving"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off_at_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let server = common::start_server!(|server| server.with_header_read_timeout(timeout));
    let addr = server.local_addr();
    // Slowloris: half a request head, then silence.
    let started = std::time::Instant::now();
    let (_, closed) = raw(addr, b"GET /health HTTP/1.1\r\nhost: x\r\n", PATIENCE).await;
    let took = started.elapsed();
    assert!(
        closed,
        "the server must close a connection that never finishes its headers"
    );
    // Not before the timeout (its timer starts once the connection is
    // accepted, after `started`), and the configured one, not the 5 s
    // default: the bound leaves 4.7 s for a loaded machine's late timer.
    assert!(took >= timeout, "cut off after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "cut off after {took:?}: the configured {timeout:?} was not in force"
    );
    assert_eq!(
        get(addr, "/health").await.status,
        StatusCode::OK,
        "still serving"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_settings_and_busy_addresses_are_errors() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Server::builder()
        .with_address(taken.local_addr().unwrap())
        .build()
        .unwrap_err();
    assert!(matches!(err, HttpError::Bind { .. }), "{err}");
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    let err = Server::builder()
        .with_max_header_bytes(100)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_header_bytes"), "{err}");
    let err = Server::builder()
        .with_max_connections(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");
    let err = Server::builder()
        .with_health(poolscope::http::HealthConfig::default().with_max_error_rate(3.0))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_error_rate"), "{err}");
    let err = Server::builder()
        .with_health(
            poolscope::http::HealthConfig::default().with_max_p99(Duration::from_secs(120)),
        )
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("max_p99"),
        "a p99 limit above the largest bucket could never fail: {err}"
    );
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap();
    assert!(matches!(server.start(), Err(HttpError::NoRuntime)));
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    // Every other test here binds 127.0.0.1:0, and the kernel may hand one of
    // them the port this server just released; on 127.0.0.2 (still loopback)
    // no other test can take it, so a successful connect means this server.
    let server = Server::builder()
        .with_address("127.0.0.2:0".parse().unwrap())
        .build()
        .expect("bind")
        .start()
        .expect("start");
    let addr = server.local_addr();
    assert_eq!(get(addr, "/health").await.status, StatusCode::OK);
    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[observe(pool = "http-busy", command = "work")]
fn work(n: u64) -> Result<u64, std::fmt::Error> {
    if n % 10 == 9 {
        return Err(std::fmt::Error);
    }
    std::thread::sleep(Duration::from_micros(50));
    Ok(n)
}

#[observe(kind = pool_start, pool = "http-busy")]
fn start_pool() {}

#[observe(kind = worker_start, pool = "http-busy", worker = id)]
fn start_worker(id: u32) -> u32 {
    id
}

fn requests_total(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("poolscope_requests_total{pool=\"http-busy\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_under_concurrent_scrapes_of_a_busy_pool_pass_promtool() {
    let handle = poolscope::metrics::install().unwrap();
    let server = common::start_server!(|server| server.with_metrics(handle));
    let addr = server.local_addr();

    start_pool();
    let pool = poolscope::Pool::new("http-busy");
    pool.set_size(4);
    let workers: Vec<_> = (0..4).map(|i| pool.worker(start_worker(i))).collect();
    for worker in &workers {
        worker.started(Some(std::process::id()), Duration::from_millis(2));
    }
    pool.session_created("s-1", Duration::from_secs(30), Vec::new());
    metrics::describe_counter!("app_widgets_total", "Widgets the application made.");
    metrics::counter!("app_widgets_total", "tier" => "gold").increment(5);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // At least one call each, however soon the scrapers finish.
                let mut n = t;
                loop {
                    let _ = work(n);
                    n += 4;
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                }
            })
        })
        .collect();

    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                let mut last = 0;
                for _ in 0..25 {
                    let reply = get(addr, "/metrics").await;
                    assert_eq!(reply.status, StatusCode::OK);
                    let total = requests_total(&reply.body);
                    if ANY && TIMING {
                        assert!(total >= last, "counters never go back: {total} < {last}");
                    }
                    last = total;
                }
                last
            })
        })
        .collect();
    for scraper in scrapers {
        scraper.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for thread in busy {
        thread.join().unwrap();
    }
    workers[0].set_state(WorkerState::Busy);
    pool.queue_depth(2);
    pool.saturated(2, 0);
    workers[3].crashed(
        "signal SIGKILL",
        poolscope::error::CrashContext {
            signal: Some("SIGKILL".into()),
            ..Default::default()
        },
    );
    pool.sessions_cleaned(1, Duration::from_millis(3));

    let body = get(addr, "/metrics").await.body;
    if ANY {
        assert!(
            body.contains("app_widgets_total{tier=\"gold\"} 5"),
            "application metrics just appear"
        );
        assert!(body.contains("poolscope_workers{pool=\"http-busy\",state=\"busy\"} 1"));
    }
    if TIMING {
        assert!(requests_total(&body) > 0);
        assert!(
            body.contains("poolscope_worker_startup_duration_seconds_bucket{pool=\"http-busy\"")
        );
    }
    promtool_check(&body);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_are_kept_alive_across_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start();
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\nGET /livez HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while seen.matches("HTTP/1.1 200 OK").count() < 2 {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the server closed a keep-alive connection: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let server = common::start_server!(|server| {
        server
            .with_max_connections(1)
            .with_header_read_timeout(Duration::from_secs(30))
    });
    let addr = server.local_addr();
    // The only slot: a connection that says nothing. Connections are
    // accepted in the order they came, so it holds the slot before the
    // second one can be accepted, whenever the server gets to them.
    let idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let waiting = tokio::spawn(async move { get(addr, "/health").await.status });
    // A window in which the second must not be served; a slow machine can
    // only make this pass more easily, never fail.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection is not served while the limit is reached"
    );
    drop(idle);
    let status = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("served once the slot frees")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}
