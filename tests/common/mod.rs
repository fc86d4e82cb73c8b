//! Shared helpers: capture the events of one pool. Tests in a binary run in
//! parallel and events are process-wide, so each test uses its own pool name.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use poolscope::events::{Event, Subscription};

pub const TIMING: bool = cfg!(feature = "timing");
pub const CORRELATION: bool = cfg!(feature = "correlation");
pub const ERRORS: bool = cfg!(feature = "errors");
pub const ANY: bool = TIMING || CORRELATION || ERRORS;

pub struct Captured {
    events: Arc<Mutex<Vec<Event>>>,
    _subscription: Subscription,
}

pub fn capture(pool: &'static str) -> Captured {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let subscription = poolscope::events::subscribe(move |event| {
        if event.pool().is_some_and(|p| p.as_str() == pool) {
            sink.lock().unwrap().push(event.clone());
        }
    });
    Captured {
        events,
        _subscription: subscription,
    }
}

impl Captured {
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(Event::name)
            .collect()
    }
}

/// Completed requests' (outcome, error message) in order.
pub fn completions(events: &[Event]) -> Vec<&poolscope::events::RequestCompleted> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RequestCompleted(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Counts of (ok, error, panic, cancelled) in the request series, or zeros.
pub fn outcome_counts(pool: &str, command: &str) -> [u64; 4] {
    match poolscope::stats::series(poolscope::Kind::Request, pool, command) {
        Some(s) => s.by_outcome.map(|h| h.count()),
        None => [0; 4],
    }
}

/// Runs Prometheus's linter on an exposition and fails the test on any
/// finding.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `promtool` ({e}): install it with `apt-get install prometheus`")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && findings.trim().is_empty(),
        "promtool found problems:\n{findings}\nin:\n{text}"
    );
}

/// A writer the test can read back (log output).
#[derive(Clone, Default)]
pub struct Buffer(pub Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The value of one series (`name{labels}`) in Prometheus text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// As [`sample`], for a series that must be there.
pub fn expect_sample(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}
