//! A failure keeps its context whether or not its start was sampled: the
//! worker, pool, command, arguments (sanitized) and correlation id. The
//! sampling rate is process-wide, so the test takes its turn
//! (`common::serial`).

use poolscope_testkit as common;

use common::*;
use poolscope::observe;
use poolscope_testkit::CORRELATION;

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

#[observe(pool = "sampled", command = "exec", worker = format!("w-{worker}"))]
fn exec(worker: u32, payload: &str, password: &str) -> Result<(), Refused> {
    if payload == "bad" || password.is_empty() {
        return Err(Refused);
    }
    Ok(())
}

#[test]
fn a_failure_sampled_out_at_its_start_still_names_worker_and_arguments() {
    let _serial = serial();
    let captured = capture("sampled");
    poolscope::events::set_sample_rate(0.0);
    for i in 0..20 {
        let _ = exec(i, if i % 4 == 0 { "bad" } else { "good" }, "hunter2");
    }
    poolscope::events::set_sample_rate(1.0);
    let events = captured.take();
    let completed = completions(&events);
    if !ANY {
        assert!(events.is_empty());
        return;
    }
    assert!(
        !events.iter().any(|e| e.name() == "request.started"),
        "every start was sampled out"
    );
    // Successes are sampled away; every failure is kept, whole.
    assert_eq!(completed.len(), 5, "{completed:?}");
    for (n, failure) in completed.iter().enumerate() {
        let worker = n * 4;
        assert_eq!(
            failure.worker.as_deref(),
            Some(format!("w-{worker}").as_str())
        );
        assert_eq!(failure.pool.as_str(), "sampled");
        assert_eq!(failure.command.as_str(), "exec");
        let args: Vec<(&str, &str)> = failure
            .args
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect();
        assert_eq!(args[0], ("worker", worker.to_string().as_str()));
        assert_eq!(args[1], ("payload", "\"bad\""));
        assert_eq!(args[2].0, "password");
        assert!(!args[2].1.contains("hunter2"), "sanitized: {args:?}");
        assert_eq!(failure.correlation_id.is_some(), CORRELATION);
    }
}
