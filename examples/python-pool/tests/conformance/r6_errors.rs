//! Requirement 6: error context preserved.

use std::time::Duration;

use poolscope::events::Event;
use serde_json::json;

use crate::harness::{run, ALERT_THRESHOLD, ALERT_WINDOW, POOL};
use crate::pool::PoolError;

/// R6.1: a Python exception arrives with its full traceback: every frame,
/// the source lines, and the exception it was raised from.
#[test]
fn r6_1_python_exceptions_capture_the_full_traceback() {
    run(|h| async move {
        let err = h
            .pool
            .execute("fail", json!({ "message": "r6.1", "chained": true }), None)
            .await
            .unwrap_err();
        let PoolError::Python { error, .. } = &err else {
            panic!("{err}")
        };
        let tb = &error.traceback;
        assert_eq!(
            (tb.exception_type.as_str(), tb.message.as_str()),
            ("ValueError", "r6.1")
        );
        let run_frame = tb
            .frames
            .iter()
            .find(|f| f.function == "run")
            .expect("the run frame");
        assert!(run_frame.file.ends_with("worker.py") && run_frame.line > 0);
        assert_eq!(
            run_frame.source.as_deref(),
            Some("raise ValueError(message) from cause")
        );
        assert_eq!(tb.chain.len(), 1);
        assert_eq!(tb.chain[0].exception_type, "KeyError");
        assert!(tb
            .formatted
            .contains("The above exception was the direct cause"));
        // An exception group keeps every member.
        let err = h
            .pool
            .execute("group", json!({ "n": 2 }), None)
            .await
            .unwrap_err();
        let PoolError::Python { error, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(error.traceback.exceptions.len(), 2);
    });
}

/// R6.2: a gRPC failure keeps its status code, message and details.
#[test]
fn r6_2_grpc_errors_capture_status_codes_and_details() {
    run(|h| async move {
        let mark = h.event_mark();
        let err = h
            .pool
            .execute(
                "abort",
                json!({ "code": "FAILED_PRECONDITION", "message": "model not loaded" }),
                None,
            )
            .await
            .unwrap_err();
        let PoolError::Grpc(status) = &err else {
            panic!("not a gRPC error: {err}")
        };
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let failed = h
            .wait_event(mark, "the failure", |e| match e {
                Event::RequestCompleted(c) if c.command.as_str() == "abort" => Some(c.clone()),
                _ => None,
            })
            .await;
        let grpc = failed
            .error
            .as_ref()
            .and_then(|e| e.grpc.clone())
            .expect("gRPC context");
        assert_eq!(
            (grpc.code, grpc.code_name.as_str()),
            (9, "FAILED_PRECONDITION")
        );
        assert_eq!(grpc.message, "model not loaded");
        // The worker lives on: a refused call is not a crash.
        h.pool.execute("echo", json!({}), None).await.unwrap();
    });
}

/// R6.3: a crash keeps its reason and the system's context: pid, exit code,
/// uptime, host, last command, the request in flight, memory at the last
/// sample, and what the worker last wrote that was not routine.
#[test]
fn r6_3_worker_crashes_capture_reason_and_system_context() {
    run(|h| async move {
        // The memory sampler reads the workers every 200 ms.
        crate::common::eventually_async("a memory reading of the workers", async || {
            poolscope::memory::latest()
                .is_some_and(|m| m.pools.iter().any(|p| p.pool.as_str() == POOL))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mark = h.event_mark();
        let err = h
            .pool
            .execute("crash", json!({ "mode": "exit", "code": 7 }), None)
            .await
            .unwrap_err();
        let PoolError::Crash(crash) = &err else {
            panic!("{err}")
        };
        assert!(crash.to_string().contains("code 7"), "{crash}");
        let event = h
            .wait_event(mark, "worker.crashed", |e| match e {
                Event::WorkerCrashed(c) => Some(c.clone()),
                _ => None,
            })
            .await;
        let context = event.error.crash.clone().expect("crash context");
        assert_eq!(context.exit_code, Some(7));
        assert!(context.pid.is_some_and(|pid| pid > 0));
        assert!(context.uptime.is_some_and(|u| u > Duration::ZERO));
        assert!(context.host.as_deref().is_some_and(|h| !h.is_empty()));
        assert_eq!(context.last_command.as_deref(), Some("crash"));
        assert_eq!(context.in_flight.len(), 1);
        assert!(
            context.resident_bytes.is_some_and(|b| b > 1_000_000),
            "{context:?}"
        );
        let tail = context.stderr_tail.unwrap_or_default();
        assert!(tail.contains("crashing on purpose"), "{tail}");
        assert!(
            !tail.contains("\"executing\""),
            "routine lines kept: {tail}"
        );
        assert!(event.reason.contains("code 7"), "{}", event.reason);
    });
}

/// R6.4: a logged error carries the correlation id and the request's
/// context (pool, command, worker), on the host's line and the worker's.
#[test]
fn r6_4_logged_errors_include_correlation_id_and_request_context() {
    run(|h| async move {
        let logs = h.log_mark();
        let err = h
            .pool
            .execute("fail", json!({ "message": "r6.4" }), None)
            .await
            .unwrap_err();
        let PoolError::Python { correlation_id, .. } = &err else {
            panic!("{err}")
        };
        let host = h
            .wait_line(logs, "the host's line", |l| {
                l["event"] == "request.completed" && l["command"] == "fail"
            })
            .await;
        assert_eq!(host["correlation_id"], correlation_id.as_str());
        assert_eq!(host["pool"], POOL);
        let worker = host["worker"].as_str().expect("the worker").to_owned();
        let own = h
            .wait_line(logs, "the worker's line", |l| {
                l["event"] == "worker.log" && l["message"] == "command raised"
            })
            .await;
        assert_eq!(own["correlation_id"], correlation_id.as_str());
        assert_eq!(own["worker"], worker.as_str());
        assert_eq!(own["pool"], POOL);
    });
}

/// R6.5: sanitizing removes the secret and keeps what debugging needs: the
/// exception type, the rest of the message, the frames.
#[test]
fn r6_5_sanitized_errors_keep_debug_information() {
    run(|h| async move {
        let mark = h.event_mark();
        let _ = h
            .pool
            .execute(
                "fail",
                json!({ "message": "step 3 failed with password=r65-hunter2 for ann" }),
                None,
            )
            .await
            .unwrap_err();
        let failed = h
            .wait_event(mark, "the failure", |e| match e {
                Event::RequestCompleted(c) if c.command.as_str() == "fail" => Some(c.clone()),
                _ => None,
            })
            .await;
        let error = failed.error.expect("error context");
        assert!(!format!("{error:?}").contains("r65-hunter2"), "{error:?}");
        assert!(
            error.message.contains("step 3 failed") && error.message.contains("for ann"),
            "{}",
            error.message
        );
        let python = error.python.expect("the traceback");
        assert_eq!(python.exception_type, "ValueError");
        assert!(python.frames.iter().any(|f| f.function == "run"));
        assert!(python.formatted.contains("[REDACTED]"));
    });
}

/// R6.6: an error rate over the threshold emits `alert.fired` (and sets
/// `poolscope_alerts_firing`); back under it, `alert.resolved`.
#[test]
fn r6_6_error_rates_over_thresholds_emit_telemetry_events() {
    run(|h| async move {
        let firing = format!("poolscope_alerts_firing{{rule=\"error_rate\",pool=\"{POOL}\"}}");
        // The alert judges when its clock is advanced: by a window each
        // time, so that each judgement is over what came since the last.
        // Failures of the tests before may have fired it: healthy traffic
        // first, until it is not firing.
        crate::common::eventually_async("the alert not firing", async || {
            for i in 0..20 {
                h.pool
                    .execute("echo", json!({ "i": i }), None)
                    .await
                    .unwrap();
            }
            h.alert_clock.advance(ALERT_WINDOW);
            h.sample(&firing).await.unwrap_or(0.0) == 0.0
        })
        .await;
        let mark = h.event_mark();
        for _ in 0..20 {
            let _ = h
                .pool
                .execute("fail", json!({ "message": "r6.6" }), None)
                .await
                .unwrap_err();
        }
        h.alert_clock.advance(ALERT_WINDOW);
        let fired = h
            .wait_event(mark, "alert.fired", |e| match e {
                Event::AlertFired(a) if a.pool.is_some_and(|p| p.as_str() == POOL) => {
                    Some(a.clone())
                }
                _ => None,
            })
            .await;
        assert_eq!(fired.rule, poolscope::alerts::ERROR_RATE_RULE);
        assert!(
            fired.value > ALERT_THRESHOLD && fired.threshold == ALERT_THRESHOLD,
            "{fired:?}"
        );
        assert_eq!(h.sample(&firing).await, Some(1.0));
        // Healthy traffic until the window (5 s) holds only successes.
        let resolved = crate::common::until_async("alert.resolved", async || {
            for i in 0..20 {
                h.pool
                    .execute("echo", json!({ "i": i }), None)
                    .await
                    .unwrap();
            }
            h.alert_clock.advance(ALERT_WINDOW);
            h.events_since(mark).into_iter().find_map(|e| match e {
                Event::AlertResolved(a) if a.pool.is_some_and(|p| p.as_str() == POOL) => Some(a),
                _ => None,
            })
        })
        .await;
        assert!(resolved.value <= ALERT_THRESHOLD, "{resolved:?}");
        assert_eq!(h.sample(&firing).await, Some(0.0));
    });
}
