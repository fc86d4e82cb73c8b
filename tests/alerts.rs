//! Error-rate alerts fire past the threshold and resolve below the lower
//! one, with events and metrics. One test: the recorder is global.

mod common;

use std::time::{Duration, Instant};

use common::*;
use poolscope::alerts::{watch_error_rate, ErrorRateRule};
use poolscope::events::Event;
use poolscope::observe;

#[observe(pool = "alerting", command = "call")]
fn call(fail: bool) -> Result<(), std::fmt::Error> {
    if fail {
        return Err(std::fmt::Error);
    }
    Ok(())
}

fn gauge(text: &str) -> Option<f64> {
    common::sample(
        text,
        "poolscope_alerts_firing{rule=\"error_rate\",pool=\"alerting\"}",
    )
}

/// Calls `call(fail)` until `until` says stop or 5 s pass.
fn drive(fail: bool, until: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        for _ in 0..10 {
            let _ = call(fail);
        }
        if until() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn an_error_rate_alert_fires_and_resolves_with_hysteresis() {
    assert!(ErrorRateRule::new(-0.1).is_err());
    assert!(
        watch_error_rate(ErrorRateRule::new(0.5).unwrap().with_window(Duration::ZERO)).is_err()
    );

    let metrics = poolscope::metrics::install().unwrap();
    let captured = capture("alerting");
    let rule = ErrorRateRule::new(0.5)
        .unwrap()
        .with_window(Duration::from_millis(600))
        .with_min_requests(10)
        .with_every(Duration::from_millis(50));
    let watcher = watch_error_rate(rule).unwrap();

    // Healthy traffic: nothing fires.
    drive(false, || false_after(Duration::from_millis(400)));
    assert!(captured.names().iter().all(|n| !n.starts_with("alert.")));
    if !TIMING {
        // Without timing there are no request statistics to judge.
        drop(watcher);
        return;
    }

    // Failures: the rate passes 0.5 and the alert fires, once.
    assert!(
        drive(true, || captured.names().contains(&"alert.fired")),
        "no alert.fired within 5 s"
    );
    let fired = captured.take().into_iter().find_map(|e| match e {
        Event::AlertFired(a) => Some(a),
        _ => None,
    });
    let fired = fired.unwrap();
    assert_eq!(
        (
            fired.rule.as_str(),
            fired.pool.map(|p| p.as_str()),
            fired.threshold
        ),
        ("error_rate", Some("alerting"), 0.5)
    );
    assert!(fired.value > 0.5, "{}", fired.value);
    assert_eq!(gauge(&metrics.render()), Some(1.0));

    // Still failing: no second alert while it fires.
    drive(true, || false_after(Duration::from_millis(300)));
    assert!(
        !captured.names().contains(&"alert.fired"),
        "{:?}",
        captured.names()
    );

    // Healthy again: once the failures leave the window the rate drops
    // below 0.4 (0.8 × 0.5) and the alert resolves.
    assert!(
        drive(false, || captured.names().contains(&"alert.resolved")),
        "no alert.resolved within 5 s"
    );
    assert_eq!(gauge(&metrics.render()), Some(0.0));
    assert!(metrics
        .render()
        .contains("poolscope_alerts_fired_total{rule=\"error_rate\",pool=\"alerting\"} 1"));
    drop(watcher);
}

/// A stop condition that is true after `wait` (from its first call).
fn false_after(wait: Duration) -> bool {
    use std::sync::Mutex;
    static START: Mutex<Option<Instant>> = Mutex::new(None);
    let mut start = START.lock().unwrap();
    let began = *start.get_or_insert_with(Instant::now);
    if began.elapsed() >= wait {
        *start = None;
        true
    } else {
        false
    }
}
