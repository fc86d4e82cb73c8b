//! The dashboard in a real browser (headless Chromium through chromedriver)
//! following the flagship pool of real Python workers: worker counts, a
//! request burst, a Python error with its correlation id, a crash and the
//! restart, the health indicator turning red, an XSS payload shown as text,
//! and the page reconnecting after the server restarts.
//!
//! What the page shows is checked causally: the page marks which snapshot
//! it shows (`data-at-ms`, when the server measured it), and the first one
//! measured after an event must show the event. How soon that snapshot
//! comes (every 500 ms at most, a failure or crash within 100 ms) is shown
//! on a paused clock by the unit tests in
//! `runtime/src/http/dashboard/sse.rs`; here the delays are only printed.
//! A restart gate holds crashed workers down until the page has been
//! checked.
//!
//! Its own binary: the health verdict looks at every pool in the process.

use poolscope_testkit as common;
use poolscope_testkit::webdriver;
use python_pool as pool;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::PATIENCE;
use pool::PoolError;
use poolscope::http::{Server, ServerHandle};
use serde_json::json;
use tokio::sync::Semaphore;
use webdriver::Browser;

const POOL: &str = "dash";
const SIZE: usize = 3;
/// How long Python workers may take to come back (a process start, `import
/// grpc`, the `Ready` call) on a loaded machine next to Chromium.
const RESPAWN: Duration = Duration::from_secs(120);

fn serve(addr: SocketAddr) -> ServerHandle {
    Server::builder()
        .with_address(addr)
        .with_shutdown_grace(Duration::from_secs(1))
        .build()
        .expect("bind")
        .start()
        .expect("start")
}

/// A script that reads one number of the pool's card, as the page shows it.
fn stat(key: &str) -> String {
    webdriver::pool_stat(POOL, key)
}

/// A script that returns the pool card's number when it reads `want`.
fn stat_reads(key: &str, want: &str) -> String {
    format!(
        "const v = (() => {{ {} }})(); return v === '{want}' ? v : null;",
        stat(key)
    )
}

fn workers_by_state() -> String {
    format!(
        "const c = document.querySelector('[data-pool=\"{POOL}\"]'); \
         if (!c) return null; \
         const out = {{}}; \
         c.querySelectorAll('.worker').forEach(w => {{ out[w.dataset.state] = (out[w.dataset.state] || 0) + 1; }}); \
         return out;"
    )
}

fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("artifacts")
        .join(name)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// The pool's worker counts as poolscope holds them (what the next
/// snapshot will read).
fn workers() -> poolscope::stats::WorkerCounts {
    common::pool_state(POOL)
        .map(|s| s.workers)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_the_python_pool_live() {
    // A loopback address of its own: when the server restarts on the same
    // port below, no other socket in this process can have taken it.
    let server = serve("127.0.0.3:0".parse().unwrap());
    let addr = server.local_addr();
    let gate = Arc::new(Semaphore::new(0));
    let mut config = pool::PoolConfig::new(POOL);
    config.size = SIZE;
    config.restart_gate = Some(gate.clone());
    // A restart beside Chromium on a loaded machine may be slow: as long
    // as the test waits for it.
    config.start_timeout = RESPAWN;
    let pool = pool::start(config).await.expect("the Python pool starts");
    let browser = Browser::start().await;
    browser.goto(&format!("http://{addr}/dashboard")).await;

    // Connected, and the card shows every worker available.
    browser
        .wait_for(
            "the live connection",
            "return document.getElementById('conn').dataset.state === 'live';",
            PATIENCE,
        )
        .await;
    let (available, _) = browser
        .wait_for(
            "three available workers",
            &stat_reads("available", &SIZE.to_string()),
            PATIENCE,
        )
        .await;
    assert_eq!(available, SIZE.to_string());
    let page = browser
        .eval(&format!(
            "return {{ grid: (() => {{ {} }})(), \
                       health: document.getElementById('health').dataset.status }};",
            workers_by_state()
        ))
        .await;
    assert_eq!(
        page,
        json!({ "grid": { "available": SIZE }, "health": "healthy" })
    );

    // A burst of requests: the first snapshot after it shows all of them.
    let before: u64 = browser
        .eval(&stat("requests"))
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let burst: Vec<_> = (0..60)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.execute("echo", json!({ "i": i }), None).await })
        })
        .collect();
    for call in burst {
        call.await.unwrap().expect("echo");
    }
    let done = unix_ms();
    let (requests, _) = browser
        .shown_after("the burst", done, &stat("requests"))
        .await;
    assert_eq!(requests, (before + 60).to_string(), "the request counter");

    // A Python error: its row, with the correlation id.
    let err = pool
        .execute(
            "fail",
            json!({ "message": "model rejected the input", "chained": true }),
            None,
        )
        .await
        .expect_err("fail fails");
    let done = unix_ms();
    let PoolError::Python { correlation_id, .. } = &err else {
        panic!("not a Python error: {err}");
    };
    let row = format!(
        "const rows = [...document.querySelectorAll('#errors li')]; \
         const row = rows.find(r => r.querySelector('.cid').textContent === '{correlation_id}'); \
         if (!row) return null; \
         return {{ message: row.querySelector('.message').textContent, \
                   pool: row.querySelector('.pool').textContent, \
                   command: row.querySelector('.command').textContent, \
                   kind: row.querySelector('.kind').textContent, \
                   context: row.querySelector('pre').textContent }};"
    );
    let (shown, _) = browser.shown_after("the Python error", done, &row).await;
    assert!(!shown.is_null(), "no row for the Python error");
    assert_eq!(shown["message"], "ValueError: model rejected the input");
    assert_eq!(shown["pool"], POOL);
    assert_eq!(shown["command"], "fail");
    assert_eq!(shown["kind"], "error");
    let context = shown["context"].as_str().unwrap();
    assert!(
        context.contains("Traceback (most recent call last)") && context.contains("KeyError"),
        "the expandable traceback: {context}"
    );

    // Hostile text in an error is shown as text and runs nothing.
    let payload = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">";
    let err = pool
        .execute("fail", json!({ "message": payload }), None)
        .await
        .expect_err("fail fails");
    let done = unix_ms();
    let PoolError::Python { correlation_id, .. } = &err else {
        panic!("not a Python error: {err}");
    };
    let row = format!(
        "const row = [...document.querySelectorAll('#errors li')] \
           .find(r => r.querySelector('.cid').textContent === '{correlation_id}'); \
         return {{ message: row ? row.querySelector('.message').textContent : null, \
                   seq: Number(document.documentElement.dataset.seq) }};"
    );
    let (shown, _) = browser.shown_after("the hostile error", done, &row).await;
    assert_eq!(shown["message"], format!("ValueError: {payload}"));
    // Two more snapshots give an injected element the chance to load and run.
    let later = shown["seq"].as_u64().unwrap() + 2;
    let (ran, _) = browser
        .wait_for(
            "two more snapshots",
            &format!(
                "if (Number(document.documentElement.dataset.seq) < {later}) return null; \
                 return {{ xss: window.__xss === undefined ? null : window.__xss, \
                   elements: document.querySelectorAll('#errors script, #errors img').length }};"
            ),
            PATIENCE,
        )
        .await;
    assert_eq!(ran, json!({ "xss": null, "elements": 0 }));

    // A worker crash: crashed on the page (the gate keeps it down), then
    // back once let go.
    let err = pool
        .execute("crash", json!({ "mode": "exit", "code": 7 }), None)
        .await
        .expect_err("crash fails");
    assert!(matches!(err, PoolError::Crash(_)), "{err}");
    common::eventually_async("the crash counted", async || workers().crashed == 1).await;
    let crashed = unix_ms();
    let (shown, _) = browser
        .shown_after(
            "the crashed worker",
            crashed,
            &format!(
                "const row = [...document.querySelectorAll('#errors li')] \
               .find(r => r.querySelector('.kind').textContent === 'crash'); \
             return {{ grid: (() => {{ {} }})(), crashed: (() => {{ {} }})(), \
                       context: row ? row.querySelector('pre').textContent : null }};",
                workers_by_state(),
                stat("crashed")
            ),
        )
        .await;
    assert_eq!(
        shown["grid"],
        json!({ "available": SIZE - 1, "crashed": 1 }),
        "{shown}"
    );
    assert_eq!(shown["crashed"], "1");
    assert!(
        shown["context"]
            .as_str()
            .is_some_and(|c| c.contains("exit code 7")),
        "the crash context: {shown}"
    );
    gate.add_permits(1);
    browser
        .wait_for(
            "every worker available again",
            &format!(
                "const g = (() => {{ {} }})(); return g && g.available === {SIZE} && !g.crashed ? g : null;",
                workers_by_state()
            ),
            RESPAWN,
        )
        .await;

    // Every worker dies: the indicator turns red with the failing check.
    let crashes: Vec<_> = (0..SIZE)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.execute("crash", json!({ "mode": "exit", "code": 9 }), None)
                    .await
            })
        })
        .collect();
    for crash in crashes {
        assert!(crash.await.unwrap().is_err());
    }
    common::eventually_async("every crash counted", async || {
        workers().crashed == SIZE as u64
    })
    .await;
    let crashed = unix_ms();
    let (shown, _) = browser.shown_after(
        "the unavailable verdict",
        crashed,
        "return { status: document.getElementById('health').dataset.status, \
                  reasons: document.getElementById('health-reasons').textContent, \
                  color: getComputedStyle(document.querySelector('#health .dot')).backgroundColor };",
    )
    .await;
    assert_eq!(shown["status"], "unavailable", "{shown}");
    assert!(
        shown["reasons"].as_str().unwrap().contains("workers"),
        "the failing check is named: {shown}"
    );
    assert_eq!(shown["color"], "rgb(248, 81, 73)", "the indicator is red");
    gate.add_permits(SIZE);
    browser
        .wait_for(
            "the healthy verdict after the restarts",
            "return document.getElementById('health').dataset.status === 'healthy';",
            RESPAWN,
        )
        .await;

    // Under load: a screenshot for the record (and the README).
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let pool = pool.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let calls: Vec<_> = (0..8)
                    .map(|j| {
                        let pool = pool.clone();
                        let n = i + j;
                        tokio::spawn(async move {
                            let (command, args) = match n % 25 {
                                3 => ("fail", json!({ "message": "model rejected the input" })),
                                n if n % 3 == 0 => ("sleep", json!({ "ms": 5 })),
                                n if n % 3 == 1 => ("compute", json!({ "n": 20_000 })),
                                _ => ("echo", json!({ "i": n })),
                            };
                            let _ = pool.execute(command, args, None).await;
                        })
                    })
                    .collect();
                for call in calls {
                    let _ = call.await;
                }
                i += 8;
            }
        })
    };
    // Only so the picture has a few seconds of chart; nothing is asserted
    // on what it shows.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let shot = artifact("dashboard-under-load.png");
    browser.screenshot(&shot).await;
    if let Some(copy) = std::env::var_os("POOLSCOPE_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&shot, copy).expect("copy the screenshot");
    }
    // Every call of the load ends before the server restarts: a failure
    // after that would land in the new server's error list.
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(PATIENCE, load)
        .await
        .expect("the load stops")
        .unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    println!("screenshot: {}", shot.display());

    // The server goes away: the page says so, and comes back by itself.
    let old = browser
        .eval("return document.documentElement.dataset.instance;")
        .await;
    server.shutdown().await;
    browser
        .wait_for(
            "the disconnected state",
            "const s = document.getElementById('conn').dataset.state; \
             return s === 'disconnected' || s === 'stale' ? s : null;",
            PATIENCE,
        )
        .await;
    let server = serve(addr);
    // The new server's first snapshot: its error list starts empty (the old
    // rows are dropped, not mistaken for new ones), with current numbers.
    let (shown, _) = browser
        .wait_for(
            "the new server's snapshot",
            &format!(
                "const shown = document.documentElement.dataset; \
                 if (!shown.instance || shown.instance === {old}) return null; \
                 return {{ conn: document.getElementById('conn').dataset.state, \
                           rows: document.querySelectorAll('#errors li').length, \
                           none: !document.getElementById('no-errors').hidden, \
                           available: (() => {{ {} }})() }};",
                stat("available")
            ),
            PATIENCE,
        )
        .await;
    assert_eq!(
        shown,
        json!({ "conn": "live", "rows": 0, "none": true, "available": SIZE.to_string() })
    );

    browser.close().await;
    pool.shutdown();
    server.shutdown().await;
}
