//! What the tests of poolscope and of its flagship share: capturing the
//! events of one pool (tests in a binary run in parallel and events are
//! process-wide, so each test uses its own pool name), waiting until
//! something holds, the same calls from several threads at once,
//! Prometheus text, promtool; an HTTP client and raw socket ([`client`]), a
//! Server-Sent Events reader ([`sse`]), headless Chromium over WebDriver
//! ([`webdriver`]), the server under test started on a free port
//! ([`start_server!`]) and the process's Prometheus recorder
//! ([`recorder!`]).
//!
//! It depends on poolscope with no feature of its own, so the features are
//! those of the package under test.

pub mod client;
mod recorder;
mod server;
pub mod sse;
pub mod webdriver;

#[doc(hidden)]
pub use recorder::recorder_turn;
#[doc(hidden)]
pub use server::configured;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use poolscope::events::{Event, Subscription};

/// Whether any aspect is compiled into the poolscope under test.
pub const ANY: bool = poolscope::COMPILED_IN;
/// Whether the timing aspect is compiled into the poolscope under test.
pub const TIMING: bool = poolscope::compiled_in::TIMING;
/// Whether the correlation aspect is compiled into the poolscope under test.
pub const CORRELATION: bool = poolscope::compiled_in::CORRELATION;
/// Whether the errors aspect is compiled into the poolscope under test.
pub const ERRORS: bool = poolscope::compiled_in::ERRORS;

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
/// The callers' requests never time out nor are rejected: a count of either
/// fails the test.
pub fn outcome_counts(pool: &str, command: &str) -> [u64; 4] {
    let all = all_outcome_counts(pool, command);
    assert_eq!(
        all[4..],
        [0, 0],
        "timeouts and rejections of {pool}/{command}"
    );
    [all[0], all[1], all[2], all[3]]
}

/// Counts of every outcome, in `Outcome::ALL` order, or zeros.
pub fn all_outcome_counts(pool: &str, command: &str) -> [u64; poolscope::Outcome::COUNT] {
    match poolscope::stats::series(poolscope::Kind::Request, pool, command) {
        Some(s) => s.by_outcome.map(|h| h.count()),
        None => [0; poolscope::Outcome::COUNT],
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

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }

    /// The lines written so far, each one JSON object.
    ///
    /// # Panics
    ///
    /// On a line that is not one JSON object.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"))
            })
            .collect()
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

/// How long a test waits for something that must happen, however slow or
/// loaded the machine: long enough never to decide a test on a busy CI
/// host (where Python workers restart several at a time, seconds each),
/// short enough that a real hang still fails. A wait returns as soon as its
/// condition holds, so the bound costs nothing when things work.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Waits until `done` holds, checking every 10 ms; fails the test naming
/// `what` after [`PATIENCE`]. Returns how long it took.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what} did not happen within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

/// As [`eventually`], for a condition checked by async code.
pub async fn eventually_async(what: &str, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    until_async(what, async || done().await.then_some(())).await;
    start.elapsed()
}

/// Waits until `probe` finds something and returns it, checking every
/// 10 ms; fails the test naming `what` after [`PATIENCE`].
pub async fn until_async<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what} did not happen within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Makes the tests of one binary that would disturb each other through
/// what is process-wide (the sample rate, the global subscriber, alert
/// rules that judge every pool) take turns: each holds the guard for its
/// whole run. A test that failed holding it does not stop the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `call(i)` for every `i` in `0..calls` on each of `threads` threads
/// at once: concurrent observed calls into the same series. Join them with
/// [`Threads::join`]; the test can read the series while they run.
pub fn on_threads(threads: usize, calls: u64, call: fn(u64)) -> Threads {
    Threads(
        (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    for i in 0..calls {
                        call(i);
                    }
                })
            })
            .collect(),
    )
}

/// The threads of [`on_threads`].
#[must_use = "join the threads to wait for their calls"]
pub struct Threads(Vec<std::thread::JoinHandle<()>>);

impl Threads {
    /// Waits until every call has returned.
    ///
    /// # Panics
    ///
    /// When a call panicked.
    pub fn join(self) {
        for thread in self.0 {
            thread.join().unwrap();
        }
    }
}

/// The state of the pool named `name`, as poolscope holds it (`None` with
/// poolscope compiled out).
pub fn pool_state(name: &str) -> Option<poolscope::stats::PoolState> {
    poolscope::stats::pools()
        .into_iter()
        .find(|p| p.pool.as_str() == name)
        .and_then(|p| p.state)
}

/// A file the flagship worker's `wait` command blocks on until the test
/// opens it: a request that holds its worker exactly as long as the test
/// needs. Removed when dropped.
pub struct GateFile(std::path::PathBuf);

impl GateFile {
    /// A shut gate, its path unique to `name` and this process.
    pub fn new(name: &str) -> GateFile {
        let path =
            std::env::temp_dir().join(format!("poolscope-gate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        GateFile(path)
    }

    /// The `wait` command's arguments.
    pub fn args(&self) -> serde_json::Value {
        serde_json::json!({ "path": self.0 })
    }

    /// Lets the request through.
    pub fn open(&self) {
        std::fs::write(&self.0, b"").unwrap();
    }
}

impl Drop for GateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A log destination the test holds shut: every write waits until
/// [`Gated::open`], so a bounded buffer in front of it fills and drops
/// lines whatever the machine's speed. Counts the lines it has written.
#[derive(Clone, Default)]
pub struct Gated {
    gate: Arc<(Mutex<bool>, Condvar)>,
    lines: Arc<AtomicU64>,
}

impl Gated {
    /// Lets every waiting and later write through.
    pub fn open(&self) {
        let (open, changed) = &*self.gate;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::SeqCst)
    }
}

impl Write for Gated {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (open, changed) = &*self.gate;
        let _open = changed
            .wait_while(open.lock().unwrap(), |open| !*open)
            .unwrap();
        self.lines.fetch_add(
            bytes.iter().filter(|b| **b == b'\n').count() as u64,
            Ordering::SeqCst,
        );
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
