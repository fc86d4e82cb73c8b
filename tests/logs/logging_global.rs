//! With the global subscriber (`logging::init`, what applications use),
//! every request line of every thread is written: nothing is lost when many
//! threads log at once. The subscriber is global, and it counts every
//! request line of the process: the test takes its turn (`common::serial`).

use poolscope_testkit as common;

use common::*;
use poolscope::logging::{init, LogConfig};
use poolscope::observe;
use poolscope_testkit::CORRELATION;

#[observe(pool = "global-logs", command = "job")]
fn job(i: u64) -> Result<u64, std::fmt::Error> {
    if i % 50 == 49 {
        return Err(std::fmt::Error);
    }
    Ok(i)
}

#[test]
fn every_thread_s_request_lines_are_written() {
    let _serial = serial();
    let buffer = Buffer::default();
    // Dropping the guard waits for every line, however slow this machine.
    let guard = init(
        LogConfig::json()
            .with_flush_timeout(PATIENCE)
            .with_writer(buffer.clone()),
    )
    .unwrap();
    on_threads(4, 500, |i| {
        let _ = job(i);
    })
    .join();
    drop(guard);
    // Nothing was dropped (the buffer holds 128,000 lines), so what was
    // emitted is what was written.
    let text = buffer.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |event: &str, outcome: Option<&str>| {
        lines
            .iter()
            .filter(|l| l["event"] == event && outcome.is_none_or(|o| l["outcome"] == o))
            .count()
    };
    if !ANY {
        assert_eq!(count("request.started", None), 0);
        return;
    }
    assert_eq!(count("request.started", None), 2_000);
    assert_eq!(count("request.completed", Some("ok")), 1_960);
    assert_eq!(count("request.completed", Some("error")), 40);
    if CORRELATION {
        assert!(lines
            .iter()
            .filter(|l| l["event"].is_string())
            .all(|l| l["correlation_id"].is_string()));
    }
}
