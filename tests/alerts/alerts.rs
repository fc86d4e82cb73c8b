//! Error-rate alerts fire past the threshold and resolve below the lower
//! one, with events and metrics. The hysteresis is checked step by step on
//! an evaluator driven through time by the test, so the very evaluation
//! that must fire or resolve is known whatever the machine's speed; the
//! watcher thread is checked for its wiring. Error-rate rules judge every
//! pool, so these tests take turns (`common::serial`).

use poolscope_testkit as common;

use std::time::{Duration, Instant};

use common::*;
use poolscope::alerts::{watch_error_rate, AlertEvaluator, AlertRule, ErrorRateRule};
use poolscope::events::Event;
use poolscope::observe;
use poolscope_testkit::TIMING;

#[observe(pool = "alerting", command = "call")]
fn call(fail: bool) -> Result<(), std::fmt::Error> {
    if fail {
        return Err(std::fmt::Error);
    }
    Ok(())
}

#[observe(pool = "alerting-thread", command = "call")]
fn call_watched(fail: bool) -> Result<(), std::fmt::Error> {
    if fail {
        return Err(std::fmt::Error);
    }
    Ok(())
}

fn gauge(text: &str, pool: &str) -> Option<f64> {
    common::sample(
        text,
        &format!("poolscope_alerts_firing{{rule=\"error_rate\",pool=\"{pool}\"}}"),
    )
}

fn alert_names(captured: &Captured) -> Vec<&'static str> {
    captured
        .names()
        .into_iter()
        .filter(|n| n.starts_with("alert."))
        .collect()
}

#[test]
fn an_error_rate_alert_fires_and_resolves_with_hysteresis() {
    let _serial = serial();
    assert!(ErrorRateRule::new(-0.1).is_err());
    assert!(
        watch_error_rate(ErrorRateRule::new(0.5).unwrap().with_window(Duration::ZERO)).is_err()
    );

    let metrics = common::recorder!();
    let captured = capture("alerting");
    // Fires above 0.5, resolves at 0.4 (0.8 of it), judged over 1 s.
    let rule = ErrorRateRule::new(0.5)
        .unwrap()
        .with_window(Duration::from_secs(1))
        .with_min_requests(10);
    let mut alerts = AlertEvaluator::new(vec![AlertRule::from(&rule)]).unwrap();
    // A batch of ten calls every 100 ms of the evaluator's time: each
    // evaluation's window holds exactly the last ten batches.
    let start = Instant::now();
    let mut step = 0u32;
    let mut batch = |fail: bool, alerts: &mut AlertEvaluator| {
        for _ in 0..10 {
            let _ = call(fail);
        }
        step += 1;
        alerts.evaluate_at(start + Duration::from_millis(100) * step);
    };

    // Healthy traffic: nothing fires.
    for _ in 0..10 {
        batch(false, &mut alerts);
    }
    assert_eq!(alert_names(&captured), Vec::<&str>::new());
    if !TIMING {
        // Without timing there are no request statistics to judge.
        return;
    }

    // Failures: the window's error rate goes 0.1, 0.2, ... and passes 0.5
    // at the sixth failing batch, which fires, once.
    for failing in 1..=5 {
        batch(true, &mut alerts);
        assert_eq!(alert_names(&captured), Vec::<&str>::new(), "{failing}");
    }
    batch(true, &mut alerts);
    let fired: Vec<_> = captured
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::AlertFired(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (
            fired[0].rule.as_str(),
            fired[0].pool.map(|p| p.as_str()),
            fired[0].threshold,
            fired[0].value
        ),
        ("error_rate", Some("alerting"), 0.5, 0.6)
    );
    assert_eq!(gauge(&metrics.render(), "alerting"), Some(1.0));

    // Still failing, up to every request: no second alert while it fires.
    for _ in 0..10 {
        batch(true, &mut alerts);
    }
    assert_eq!(alert_names(&captured), Vec::<&str>::new());

    // Healthy again: 0.9, 0.8, ... above 0.4 the alert holds (no flapping
    // around the threshold), and it resolves at the sixth healthy batch.
    for healthy in 1..=5 {
        batch(false, &mut alerts);
        assert_eq!(alert_names(&captured), Vec::<&str>::new(), "{healthy}");
    }
    batch(false, &mut alerts);
    assert_eq!(alert_names(&captured), vec!["alert.resolved"]);
    assert_eq!(gauge(&metrics.render(), "alerting"), Some(0.0));
    assert!(metrics
        .render()
        .contains("poolscope_alerts_fired_total{rule=\"error_rate\",pool=\"alerting\"} 1"));
}

#[test]
fn the_watcher_thread_evaluates_on_its_own_and_resolves_when_dropped() {
    let _serial = serial();
    if !TIMING {
        return;
    }
    let metrics = common::recorder!();
    let captured = capture("alerting-thread");
    let watcher = watch_error_rate(
        ErrorRateRule::new(0.5)
            .unwrap()
            .with_min_requests(10)
            .with_every(Duration::from_millis(50)),
    )
    .unwrap();
    eventually("the watcher fires on failures", || {
        for _ in 0..10 {
            let _ = call_watched(true);
        }
        captured.names().contains(&"alert.fired")
    });
    assert_eq!(gauge(&metrics.render(), "alerting-thread"), Some(1.0));
    drop(watcher);
    assert_eq!(
        alert_names(&captured),
        vec!["alert.fired", "alert.resolved"]
    );
    assert_eq!(gauge(&metrics.render(), "alerting-thread"), Some(0.0));
}
