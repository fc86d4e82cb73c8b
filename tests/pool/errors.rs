//! Error context beyond `Display`: Python tracebacks produced by a real
//! `python3`, worker crashes from real child processes, and their capture by
//! `#[observe]` through `ErrorDetails` — sanitized.

use poolscope_testkit as common;

use std::process::Command;
use std::time::Duration;

use common::*;
use poolscope::error::{
    ChainRelation, ErrorDetails, ErrorKind, PythonError, PythonTraceback, WorkerCrash,
};
use poolscope::events::Event;
use poolscope::observe;
use poolscope_testkit::ERRORS;

/// Runs `code` in `python3` and returns what it printed on stdout.
fn python(code: &str) -> String {
    let output = Command::new("python3")
        .args(["-c", code])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3"));
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A traceback as a worker would send it: `traceback.format_exception` of
/// what `body` raises, with the exception raised from a file of its own so
/// frames have real names and source lines.
fn traceback_of(body: &str) -> String {
    let script = format!(
        r#"
import traceback, tempfile, os, runpy
source = {body:?}
path = os.path.join(tempfile.mkdtemp(), "worker.py")
with open(path, "w") as f:
    f.write(source)
try:
    runpy.run_path(path, run_name="__main__")
except BaseException as e:
    print("".join(traceback.format_exception(type(e), e, e.__traceback__)), end="")
"#
    );
    python(&script)
}

#[test]
fn a_raised_exception_parses_into_type_message_and_frames() {
    let text = traceback_of(
        "def load(user):\n    return {}[user]\n\ndef handle():\n    load('ann')\n\nhandle()\n",
    );
    let tb = PythonTraceback::parse(&text).unwrap_or_else(|| panic!("no traceback in {text}"));
    assert_eq!(
        (tb.exception_type.as_str(), tb.message.as_str()),
        ("KeyError", "'ann'")
    );
    let ours: Vec<_> = tb
        .frames
        .iter()
        .filter(|f| f.file.ends_with("worker.py"))
        .collect();
    let functions: Vec<&str> = ours.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(functions, ["<module>", "handle", "load"]);
    assert_eq!(ours.iter().map(|f| f.line).collect::<Vec<_>>(), [7, 5, 2]);
    assert_eq!(ours[2].source.as_deref(), Some("return {}[user]"));
    assert!(tb.chain.is_empty());
    assert_eq!(tb.formatted, text.trim_end());
}

#[test]
fn chained_exceptions_keep_their_order_and_relation() {
    let text = traceback_of(
        "def parse(raw):\n    return int(raw)\n\ndef handle():\n    try:\n        parse('x')\n    except ValueError as e:\n        raise RuntimeError('bad request') from e\n\ntry:\n    handle()\nexcept RuntimeError:\n    raise LookupError('retry failed')\n",
    );
    let tb = PythonTraceback::parse(&text).unwrap();
    assert_eq!(
        (tb.exception_type.as_str(), tb.message.as_str()),
        ("LookupError", "retry failed")
    );
    let chain: Vec<(ChainRelation, &str, &str)> = tb
        .chain
        .iter()
        .map(|c| (c.relation, c.exception_type.as_str(), c.message.as_str()))
        .collect();
    assert_eq!(
        chain,
        [
            (
                ChainRelation::Cause,
                "ValueError",
                "invalid literal for int() with base 10: 'x'"
            ),
            (ChainRelation::Context, "RuntimeError", "bad request"),
        ]
    );
    assert!(tb.chain[0].frames.iter().any(|f| f.function == "parse"));
    let ctx = PythonError::new(tb).error_context();
    assert_eq!(ctx.message, "LookupError: retry failed");
    assert_eq!(
        ctx.chain,
        [
            "RuntimeError: bad request",
            "ValueError: invalid literal for int() with base 10: 'x'"
        ]
    );
}

#[test]
fn a_syntax_error_parses_with_its_location() {
    let text = python(
        r#"
import traceback
try:
    compile("def f(:\n    pass\n", "handler.py", "exec")
except SyntaxError as e:
    print("".join(traceback.format_exception(type(e), e, e.__traceback__)), end="")
"#,
    );
    let tb = PythonTraceback::parse(&text).unwrap();
    assert_eq!(tb.exception_type, "SyntaxError");
    assert!(!tb.message.is_empty(), "{text}");
    let location = tb
        .frames
        .iter()
        .find(|f| f.file == "handler.py")
        .expect("the file of the syntax error");
    assert_eq!((location.line, location.function.as_str()), (1, ""));
    assert_eq!(location.source.as_deref(), Some("def f(:"));
}

#[test]
fn secrets_in_tracebacks_are_sanitized() {
    let text = traceback_of("def connect(url):\n    raise ConnectionError('cannot reach ' + url)\n\nconnect('postgres://app:tb-secret-pw@db/app')\n");
    let ctx = PythonError::parse(&text).unwrap().error_context();
    let python = ctx.python.as_ref().unwrap();
    for text in [&ctx.message, &python.message, &python.formatted] {
        assert!(!text.contains("tb-secret-pw"), "{text}");
        assert!(text.contains("postgres://app:[REDACTED]@db/app"), "{text}");
    }
}

#[test]
fn crashes_of_real_processes_carry_signal_or_code_and_stderr() {
    let started = std::time::Instant::now();
    let output = Command::new("python3")
        .args(["-c", "import os, signal, sys; sys.stderr.write('worker: loading model\\nfatal: token=crash-secret\\n'); sys.stderr.flush(); os.kill(os.getpid(), signal.SIGSEGV)"])
        .output()
        .unwrap();
    let crash = WorkerCrash::from_status(
        output.status,
        &output.stderr,
        started.elapsed(),
        Some("infer".into()),
    );
    let ctx = crash.error_context();
    assert_eq!(ctx.kind, ErrorKind::Crash);
    let details = ctx.crash.unwrap();
    assert_eq!(
        (details.signal.as_deref(), details.exit_code),
        (Some("SIGSEGV"), None)
    );
    let tail = details.stderr_tail.unwrap();
    assert!(
        tail.contains("worker: loading model")
            && tail.contains("token=[REDACTED]")
            && !tail.contains("crash-secret"),
        "{tail}"
    );
    assert!(ctx.message.starts_with("worker killed by SIGSEGV after"));

    let output = Command::new("python3")
        .args(["-c", "import os; os._exit(3)"])
        .output()
        .unwrap();
    let crash =
        WorkerCrash::from_status(output.status, &output.stderr, Duration::from_secs(1), None);
    assert_eq!(
        (
            crash.context.exit_code,
            crash.context.signal.as_deref(),
            crash.context.stderr_tail.as_deref()
        ),
        (Some(3), None, None)
    );

    let long: Vec<u8> = (0..10_000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let tail = WorkerCrash::exited(1, &long, Duration::ZERO, None)
        .context
        .stderr_tail
        .unwrap();
    assert!(
        tail.len() <= poolscope::error::STDERR_TAIL_BYTES
            && tail.starts_with("line ")
            && tail.ends_with("line 9999\n")
    );
}

#[observe(pool = "errors-python", command = "predict")]
fn predict(traceback: &str) -> Result<(), PythonError> {
    Err(PythonError::parse(traceback).expect("a traceback"))
}

#[observe(pool = "errors-python", command = "run", skip(crash))]
fn run(crash: WorkerCrash) -> Result<(), WorkerCrash> {
    Err(crash)
}

#[test]
fn observed_calls_capture_python_and_crash_context() {
    let captured = capture("errors-python");
    let text =
        traceback_of("def f():\n    raise ValueError('password=obs-secret rejected')\n\nf()\n");
    predict(&text).unwrap_err();
    run(WorkerCrash::signaled(
        9,
        b"killed\n",
        Duration::from_secs(2),
        Some("train".into()),
    ))
    .unwrap_err();
    let events = captured.take();
    if !ANY {
        assert!(events.is_empty());
        return;
    }
    let done = completions(&events);
    assert_eq!(done.len(), 2);
    let started = events.iter().find_map(|e| match e {
        Event::RequestStarted(s) if s.command.as_str() == "predict" => Some(s),
        _ => None,
    });
    let args = format!("{:?}", started.unwrap().args);
    assert!(
        !args.contains("obs-secret"),
        "arguments are sanitized: {args}"
    );
    if ERRORS {
        let python = done[0].error.as_ref().unwrap();
        assert_eq!(python.type_name, "python");
        assert_eq!(python.message, "ValueError: password=[REDACTED] rejected");
        let tb = python.python.as_ref().unwrap();
        assert!(tb.frames.iter().any(|f| f.function == "f"));
        assert!(!tb.formatted.contains("obs-secret"));
        let crash = done[1].error.as_ref().unwrap();
        assert_eq!(crash.kind, ErrorKind::Crash);
        assert_eq!(
            crash.crash.as_ref().unwrap().signal.as_deref(),
            Some("SIGKILL")
        );
        assert_eq!(
            crash.crash.as_ref().unwrap().last_command.as_deref(),
            Some("train")
        );
    } else {
        assert!(done.iter().all(|c| c.error.is_none()));
    }
}
