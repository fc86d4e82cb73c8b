//! End to end against real Python worker processes (needs `python3` with
//! `grpcio` and `grpcio-tools`; `.ci/run` installs them): start events,
//! Python exceptions with their traceback and correlation id, crashes by exit
//! code and by signal with restarts, saturation, sessions, and metrics that
//! count exactly what was sent.

use poolscope_testkit as common;
use python_pool as pool;

use std::time::Duration;

use common::*;
use pool::{PoolConfig, PoolError};
use poolscope::events::Event;
use poolscope::{Kind, Outcome};
use serde_json::json;

// The flagship builds poolscope with every aspect (feature `full`).
const TIMING: bool = true;
const CORRELATION: bool = true;
const ERRORS: bool = true;

fn config(name: &str, size: usize) -> PoolConfig {
    let mut config = PoolConfig::new(name);
    config.size = size;
    config.restart_backoff = Duration::from_millis(50);
    config.cleanup_every = Duration::from_millis(100);
    // Several pools start at once here, and with the other test binaries.
    config.start_timeout = Duration::from_secs(120);
    config
}

/// The process that served a request.
async fn pid_of(pool: &pool::PythonPool, session: Option<&str>) -> u64 {
    pool.execute("pid", json!({}), session).await.unwrap()["pid"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_echo_and_a_python_exception_with_its_traceback_and_id() {
    let captured = capture("pp-basic");
    let pool = pool::start(config("pp-basic", 2))
        .await
        .expect("the pool starts (is grpcio installed?)");
    assert_eq!(
        pool.execute("echo", json!({ "x": 1 }), None).await.unwrap(),
        json!({ "x": 1 })
    );
    let err = pool
        .execute(
            "fail",
            json!({ "message": "bad input", "chained": true }),
            None,
        )
        .await
        .unwrap_err();
    let PoolError::Python {
        error: python,
        correlation_id,
    } = &err
    else {
        panic!("not a Python error: {err}")
    };
    assert_eq!(
        (
            python.traceback.exception_type.as_str(),
            python.traceback.message.as_str()
        ),
        ("ValueError", "bad input")
    );
    assert!(
        python
            .traceback
            .frames
            .iter()
            .any(|f| f.file.ends_with("worker.py") && f.function == "run"),
        "{:?}",
        python.traceback.frames
    );
    assert_eq!(
        python.traceback.chain.len(),
        1,
        "the KeyError it was raised from"
    );
    pool.shutdown();

    let events = captured.take();
    if !ANY {
        return;
    }
    let names: Vec<&str> = events.iter().map(Event::name).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "worker.started").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| **n == "pool.started").count(),
        1,
        "{names:?}"
    );
    // Each worker start names its process; the pool start its configuration.
    for event in &events {
        match event {
            Event::WorkerStarted(w) => {
                assert!(w.pid.is_some_and(|pid| pid > 0), "{w:?}");
                assert_eq!(w.outcome, Outcome::Ok);
                if TIMING {
                    assert!(w.startup.is_some(), "{w:?}");
                }
            }
            Event::PoolStarted(p) => {
                let config = &p
                    .config
                    .iter()
                    .find(|(name, _)| name == "config")
                    .unwrap()
                    .1;
                for part in [
                    "size: 2",
                    "queue_capacity: 64",
                    "python: ",
                    "request_timeout: 30s",
                    "restart_backoff: ",
                ] {
                    assert!(config.contains(part), "{part} not in {config}");
                }
            }
            _ => {}
        }
    }
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::RequestStarted(s) if s.command.as_str() == "fail" => Some(s),
            _ => None,
        })
        .collect();
    let failed = completions(&events)
        .into_iter()
        .find(|c| c.command.as_str() == "fail")
        .unwrap();
    assert_eq!(failed.outcome, Outcome::Error);
    // The dispatcher picked the worker after the request began; the
    // completion names it.
    let workers = ["0", "1"];
    assert!(
        completions(&events)
            .iter()
            .all(|c| c.worker.as_deref().is_some_and(|w| workers.contains(&w))),
        "{events:?}"
    );
    if CORRELATION {
        assert!(failed.correlation_id.is_some());
        assert_eq!(
            failed.correlation_id.map(|id| id.to_string()).as_deref(),
            Some(correlation_id.as_str()),
            "the error returned to the caller carries the id the worker echoed"
        );
        assert_eq!(
            started[0].correlation_id, failed.correlation_id,
            "the id the request started with"
        );
    }
    if ERRORS {
        let error = failed.error.as_ref().unwrap();
        assert_eq!(error.message, "ValueError: bad input");
        assert!(error
            .python
            .as_ref()
            .unwrap()
            .formatted
            .contains("Traceback (most recent call last)"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_group_arrives_as_a_tree_with_its_notes() {
    let pool = pool::start(config("pp-group", 1)).await.unwrap();
    let err = pool
        .execute("group", json!({ "n": 3 }), None)
        .await
        .unwrap_err();
    pool.shutdown();
    let PoolError::Python { error, .. } = &err else {
        panic!("not a Python error: {err}")
    };
    let tb = &error.traceback;
    assert_eq!(tb.exception_type, "ExceptionGroup");
    assert_eq!(tb.message, "batch failed (3 sub-exceptions)");
    // The group's note came apart from its message.
    assert_eq!(tb.notes, ["batch of 3"]);
    let members: Vec<_> = tb
        .exceptions
        .iter()
        .map(|e| {
            (
                e.exception_type.as_str(),
                e.message.lines().next().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("ValueError", "item 0 rejected"),
            ("ValueError", "item 1 rejected"),
            ("ValueError", "item 2 rejected")
        ]
    );
    assert!(tb
        .frames
        .iter()
        .any(|f| f.function == "run" && f.file.ends_with("worker.py")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_by_exit_code_and_signal_are_reported_and_the_worker_restarts() {
    let captured = capture("pp-crash");
    let pool = pool::start(config("pp-crash", 2)).await.unwrap();
    for (args, expected) in [
        (json!({ "mode": "exit", "code": 3 }), "exit code 3"),
        (json!({ "mode": "segv" }), "SIGSEGV"),
    ] {
        let err = pool.execute("crash", args, None).await.unwrap_err();
        let PoolError::Crash(crash) = &err else {
            panic!("not a crash: {err}")
        };
        match expected {
            "SIGSEGV" => assert_eq!(crash.context.signal.as_deref(), Some("SIGSEGV")),
            _ => assert_eq!(crash.context.exit_code, Some(3)),
        }
        assert_eq!(crash.context.last_command.as_deref(), Some("crash"));
        assert!(
            crash
                .context
                .stderr_tail
                .as_deref()
                .is_some_and(|t| t.contains("crashing on purpose")),
            "{:?}",
            crash.context.stderr_tail
        );
    }
    // The pool keeps serving, and the crashed workers come back.
    for i in 0..20 {
        assert_eq!(
            pool.execute("echo", json!({ "i": i }), None).await.unwrap(),
            json!({ "i": i })
        );
    }
    if !ANY {
        pool.shutdown();
        return;
    }
    // The second restart may finish well after the echoes (two Python
    // starts at once on a loaded machine).
    eventually_async("both workers back", async || {
        pool_state("pp-crash").is_some_and(|s| s.workers.available == 2)
    })
    .await;
    let after = pool_state("pp-crash").unwrap();
    pool.shutdown();
    assert_eq!(after.crashes, 2);
    let crashes: Vec<_> = captured
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::WorkerCrashed(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(crashes.len(), 2);
    assert_eq!(crashes[0].error.crash.as_ref().unwrap().exit_code, Some(3));
    assert_eq!(
        crashes[1].error.crash.as_ref().unwrap().signal.as_deref(),
        Some("SIGSEGV")
    );
    assert!(crashes.iter().all(|c| c.uptime.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segfault_carries_the_pid_the_python_stack_and_the_request_in_flight() {
    let captured = capture("pp-stack");
    let pool = pool::start(config("pp-stack", 1)).await.unwrap();
    let pid = pid_of(&pool, None).await as u32;
    // Routine lines before the crash, which the crash report leaves out.
    for i in 0..5 {
        pool.execute("echo", json!({ "i": i }), None).await.unwrap();
    }
    let err = pool
        .execute("crash", json!({ "mode": "segv" }), None)
        .await
        .unwrap_err();
    let PoolError::Crash(crash) = &err else {
        panic!("not a crash: {err}")
    };
    let context = &crash.context;
    assert_eq!(context.pid, Some(pid));
    assert_eq!(context.signal.as_deref(), Some("SIGSEGV"));
    // faulthandler's dump of the thread that crashed, outermost first: the
    // gRPC handler, then the command.
    let functions: Vec<(&str, &str)> = context
        .stack
        .iter()
        .map(|f| {
            (
                f.file.rsplit('/').next().unwrap_or_default(),
                f.function.as_str(),
            )
        })
        .collect();
    let at = |function| functions.iter().position(|f| *f == ("worker.py", function));
    let (execute, run) = (at("Execute"), at("run"));
    assert!(
        execute.is_some() && run.is_some() && execute < run,
        "{functions:?} from {:?}",
        context.stderr_tail
    );
    assert!(
        context.stack.iter().all(|f| f.line > 0),
        "{:?}",
        context.stack
    );
    let tail = context.stderr_tail.as_deref().unwrap_or_default();
    assert!(
        tail.contains("Fatal Python error: Segmentation fault"),
        "{tail}"
    );
    assert!(
        !tail.contains("\"executing\""),
        "routine lines kept: {tail}"
    );
    assert!(context.host.is_some());
    if CORRELATION {
        assert_eq!(context.in_flight.len(), 1, "{context:?}");
    }
    if !ANY {
        pool.shutdown();
        return;
    }
    let crashed = until_async("the crash event", async || {
        captured.take().into_iter().find_map(|e| match e {
            Event::WorkerCrashed(c) => Some(c),
            _ => None,
        })
    })
    .await;
    pool.shutdown();
    let reported = crashed.error.crash.as_ref().unwrap();
    assert_eq!(reported.pid, Some(pid));
    assert_eq!(reported.stack, context.stack);
    if CORRELATION {
        // The crash names the request it killed, as the caller saw it.
        assert_eq!(
            crashed.correlation_id.map(|id| id.to_string()),
            context.in_flight.first().cloned()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_reports_saturation() {
    let captured = capture("pp-saturated");
    let mut config = config("pp-saturated", 1);
    config.queue_capacity = 2;
    config.request_timeout = Duration::from_secs(600);
    let pool = pool::start(config).await.unwrap();
    // The one worker is held by a gated request while seven more arrive:
    // they can only wait.
    let gate = GateFile::new("pp-saturated");
    let held = {
        let (pool, args) = (pool.clone(), gate.args());
        tokio::spawn(async move { pool.execute("wait", args, None).await })
    };
    if ANY {
        eventually_async("the worker busy", async || {
            pool_state("pp-saturated").is_some_and(|s| s.workers.busy == 1)
        })
        .await;
    }
    let calls: Vec<_> = (0..7)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.execute("sleep", json!({ "ms": 30 }), None).await })
        })
        .collect();
    if ANY {
        eventually_async("a saturation report", async || {
            captured.names().contains(&"pool.saturated")
        })
        .await;
    }
    gate.open();
    held.await.unwrap().unwrap();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    if !ANY {
        pool.shutdown();
        return;
    }
    // The queue drained; once the pool has stayed clear for the hold, a
    // read of its state ends the episode.
    eventually_async("the end of the episode", async || {
        pool_state("pp-saturated").is_some_and(|s| !s.saturated)
            && captured.names().contains(&"pool.saturation_ended")
    })
    .await;
    let state = pool_state("pp-saturated").unwrap();
    pool.shutdown();
    let events = captured.take();
    let saturated: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::PoolSaturated(s) => Some(s),
            _ => None,
        })
        .collect();
    // Eight requests on one worker, dispatched one after another: one
    // episode, reported once, however many requests queued in it.
    assert_eq!(saturated.len(), 1, "{saturated:?}");
    assert!(saturated[0].queue_size > 0, "{saturated:?}");
    assert_eq!(saturated[0].available_workers, 0, "{saturated:?}");
    assert_eq!(state.saturations, 1);
    let ended: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::PoolSaturationEnded(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    // Seven requests of 30 ms ran one after another while others waited.
    assert!(ended[0].duration >= Duration::from_millis(150), "{ended:?}");
    assert!(ended[0].peak_queue_size >= 2, "{ended:?}");
    assert!(state.saturated_nanos >= 150_000_000, "{state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stick_to_their_worker_then_expire_and_are_counted() {
    let captured = capture("pp-sessions");
    let pool = pool::start(config("pp-sessions", 2)).await.unwrap();
    // Two sessions that outlive the test, on the two workers; their calls,
    // interleaved, each go to their own worker's process.
    let hour = Duration::from_secs(3600);
    let (a, b) = (
        pool.create_session(hour, Vec::new()),
        pool.create_session(hour, Vec::new()),
    );
    assert_ne!(
        pool.session_worker(&a).unwrap(),
        pool.session_worker(&b).unwrap()
    );
    let mut pids = (Vec::new(), Vec::new());
    for _ in 0..3 {
        pids.0.push(pid_of(&pool, Some(&a)).await);
        pids.1.push(pid_of(&pool, Some(&b)).await);
    }
    assert!(pids.0.iter().all(|p| *p == pids.0[0]), "{pids:?}");
    assert!(pids.1.iter().all(|p| *p == pids.1[0]), "{pids:?}");
    assert_ne!(pids.0[0], pids.1[0]);

    // One that expires: unknown at once, removed by the cleanup, counted.
    let short = pool.create_session(
        Duration::from_millis(300),
        vec![
            ("user".into(), "ann".into()),
            ("token".into(), "t-1".into()),
        ],
    );
    eventually_async("the expired session removed", async || pool.sessions() == 2).await;
    let err = pool
        .execute("echo", json!({}), Some(&short))
        .await
        .unwrap_err();
    assert!(matches!(err, PoolError::UnknownSession(_)), "{err}");
    pool.execute("echo", json!({}), Some(&a)).await.unwrap();
    if ANY {
        // Emitted just after the removal, outside the sessions' lock.
        eventually_async("the cleanup reported", async || {
            captured.names().contains(&"session.cleanup")
        })
        .await;
    }
    pool.shutdown();
    if !ANY {
        return;
    }
    let events = captured.take();
    let created = events.iter().find_map(|e| match e {
        Event::SessionCreated(s) if s.session_id.as_deref() == Some(short.as_str()) => Some(s),
        _ => None,
    });
    let created = created.unwrap();
    assert_eq!(created.ttl, Some(Duration::from_millis(300)));
    assert_eq!(created.metadata[1].1, "[REDACTED]", "metadata is sanitized");
    let cleaned: u64 = events
        .iter()
        .filter_map(|e| match e {
            Event::SessionCleanup(c) => Some(c.count),
            _ => None,
        })
        .sum();
    assert_eq!(cleaned, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_what_was_sent() {
    let pool = pool::start(config("pp-count", 2)).await.unwrap();
    let mut sent = [0u64; 2];
    for i in 0..60u64 {
        if i % 6 == 5 {
            pool.execute("fail", json!({}), None).await.unwrap_err();
            sent[1] += 1;
        } else {
            pool.execute("echo", json!({ "i": i }), None).await.unwrap();
            sent[0] += 1;
        }
    }
    pool.shutdown();
    let ok = outcome_counts("pp-count", "echo");
    let failed = outcome_counts("pp-count", "fail");
    if TIMING {
        assert_eq!((ok[0], failed[1]), (sent[0], sent[1]));
        assert_eq!(
            ok[1..]
                .iter()
                .chain(&failed[..1])
                .chain(&failed[2..])
                .sum::<u64>(),
            0
        );
        let startup = poolscope::stats::series(Kind::WorkerStart, "pp-count", "").unwrap();
        assert_eq!(startup.outcome(Outcome::Ok).count(), 2);
    } else {
        assert_eq!(ok, [0; 4]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_worker_is_replaced_and_a_stopped_pool_answers_shutdown() {
    let captured = capture("pp-timeout");
    let mut config = config("pp-timeout", 1);
    config.request_timeout = Duration::from_secs(2);
    let pool = pool::start(config).await.unwrap();
    let before = pid_of(&pool, None).await;
    let err = pool
        .execute("sleep", json!({ "ms": 600_000 }), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PoolError::Timeout(_)), "{err}");
    // The worker still running the old command was killed and replaced, so
    // the next request does not wait the ten minutes behind it: a new
    // process serves it, in whatever time a restart takes.
    let echoed = tokio::time::timeout(
        Duration::from_secs(120),
        pool.execute("echo", json!({ "after": "timeout" }), None),
    )
    .await
    .expect("the next request waited behind the timed-out command");
    assert_eq!(echoed.unwrap(), json!({ "after": "timeout" }));
    assert_ne!(pid_of(&pool, None).await, before, "the worker was replaced");
    if ANY {
        let crashes: Vec<_> = captured
            .take()
            .into_iter()
            .filter_map(|e| match e {
                Event::WorkerCrashed(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(crashes.len(), 1, "{crashes:?}");
        assert!(
            crashes[0].reason.contains(pool::KILLED_AFTER_TIMEOUT),
            "{}",
            crashes[0].reason
        );
        let context = crashes[0].error.crash.as_ref().unwrap();
        assert_eq!(context.signal.as_deref(), Some("SIGKILL"));
        assert_eq!(context.last_command.as_deref(), Some("sleep"));
    }

    pool.shutdown();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        pool.execute("echo", json!({}), None),
    )
    .await;
    assert!(
        matches!(answer, Ok(Err(PoolError::Shutdown))),
        "a stopped pool answers at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_rejections_are_outcomes_of_their_own() {
    let mut rejecting = config("pp-outcomes", 1);
    rejecting.queue_capacity = 1;
    rejecting.reject_when_full = true;
    rejecting.request_timeout = Duration::from_secs(600);
    let pool = pool::start(rejecting).await.unwrap();
    // The worker held, one request queued: the next is refused at once.
    let gate = GateFile::new("pp-outcomes");
    let held = {
        let (pool, args) = (pool.clone(), gate.args());
        tokio::spawn(async move { pool.execute("wait", args, None).await })
    };
    eventually_async("the worker busy", async || {
        pool_state("pp-outcomes").is_some_and(|s| s.workers.busy == 1)
    })
    .await;
    let queued = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.execute("echo", json!({ "queued": true }), None).await })
    };
    eventually_async("a request queued", async || {
        pool_state("pp-outcomes").is_some_and(|s| s.queue_depth == 1)
    })
    .await;
    let rejected = pool.execute("echo", json!({}), None).await.unwrap_err();
    assert!(matches!(rejected, PoolError::Rejected { .. }), "{rejected}");
    assert_eq!(
        rejected.to_string(),
        "rejected: the queue is full (1 requests wait)"
    );
    gate.open();
    held.await.unwrap().unwrap();
    queued.await.unwrap().unwrap();
    pool.shutdown();

    // A request past the pool's timeout.
    let mut impatient = config("pp-outcomes-timeout", 1);
    impatient.request_timeout = Duration::from_millis(300);
    let pool = pool::start(impatient).await.unwrap();
    let err = pool
        .execute("sleep", json!({ "ms": 5_000 }), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PoolError::Timeout(_)), "{err}");
    pool.shutdown();

    if !TIMING {
        return;
    }
    let rejections = all_outcome_counts("pp-outcomes", "echo");
    assert!(rejections[Outcome::Rejected.index()] >= 1, "{rejections:?}");
    assert_eq!(rejections[Outcome::Error.index()], 0, "{rejections:?}");
    let timeouts = all_outcome_counts("pp-outcomes-timeout", "sleep");
    assert_eq!(timeouts[Outcome::Timeout.index()], 1, "{timeouts:?}");
    let text = poolscope::metrics::render();
    for series in [
        r#"poolscope_requests_total{pool="pp-outcomes-timeout",command="sleep",outcome="timeout"} 1"#,
        r#"poolscope_requests_total{pool="pp-outcomes",command="echo",outcome="rejected"}"#,
    ] {
        assert!(text.contains(series), "{series} not in:\n{text}");
    }
}
