//! Structured logs on `tracing`: a sink that turns poolscope's events into
//! log lines, and a subscriber that writes every line — poolscope's and the
//! application's — as JSON or for humans, sanitized, through a bounded
//! non-blocking writer.
//!
//! ```no_run
//! let _guard = poolscope_runtime::logging::init(
//!     poolscope_runtime::logging::LogConfig::json().with_level("info,my_app=debug").unwrap(),
//! ).unwrap();
//! tracing::info!(pool = "python", "pool ready");
//! ```

mod format;
mod sink;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

pub use format::rfc3339;

use crate::events::Subscription;

pub use crate::model::Format;

enum Output {
    Stdout,
    Stderr,
    Writer(Box<dyn Write + Send + 'static>),
}

/// What [`init`] installs.
#[must_use]
pub struct LogConfig {
    format: Format,
    filter: String,
    sample_rate: f64,
    buffer_lines: usize,
    flush_timeout: Duration,
    output: Output,
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("format", &self.format)
            .field("filter", &self.filter)
            .field("sample_rate", &self.sample_rate)
            .field("buffer_lines", &self.buffer_lines)
            .field("flush_timeout", &self.flush_timeout)
            .finish_non_exhaustive()
    }
}

/// What can go wrong installing logging.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The level filter does not parse.
    #[error("invalid log level filter `{filter}`: {reason}; use a level (`info`) or directives (`info,my_crate=debug`)")]
    Filter {
        /// The filter.
        filter: String,
        /// The parser's message.
        reason: String,
    },
    /// The sample rate is not a fraction.
    #[error("log sample rate {0} is not between 0 and 1")]
    SampleRate(f64),
    /// The buffer cannot hold a line.
    #[error("the log buffer must hold at least one line")]
    Buffer,
    /// Another global `tracing` subscriber is installed already.
    #[error("a global tracing subscriber is already installed: call `logging::init` once, before any other, or use `logging::dispatch` and install it yourself")]
    AlreadyInstalled,
}

impl LogConfig {
    /// JSON lines on stdout, level `info`, every request logged.
    pub fn json() -> LogConfig {
        LogConfig {
            format: Format::Json,
            filter: "info".into(),
            sample_rate: 1.0,
            buffer_lines: 128_000,
            flush_timeout: Duration::from_secs(5),
            output: Output::Stdout,
        }
    }

    /// Human-readable lines on stdout, level `info`.
    pub fn human() -> LogConfig {
        LogConfig {
            format: Format::Human,
            ..LogConfig::json()
        }
    }

    /// The level filter: a level (`warn`) or `tracing` directives
    /// (`info,poolscope=debug,hyper=warn`). Nothing below it is formatted.
    ///
    /// # Errors
    ///
    /// [`LogError::Filter`] when the directives do not parse.
    pub fn with_level(mut self, filter: &str) -> Result<LogConfig, LogError> {
        EnvFilter::try_new(filter).map_err(|e| LogError::Filter {
            filter: filter.to_owned(),
            reason: e.to_string(),
        })?;
        self.filter = filter.to_owned();
        Ok(self)
    }

    /// The fraction (0 to 1) of requests whose start and completion are
    /// logged; failures are always logged. Applies process-wide to request
    /// events (see `events::set_sample_rate`).
    ///
    /// # Errors
    ///
    /// [`LogError::SampleRate`] outside 0 to 1.
    pub fn with_sample_rate(mut self, rate: f64) -> Result<LogConfig, LogError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(LogError::SampleRate(rate));
        }
        self.sample_rate = rate;
        Ok(self)
    }

    /// Lines the writer may hold before new ones are dropped (and counted in
    /// `poolscope_log_lines_dropped_total`; every line, written or dropped,
    /// is counted in `poolscope_log_lines_total`). Default 128,000.
    ///
    /// # Errors
    ///
    /// [`LogError::Buffer`] for zero.
    pub fn with_buffer_lines(mut self, lines: usize) -> Result<LogConfig, LogError> {
        if lines == 0 {
            return Err(LogError::Buffer);
        }
        self.buffer_lines = lines;
        Ok(self)
    }

    /// How long dropping the [`LogGuard`] waits for the lines already
    /// emitted to reach the output (or be dropped) before it gives up on
    /// them: the bound on a stuck output delaying the program's exit.
    /// Default 5 s; `Duration::MAX` waits as long as it takes.
    pub fn with_flush_timeout(mut self, timeout: Duration) -> LogConfig {
        self.flush_timeout = timeout;
        self
    }

    /// Writes to stderr instead of stdout.
    pub fn to_stderr(mut self) -> LogConfig {
        self.output = Output::Stderr;
        self
    }

    /// Writes to `writer` (a file, a socket, a test buffer).
    pub fn with_writer(mut self, writer: impl Write + Send + 'static) -> LogConfig {
        self.output = Output::Writer(Box::new(writer));
        self
    }
}

/// Keeps logging running: flushes the writer and unsubscribes the sink when
/// dropped. Hold it for the life of the program.
///
/// Dropping it waits until every line emitted so far has been written or
/// dropped, at most [`LogConfig::with_flush_timeout`].
#[must_use = "logging stops (and buffered lines are flushed) when the guard is dropped"]
pub struct LogGuard {
    level: LevelControl,
    _sink: Subscription,
    counts: Counts,
    flush_timeout: Duration,
    stop: Arc<AtomicBool>,
    counter_thread: Option<std::thread::JoinHandle<()>>,
    // Last: dropping it flushes what is buffered.
    _writer: WorkerGuard,
}

/// Where each line emitted so far went; see [`LogGuard::lines`]. Once the
/// buffer has drained, `emitted == written + dropped + failed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines formatted and handed to the non-blocking writer.
    pub emitted: u64,
    /// Lines the output accepted.
    pub written: u64,
    /// Lines dropped because the buffer was full (as
    /// `poolscope_log_lines_dropped_total`).
    pub dropped: u64,
    /// Lines the output refused (its write failed).
    pub failed: u64,
}

/// The counters behind [`LineCounts`], shared with the writer's two ends.
#[derive(Clone)]
struct Counts {
    emitted: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    dropped: ErrorCounter,
}

impl Counts {
    fn read(&self) -> LineCounts {
        // Outcomes first, emitted last: a line is counted emitted before it
        // has an outcome, so a reading never shows more outcomes than lines.
        let dropped = self.dropped.dropped_lines() as u64;
        let written = self.written.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        LineCounts {
            emitted: self.emitted.load(Ordering::Acquire),
            written,
            dropped,
            failed,
        }
    }
}

/// Changes the log filter of a running subscriber; see
/// [`LogGuard::level_control`]. Cloning is cheap.
#[derive(Clone)]
pub struct LevelControl {
    handle: tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
}

impl std::fmt::Debug for LevelControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelControl").finish_non_exhaustive()
    }
}

impl LevelControl {
    /// Replaces the filter (`info`, `warn,poolscope=debug`, ...); lines
    /// from then on follow it.
    ///
    /// # Errors
    ///
    /// [`LogError::Filter`] for a filter that does not parse (the old one
    /// stays).
    pub fn set_level(&self, filter: &str) -> Result<(), LogError> {
        let parsed = EnvFilter::try_new(filter).map_err(|e| LogError::Filter {
            filter: filter.to_owned(),
            reason: e.to_string(),
        })?;
        self.handle.reload(parsed).map_err(|e| LogError::Filter {
            filter: filter.to_owned(),
            reason: e.to_string(),
        })
    }
}

impl LogGuard {
    /// Where the lines emitted so far went: written, dropped, refused by the
    /// output, or (the difference) still in the buffer.
    pub fn lines(&self) -> LineCounts {
        self.counts.read()
    }

    /// A handle for changing the filter while the program runs.
    pub fn level_control(&self) -> LevelControl {
        self.level.clone()
    }

    /// As [`LevelControl::set_level`].
    ///
    /// # Errors
    ///
    /// [`LogError::Filter`] for a filter that does not parse.
    pub fn set_level(&self, filter: &str) -> Result<(), LogError> {
        self.level.set_level(filter)
    }
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // tracing-appender's own guard gives the writer a fixed second to
        // drain; wait here for the lines already emitted instead, so a slow
        // output loses nothing it can still take. Done when every line has
        // an outcome, or, while other threads keep logging, once every line
        // emitted and not dropped before the wait began has been written
        // (the buffer is first in, first out).
        let start = std::time::Instant::now();
        let at_start = self.counts.read();
        let kept = at_start.emitted - at_start.dropped;
        loop {
            let now = self.counts.read();
            let settled = now.written + now.dropped + now.failed >= now.emitted;
            if settled || now.written + now.failed >= kept || start.elapsed() >= self.flush_timeout
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.counter_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Builds the subscriber and the sink without installing the subscriber
/// globally: install the returned dispatch yourself (or scope it with
/// `tracing::dispatcher::with_default`).
///
/// # Errors
///
/// [`LogError::Filter`] if the filter became invalid (it was checked).
pub fn dispatch(config: LogConfig) -> Result<(tracing::Dispatch, LogGuard), LogError> {
    let filter = EnvFilter::try_new(&config.filter).map_err(|e| LogError::Filter {
        filter: config.filter.clone(),
        reason: e.to_string(),
    })?;
    let builder = NonBlockingBuilder::default()
        .buffered_lines_limit(config.buffer_lines)
        .lossy(true);
    let written = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let output: Box<dyn Write + Send> = match config.output {
        Output::Stdout => Box::new(std::io::stdout()),
        Output::Stderr => Box::new(std::io::stderr()),
        Output::Writer(w) => w,
    };
    let (writer, worker) = builder.finish(Outcomes {
        output,
        written: written.clone(),
        failed: failed.clone(),
    });
    let counts = Counts {
        emitted: Arc::new(AtomicU64::new(0)),
        written,
        failed,
        dropped: writer.error_counter(),
    };
    let layer = tracing_subscriber::fmt::layer()
        .event_format(format::LineFormat {
            json: config.format == Format::Json,
        })
        .with_writer(Counted {
            writer,
            lines: counts.emitted.clone(),
        });
    // Reloadable, so the level can change without a restart.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let subscriber = tracing_subscriber::registry().with(filter).with(layer);
    crate::events::set_sample_rate(config.sample_rate);
    let sink = sink::subscribe();

    crate::describe::describe_all();
    let lines_counter = metrics::counter!("poolscope_log_lines_total");
    let dropped_counter = metrics::counter!("poolscope_log_lines_dropped_total");
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let mirrored = counts.clone();
    let mirror = move || {
        let now = mirrored.read();
        dropped_counter.absolute(now.dropped);
        lines_counter.absolute(now.emitted);
    };
    let counter_thread = std::thread::Builder::new()
        .name("poolscope-log-drops".into())
        .spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                mirror();
                std::thread::sleep(Duration::from_millis(200));
            }
            mirror();
        })
        .ok();
    Ok((
        tracing::Dispatch::new(subscriber),
        LogGuard {
            level: LevelControl { handle },
            _sink: sink,
            counts,
            flush_timeout: config.flush_timeout,
            stop,
            counter_thread,
            _writer: worker,
        },
    ))
}

/// The non-blocking writer, counting the lines handed to it: the
/// formatter writes each line with one call, and the writer either queues
/// it or drops it (and counts the drop), so emitted = written + dropped +
/// still queued.
struct Counted {
    writer: NonBlocking,
    lines: Arc<AtomicU64>,
}

impl<'a> MakeWriter<'a> for Counted {
    type Writer = CountedWriter<'a>;

    fn make_writer(&'a self) -> CountedWriter<'a> {
        CountedWriter {
            writer: self.writer.clone(),
            lines: &self.lines,
        }
    }
}

struct CountedWriter<'a> {
    writer: NonBlocking,
    lines: &'a AtomicU64,
}

impl Write for CountedWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.lines.fetch_add(1, Ordering::Release);
        self.writer.write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // One line, one message: the default would loop over `write`.
        self.write(bytes).map(|_| ())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// The output, counting what becomes of each line: the writer's thread
/// hands it one whole line per `write_all`.
struct Outcomes {
    output: Box<dyn Write + Send>,
    written: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Write for Outcomes {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.output.write(bytes)
    }

    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        let result = self.output.write_all(line);
        let outcome = if result.is_ok() {
            &self.written
        } else {
            &self.failed
        };
        outcome.fetch_add(1, Ordering::Release);
        result
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.output.flush()
    }
}

/// Installs the subscriber globally and the sink that logs poolscope's
/// events. Install the metrics recorder first (`metrics::install`) so the
/// dropped-lines counter reaches it.
///
/// # Errors
///
/// [`LogError::AlreadyInstalled`] when a global subscriber exists.
pub fn init(config: LogConfig) -> Result<LogGuard, LogError> {
    let (dispatch, guard) = dispatch(config)?;
    tracing::dispatcher::set_global_default(dispatch).map_err(|_| LogError::AlreadyInstalled)?;
    Ok(guard)
}
