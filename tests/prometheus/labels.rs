//! `#[observe(labels(..))]`: extra static labels on a call site's series,
//! rendered on /metrics, accepted by promtool, and shared by sites with the
//! same labels.

use poolscope_testkit as common;

use poolscope::observe;
use poolscope_testkit::TIMING;

#[observe(pool = "labels", command = "buy", labels(tier = "gold", region = "eu"))]
fn buy_gold(n: u64) -> Result<u64, std::fmt::Error> {
    if n == 3 {
        Err(std::fmt::Error)
    } else {
        Ok(n)
    }
}

#[observe(pool = "labels", command = "buy", labels(tier = "silver"))]
fn buy_silver(n: u64) -> u64 {
    n
}

// Same labels as `buy_gold`, another function: the same series.
#[observe(pool = "labels", command = "buy", labels(tier = "gold", region = "eu"))]
fn buy_gold_again(n: u64) -> u64 {
    n
}

#[test]
fn extra_labels_make_their_own_series_and_pass_promtool() {
    let handle = poolscope::metrics::install().expect("recorder");
    for i in 0..5 {
        let _ = buy_gold(i);
        buy_silver(i);
    }
    buy_gold_again(9);
    let text = handle.render();
    if TIMING {
        for line in [
            "poolscope_requests_total{pool=\"labels\",command=\"buy\",tier=\"gold\",region=\"eu\",outcome=\"ok\"} 5",
            "poolscope_requests_total{pool=\"labels\",command=\"buy\",tier=\"gold\",region=\"eu\",outcome=\"error\"} 1",
            "poolscope_requests_total{pool=\"labels\",command=\"buy\",tier=\"silver\",outcome=\"ok\"} 5",
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
        // The pool's totals still add every labelled series up.
        let totals = poolscope::stats::pools()
            .into_iter()
            .find(|p| p.pool.as_str() == "labels")
            .and_then(|p| p.requests)
            .expect("the pool's totals");
        assert_eq!(totals.completed(), 11);
        assert_eq!(totals.failed(), 1);
    }
    common::promtool_check(&text);
}
