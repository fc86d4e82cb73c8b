//! Sync functions and methods: outcomes, metrics, error context, arguments.

use poolscope_testkit as common;

use common::*;
use poolscope::events::Event;
use poolscope::{observe, Outcome};

#[derive(Debug)]
struct Inner;
impl std::fmt::Display for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset")
    }
}
impl std::error::Error for Inner {}

#[derive(Debug)]
struct Outer(Inner);
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("command failed")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[observe(pool = "sync-outcomes", command = "run")]
fn run(fail: bool) -> Result<u32, Outer> {
    if fail {
        return Err(Outer(Inner));
    }
    Ok(7)
}

#[test]
fn ok_and_error_outcomes_are_counted_and_timed() {
    let captured = capture("sync-outcomes");
    assert_eq!(run(false).unwrap(), 7);
    assert!(run(true).is_err());
    assert_eq!(run(false).unwrap(), 7);

    let counts = outcome_counts("sync-outcomes", "run");
    assert_eq!(counts, if TIMING { [2, 1, 0, 0] } else { [0; 4] });
    if TIMING {
        let stats =
            poolscope::stats::series(poolscope::Kind::Request, "sync-outcomes", "run").unwrap();
        assert_eq!(stats.in_flight, 0);
        assert!(stats.outcome(Outcome::Ok).sum_seconds > 0.0);
    }

    let events = captured.take();
    let names: Vec<_> = events.iter().map(Event::name).collect();
    if !ANY {
        assert!(names.is_empty());
        return;
    }
    assert_eq!(
        names,
        [
            "request.started",
            "request.completed",
            "request.started",
            "request.completed",
            "request.started",
            "request.completed"
        ]
    );
    let done = completions(&events);
    assert_eq!(
        done.iter().map(|c| c.outcome).collect::<Vec<_>>(),
        [Outcome::Ok, Outcome::Error, Outcome::Ok]
    );
    assert_eq!(done[1].command.as_str(), "run");
    assert_eq!(done[1].name, "pool::sync::run");
    assert_eq!(done[0].duration.is_some(), TIMING);
    assert_eq!(done[0].correlation_id.is_some(), CORRELATION);
    assert_eq!(done[1].error.is_some(), ERRORS);
    if let Some(error) = &done[1].error {
        assert_eq!(error.message, "command failed");
        assert_eq!(error.chain, ["connection reset"]);
        assert_eq!(error.type_name, "pool::sync::Outer");
    }
    assert!(done[0].error.is_none());
}

#[observe(pool = "sync-args", skip(token))]
fn with_args(user: &str, token: &str, count: usize) -> usize {
    user.len() + token.len() + count
}

#[observe(pool = "sync-args", skip_all)]
fn without_args(user: &str) -> usize {
    user.len()
}

struct NotDebug;

#[observe(pool = "sync-args")]
fn opaque_arg(value: NotDebug) -> u8 {
    let NotDebug = value;
    1
}

#[test]
fn arguments_are_recorded_except_skipped_ones() {
    let captured = capture("sync-args");
    assert_eq!(with_args("ann", "hunter2", 1), 11);
    assert_eq!(without_args("bob"), 3);
    assert_eq!(opaque_arg(NotDebug), 1);
    let events = captured.take();
    if !ANY {
        assert!(events.is_empty());
        return;
    }
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::RequestStarted(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 3);
    let args: Vec<(String, String)> = started[0]
        .args
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    assert_eq!(
        args,
        [
            ("user".to_owned(), "\"ann\"".to_owned()),
            ("count".to_owned(), "1".to_owned())
        ]
    );
    assert!(
        !format!("{:?}", started[0]).contains("hunter2"),
        "a skipped argument is never formatted"
    );
    assert_eq!(
        started[0].command.as_str(),
        "with_args",
        "the command defaults to the function's name"
    );
    assert!(started[1].args.is_empty());
    assert_eq!(started[2].args[0].1, "<pool::sync::NotDebug>");
}

struct Service {
    pool: poolscope::Label,
    calls: u32,
}

impl Service {
    #[observe(pool = self.pool, command = "get")]
    fn get(&self) -> &str {
        self.pool.as_str()
    }

    #[observe(pool = self.pool, command = "bump")]
    fn bump(&mut self) -> &mut u32 {
        self.calls += 1;
        &mut self.calls
    }

    #[observe(pool = self.pool, command = "generic")]
    fn generic<T: Clone + std::fmt::Debug>(&self, value: &T) -> Vec<T> {
        vec![value.clone(), value.clone()]
    }
}

#[test]
fn methods_with_dynamic_labels_and_borrowed_returns() {
    let mut service = Service {
        pool: poolscope::Label::new("sync-methods"),
        calls: 0,
    };
    assert_eq!(service.get(), "sync-methods");
    *service.bump() += 10;
    assert_eq!(service.calls, 11);
    assert_eq!(service.generic(&1u8), [1, 1]);
    assert_eq!(service.generic(&"x"), ["x", "x"]);
    let expected = |n| if TIMING { [n, 0, 0, 0] } else { [0; 4] };
    assert_eq!(outcome_counts("sync-methods", "get"), expected(1));
    assert_eq!(outcome_counts("sync-methods", "bump"), expected(1));
    assert_eq!(
        outcome_counts("sync-methods", "generic"),
        expected(2),
        "one call site across monomorphizations"
    );
}

#[observe(pool = "sync-panic", command = "explode")]
fn explode(n: u32) -> u32 {
    if n > 0 {
        panic!("exploded with {n}");
    }
    n
}

#[test]
fn a_panic_is_recorded_and_keeps_unwinding() {
    let captured = capture("sync-panic");
    let caught = std::panic::catch_unwind(|| explode(3));
    let payload = caught.expect_err("the panic must not be swallowed");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("exploded with 3")
    );
    assert_eq!(explode(0), 0);
    assert_eq!(
        outcome_counts("sync-panic", "explode"),
        if TIMING { [1, 0, 1, 0] } else { [0; 4] }
    );
    let events = captured.take();
    let done = completions(&events);
    if !ANY {
        assert!(done.is_empty());
        return;
    }
    assert_eq!(done[0].outcome, Outcome::Panic);
    assert_eq!(done[0].error.is_some(), ERRORS);
    if let Some(error) = &done[0].error {
        assert_eq!(error.kind, poolscope::error::ErrorKind::Panic);
        assert_eq!(error.message, "exploded with 3");
        let location = error.location.as_deref().unwrap_or_default();
        assert!(location.starts_with("tests/pool/sync.rs:"), "{location}");
    }
}

#[observe(pool = "sync-handler-panic")]
fn quiet() -> u8 {
    5
}

#[test]
fn a_panicking_subscriber_cannot_break_the_call() {
    let _bad = poolscope::events::subscribe(|event| {
        if event
            .pool()
            .is_some_and(|p| p.as_str() == "sync-handler-panic")
        {
            panic!("subscriber bug");
        }
    });
    let captured = capture("sync-handler-panic");
    assert_eq!(quiet(), 5);
    assert_eq!(captured.names().len(), if ANY { 2 } else { 0 });
}

/// An error with `Debug` and no `Display`.
struct DebugOnly(u8);

// Written out rather than derived: a derived `Debug` does not count as
// reading the field.
impl std::fmt::Debug for DebugOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DebugOnly").field(&self.0).finish()
    }
}

#[observe(pool = "sync-error-views")]
fn display_error() -> Result<(), String> {
    Err("plain text".to_owned())
}

#[observe(pool = "sync-error-views")]
fn debug_error() -> Result<(), DebugOnly> {
    Err(DebugOnly(4))
}

#[test]
fn errors_without_std_error_keep_what_they_have() {
    let captured = capture("sync-error-views");
    assert!(display_error().is_err());
    assert!(debug_error().is_err());
    let events = captured.take();
    let errors: Vec<_> = completions(&events)
        .into_iter()
        .map(|c| (c.outcome, c.error.clone()))
        .collect();
    if !ANY {
        assert!(errors.is_empty());
        return;
    }
    assert_eq!(errors[0].0, Outcome::Error);
    assert_eq!(errors[1].0, Outcome::Error);
    if ERRORS {
        let first = errors[0].1.as_ref().unwrap();
        assert_eq!(
            (first.message.as_str(), first.type_name),
            ("plain text", "alloc::string::String")
        );
        assert_eq!(errors[1].1.as_ref().unwrap().message, "DebugOnly(4)");
    }
}

#[observe(pool = "sync-threads", command = "hot")]
fn hot(i: u64) -> Result<u64, std::fmt::Error> {
    if i % 10 == 9 {
        return Err(std::fmt::Error);
    }
    Ok(i)
}

#[test]
fn concurrent_calls_are_all_counted_exactly() {
    let threads = on_threads(8, 10_000, |i| {
        let _ = hot(i);
    });
    // Read while they run: never more completions than calls, never negative.
    for _ in 0..20 {
        let [ok, error, ..] = outcome_counts("sync-threads", "hot");
        assert!(ok + error <= 80_000);
    }
    threads.join();
    let expected = if TIMING {
        [72_000, 8_000, 0, 0]
    } else {
        [0; 4]
    };
    assert_eq!(outcome_counts("sync-threads", "hot"), expected);
    if TIMING {
        let stats =
            poolscope::stats::series(poolscope::Kind::Request, "sync-threads", "hot").unwrap();
        assert_eq!(stats.in_flight, 0);
    }
}
