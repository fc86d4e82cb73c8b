//! The flagship demo: a pool of four Python workers over gRPC, observed by
//! poolscope, serving `/health*` and `/metrics` while it runs a mixed load.
//!
//! ```text
//! pip install grpcio grpcio-tools
//! cargo run --release -p poolscope-python-pool                  # until Ctrl-C
//! cargo run --release -p poolscope-python-pool -- --requests 2000
//! cargo run --release -p poolscope-python-pool -- --config examples/python-pool/poolscope.toml
//! ```

// jemalloc as the allocator: its statistics become gauges and the
// dashboard's "allocated" figure.
#[global_allocator]
static GLOBAL: poolscope::memory::Jemalloc = poolscope::memory::Jemalloc;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use poolscope::http::{HealthConfig, Server};
use poolscope::Outcome;
use python_pool::{PoolConfig, PoolError, PythonPool};
use serde_json::json;

struct Options {
    requests: Option<u64>,
    address: std::net::SocketAddr,
    workers: usize,
    config: Option<std::path::PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        requests: None,
        address: ([127, 0, 0, 1], 9464).into(),
        workers: 4,
        config: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("`{name}` needs a value"));
        match arg.as_str() {
            "--requests" => {
                options.requests = Some(
                    value("--requests")?
                        .parse()
                        .map_err(|e| format!("--requests: {e}"))?,
                )
            }
            "--listen" => {
                options.address = value("--listen")?
                    .parse()
                    .map_err(|e| format!("--listen: {e}"))?
            }
            "--config" => options.config = Some(value("--config")?.into()),
            "--workers" => {
                options.workers = value("--workers")?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`: expected --requests N, --listen ADDR, --workers N, --config FILE"
                ))
            }
        }
    }
    Ok(options)
}

/// What the demo sends: mostly fine, some Python errors, a rare crash.
fn pick(i: u64) -> (&'static str, serde_json::Value) {
    match i % 200 {
        199 => (
            "crash",
            json!({ "mode": if i % 400 == 399 { "segv" } else { "exit" }, "code": 3 }),
        ),
        n if n % 20 == 7 => (
            "fail",
            json!({ "message": "model rejected the input", "chained": n % 40 == 7 }),
        ),
        n if n % 5 == 0 => ("sleep", json!({ "ms": 5 })),
        n if n % 5 == 1 => ("compute", json!({ "n": 20_000 })),
        _ => ("echo", json!({ "i": i })),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("python_pool: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let metrics = poolscope::metrics::install()?;
    let _logs = poolscope::logging::init(
        poolscope::logging::LogConfig::json()
            .with_level("warn")?
            .to_stderr(),
    )?;
    let _memory = poolscope::memory::MemorySampler::start(Duration::from_secs(1))?;
    let _alerts = poolscope::alerts::watch_error_rate(poolscope::alerts::ErrorRateRule::new(0.2)?)?;
    let server = Server::builder()
        .with_address(options.address)
        .with_metrics(metrics)
        .with_health(
            HealthConfig::default()
                .with_max_queue_depth(32)
                .with_max_error_rate(0.5),
        )
        .build()?;
    let addr = server.local_addr();
    let http = server.start()?;
    // `--config FILE`: sampling, log level, endpoints, thresholds and alert
    // rules from a TOML file, reloaded when it changes.
    let _config = match &options.config {
        Some(path) => Some(poolscope::config::ConfigWatcher::start(
            path,
            poolscope::config::Live::new()
                .with_server(http.controls())
                .with_logs(_logs.level_control())
                .with_alerts(_alerts.controls()),
        )?),
        None => None,
    };

    let mut config = PoolConfig::new("python");
    config.size = options.workers;
    let started = Instant::now();
    let pool = python_pool::start(config)
        .await
        .map_err(|e| format!("{e} (is grpcio installed? `pip install grpcio grpcio-tools`)"))?;
    println!(
        "pool `python`: {} workers ready in {:.2} s",
        options.workers,
        started.elapsed().as_secs_f64()
    );
    println!("dashboard: http://{addr}/dashboard");
    println!("  http://{addr}/health");
    println!("  http://{addr}/health/ready");
    println!("  http://{addr}/health/detailed");
    println!("  http://{addr}/metrics");

    // SIGTERM (Kubernetes, systemd) and SIGINT (Ctrl-C) alike: stop
    // sending, let the requests in flight finish within the drain deadline,
    // stop the workers, flush the logs, exit 0.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let load = match options.requests {
        Some(n) => tokio::spawn(fixed(pool.clone(), n, stopping)),
        None => {
            println!("sending a mixed load; Ctrl-C to stop");
            tokio::spawn(endless(pool.clone(), stopping))
        }
    };
    tokio::pin!(load);
    let signalled = tokio::select! {
        _ = &mut load => None,
        signal = stop_signal() => Some(signal?),
    };
    if let Some(signal) = signalled {
        eprintln!("python_pool: {signal}: draining requests in flight (at most {DRAIN:?})");
        let _ = stop.send(true);
        if tokio::time::timeout(DRAIN, &mut load).await.is_err() {
            load.abort();
        }
    }
    pool.shutdown();
    http.shutdown().await;
    Ok(())
}

/// How long a stop signal waits for the requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// The first of SIGTERM and SIGINT, by name.
async fn stop_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

async fn endless(pool: PythonPool, stopping: tokio::sync::watch::Receiver<bool>) {
    let mut i = 0u64;
    while !*stopping.borrow() {
        let batch: Vec<_> = (0..8).map(|k| send(pool.clone(), i + k)).collect();
        futures_join(batch).await;
        i += 8;
        if i.is_multiple_of(200) {
            let session = pool.create_session(
                Duration::from_secs(3),
                vec![("user".into(), format!("demo-{i}"))],
            );
            let _ = pool
                .execute("echo", json!({ "session": true }), Some(&session))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send(pool: PythonPool, i: u64) -> Result<serde_json::Value, PoolError> {
    let (command, args) = pick(i);
    pool.execute(command, args, None).await
}

async fn futures_join(
    batch: Vec<
        impl std::future::Future<Output = Result<serde_json::Value, PoolError>> + Send + 'static,
    >,
) -> Vec<Result<serde_json::Value, PoolError>> {
    let handles: Vec<_> = batch.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        if let Ok(result) = handle.await {
            out.push(result);
        }
    }
    out
}

async fn fixed(pool: PythonPool, n: u64, stopping: tokio::sync::watch::Receiver<bool>) {
    let pool = &pool;
    let bar = ProgressBar::new(n);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut sent = 0;
    while sent < n && !*stopping.borrow() {
        let count = (n - sent).min(8);
        let batch: Vec<_> = (sent..sent + count)
            .map(|i| send(pool.clone(), i))
            .collect();
        futures_join(batch).await;
        sent += count;
        bar.set_position(sent);
        if sent % 100 < count {
            let session = pool.create_session(
                Duration::from_millis(500),
                vec![("user".into(), format!("demo-{sent}"))],
            );
            let _ = pool
                .execute("echo", json!({ "session": true }), Some(&session))
                .await;
        }
    }
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    summary(pool, started.elapsed());
}

fn summary(pool: &PythonPool, took: Duration) {
    let Some(snapshot) = poolscope::stats::pools()
        .into_iter()
        .find(|p| p.pool == pool.label())
    else {
        println!("nothing recorded (poolscope compiled out?)");
        return;
    };
    println!("{:<22} {:>12}", "requests", "");
    if let Some(requests) = &snapshot.requests {
        for outcome in Outcome::ALL {
            println!(
                "  {:<20} {:>12}",
                outcome.as_str(),
                requests.by_outcome[outcome.index()]
            );
        }
        let p = |q| {
            requests
                .durations
                .quantile(q)
                .map_or("-".to_owned(), |s| format!("{:.2} ms", s * 1e3))
        };
        println!("{:<22} {:>12}", "p50 latency", p(0.5));
        println!("{:<22} {:>12}", "p99 latency", p(0.99));
        println!(
            "{:<22} {:>12.0}",
            "requests/s",
            requests.completed() as f64 / took.as_secs_f64()
        );
    }
    if let Some(state) = &snapshot.state {
        println!("{:<22} {:>12}", "crashes", state.crashes);
        println!("{:<22} {:>12}", "saturation episodes", state.saturations);
        println!("{:<22} {:>12}", "sessions expired", state.sessions_expired);
        println!("{:<22} {:>12}", "sessions alive", pool.sessions());
    }
}
