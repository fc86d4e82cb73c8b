//! Requirement 4: structured JSON logs with correlation ids, secrets
//! sanitized.

use serde_json::{json, Value};

use crate::harness::{run, POOL};
use crate::pool::PoolError;

/// A GitHub token of the published format: gitleaks' rule finds it
/// wherever it is written.
const TOKEN: &str = "ghp_R4conformanceTokenAbCdEfGhIjKlMnOp1234";

fn correlation_of(err: &PoolError) -> String {
    match err {
        PoolError::Python { correlation_id, .. } => correlation_id.clone(),
        other => panic!("not a Python error: {other}"),
    }
}

/// R4.1: a request's start is logged with its correlation id and its
/// arguments, sanitized.
#[test]
fn r4_1_request_start_is_logged_with_correlation_id_and_sanitized_arguments() {
    run(|h| async move {
        let logs = h.log_mark();
        h.pool
            .execute(
                "echo",
                json!({ "user": "ann", "password": "hunter2-r41", "token": TOKEN }),
                None,
            )
            .await
            .unwrap();
        let line = h
            .wait_line(logs, "the request.started line", |l| {
                l["event"] == "request.started" && l["command"] == "echo"
            })
            .await;
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["pool"], POOL);
        assert_eq!(
            line["correlation_id"].as_str().map(str::len),
            Some(32),
            "{line}"
        );
        let args = line["args"]["args"].as_str().expect("the args argument");
        assert!(args.contains("ann"), "{args}");
        assert!(
            !args.contains("hunter2-r41") && !args.contains(TOKEN),
            "{args}"
        );
        assert!(args.contains("[REDACTED]"), "{args}");
        assert!(
            !h.text_since(logs).contains(TOKEN),
            "the token leaked into a line"
        );
    });
}

/// R4.2: a request's completion is logged with its duration and outcome.
#[test]
fn r4_2_request_completion_is_logged_with_duration_and_result_status() {
    run(|h| async move {
        let logs = h.log_mark();
        h.pool
            .execute("sleep", json!({ "ms": 20 }), None)
            .await
            .unwrap();
        let line = h
            .wait_line(logs, "the request.completed line", |l| {
                l["event"] == "request.completed" && l["command"] == "sleep"
            })
            .await;
        assert_eq!(line["outcome"], "ok");
        assert!(
            line["duration_ms"].as_f64().is_some_and(|ms| ms >= 20.0),
            "{line}"
        );
        assert!(
            line["worker"].as_str().is_some_and(|w| !w.is_empty()),
            "{line}"
        );
    });
}

/// R4.3: an error is logged with its full context and correlation id.
#[test]
fn r4_3_errors_are_logged_with_full_context_and_correlation_id() {
    run(|h| async move {
        let logs = h.log_mark();
        let err = h
            .pool
            .execute(
                "abort",
                json!({ "code": "RESOURCE_EXHAUSTED", "message": "no GPU memory left" }),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, PoolError::Grpc(_)), "{err}");
        let line = h
            .wait_line(logs, "the failed request's line", |l| {
                l["event"] == "request.completed" && l["command"] == "abort"
            })
            .await;
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["outcome"], "error");
        assert_eq!(line["correlation_id"].as_str().map(str::len), Some(32));
        assert_eq!(line["error"]["grpc"]["code_name"], "RESOURCE_EXHAUSTED");
        assert_eq!(line["error"]["grpc"]["message"], "no GPU memory left");
        assert!(
            line["error"]["type"]
                .as_str()
                .is_some_and(|t| t.contains("PoolError") || t.contains("Status")),
            "{line}"
        );
        assert!(
            line["worker"].as_str().is_some_and(|w| !w.is_empty()),
            "{line}"
        );
    });
}

/// R4.4: a Python exception is logged with its traceback and the
/// request's context.
#[test]
fn r4_4_python_exceptions_are_logged_with_traceback_and_request_context() {
    run(|h| async move {
        let logs = h.log_mark();
        let err = h
            .pool
            .execute(
                "fail",
                json!({ "message": "model rejected the input", "chained": true }),
                None,
            )
            .await
            .unwrap_err();
        let id = correlation_of(&err);
        let line = h
            .wait_line(logs, "the Python failure's line", |l| {
                l["event"] == "request.completed" && l["correlation_id"] == id.as_str()
            })
            .await;
        assert_eq!(
            (line["pool"].as_str(), line["command"].as_str()),
            (Some(POOL), Some("fail"))
        );
        let python = &line["error"]["python"];
        assert_eq!(python["type"], "ValueError");
        assert!(python["traceback"]
            .as_str()
            .unwrap()
            .contains("Traceback (most recent call last)"));
        assert!(python["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"] == "run"));
        assert_eq!(python["chain"][0]["type"], "KeyError");
        // The worker's own line of it, in the same stream, with the same id.
        let own = h
            .wait_line(logs, "the worker's line", |l| {
                l["event"] == "worker.log"
                    && l["message"] == "command raised"
                    && l["correlation_id"] == id.as_str()
            })
            .await;
        assert_eq!(own["extra"]["exception"], "ValueError");
    });
}

/// R4.5: passwords, tokens and secrets never reach a line: not in
/// arguments, error messages, tracebacks, nor the worker's own lines.
#[test]
fn r4_5_sensitive_data_is_sanitized_from_logs() {
    run(|h| async move {
        let logs = h.log_mark();
        let message = format!("login failed: password=hunter2-r45 token={TOKEN}");
        let _ = h
            .pool
            .execute(
                "fail",
                json!({ "message": message, "api_key": "sk-live-r45-secret" }),
                None,
            )
            .await
            .unwrap_err();
        let line = h
            .wait_line(logs, "the failure's line", |l| {
                l["event"] == "request.completed" && l["command"] == "fail"
            })
            .await;
        crate::common::eventually_async("the worker's line", async || {
            h.text_since(logs).contains("command raised")
        })
        .await;
        let text = h.text_since(logs);
        for secret in ["hunter2-r45", TOKEN, "sk-live-r45-secret"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        // What is not secret stays, for debugging.
        assert!(
            line["error"]["message"]
                .as_str()
                .unwrap()
                .contains("login failed"),
            "{line}"
        );
    });
}

/// R4.6: every line is one JSON object with the same core fields.
#[test]
fn r4_6_json_log_entries_are_valid_json_with_consistent_structure() {
    run(|h| async move {
        let logs = h.log_mark();
        h.pool.execute("echo", json!({}), None).await.unwrap();
        let _ = h
            .pool
            .execute("fail", json!({ "message": "r4.6" }), None)
            .await
            .unwrap_err();
        crate::common::eventually_async("the lines", async || {
            h.lines_since(logs)
                .iter()
                .filter(|l| l["event"] == "request.completed")
                .count()
                >= 2
        })
        .await;
        // Every line written since the pool started, the worker's included.
        let lines: Vec<Value> = h.lines_since(0);
        assert!(lines.len() > 10);
        for line in &lines {
            let object = line
                .as_object()
                .unwrap_or_else(|| panic!("not an object: {line}"));
            for key in ["timestamp", "level", "target", "message"] {
                assert!(object.contains_key(key), "{key} missing: {line}");
            }
            assert!(
                ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                    .contains(&line["level"].as_str().unwrap()),
                "{line}"
            );
            assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
        }
    });
}
