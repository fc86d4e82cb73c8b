//! `poolscope::serve`: every compiled-in endpoint in one call, the
//! Prometheus recorder installed with it — in every build, so with no
//! aspect the application's own metrics are still served.

use poolscope_testkit as common;
use poolscope_testkit::client;

use client::get;
use poolscope::metrics::{counter, describe_counter};

#[tokio::test]
async fn one_call_serves_health_and_the_applications_metrics_in_every_build() {
    let server = poolscope::serve("127.0.0.1:0").expect("serves");
    let addr = server.local_addr();
    describe_counter!("app_jobs_total", "Jobs the application ran.");
    counter!("app_jobs_total", "queue" => "fast").increment(3);
    let pool = poolscope::Pool::new("serve-pool");
    pool.set_size(2);

    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(
        metrics.body.contains("app_jobs_total{queue=\"fast\"} 3"),
        "the application's metric, with aspects {}: {}",
        if common::ANY { "on" } else { "off" },
        metrics.body
    );
    assert_eq!(
        metrics
            .body
            .contains("poolscope_pool_size{pool=\"serve-pool\"} 2"),
        common::ANY,
        "poolscope's own series only where it records: {}",
        metrics.body
    );
    common::promtool_check(&metrics.body);
    assert_eq!(get(addr, "/health").await.status, 200);
    assert!(get(addr, "/health/ready").await.status.is_success() || common::ANY);
    assert!(poolscope::metrics::installed().is_some());

    // A second server in the same process keeps the recorder it found.
    let second = poolscope::serve("127.0.0.1:0").expect("a second server");
    let again = get(second.local_addr(), "/metrics").await;
    assert!(again.body.contains("app_jobs_total"), "{}", again.body);
    second.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_address_that_does_not_resolve_is_a_clear_error() {
    let err = poolscope::serve("not an address").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot listen on `not an address`"),
        "{text}"
    );
}

#[test]
fn outside_a_runtime_serve_says_so() {
    let err = poolscope::serve("127.0.0.1:0").unwrap_err();
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
}
