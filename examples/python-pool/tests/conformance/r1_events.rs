//! Requirement 1: event telemetry for the pool, worker, request and session
//! life cycles.

use std::time::Duration;

use poolscope::events::Event;
use poolscope::Outcome;
use serde_json::json;

use crate::harness::{run, POOL, SIZE};
use crate::pool::PoolError;

/// R1.1: the pool's start is one `pool.started` event with its startup time
/// and its configuration, and one log line.
#[test]
fn r1_1_pool_start_emits_pool_started_with_startup_time_and_config() {
    run(|h| async move {
        let started: Vec<_> = h
            .all_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::PoolStarted(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(started.len(), 1, "{started:?}");
        let started = &started[0];
        assert_eq!(started.outcome, Outcome::Ok);
        assert_eq!(started.size, Some(SIZE as u64));
        assert!(started.startup.is_some_and(|t| t > Duration::ZERO));
        let config = &started
            .config
            .iter()
            .find(|(k, _)| k == "config")
            .unwrap()
            .1;
        for part in [
            "size: 2",
            "queue_capacity: 8",
            "python: ",
            "script: ",
            "request_timeout: ",
            "restart_backoff: ",
        ] {
            assert!(config.contains(part), "{part} not in {config}");
        }
        // Written by the log's own thread: it may not be out yet.
        let line = h
            .wait_line(0, "the pool.started line", |l| l["event"] == "pool.started")
            .await;
        assert_eq!(line["pool"], POOL);
        assert!(
            line["startup_ms"].as_f64().is_some_and(|ms| ms > 0.0),
            "{line}"
        );
        assert!(
            line["args"]["config"]
                .as_str()
                .is_some_and(|c| c.contains("queue_capacity")),
            "{line}"
        );
    });
}

/// R1.2: a pool that becomes saturated emits one `pool.saturated` with the
/// queue size and the workers available, and one `pool.saturation_ended`
/// once it is clear again.
#[test]
fn r1_2_pool_saturation_emits_pool_saturated_with_queue_size_and_available_workers() {
    run(|h| async move {
        let mark = h.event_mark();
        let logs = h.log_mark();
        let held = h.hold(SIZE, "r1-2").await;
        let queued = h.queue(3).await;
        let saturated = h
            .wait_event(mark, "pool.saturated", |e| match e {
                Event::PoolSaturated(s) => Some(s.clone()),
                _ => None,
            })
            .await;
        assert!(saturated.queue_size >= 1, "{saturated:?}");
        assert_eq!(saturated.available_workers, 0);
        held.release().await;
        queued.finish().await;
        let ended = h
            .wait_event(mark, "pool.saturation_ended", |e| match e {
                Event::PoolSaturationEnded(s) => Some(s.clone()),
                _ => {
                    // Reads of the pool's state end an episode past its hold.
                    let _ = crate::common::pool_state(POOL);
                    None
                }
            })
            .await;
        assert!(
            ended.duration > Duration::ZERO && ended.peak_queue_size >= 1,
            "{ended:?}"
        );
        let events = h.events_since(mark);
        let episodes = events
            .iter()
            .filter(|e| matches!(e, Event::PoolSaturated(_)))
            .count();
        assert_eq!(episodes, 1, "one episode, reported once");
        h.wait_line(logs, "the pool.saturated line", |l| {
            l["event"] == "pool.saturated"
        })
        .await;
        let warned = h
            .lines_since(logs)
            .into_iter()
            .filter(|l| l["event"] == "pool.saturated")
            .count();
        assert_eq!(warned, 1, "one log line per episode");
    });
}

/// R1.3: each worker's start is a `worker.started` event with its startup
/// time, its id and its process id.
#[test]
fn r1_3_worker_start_emits_worker_started_with_startup_time_and_metadata() {
    run(|h| async move {
        let started: Vec<_> = h
            .all_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::WorkerStarted(w) => Some(w),
                _ => None,
            })
            .collect();
        assert!(started.len() >= SIZE, "{started:?}");
        let mut ids: Vec<_> = started.iter().filter_map(|w| w.worker.clone()).collect();
        ids.sort();
        ids.dedup();
        assert!(
            ids.contains(&"0".to_owned()) && ids.contains(&"1".to_owned()),
            "{ids:?}"
        );
        for w in &started {
            assert_eq!(w.outcome, Outcome::Ok);
            assert!(w.pid.is_some_and(|pid| pid > 0), "{w:?}");
            assert!(w.startup.is_some_and(|t| t > Duration::ZERO), "{w:?}");
        }
        let line = h
            .wait_line(0, "a worker.started line", |l| {
                l["event"] == "worker.started"
            })
            .await;
        assert!(line["pid"].as_u64().is_some_and(|pid| pid > 0), "{line}");
    });
}

/// R1.4: a worker that dies emits `worker.crashed` with the crash's
/// details and the Python stack `faulthandler` wrote.
#[test]
fn r1_4_worker_crash_emits_worker_crashed_with_error_details_and_stacktrace() {
    run(|h| async move {
        let mark = h.event_mark();
        let logs = h.log_mark();
        let err = h
            .pool
            .execute("crash", json!({ "mode": "segv" }), None)
            .await
            .unwrap_err();
        assert!(matches!(err, PoolError::Crash(_)), "{err}");
        let crashed = h
            .wait_event(mark, "worker.crashed", |e| match e {
                Event::WorkerCrashed(c) => Some(c.clone()),
                _ => None,
            })
            .await;
        let crash = crashed.error.crash.as_ref().expect("crash context");
        assert_eq!(crash.signal.as_deref(), Some("SIGSEGV"));
        assert!(crash.pid.is_some());
        assert!(
            crash
                .stack
                .iter()
                .any(|f| f.file.ends_with("worker.py") && f.function == "run"),
            "{:?}",
            crash.stack
        );
        let line = h
            .wait_line(logs, "the worker.crashed line", |l| {
                l["event"] == "worker.crashed"
            })
            .await;
        assert_eq!(line["level"], "ERROR");
        let stack = line["error"]["crash"]["stack"]
            .as_array()
            .expect("error.crash.stack");
        assert!(stack.iter().any(|f| f["function"] == "run"), "{line}");
        assert!(line["error"]["crash"]["pid"].as_u64().is_some(), "{line}");
    });
}

/// R1.5: a request's start is `request.started` with its correlation id,
/// command and arguments.
#[test]
fn r1_5_request_start_emits_request_started_with_correlation_id_and_command() {
    run(|h| async move {
        let mark = h.event_mark();
        h.pool
            .execute("echo", json!({ "r": 15 }), None)
            .await
            .unwrap();
        let started = h
            .wait_event(mark, "request.started", |e| match e {
                Event::RequestStarted(s) if s.command.as_str() == "echo" => Some(s.clone()),
                _ => None,
            })
            .await;
        assert_eq!(started.pool.as_str(), POOL);
        assert!(started.correlation_id.is_some());
        let args: Vec<_> = started.args.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(args, ["command", "args", "session"]);
    });
}

/// R1.6: a request's completion is `request.completed` with its duration,
/// its outcome and the worker that ran it.
#[test]
fn r1_6_request_completion_emits_request_completed_with_duration_and_status() {
    run(|h| async move {
        let mark = h.event_mark();
        h.pool
            .execute("sleep", json!({ "ms": 30 }), None)
            .await
            .unwrap();
        let _ = h
            .pool
            .execute("fail", json!({ "message": "r1.6" }), None)
            .await
            .unwrap_err();
        let completed: Vec<_> = crate::common::completions(&h.events_since(mark))
            .into_iter()
            .cloned()
            .collect();
        let sleep = completed
            .iter()
            .find(|c| c.command.as_str() == "sleep")
            .unwrap();
        assert_eq!(sleep.outcome, Outcome::Ok);
        assert!(
            sleep
                .duration
                .is_some_and(|d| d >= Duration::from_millis(30)),
            "{sleep:?}"
        );
        assert!(sleep.worker.is_some());
        let fail = completed
            .iter()
            .find(|c| c.command.as_str() == "fail")
            .unwrap();
        assert_eq!(fail.outcome, Outcome::Error);
        assert!(fail.duration.is_some());
    });
}

/// R1.7: a new session is `session.created` with its time to live and
/// metadata.
#[test]
fn r1_7_session_creation_emits_session_created_with_ttl_and_metadata() {
    run(|h| async move {
        let mark = h.event_mark();
        let id = h.pool.create_session(
            Duration::from_secs(60),
            vec![
                ("user".into(), "ann".into()),
                ("tier".into(), "gold".into()),
            ],
        );
        let created = h
            .wait_event(mark, "session.created", |e| match e {
                Event::SessionCreated(s) => Some(s.clone()),
                _ => None,
            })
            .await;
        assert_eq!(created.session_id.as_deref(), Some(id.as_str()));
        assert_eq!(created.ttl, Some(Duration::from_secs(60)));
        let metadata: Vec<(&str, &str)> = created
            .metadata
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect();
        assert_eq!(metadata, [("user", "ann"), ("tier", "gold")]);
        // The session's requests run on its worker.
        h.pool.execute("echo", json!({}), Some(&id)).await.unwrap();
    });
}

/// R1.8: expired sessions removed are `session.cleanup` with how many and
/// how long the pass took.
#[test]
fn r1_8_session_cleanup_emits_session_cleanup_with_count_and_cleanup_time() {
    run(|h| async move {
        let mark = h.event_mark();
        for _ in 0..3 {
            h.pool.create_session(Duration::from_millis(50), Vec::new());
        }
        let mut cleaned = 0;
        while cleaned < 3 {
            let cleanup = h
                .wait_event(mark, "session.cleanup", |e| match e {
                    Event::SessionCleanup(c) => Some(c.clone()),
                    _ => None,
                })
                .await;
            assert!(cleanup.duration > Duration::ZERO);
            cleaned = h
                .events_since(mark)
                .iter()
                .filter_map(|e| match e {
                    Event::SessionCleanup(c) => Some(c.count),
                    _ => None,
                })
                .sum();
        }
        assert_eq!(cleaned, 3);
    });
}
