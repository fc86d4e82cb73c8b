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

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

pub use format::rfc3339;

use crate::imp::events::Subscription;

/// How lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// `timestamp LEVEL target: message key=value ...`.
    Human,
}

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
    output: Output,
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("format", &self.format)
            .field("filter", &self.filter)
            .field("sample_rate", &self.sample_rate)
            .field("buffer_lines", &self.buffer_lines)
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
#[must_use = "logging stops (and buffered lines are flushed) when the guard is dropped"]
pub struct LogGuard {
    level: LevelControl,
    _sink: Subscription,
    stop: Arc<AtomicBool>,
    counter_thread: Option<std::thread::JoinHandle<()>>,
    // Last: dropping it flushes what is buffered.
    _writer: WorkerGuard,
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
    let (writer, worker) = match config.output {
        Output::Stdout => builder.finish(std::io::stdout()),
        Output::Stderr => builder.finish(std::io::stderr()),
        Output::Writer(w) => builder.finish(w),
    };
    let dropped = writer.error_counter();
    let emitted = Arc::new(AtomicU64::new(0));
    let layer = tracing_subscriber::fmt::layer()
        .event_format(format::LineFormat {
            json: config.format == Format::Json,
        })
        .with_writer(Counted {
            writer,
            lines: emitted.clone(),
        });
    // Reloadable, so the level can change without a restart.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let subscriber = tracing_subscriber::registry().with(filter).with(layer);
    crate::imp::events::set_sample_rate(config.sample_rate);
    let sink = sink::subscribe();

    metrics::describe_counter!(
        "poolscope_log_lines_total",
        metrics::Unit::Count,
        "Log lines emitted, whether written or dropped."
    );
    metrics::describe_counter!(
        "poolscope_log_lines_dropped_total",
        metrics::Unit::Count,
        "Log lines dropped because the non-blocking writer's buffer was full."
    );
    let lines_counter = metrics::counter!("poolscope_log_lines_total");
    let dropped_counter = metrics::counter!("poolscope_log_lines_dropped_total");
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    // The writer counts drops itself; mirror both counts into the metrics.
    // Drops are read first, so a scrape never shows more dropped than
    // emitted.
    let mirror = move || {
        dropped_counter.absolute(dropped.dropped_lines() as u64);
        lines_counter.absolute(emitted.load(Ordering::Relaxed));
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
        self.lines.fetch_add(1, Ordering::Relaxed);
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
