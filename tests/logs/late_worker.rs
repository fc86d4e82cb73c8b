//! `events::set_worker`: a worker named in an observed call's body is on
//! that call's `request.completed`, sampled or not, and on no other. It
//! changes the process-wide sample rate, so it takes its turn
//! (`common::serial`).

use poolscope_testkit as common;

use common::*;
use poolscope::observe;

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}
impl std::error::Error for Refused {}

#[observe(pool = "sync-worker", command = "step")]
fn step() -> u32 {
    1
}

/// Names its worker after the nested observed call, as `set_worker` asks.
#[observe(pool = "sync-worker", command = "dispatch")]
fn dispatch(worker: u32, fail: bool) -> Result<u32, Refused> {
    let n = step();
    poolscope::events::set_worker(&worker);
    if fail {
        return Err(Refused);
    }
    Ok(n)
}

#[test]
fn a_worker_named_in_the_body_is_on_the_completion_and_on_no_other() {
    let _serial = serial();
    let captured = capture("sync-worker");
    dispatch(7, false).unwrap();
    poolscope::events::set_sample_rate(0.0);
    // Sampled out, a failure still names its worker.
    assert!(dispatch(8, true).is_err());
    poolscope::events::set_sample_rate(1.0);
    dispatch(9, false).unwrap();
    let workers: Vec<(String, Option<String>)> = completions(&captured.take())
        .into_iter()
        .map(|c| (c.command.as_str().to_owned(), c.worker.clone()))
        .collect();
    if !ANY {
        assert!(workers.is_empty());
        return;
    }
    let named = |w: &str| Some(w.to_owned());
    assert_eq!(
        workers,
        [
            ("step".to_owned(), None),
            ("dispatch".to_owned(), named("7")),
            ("dispatch".to_owned(), named("8")),
            ("step".to_owned(), None),
            ("dispatch".to_owned(), named("9")),
        ]
    );
}
