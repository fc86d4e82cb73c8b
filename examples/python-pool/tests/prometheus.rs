//! A real Prometheus (Debian's `prometheus`) scrapes the flagship pool every
//! two seconds and loads the generated rules: the target is up, the request
//! counters by outcome equal the workload, `histogram_quantile` lands in the
//! bucket of the measured p99, and a recording rule evaluates. Its own
//! binary: the Prometheus recorder is process-wide.

use poolscope_assets as assets;
use poolscope_testkit as common;
use poolscope_testkit::client;
use python_pool as pool;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::get;
use common::PATIENCE;
use poolscope::http::Server;
use serde_json::{json, Value};

const POOL: &str = "prom";

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The vector a query returns, as `(labels, value)`.
async fn query(prometheus: SocketAddr, promql: &str) -> Vec<(Value, f64)> {
    let reply = get(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
    )
    .await;
    let body = reply.json();
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let value = r["value"][1]
                .as_str()
                .unwrap_or("NaN")
                .parse()
                .unwrap_or(f64::NAN);
            (r["metric"].clone(), value)
        })
        .collect()
}

/// Half the fixed workload: 60 fine requests and 6 Python errors.
async fn workload(pool: &pool::PythonPool) {
    let calls: Vec<_> = (0..66)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                if i % 11 == 10 {
                    pool.execute("fail", json!({ "message": "no" }), None).await
                } else {
                    pool.execute("sleep", json!({ "ms": i % 7 }), None).await
                }
            })
        })
        .collect();
    let mut failed = 0;
    for call in calls {
        if call.await.unwrap().is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 6);
}

/// As `common::until_async`, asking Prometheus four times a second rather
/// than a hundred: a scrape that times out on a loaded machine is only
/// retried, so every wait is for a condition.
async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(start.elapsed() < PATIENCE, "{what} not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_pool_and_agrees_with_the_workload() {
    let metrics = poolscope::metrics::install().expect("recorder");
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_metrics(metrics)
        .build()
        .unwrap()
        .start()
        .unwrap();
    let target = server.local_addr();
    let mut config = pool::PoolConfig::new(POOL);
    config.size = 2;
    config.start_timeout = Duration::from_secs(120);
    let pool = pool::start(config).await.expect("the Python pool");
    workload(&pool).await;

    let dir = std::env::temp_dir().join(format!("poolscope-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yml"), assets::prometheus_rules()).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\nscrape_configs:\n  - job_name: poolscope\n    static_configs:\n      - targets: ['{target}']\n",
            rules = dir.join("rules.yml").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let prometheus_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package `prometheus`)"),
    );
    until("Prometheus ready", async || {
        let ready = tokio::net::TcpStream::connect(prometheus_addr)
            .await
            .is_ok()
            && get(prometheus_addr, "/-/ready").await.status.is_success();
        ready.then_some(())
    })
    .await;

    // The rest while Prometheus scrapes, so rates have something to see: a
    // scrape of the first half has landed (the target is up) before the
    // second half runs.
    until("the target up", async || {
        let up = query(prometheus_addr, "up{job=\"poolscope\"}").await;
        (up.len() == 1 && up[0].1 == 1.0).then_some(())
    })
    .await;
    workload(&pool).await;

    // The p99 poolscope measured, and the bucket that holds it.
    let totals = poolscope::stats::pools()
        .into_iter()
        .find(|p| p.pool.as_str() == POOL)
        .and_then(|p| p.requests)
        .expect("the pool's requests");
    let p99 = totals.durations.quantile(0.99).unwrap();
    let bounds = &totals.durations.bounds;
    let bucket = bounds.partition_point(|&b| b < p99);
    let (lower, upper) = (
        if bucket == 0 { 0.0 } else { bounds[bucket - 1] },
        bounds.get(bucket).copied().unwrap_or(f64::INFINITY),
    );

    // The target is up.
    until("the target up", async || {
        let up = query(prometheus_addr, "up{job=\"poolscope\"}").await;
        (up.len() == 1 && up[0].1 == 1.0).then_some(())
    })
    .await;

    // Counters by outcome equal the workload, once a scrape after its end
    // has landed.
    let mut last;
    let start = Instant::now();
    loop {
        let rows = query(
            prometheus_addr,
            &format!("sum by (outcome) (poolscope_requests_total{{pool=\"{POOL}\"}})"),
        )
        .await;
        let get = |outcome: &str| {
            rows.iter()
                .find(|(m, _)| m["outcome"] == outcome)
                .map_or(f64::NAN, |(_, v)| *v)
        };
        last = (get("ok"), get("error"));
        if last == (120.0, 12.0) || start.elapsed() > PATIENCE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        last,
        (120.0, 12.0),
        "requests by outcome, as Prometheus scraped them"
    );

    // histogram_quantile over the exported buckets lands in the bucket of
    // the p99 poolscope measured.
    let rows = query(
        prometheus_addr,
        &format!("histogram_quantile(0.99, sum by (le) (poolscope_request_duration_seconds_bucket{{pool=\"{POOL}\"}}))"),
    )
    .await;
    let promql_p99 = rows[0].1;
    assert!(
        (lower..=upper).contains(&promql_p99),
        "Prometheus p99 {promql_p99} outside the bucket ({lower}, {upper}] of the measured p99 {p99}"
    );

    // A recording rule from the generated file evaluates: over the samples
    // before and after the second half, 6 of its 66 requests failed. (An
    // evaluation may land on a scrape taken halfway through it first.)
    let expected = 6.0 / 66.0;
    let start = Instant::now();
    let ratio = loop {
        let rows = query(prometheus_addr, "poolscope:error_ratio:5m").await;
        // NaN (0 / 0) until a rule evaluation sees the counters move.
        let ratio = rows
            .into_iter()
            .find(|(m, _)| m["pool"] == POOL)
            .map_or(f64::NAN, |(_, v)| v);
        if (ratio - expected).abs() < 1e-9 || start.elapsed() > PATIENCE {
            break ratio;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        (ratio - expected).abs() < 1e-9,
        "error ratio {ratio}, not 6 / 66, within {PATIENCE:?}"
    );
    let rules = get(prometheus_addr, "/api/v1/rules").await.json();
    let loaded = rules["data"]["groups"].as_array().map_or(0, |g| {
        g.iter()
            .map(|g| g["rules"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    });
    assert_eq!(
        loaded,
        assets::recording_rules().len() + assets::alerting_rules().len()
    );

    pool.shutdown();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
