//! The run-time switch. One test in its own binary: the switch is global.

use poolscope_testkit as common;

use common::*;
use poolscope::observe;

#[observe(pool = "switch")]
fn call() -> Option<poolscope::correlation::CorrelationId> {
    poolscope::correlation::current()
}

#[test]
fn switched_off_records_nothing_and_back_on_records_again() {
    let captured = capture("switch");
    assert!(call().is_some() == CORRELATION);

    poolscope::set_enabled(false);
    assert!(!poolscope::is_enabled());
    assert_eq!(call(), None, "no scope is opened while off");
    let pool = poolscope::Pool::new("switch");
    pool.saturated(1, 0);
    let during = captured.names().len();

    poolscope::set_enabled(true);
    assert_eq!(poolscope::is_enabled(), ANY);
    call();

    let counts = outcome_counts("switch", "call");
    assert_eq!(
        counts,
        if TIMING { [2, 0, 0, 0] } else { [0; 4] },
        "the call made while off is not counted"
    );
    let names = captured.names();
    if ANY {
        assert_eq!(during, 2, "only the first call's events");
        assert_eq!(
            names,
            [
                "request.started",
                "request.completed",
                "request.started",
                "request.completed"
            ]
        );
    } else {
        assert!(names.is_empty());
    }
}
