//! Requirement 5: the live dashboard, read in headless Chromium.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use poolscope::http::{Endpoint, HealthConfig, ReadinessPolicy};
use serde_json::json;

use crate::common::PATIENCE;
use crate::harness::{run, Harness, POOL, SIZE};
use crate::pool::PoolError;
use crate::webdriver::Browser;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Opens the dashboard and waits for its live stream.
async fn open(h: &Harness) -> Browser {
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/dashboard", h.addr)).await;
    browser
        .wait_for(
            "the live connection",
            "return document.getElementById('conn').dataset.state === 'live';",
            PATIENCE,
        )
        .await;
    browser
}

/// A script reading one number of the pool's card.
fn stat(key: &str) -> String {
    crate::webdriver::pool_stat(POOL, key)
}

/// R5.1: the dashboard shows the pool and its workers' health.
#[test]
fn r5_1_dashboard_shows_current_pool_status_and_worker_health() {
    run(|h| async move {
        let browser = open(h).await;
        let (grid, _) = browser
            .wait_for(
                "the worker grid",
                &format!(
                    "const c = document.querySelector('[data-pool=\"{POOL}\"]'); if (!c) return null; \
                     const ws = [...c.querySelectorAll('.worker')]; \
                     return ws.length === {SIZE} ? ws.map(w => w.dataset.state) : null;"
                ),
                PATIENCE,
            )
            .await;
        assert_eq!(grid, json!(["available", "available"]));
        let available = browser.eval(&stat("available")).await;
        assert_eq!(available, SIZE.to_string());
        let health = browser
            .eval("return document.getElementById('health').dataset.status;")
            .await;
        assert_eq!(health, "healthy");
        browser.close().await;
    });
}

/// R5.2: the page follows the system without a reload: the first snapshot
/// measured after a change shows it. The cadence behind "within 1 second"
/// (a snapshot every 500 ms at most, a failure pushed within 100 ms) is
/// proven on a paused clock in `runtime/src/http/dashboard/sse.rs`;
/// here, on a shared machine, the page's delay is measured and bounded
/// loosely so that only a page that stopped following fails.
#[test]
fn r5_2_dashboard_updates_automatically_within_one_second() {
    run(|h| async move {
        let browser = open(h).await;
        let before: u64 = browser
            .eval(&stat("requests"))
            .await
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        for i in 0..10 {
            h.pool
                .execute("echo", json!({ "i": i }), None)
                .await
                .unwrap();
        }
        let done = unix_ms();
        let (requests, delay) = browser
            .shown_after("the ten requests", done, &stat("requests"))
            .await;
        assert_eq!(requests, (before + 10).to_string());
        eprintln!("R5.2: shown {delay} ms after the last request");
        assert!(delay < 5_000, "the page took {delay} ms");
        browser.close().await;
    });
}

/// R5.3: a failure appears among the recent errors with its time and its
/// details.
#[test]
fn r5_3_recent_errors_are_displayed_with_timestamps_and_details() {
    run(|h| async move {
        let browser = open(h).await;
        let err = h
            .pool
            .execute(
                "fail",
                json!({ "message": "r5.3 rejected", "chained": true }),
                None,
            )
            .await
            .unwrap_err();
        let PoolError::Python { correlation_id, .. } = &err else {
            panic!("{err}")
        };
        let (row, _) = browser
            .wait_for(
                "the error row",
                &format!(
                    "const row = [...document.querySelectorAll('#errors li')] \
                       .find(r => r.querySelector('.cid').textContent === '{correlation_id}'); \
                     if (!row) return null; \
                     return {{ time: row.querySelector('.time').textContent, \
                               message: row.querySelector('.message').textContent, \
                               kind: row.querySelector('.kind').textContent, \
                               command: row.querySelector('.command').textContent, \
                               worker: row.querySelector('.worker-id') ? row.querySelector('.worker-id').textContent : null, \
                               context: row.querySelector('pre').textContent }};"
                ),
                PATIENCE,
            )
            .await;
        assert_eq!(row["message"], "ValueError: r5.3 rejected");
        assert_eq!(row["kind"], "error");
        assert_eq!(row["command"], "fail");
        assert!(
            row["worker"]
                .as_str()
                .is_some_and(|w| w.starts_with("worker ")),
            "{row}"
        );
        let time = row["time"].as_str().unwrap();
        assert!(
            time.chars().filter(|c| *c == ':').count() == 2,
            "a clock time: {time}"
        );
        assert!(row["context"]
            .as_str()
            .unwrap()
            .contains("Traceback (most recent call last)"));
        browser.close().await;
    });
}

/// R5.4: the pool's card shows worker availability, queue size and request
/// rate.
#[test]
fn r5_4_pool_cards_show_worker_availability_queue_size_and_request_rate() {
    run(|h| async move {
        let browser = open(h).await;
        let held = h.hold(SIZE, "r5-4").await;
        let queued = h.queue(3).await;
        let (card, _) = browser.shown_after(
            "the held pool",
            unix_ms(),
            &format!(
                "return {{ available: (() => {{ {} }})(), busy: (() => {{ {} }})(), queue: (() => {{ {} }})() }};",
                stat("available"),
                stat("busy"),
                stat("queue")
            ),
        )
        .await;
        assert_eq!(
            card,
            json!({ "available": "0", "busy": SIZE.to_string(), "queue": "3" })
        );
        held.release().await;
        queued.finish().await;
        for i in 0..40 {
            h.pool
                .execute("echo", json!({ "i": i }), None)
                .await
                .unwrap();
        }
        let (rate, _) = browser
            .shown_after("the request rate", unix_ms(), &stat("rate"))
            .await;
        let rate: f64 = rate
            .as_str()
            .unwrap()
            .trim_end_matches("/s")
            .trim()
            .parse()
            .unwrap_or(0.0);
        assert!(rate > 0.0, "req/s shows {rate}");
        browser.close().await;
    });
}

/// R5.5: the status indicator follows readiness: unavailable, with the
/// failing check, while no worker is available (strict policy), healthy
/// after.
#[test]
fn r5_5_status_indicators_reflect_current_health_state() {
    run(|h| async move {
        let browser = open(h).await;
        h.controls
            .set_health(HealthConfig::default().with_readiness(ReadinessPolicy::Strict))
            .unwrap();
        let held = h.hold(SIZE, "r5-5").await;
        let (shown, _) = browser
            .shown_after(
                "the unavailable verdict",
                unix_ms(),
                "return { status: document.getElementById('health').dataset.status, \
                      reasons: document.getElementById('health-reasons').textContent };",
            )
            .await;
        assert_eq!(shown["status"], "unavailable", "{shown}");
        assert!(
            shown["reasons"].as_str().unwrap().contains("capacity"),
            "{shown}"
        );
        held.release().await;
        crate::common::eventually_async("a worker available", async || {
            crate::common::pool_state(POOL).is_some_and(|s| s.workers.available > 0)
        })
        .await;
        let (status, _) = browser
            .shown_after(
                "the healthy verdict",
                unix_ms(),
                "return document.getElementById('health').dataset.status;",
            )
            .await;
        assert_eq!(status, "healthy");
        browser.close().await;
    });
}

/// R5.6: a disabled dashboard answers 404, page and stream alike.
#[test]
fn r5_6_disabled_dashboard_endpoint_answers_404() {
    run(|h| async move {
        h.controls.set_enabled(Endpoint::Dashboard, false);
        for path in ["/dashboard", "/dashboard/events", "/dashboard/snapshot"] {
            assert_eq!(h.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        h.controls.set_enabled(Endpoint::Dashboard, true);
        assert_eq!(h.get("/dashboard").await.status, StatusCode::OK);
    });
}
