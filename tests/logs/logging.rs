//! Structured logs: JSON structure, correlation ids on every line inside an
//! observed call (nested, async, errors), sanitizing, level filtering,
//! sampling, and dropped lines counted. Tests share the process-wide sample
//! rate, so they take turns (`common::serial`).

use poolscope_testkit as common;

use common::*;
use poolscope::error::PythonError;
use poolscope::logging::{dispatch, LogConfig};
use poolscope::observe;
use serde_json::Value;

/// Runs `f` with a JSON logger writing into a buffer, and returns the lines.
fn logged(config: LogConfig, f: impl FnOnce()) -> Buffer {
    let buffer = Buffer::default();
    let config = config
        .with_flush_timeout(PATIENCE)
        .with_writer(buffer.clone());
    let (dispatch, guard) = dispatch(config).unwrap();
    tracing::dispatcher::with_default(&dispatch, f);
    drop(guard); // waits until every line is written
    buffer
}

#[observe(pool = "log", command = "inner")]
fn inner(n: u32) -> u32 {
    tracing::info!(step = n, "working");
    n
}

#[observe(pool = "log", command = "outer")]
fn outer(password: &str) -> u32 {
    tracing::info!("outer called with password={password}");
    inner(1) + inner(2)
}

#[observe(pool = "log", command = "predict")]
fn predict(traceback: &str) -> Result<u32, PythonError> {
    Err(PythonError::parse(traceback).unwrap())
}

#[observe(pool = "log", command = "async")]
async fn fetch() -> u32 {
    tokio::task::yield_now().await;
    tracing::info!("inside async");
    inner(3)
}

const TRACEBACK: &str = "Traceback (most recent call last):\n  File \"worker.py\", line 7, in predict\n    model.run(token='tb-token-123')\nRuntimeError: CUDA out of memory\n";

#[test]
fn json_lines_have_one_structure_and_a_correlation_id_inside_every_call() {
    let _serial = serial();
    let lines = logged(LogConfig::json(), || {
        outer("hunter2");
        predict(TRACEBACK).unwrap_err();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(fetch());
        tracing::info!("outside any call");
    })
    .json();
    if !ANY {
        // Compiled out: only the application's own lines.
        assert_eq!(lines.iter().filter(|l| l.get("event").is_some()).count(), 0);
        assert!(lines.iter().all(|l| l.get("correlation_id").is_none()));
        return;
    }
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(
                line.get(key).is_some_and(Value::is_string),
                "`{key}` in {line}"
            );
        }
        let ts = line["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
        assert!(
            !line.to_string().contains("hunter2") && !line.to_string().contains("tb-token-123"),
            "{line}"
        );
    }
    let of =
        |event: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event"] == event).collect() };
    // outer, inner, inner, predict, async, inner: six requests.
    assert_eq!(of("request.started").len(), 6);
    assert_eq!(of("request.completed").len(), 6);

    // Everything logged inside `outer` — its own lines, the nested calls'
    // and the application's — carries one id.
    let outer_id = of("request.started")[0]["correlation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(outer_id.is_empty(), !CORRELATION);
    let inside_outer: Vec<&Value> = lines
        .iter()
        .take_while(|l| !(l["event"] == "request.completed" && l["command"] == "outer"))
        .collect();
    assert!(inside_outer.len() >= 8, "{inside_outer:?}");
    if CORRELATION {
        assert!(
            inside_outer
                .iter()
                .all(|l| l["correlation_id"] == outer_id.as_str()),
            "{inside_outer:#?}"
        );
        let app_line = lines
            .iter()
            .find(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("outer called"))
            })
            .unwrap();
        assert_eq!(app_line["message"], "outer called with password=[REDACTED]");
        let async_line = lines
            .iter()
            .find(|l| l["message"] == "inside async")
            .unwrap();
        assert!(
            async_line["correlation_id"].is_string(),
            "the id crosses .await: {async_line}"
        );
    }
    assert!(lines
        .iter()
        .find(|l| l["message"] == "outside any call")
        .unwrap()
        .get("correlation_id")
        .is_none());

    let started = of("request.started")[0];
    assert_eq!(
        (
            started["pool"].as_str(),
            started["command"].as_str(),
            started["level"].as_str()
        ),
        (Some("log"), Some("outer"), Some("INFO"))
    );
    assert_eq!(
        started["args"]["password"], "[REDACTED]",
        "an argument named like a secret is redacted whole"
    );

    let failed: Vec<&Value> = of("request.completed")
        .into_iter()
        .filter(|l| l["outcome"] == "error")
        .collect();
    assert_eq!(failed.len(), 1);
    let failed = failed[0];
    assert_eq!(failed["level"], "ERROR");
    if TIMING {
        assert!(
            failed["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
            "{failed}"
        );
    }
    if CORRELATION {
        assert!(failed["correlation_id"].is_string());
    }
    if ERRORS {
        let error = &failed["error"];
        assert_eq!(error["message"], "RuntimeError: CUDA out of memory");
        assert_eq!(error["python"]["frames"][0]["function"], "predict");
        assert_eq!(
            error["python"]["frames"][0]["source"],
            "model.run(token='[REDACTED]')"
        );
    }
}

#[test]
fn nothing_below_the_level_is_written_but_errors_are() {
    let _serial = serial();
    let lines = logged(LogConfig::json().with_level("warn").unwrap(), || {
        for _ in 0..10 {
            inner(1);
        }
        predict(TRACEBACK).unwrap_err();
        tracing::info!("hidden");
        tracing::warn!("shown");
    })
    .json();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        !messages.contains(&"hidden") && messages.contains(&"shown"),
        "{messages:?}"
    );
    assert!(lines
        .iter()
        .all(|l| l["level"] == "WARN" || l["level"] == "ERROR"));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["event"] == "request.completed")
            .count(),
        if ANY { 1 } else { 0 }
    );
}

#[observe(pool = "log-sampled", command = "job")]
fn job(i: u32) -> Result<u32, std::fmt::Error> {
    if i.is_multiple_of(10) {
        return Err(std::fmt::Error);
    }
    Ok(i)
}

#[test]
fn sampling_keeps_about_the_rate_and_every_error() {
    let _serial = serial();
    let lines = logged(LogConfig::json().with_sample_rate(0.1).unwrap(), || {
        for i in 0..10_000 {
            let _ = job(i);
        }
    })
    .json();
    poolscope::events::set_sample_rate(1.0);
    if !ANY {
        return;
    }
    let started = lines
        .iter()
        .filter(|l| l["event"] == "request.started")
        .count();
    // Binomial(10,000, 0.1): mean 1,000, standard deviation 30; ±5 sd.
    assert!(
        (850..=1_150).contains(&started),
        "{started} request starts logged"
    );
    let errors = lines
        .iter()
        .filter(|l| l["event"] == "request.completed" && l["outcome"] == "error")
        .count();
    assert_eq!(
        errors, 1_000,
        "every failure is logged whatever the sampling"
    );
}

#[observe(kind = worker_start, pool = "log-start", worker = id)]
fn start_worker(id: u32) -> Result<(), std::io::Error> {
    Ok(())
}

#[observe(pool = "log-sampled-out", command = "run", worker = format!("w{shard}"))]
fn run(shard: u32, payload: &str) -> Result<u32, std::fmt::Error> {
    if payload == "bad" {
        return Err(std::fmt::Error);
    }
    Ok(shard)
}

#[test]
fn unknown_fields_are_left_out_and_a_sampled_out_failure_keeps_its_context() {
    let _serial = serial();
    let lines = logged(LogConfig::json().with_sample_rate(0.0).unwrap(), || {
        start_worker(7).unwrap();
        let _ = run(3, "good");
        let _ = run(4, "bad");
    })
    .json();
    poolscope::events::set_sample_rate(1.0);
    if !ANY {
        return;
    }
    let started = lines
        .iter()
        .find(|l| l["event"] == "worker.started")
        .expect("a worker.started line");
    assert_eq!(started["worker"], "7");
    assert!(
        started.get("pid").is_none(),
        "the attribute knows no pid: no `pid` key, not 0: {started}"
    );
    assert_eq!(started.get("startup_ms").is_some(), TIMING, "{started}");
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "request.completed")
        .collect();
    assert_eq!(failed.len(), 1, "the success was sampled away: {lines:?}");
    let failed = failed[0];
    assert_eq!(failed["outcome"], "error");
    assert_eq!(failed["worker"], "w4", "{failed}");
    assert_eq!(failed["args"]["payload"], "\"bad\"", "{failed}");
    assert_eq!(failed["pool"], "log-sampled-out");
    assert_eq!(failed["command"], "run");
    assert_eq!(
        failed.get("correlation_id").is_some(),
        CORRELATION,
        "{failed}"
    );
}

#[test]
fn the_human_format_is_one_readable_line() {
    let _serial = serial();
    let lines = logged(LogConfig::human(), || {
        inner(7);
        tracing::warn!(user = "ann", "token=abc123def is odd");
    })
    .lines();
    let last = lines.last().unwrap();
    assert!(
        last.contains(" WARN logs::logging: token=[REDACTED] is odd user=ann"),
        "{last}"
    );
    if ANY {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("INFO poolscope::request: request completed")
                    && l.contains("command=inner")),
            "{lines:#?}"
        );
    }
}

#[test]
fn a_full_buffer_drops_lines_and_counts_them() {
    let _serial = serial();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // A destination that accepts nothing until the burst is over, so the
    // outcome does not depend on how fast either side runs.
    let destination = Gated::default();
    let config = LogConfig::json()
        .with_buffer_lines(8)
        .unwrap()
        .with_writer(destination.clone());
    let (dispatch, guard) = metrics::with_local_recorder(&recorder, || dispatch(config)).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..500 {
                tracing::info!(i, "burst");
            }
        });
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(PATIENCE)
        .expect("logging waited for a writer that accepts nothing");
    // The buffer holds 8 lines and the writer at most one more, stuck in
    // its write: everything else is dropped, and counted.
    let stuck = guard.lines();
    assert_eq!(stuck.emitted, 500);
    assert!(
        (491..=492).contains(&stuck.dropped),
        "{stuck:?}: 8 or 9 lines held"
    );
    eventually("the metrics show the counts", || {
        let text = handle.render();
        sample(&text, "poolscope_log_lines_total") == Some(500.0)
            && sample(&text, "poolscope_log_lines_dropped_total") == Some(stuck.dropped as f64)
    });
    destination.open();
    eventually("the buffer drains", || {
        guard.lines().written == 500 - stuck.dropped
    });
    assert_eq!(destination.lines(), 500 - stuck.dropped);
    assert_eq!(guard.lines().failed, 0);
    drop(guard);
}

/// An output that takes a millisecond a line.
#[derive(Clone, Default)]
struct Slow(Buffer);

impl std::io::Write for Slow {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(std::time::Duration::from_millis(1));
        self.0.write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn dropping_the_guard_waits_for_a_slow_output_to_take_every_line() {
    let _serial = serial();
    // 2,000 lines take at least 2 s to write: longer than the second
    // tracing-appender's own guard waits, on any machine.
    let output = Slow::default();
    let config = LogConfig::json()
        .with_flush_timeout(PATIENCE)
        .with_writer(output.clone());
    let (dispatch, guard) = dispatch(config).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..2_000 {
            tracing::info!(i, "line");
        }
    });
    drop(guard);
    assert_eq!(output.0.lines().len(), 2_000);
}

#[test]
fn dropping_the_guard_gives_up_on_a_stuck_output_after_the_flush_timeout() {
    let _serial = serial();
    let output = Gated::default();
    // Longer than the 5 s default, so the wait shows the setting is used.
    let timeout = std::time::Duration::from_millis(5_500);
    let config = LogConfig::json()
        .with_flush_timeout(timeout)
        .with_writer(output.clone());
    let (dispatch, guard) = dispatch(config).unwrap();
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("never written"));
    let (done, dropped) = std::sync::mpsc::channel();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        drop(guard);
        done.send(()).unwrap();
    });
    dropped
        .recv_timeout(PATIENCE)
        .expect("the guard waited for an output that never takes a line");
    assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
    assert_eq!(output.lines(), 0);
    output.open();
}

#[test]
fn bad_configuration_is_rejected_with_the_reason() {
    let err = LogConfig::json().with_level("info,=bogus==").unwrap_err();
    assert!(
        err.to_string().contains("invalid log level filter"),
        "{err}"
    );
    assert!(LogConfig::json().with_sample_rate(1.5).is_err());
    assert!(LogConfig::json().with_buffer_lines(0).is_err());
}
