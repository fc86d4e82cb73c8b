//! Saturation as episodes: one `pool.saturated` when a pool becomes
//! saturated, one `pool.saturation_ended` when it has stayed clear for the
//! hold, and the counters that follow them.

use poolscope_testkit as common;

use std::time::Duration;

use common::*;
use poolscope::events::Event;
use poolscope::Pool;

fn ended(events: &[Event]) -> Vec<&poolscope::events::PoolSaturationEnded> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PoolSaturationEnded(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn many_reports_in_one_episode_are_one_event_and_one_count() {
    let captured = capture("episodes-one");
    let pool = Pool::builder("episodes-one")
        .with_saturation_hold(Duration::ZERO)
        .build();
    for queued in 1..=500 {
        pool.saturated(queued, 0);
    }
    assert_eq!(pool.is_saturated(), ANY);
    std::thread::sleep(Duration::from_millis(20));
    pool.saturation_ended();
    // A second episode.
    pool.saturated(3, 1);
    pool.queue_depth(0);
    let events = captured.take();
    if !ANY {
        assert!(events.is_empty());
        return;
    }
    let names: Vec<_> = events.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "pool.saturated",
            "pool.saturation_ended",
            "pool.saturated",
            "pool.saturation_ended"
        ]
    );
    let Event::PoolSaturated(first) = &events[0] else {
        unreachable!()
    };
    assert_eq!((first.queue_size, first.available_workers), (1, 0));
    let ends = ended(&events);
    assert_eq!(ends[0].peak_queue_size, 500);
    assert!(ends[0].duration >= Duration::from_millis(20), "{ends:?}");
    assert_eq!(ends[1].peak_queue_size, 3);
    let state = pool_state("episodes-one").unwrap();
    assert_eq!(state.saturations, 2);
    assert!(!state.saturated);
    assert!(state.saturated_nanos >= 20_000_000, "{state:?}");
}

#[test]
fn a_saturation_within_the_hold_continues_the_episode() {
    let captured = capture("episodes-hold");
    let pool = Pool::builder("episodes-hold")
        .with_saturation_hold(Duration::from_millis(300))
        .build();
    // A pool that drains between bursts it cannot keep up with.
    for _ in 0..20 {
        pool.saturated(4, 0);
        pool.queue_depth(0);
    }
    assert!(!pool.is_saturated(), "clear, in its hold");
    assert_eq!(
        captured.names(),
        if ANY { vec!["pool.saturated"] } else { vec![] }
    );
    std::thread::sleep(Duration::from_millis(350));
    // The hold has passed: the next read of the pool's state ends it.
    let state = pool_state("episodes-hold");
    let events = captured.take();
    if !ANY {
        assert!(events.is_empty());
        return;
    }
    let state = state.unwrap();
    assert_eq!(state.saturations, 1);
    let ends = ended(&events);
    assert_eq!(ends.len(), 1, "{events:?}");
    // The episode lasted until the pool came clear, not through the hold.
    assert!(ends[0].duration < Duration::from_millis(300), "{ends:?}");
}

#[cfg(feature = "metrics")]
#[test]
fn the_time_saturated_is_a_counter_in_seconds_that_passes_promtool() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = poolscope::metrics::MetricsHandle::from_prometheus(recorder.handle());
    let pool = metrics::with_local_recorder(&recorder, || {
        Pool::builder("episodes-seconds")
            .with_saturation_hold(Duration::ZERO)
            .build()
    });
    let series = r#"poolscope_pool_saturated_seconds_total{pool="episodes-seconds"}"#;
    metrics::with_local_recorder(&recorder, || pool.saturated(2, 0));
    std::thread::sleep(Duration::from_millis(30));
    let running = handle.render();
    std::thread::sleep(Duration::from_millis(30));
    metrics::with_local_recorder(&recorder, || pool.saturation_ended());
    let after = handle.render();
    std::thread::sleep(Duration::from_millis(30));
    let later = handle.render();
    if !ANY {
        assert_eq!(sample(&after, series).unwrap_or(0.0), 0.0, "{after}");
        return;
    }
    promtool_check(&after);
    let (running, after, later) = (
        expect_sample(&running, series),
        expect_sample(&after, series),
        expect_sample(&later, series),
    );
    // An open episode counts up to now; an ended one stops counting.
    assert!(running >= 0.03, "{running}");
    assert!(after >= running + 0.03, "{after} after {running}");
    assert_eq!(later, after);
    assert_eq!(
        expect_sample(
            &handle.render(),
            r#"poolscope_pool_saturated_total{pool="episodes-seconds"}"#
        ),
        1.0
    );
}
