//! The JSON log line of a Python failure in the flagship pool carries the
//! request's correlation id and traceback. Its own binary: the log sink and
//! `tracing`'s level cache are process-wide, and other pools' events would
//! otherwise flow through them.

use poolscope_testkit as common;
use python_pool as pool;

use common::*;
use pool::{PoolConfig, PoolError};
use serde_json::json;

// The flagship builds poolscope with every aspect (feature `full`).
const TIMING: bool = true;
const CORRELATION: bool = true;
const ERRORS: bool = true;

fn config(name: &str, size: usize) -> PoolConfig {
    let mut config = PoolConfig::new(name);
    config.size = size;
    config.start_timeout = std::time::Duration::from_secs(120);
    config
}

#[test]
fn the_log_line_of_a_python_failure_has_the_request_id_and_traceback() {
    let buffer = Buffer::default();
    let (dispatch, guard) = poolscope::logging::dispatch(
        // Dropping the guard waits until every line is written.
        poolscope::logging::LogConfig::json()
            .with_flush_timeout(PATIENCE)
            .with_writer(buffer.clone()),
    )
    .unwrap();
    let err = tracing::dispatcher::with_default(&dispatch, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let pool = pool::start(config("pp-logs", 1)).await.unwrap();
            let err = pool.execute("fail", json!({ "message": "no GPU" }), None).await.unwrap_err();
            // The worker's own log line of it comes through its stderr.
            eventually_async("the worker's log line", async || {
                buffer.text().contains("command raised")
            })
            .await;
            // The metrics text counts it too.
            let text = poolscope::metrics::render();
            if TIMING {
                assert!(text.contains("poolscope_requests_total{pool=\"pp-logs\",command=\"fail\",outcome=\"error\"} 1"), "{text}");
            }
            pool.shutdown();
            err
        })
    });
    drop(guard);
    let PoolError::Python { correlation_id, .. } = err else {
        panic!("not a Python error")
    };
    let text = buffer.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    if !ANY {
        return;
    }
    let line = lines
        .iter()
        .find(|l| l["event"] == "request.completed" && l["command"] == "fail")
        .unwrap_or_else(|| panic!("no failure line in {text}"));
    assert_eq!(line["level"], "ERROR");
    if CORRELATION {
        assert_eq!(
            line["correlation_id"].as_str(),
            Some(correlation_id.as_str())
        );
        let started = lines
            .iter()
            .find(|l| l["event"] == "request.started" && l["command"] == "fail")
            .unwrap();
        assert_eq!(started["correlation_id"], line["correlation_id"]);
    }
    if ERRORS {
        assert_eq!(line["error"]["python"]["type"], "ValueError");
        assert!(line["error"]["python"]["traceback"]
            .as_str()
            .unwrap()
            .contains("worker.py"));
    }
    // The worker's JSON lines are in the host's stream: its INFO line for
    // the request and its ERROR line for the exception, with the worker,
    // its pid, the request's correlation id and its other fields.
    let worker_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "worker.log" && l["target"] == "poolscope::worker")
        .collect();
    let raised = worker_lines
        .iter()
        .find(|l| l["message"] == "command raised")
        .unwrap_or_else(|| panic!("no worker line in {text}"));
    assert_eq!(raised["level"], "ERROR");
    assert_eq!(raised["pool"], "pp-logs");
    assert_eq!(raised["worker"], "0");
    assert!(
        raised["pid"].as_u64().is_some_and(|pid| pid > 0),
        "{raised}"
    );
    assert_eq!(raised["extra"]["exception"], "ValueError");
    assert_eq!(raised["extra"]["command"], "fail");
    if CORRELATION {
        assert_eq!(
            raised["correlation_id"].as_str(),
            Some(correlation_id.as_str())
        );
    }
    assert!(
        worker_lines
            .iter()
            .any(|l| l["message"] == "executing" && l["level"] == "INFO"),
        "{text}"
    );
}
