//! Bad input while the host is busy: malformed and oversized HTTP requests,
//! slowloris clients, invalid configuration reloads, and a worker that
//! writes garbage on its gRPC channel or never starts a reply. None of them
//! may crash the host, change what is in force, or touch the metrics: after
//! each, every request the callers made is counted once, by outcome, and
//! `/metrics` passes `promtool check metrics`. Its own binary: the
//! configuration is process-wide.

use poolscope_testkit as common;
use poolscope_testkit::client;
use python_pool as pool;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use client::{get, raw};
use hyper::StatusCode;
use poolscope::config::{Config, ConfigWatcher, Live};
use poolscope::http::{HealthConfig, Server, ServerHandle};
use poolscope::metrics::MetricsHandle;
use poolscope::observe;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn recorder() -> MetricsHandle {
    static HANDLE: OnceLock<MetricsHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| poolscope::metrics::install().expect("recorder"))
        .clone()
}

fn server(
    configure: impl FnOnce(poolscope::http::ServerBuilder) -> poolscope::http::ServerBuilder,
) -> ServerHandle {
    configure(
        Server::builder()
            .with_address("127.0.0.1:0".parse().unwrap())
            .with_metrics(recorder()),
    )
    .build()
    .unwrap()
    .start()
    .unwrap()
}

/// Callers that keep a pool busy until stopped, counting what they got.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(
        callers: usize,
        call: impl Fn(u64) -> tokio::task::JoinHandle<bool> + Send + Sync + 'static,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let call = Arc::new(call);
        let tasks = (0..callers)
            .map(|_| {
                let (stop, ok, failed, call) =
                    (stop.clone(), ok.clone(), failed.clone(), call.clone());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let counter = if call(i).await.expect("a call panicked") {
                            &ok
                        } else {
                            &failed
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    /// Stops the callers, then checks that `/metrics` passes promtool and
    /// counts exactly their ok and failed `work` calls in `pool`; the text.
    async fn finish_counted(self, addr: std::net::SocketAddr, pool: &str) -> String {
        common::eventually_async("calls of both outcomes", async || {
            self.ok.load(Ordering::Relaxed) > 0 && self.failed.load(Ordering::Relaxed) > 0
        })
        .await;
        let (ok, failed) = self.finish().await;
        let text = get(addr, "/metrics").await.body;
        common::promtool_check(&text);
        assert!(ok > 0 && failed > 0);
        assert_eq!(counted(&text, pool, "work", "ok"), ok as f64);
        assert_eq!(counted(&text, pool, "work", "error"), failed as f64);
        text
    }

    /// Stops the callers; (ok, failed).
    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a caller panicked");
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn counted(text: &str, pool: &str, command: &str, outcome: &str) -> f64 {
    common::sample(
        text,
        &format!("poolscope_requests_total{{pool=\"{pool}\",command=\"{command}\",outcome=\"{outcome}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Sends one byte of a request head every 100 ms until the server hangs
/// up; when it did, or `None` if it never did within `limit`. Counts itself
/// in `connected` once connected.
async fn slowloris(
    addr: std::net::SocketAddr,
    connected: Arc<AtomicU64>,
    limit: Duration,
) -> Option<Instant> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.ok()?;
    connected.fetch_add(1, Ordering::SeqCst);
    let head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: ";
    let mut sent = 0usize;
    let mut buf = [0u8; 1024];
    while started.elapsed() < limit {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                // Whatever the server says (a 408 or nothing), it must close.
                Ok(0) | Err(_) => return Some(Instant::now()),
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stream.write_all(&[byte]).await.is_err() {
                    return Some(Instant::now());
                }
                sent += 1;
            }
        }
    }
    None
}

#[observe(pool = "hostile-http", command = "work")]
async fn work(i: u64) -> Result<u64, std::fmt::Error> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    if i.is_multiple_of(7) {
        Err(std::fmt::Error)
    } else {
        Ok(i)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_slow_http_clients_change_nothing() {
    const CONNECTIONS: usize = 16;
    const HEAD_TIMEOUT: Duration = Duration::from_millis(500);
    let server = server(|b| {
        b.with_max_connections(CONNECTIONS)
            .with_header_read_timeout(HEAD_TIMEOUT)
    });
    let addr = server.local_addr();
    let load = Load::start(3, |i| tokio::spawn(async move { work(i).await.is_ok() }));

    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let big_header = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..10_000)
            .map(|i| format!("x-{i}: y\r\n"))
            .collect::<String>()
    );
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("binary garbage", b"\x00\x01\x02\xff\xfe garbage\r\n\r\n".to_vec()),
        ("no version", b"GET /health\r\n\r\n".to_vec()),
        ("unknown version", b"GET /health HTTP/9.9\r\nhost: x\r\n\r\n".to_vec()),
        ("bad method token", b"G(T /health HTTP/1.1\r\nhost: x\r\n\r\n".to_vec()),
        ("header without colon", b"GET /health HTTP/1.1\r\nhost x\r\n\r\n".to_vec()),
        ("space in a header name", b"GET /health HTTP/1.1\r\nbad name: x\r\n\r\n".to_vec()),
        ("NUL in the path", b"GET /hea\x00lth HTTP/1.1\r\nhost: x\r\n\r\n".to_vec()),
        ("negative content-length", b"POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n".to_vec()),
        ("two content-lengths", b"POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab".to_vec()),
        ("bad chunk size", b"POST /metrics HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nZZZ\r\n\r\n".to_vec()),
        ("unknown transfer-encoding", b"POST /metrics HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n".to_vec()),
        ("HTTP/2 preface then garbage", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec()),
        ("100 KiB URI", long_uri.into_bytes()),
        ("64 KiB header", big_header.into_bytes()),
        ("10,000 headers", many_headers.into_bytes()),
    ];
    for (name, bytes) in &hostile {
        let (reply, closed) = raw(addr, bytes, Duration::from_secs(30)).await;
        let status = reply.get(9..12).unwrap_or("");
        println!(
            "{name}: {:?}, closed {closed}",
            reply.lines().next().unwrap_or("")
        );
        // Refused: a 4xx (or nothing), never a success or a server error,
        // and the connection is not left open.
        assert!(closed, "{name}: the connection stayed open");
        assert!(
            reply.is_empty() || status.starts_with('4'),
            "{name}: {reply:?}"
        );
        assert_eq!(
            get(addr, "/health").await.status,
            StatusCode::OK,
            "{name}: still serving"
        );
    }

    // Slowloris: 40 clients (more than the 16 connections served at once)
    // trickle a request head a byte every 100 ms. Each is cut off, and a
    // normal request, queued behind them all, still gets through.
    const SLOW: usize = 40;
    let start = Instant::now();
    let connected = Arc::new(AtomicU64::new(0));
    let slow: Vec<_> = (0..SLOW)
        .map(|_| tokio::spawn(slowloris(addr, connected.clone(), Duration::from_secs(60))))
        .collect();
    common::eventually_async("every slowloris client connected", async || {
        connected.load(Ordering::SeqCst) == SLOW as u64
    })
    .await;
    let reply = get(addr, "/health").await;
    let legit = start.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    let mut cut = Vec::new();
    for client in slow {
        let at = client
            .await
            .unwrap()
            .expect("a slowloris client was never cut off");
        cut.push(at - start);
    }
    cut.sort();
    println!(
        "slowloris: {SLOW} clients cut off after {:?} to {:?}; a normal request answered after {legit:?}",
        cut[0],
        cut[SLOW - 1]
    );
    // At most 16 connections at once, each held for the head timeout: the
    // clients are cut in waves, the i-th (in order) no sooner than wave
    // i / 16 + 1 ends. That holds whatever the machine's speed.
    for (i, at) in cut.iter().enumerate() {
        let wave = (i / CONNECTIONS + 1) as u32;
        assert!(
            *at >= HEAD_TIMEOUT * wave,
            "client {i} cut at {at:?}: {cut:?}"
        );
    }
    // And no later than the last wave (the normal request rides in it)
    // ends, give or take timers late on a loaded machine: without the head
    // timeout nothing would be cut before the clients' 60 s.
    let waves = SLOW.div_ceil(CONNECTIONS) as u32;
    let bound = HEAD_TIMEOUT * waves + Duration::from_secs(30);
    assert!(cut[SLOW - 1] < bound, "{cut:?}");
    assert!(legit < bound, "{legit:?}");

    let text = load.finish_counted(addr, "hostile-http").await;
    // Nothing a client sent became a label or a series.
    for token in ["garbage", "aaaaaaaa", "bbbbbbbb", "x-9999", "\u{0}"] {
        assert!(!text.contains(token), "`{token}` reached /metrics");
    }
    server.shutdown().await;
}

#[observe(pool = "hostile-config", command = "work")]
async fn configured(i: u64) -> Result<u64, std::fmt::Error> {
    tokio::task::yield_now().await;
    if i.is_multiple_of(5) {
        Err(std::fmt::Error)
    } else {
        Ok(i)
    }
}

fn replace(path: &Path, bytes: &[u8]) {
    if path.is_dir() {
        std::fs::remove_dir(path).unwrap();
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_reloads_are_refused_and_change_nothing() {
    let server = server(|b| b);
    let addr = server.local_addr();
    let dir: PathBuf =
        std::env::temp_dir().join(format!("poolscope-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("poolscope.toml");
    let good =
        "[sampling]\nrequests = 1.0\n\n[health]\nmax_queue_depth = 50\nmin_ready_workers = 1\n";
    replace(&path, good.as_bytes());
    let watcher = ConfigWatcher::start(&path, Live::new().with_server(server.controls()))
        .expect("the first load");
    let in_force = Config::from_toml(good).unwrap();
    let load = Load::start(2, |i| {
        tokio::spawn(async move { configured(i).await.is_ok() })
    });

    let half = &good[..good.find("max_queue").unwrap() + 5];
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not UTF-8",
            vec![0xff, 0xfe, 0x00, 0x5b, 0x80, 0x81],
            "not UTF-8",
        ),
        (
            "broken TOML",
            b"[health\nmax_queue_depth = 1\n".to_vec(),
            "invalid configuration in",
        ),
        (
            "a wrong type",
            b"[sampling]\nrequests = \"all\"\n".to_vec(),
            "requests",
        ),
        (
            "out of range",
            b"[sampling]\nrequests = -1.0\n".to_vec(),
            "sampling.requests",
        ),
        (
            "an unknown key",
            b"[health]\nmax_queue = 3\n".to_vec(),
            "max_queue",
        ),
        (
            "a bad alert rule",
            b"[[alerts.rules]]\nname = \"x\"\nmeasure = \"depth\"\nthreshold = 1.0\n".to_vec(),
            "alerts.rules[0].measure",
        ),
        (
            "a bad log filter",
            b"[logging]\nlevel = \"poolscope=loudest\"\n".to_vec(),
            "logging.level",
        ),
        ("cut off mid-write", half.as_bytes().to_vec(), "max_q"),
        (
            "2 MiB",
            format!(
                "{}[sampling]\nrequests = 0.5\n",
                "# padding\n".repeat(200_000)
            )
            .into_bytes(),
            "larger than",
        ),
    ];
    let mut seen = String::new();
    for (name, bytes, expected) in &bad {
        replace(&path, bytes);
        let error = wait_for_error(&watcher, expected, &seen)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{name}: not reported as `{expected}`: {:?}",
                    watcher.last_error()
                )
            });
        println!("{name}: {error}");
        seen = error;
        assert_unchanged(&watcher, &in_force, &server, addr).await;
    }
    // A directory where the file was, then no file at all. Each is waited
    // for by its own error, since the watcher may look between two steps
    // (and see no file before it sees the directory).
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    seen = wait_for_error(&watcher, "(os error 21)", &seen)
        .await
        .expect("a directory is reported");
    println!("a directory: {seen}");
    assert_unchanged(&watcher, &in_force, &server, addr).await;
    std::fs::remove_dir(&path).unwrap();
    let error = wait_for_error(&watcher, "(os error 2)", &seen)
        .await
        .expect("a missing file is reported");
    println!("no file: {error}");
    assert_unchanged(&watcher, &in_force, &server, addr).await;

    // A good file again: applied, and the error clears.
    replace(
        &path,
        b"[sampling]\nrequests = 1.0\n\n[health]\nmax_queue_depth = 40\n",
    );
    common::eventually_async("the good file applied", async || {
        watcher.last_error().is_none()
    })
    .await;
    assert_eq!(watcher.applied(), 2);
    assert_eq!(server.controls().health().max_queue_depth, Some(40));

    load.finish_counted(addr, "hostile-config").await;
    drop(watcher);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Waits up to [`common::PATIENCE`] for a reload error that contains
/// `expected` and differs from the last one seen; its text.
async fn wait_for_error(watcher: &ConfigWatcher, expected: &str, last: &str) -> Option<String> {
    let until = Instant::now() + common::PATIENCE;
    while Instant::now() < until {
        if let Some(error) = watcher.last_error().map(|e| e.to_string()) {
            if error.contains(expected) && error != last {
                return Some(error);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn assert_unchanged(
    watcher: &ConfigWatcher,
    in_force: &Config,
    server: &ServerHandle,
    addr: std::net::SocketAddr,
) {
    assert_eq!(watcher.applied(), 1, "a bad file was applied");
    assert_eq!(*poolscope::config::current(), *in_force);
    assert_eq!(poolscope::events::sample_rate(), 1.0);
    let health: HealthConfig = server.controls().health();
    assert_eq!(health.max_queue_depth, Some(50));
    // Readiness is not asked here: it looks at every pool in the process,
    // and the other tests' pools come and go.
    assert_eq!(get(addr, "/metrics").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_workers_grpc_channel_fails_one_request_cleanly() {
    let metrics = recorder();
    let mut config = pool::PoolConfig::new("hostile-grpc");
    config.size = 1;
    // Two interpreters in a row (relay, then worker), while others start.
    config.start_timeout = Duration::from_secs(120);
    config.script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/workers/garbling_proxy.py");
    let pool = pool::start(config)
        .await
        .expect("the pool behind the garbling relay");
    let pid = |pool: &str| {
        common::pool_state(pool).and_then(|s| s.worker_list.first().and_then(|w| w.pid))
    };
    let before = pid("hostile-grpc");
    for i in 0..20 {
        pool.execute("echo", json!({ "i": i }), None)
            .await
            .expect("through the relay");
    }
    let started = Instant::now();
    let err = pool
        .execute("echo", json!({ "x": "GARBLE" }), None)
        .await
        .expect_err("a garbled reply cannot succeed");
    println!("garbled reply: {err} (after {:?})", started.elapsed());
    assert!(matches!(err, pool::PoolError::Grpc(_)), "{err:?}");
    assert!(!err.to_string().is_empty());
    // The channel reconnects: the same worker serves again.
    for i in 0..20 {
        pool.execute("echo", json!({ "i": i }), None)
            .await
            .expect("the channel recovers");
    }
    assert_eq!(
        pid("hostile-grpc"),
        before,
        "the worker process was not replaced"
    );
    let text = metrics.render();
    common::promtool_check(&text);
    assert_eq!(counted(&text, "hostile-grpc", "echo", "ok"), 40.0);
    assert_eq!(counted(&text, "hostile-grpc", "echo", "error"), 1.0);
    for kind in ["exit", "signal", "lost"] {
        let series =
            format!("poolscope_worker_crashes_total{{pool=\"hostile-grpc\",kind=\"{kind}\"}}");
        assert_eq!(
            common::sample(&text, &series).unwrap_or(0.0),
            0.0,
            "{series}"
        );
    }
    pool.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_runs_but_cannot_be_reached_is_reported_lost_and_replaced() {
    let metrics = recorder();
    let captured = common::capture("hostile-lost");
    let mut config = pool::PoolConfig::new("hostile-lost");
    config.size = 1;
    config.start_timeout = Duration::from_secs(120);
    config.restart_backoff = Duration::from_millis(50);
    config.script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/workers/vanishing_proxy.py");
    let pool = pool::start(config)
        .await
        .expect("the pool behind the vanishing relay");
    for i in 0..5 {
        pool.execute("echo", json!({ "i": i }), None)
            .await
            .expect("through the relay");
    }
    let err = pool
        .execute("echo", json!({ "x": "GARBLE" }), None)
        .await
        .expect_err("a garbled reply cannot succeed");
    println!("garbled, then unreachable: {err}");
    let pool::PoolError::Crash(crash) = &err else {
        panic!("not reported as a crash: {err:?}")
    };
    assert_eq!(
        (crash.context.exit_code, crash.context.signal.as_deref()),
        (None, None),
        "lost: neither an exit nor a signal"
    );
    assert_eq!(crash.context.last_command.as_deref(), Some("echo"));
    // Replaced: a new worker serves.
    for i in 0..5 {
        pool.execute("echo", json!({ "i": i }), None)
            .await
            .expect("the replacement serves");
    }
    let text = metrics.render();
    common::promtool_check(&text);
    assert_eq!(
        common::sample(
            &text,
            "poolscope_worker_crashes_total{pool=\"hostile-lost\",kind=\"lost\"}"
        ),
        Some(1.0)
    );
    pool.shutdown();
    let crashed: Vec<_> = captured
        .take()
        .into_iter()
        .filter_map(|e| match e {
            poolscope::events::Event::WorkerCrashed(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(crashed.len(), 1, "{crashed:?}");
    assert!(crashed[0].reason.contains("lost"), "{}", crashed[0].reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_never_starts_its_reply_times_out_and_is_replaced() {
    let metrics = recorder();
    let captured = common::capture("hostile-stall");
    let mut config = pool::PoolConfig::new("hostile-stall");
    config.size = 1;
    config.restart_backoff = Duration::from_millis(50);
    config.request_timeout = Duration::from_secs(1);
    config.start_timeout = Duration::from_secs(120);
    config.script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/workers/stalling_proxy.py");
    let pool = pool::start(config)
        .await
        .expect("the pool behind the stalling relay");
    let pid = || {
        common::pool_state("hostile-stall").and_then(|s| s.worker_list.first().and_then(|w| w.pid))
    };
    let before = pid();
    for i in 0..5 {
        pool.execute("echo", json!({ "i": i }), None)
            .await
            .expect("through the relay");
    }
    // No reply headers ever come: tonic's own timer cuts the call (not the
    // worker's deadline), and that is the request timeout too.
    let err = pool
        .execute("echo", json!({ "x": "STALL" }), None)
        .await
        .expect_err("a reply that never starts cannot succeed");
    println!("stalled: {err}");
    assert!(matches!(err, pool::PoolError::Timeout(_)), "{err:?}");
    // The worker that never answered was killed and replaced.
    let answer = tokio::time::timeout(
        Duration::from_secs(120),
        pool.execute("echo", json!({ "after": "stall" }), None),
    )
    .await
    .expect("the next request waited behind the stalled one");
    assert_eq!(
        answer.expect("the replacement serves"),
        json!({ "after": "stall" })
    );
    assert_ne!(pid(), before, "the worker was replaced");
    let text = metrics.render();
    common::promtool_check(&text);
    assert_eq!(counted(&text, "hostile-stall", "echo", "ok"), 6.0);
    assert_eq!(counted(&text, "hostile-stall", "echo", "timeout"), 1.0);
    assert_eq!(counted(&text, "hostile-stall", "echo", "error"), 0.0);
    pool.shutdown();
    let crashed: Vec<_> = captured
        .take()
        .into_iter()
        .filter_map(|e| match e {
            poolscope::events::Event::WorkerCrashed(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(crashed.len(), 1, "{crashed:?}");
    assert!(
        crashed[0].reason.contains(pool::KILLED_AFTER_TIMEOUT),
        "{}",
        crashed[0].reason
    );
}
