//! The Prometheus sink: install, custom buckets, application metrics, and
//! the exposition's shape. One test: the recorder and the buckets are global.

use poolscope_testkit as common;

use common::*;
use poolscope::observe;
use poolscope_testkit::TIMING;

#[observe(pool = "metrics", command = "job")]
fn job(ms: u64) -> Result<(), std::fmt::Error> {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    if ms == 0 {
        return Err(std::fmt::Error);
    }
    Ok(())
}

#[test]
fn install_renders_pool_series_call_sites_and_application_metrics() {
    poolscope::buckets::set_duration_buckets(&[0.001, 0.01, 0.1]).unwrap();
    let err = poolscope::buckets::set_duration_buckets(&[0.1, 0.01]).unwrap_err();
    assert!(err.to_string().contains("strictly increasing"), "{err}");

    let handle = poolscope::metrics::install().unwrap();
    assert!(matches!(
        poolscope::metrics::install(),
        Err(poolscope::metrics::MetricsError::AlreadyInstalled)
    ));

    let pool = poolscope::Pool::new("metrics");
    pool.queue_depth(2);
    metrics::counter!("app_widgets_total", "tier" => "gold").increment(3);
    job(2).unwrap();
    job(2).unwrap();
    job(0).unwrap_err();

    let text = handle.render();
    assert!(
        text.contains("app_widgets_total{tier=\"gold\"} 3"),
        "application metrics appear in every build:\n{text}"
    );
    if !ANY {
        assert!(
            !text.contains("poolscope_"),
            "compiled out: poolscope records nothing of its own:\n{text}"
        );
        assert_eq!(poolscope::metrics::render(), "");
        return;
    }
    assert!(text.contains("poolscope_queue_depth{pool=\"metrics\"} 2"));
    if TIMING {
        for line in [
            r#"poolscope_requests_total{pool="metrics",command="job",outcome="ok"} 2"#,
            r#"poolscope_requests_total{pool="metrics",command="job",outcome="error"} 1"#,
            r#"poolscope_request_duration_seconds_bucket{pool="metrics",command="job",outcome="ok",le="0.001"} 0"#,
            r#"poolscope_request_duration_seconds_bucket{pool="metrics",command="job",outcome="ok",le="+Inf"} 2"#,
            r#"poolscope_request_duration_seconds_count{pool="metrics",command="job",outcome="error"} 1"#,
            r#"poolscope_requests_in_flight{pool="metrics",command="job"} 0"#,
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert!(
            !text.contains("le=\"0.05\""),
            "the custom buckets replace the defaults"
        );
    }
    let sorted = |t: &str| {
        let mut lines: Vec<String> = t.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    // The exporter's family order varies between renders; the content does not.
    assert_eq!(
        sorted(&text),
        sorted(&handle.clone().render()),
        "rendering has no side effects on values"
    );
    assert!(poolscope::metrics::render().len() < text.len());
}
