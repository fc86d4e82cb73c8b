use std::fmt;
use std::time::Duration;

/// An error captured as structured fields, never only a string.
///
/// ```
/// use poolscope_runtime::error::{ErrorContext, ErrorKind};
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk full");
/// let ctx = ErrorContext::from_error(&io);
/// assert_eq!(ctx.kind, ErrorKind::Error);
/// assert_eq!(ctx.message, "disk full");
/// assert_eq!(ctx.type_name, "std::io::error::Error");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorContext {
    /// What kind of failure this was.
    pub kind: ErrorKind,
    /// The Rust type of the error value (`std::any::type_name`), or `"panic"`.
    pub type_name: &'static str,
    /// The error's `Display` text (for a panic, its payload).
    pub message: String,
    /// The `Display` text of each `source()`, outermost first.
    pub chain: Vec<String>,
    /// Where a panic happened, as `file:line:column`.
    pub location: Option<String>,
    /// A Python exception reported by a worker.
    pub python: Option<PythonTraceback>,
    /// A gRPC status.
    pub grpc: Option<GrpcStatus>,
    /// A worker crash.
    pub crash: Option<CrashContext>,
}

/// The kind of a captured failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An `Err` value.
    Error,
    /// A panic.
    Panic,
    /// A worker process died.
    Crash,
}

impl ErrorKind {
    /// Lowercase name, as logged.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Error => "error",
            ErrorKind::Panic => "panic",
            ErrorKind::Crash => "crash",
        }
    }
}

/// A Python exception: type, message and frames, with the exceptions it was
/// chained from. Parse one from `traceback.format_exception` text with
/// [`PythonTraceback::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PythonTraceback {
    /// The exception class, e.g. `ValueError` (module-qualified when Python
    /// printed it so, e.g. `json.decoder.JSONDecodeError`).
    pub exception_type: String,
    /// `str(exc)`.
    pub message: String,
    /// Frames, outermost first.
    pub frames: Vec<PythonFrame>,
    /// Earlier exceptions in the chain, oldest first: each was the cause
    /// (`raise .. from ..`) or the context ("during handling of") of the next.
    pub chain: Vec<ChainedException>,
    /// The exception's `__notes__` (`add_note`), when they were given apart
    /// from the text ([`PythonTraceback::with_notes`]): printed, they cannot
    /// be told from a message's further lines.
    pub notes: Vec<String>,
    /// For an `ExceptionGroup` (Python 3.11+), its sub-exceptions as Python
    /// printed them, each a traceback of its own (a group among them holds
    /// its own).
    pub exceptions: Vec<PythonTraceback>,
    /// Sub-exceptions Python left out ("and N more exceptions": it prints
    /// at most 15 per group).
    pub more_exceptions: u32,
    /// The thread it escaped from, for what `threading` prints ("Exception
    /// in thread NAME:").
    pub thread: Option<String>,
    /// The formatted traceback as Python printed it, chained causes included.
    pub formatted: String,
}

/// An exception earlier in a Python exception chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainedException {
    /// How it leads to the next one.
    pub relation: ChainRelation,
    /// The exception class.
    pub exception_type: String,
    /// `str(exc)`.
    pub message: String,
    /// Its frames, outermost first.
    pub frames: Vec<PythonFrame>,
}

/// How an exception in a chain leads to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainRelation {
    /// "The above exception was the direct cause of the following exception"
    /// (`raise .. from ..`).
    Cause,
    /// "During handling of the above exception, another exception occurred".
    Context,
}

/// One frame of a Python traceback.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PythonFrame {
    /// Source file.
    pub file: String,
    /// Line number.
    pub line: u32,
    /// Function name (`<module>` at top level; empty for a syntax error's
    /// location, which names no function).
    pub function: String,
    /// The source line Python showed, trimmed.
    pub source: Option<String>,
    /// How many more times the frame repeats below, from "[Previous line
    /// repeated N more times]" (a deep recursion); 0 otherwise.
    pub repeated: u32,
}

/// A gRPC status: code name and number, message, details.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GrpcStatus {
    /// The code's number (0–16).
    pub code: i32,
    /// The code's name, e.g. `UNAVAILABLE`.
    pub code_name: String,
    /// The status message.
    pub message: String,
    /// The binary details, as text where they decode.
    pub details: Option<String>,
    /// Selected metadata (ASCII entries, secret-named ones left out).
    pub metadata: Vec<(String, String)>,
}

/// How a worker process died.
///
/// Build one with [`WorkerCrash`]'s constructors; `Worker::crashed` fills
/// what the pool knows of the worker when the crash left it out: its pid,
/// its resident memory at the memory sampler's last sample, the host name.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CrashContext {
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal's name, when a signal killed it (e.g. `SIGSEGV`).
    pub signal: Option<String>,
    /// Whether the kernel wrote a core dump (a signal death only).
    pub core_dumped: bool,
    /// The last lines the worker wrote to stderr.
    pub stderr_tail: Option<String>,
    /// How long the worker had been up.
    pub uptime: Option<Duration>,
    /// The last command the worker was running.
    pub last_command: Option<String>,
    /// The worker's process id.
    pub pid: Option<u32>,
    /// The Python stack of the thread that crashed, outermost first, when
    /// the worker's `faulthandler` wrote one to stderr (see
    /// [`fault_stack`](crate::error::fault_stack)).
    pub stack: Vec<PythonFrame>,
    /// The correlation ids of the requests the worker was running.
    pub in_flight: Vec<String>,
    /// The worker's resident memory at its last sample, in bytes.
    pub resident_bytes: Option<u64>,
    /// The host the worker ran on.
    pub host: Option<String>,
}

impl ErrorContext {
    /// Captures an error value with its `source()` chain.
    pub fn from_error<E: std::error::Error>(err: &E) -> ErrorContext {
        ErrorContext::from_dyn(std::any::type_name::<E>(), err)
    }

    /// Captures an error behind a trait object, whose concrete type name the
    /// caller knows.
    pub fn from_dyn(type_name: &'static str, err: &dyn std::error::Error) -> ErrorContext {
        let mut chain = Vec::new();
        let mut next = err.source();
        while let Some(source) = next {
            if chain.len() == 64 {
                // A cyclic or absurdly deep chain must not hang the caller.
                break;
            }
            chain.push(source.to_string());
            next = source.source();
        }
        ErrorContext {
            chain,
            ..ErrorContext::message(ErrorKind::Error, type_name, err.to_string())
        }
    }

    /// An error known only by its text.
    pub fn message(
        kind: ErrorKind,
        type_name: &'static str,
        message: impl Into<String>,
    ) -> ErrorContext {
        ErrorContext {
            kind,
            type_name,
            message: message.into(),
            chain: Vec::new(),
            location: None,
            python: None,
            grpc: None,
            crash: None,
        }
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)?;
        for cause in &self.chain {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("request failed")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn captures_the_source_chain() {
        let err = Outer(std::io::Error::other("connection reset"));
        let ctx = ErrorContext::from_error(&err);
        assert_eq!(ctx.message, "request failed");
        assert_eq!(ctx.chain, vec!["connection reset".to_owned()]);
        assert!(ctx.type_name.ends_with("Outer"));
        assert_eq!(
            ctx.to_string(),
            format!("{}: request failed: connection reset", ctx.type_name)
        );
    }
}

/// Errors that know more about themselves than `Display` and `source()` say:
/// a Python exception, a gRPC status, a worker crash. `#[observe]` captures
/// an `Err` through this trait when its type implements it (with the
/// `errors` aspect), before falling back to `std::error::Error`.
///
/// ```
/// use poolscope_runtime::error::{ErrorContext, ErrorDetails, ErrorKind};
/// struct Timeout(u64);
/// impl ErrorDetails for Timeout {
///     fn error_context(&self) -> ErrorContext {
///         ErrorContext::message(ErrorKind::Error, "Timeout", format!("no answer after {} ms", self.0))
///     }
/// }
/// assert_eq!(Timeout(250).error_context().message, "no answer after 250 ms");
/// ```
pub trait ErrorDetails {
    /// The structured context of this error.
    fn error_context(&self) -> ErrorContext;

    /// How a call that returned this error ended, for the `outcome` label
    /// and events: [`Outcome::Timeout`](crate::Outcome::Timeout) for a
    /// request that ran out of time, [`Outcome::Rejected`](crate::Outcome::Rejected)
    /// for one refused without being run (a full queue, a shut pool);
    /// [`Outcome::Error`](crate::Outcome::Error) otherwise, the default.
    /// [`Outcome::Panic`](crate::Outcome::Panic) for a panic caught and
    /// returned as an error ([`Panicked`]). Any other value is read as
    /// `Error`.
    fn outcome(&self) -> crate::model::Outcome {
        crate::model::Outcome::Error
    }
}

/// A job that panicked, caught by `Worker::run` or `Worker::run_async` so
/// that the worker lives on. An observed function that returns it records
/// the outcome `panic`, with the message and (with the `errors` aspect) the
/// location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panicked {
    /// The panic's message (`"non-string panic payload"` when it had none).
    pub message: String,
    /// `file:line:column`, when the `errors` aspect's panic hook saw it.
    pub location: Option<String>,
}

impl Panicked {
    /// The panic a `catch_unwind` caught, read from its payload.
    pub fn from_payload(payload: &(dyn std::any::Any + Send)) -> Panicked {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Panicked {
            message,
            location: None,
        }
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the job panicked: {}", self.message)
    }
}

impl std::error::Error for Panicked {}

impl ErrorDetails for Panicked {
    fn error_context(&self) -> ErrorContext {
        let mut ctx = ErrorContext::message(ErrorKind::Panic, "panic", self.message.clone());
        ctx.location = self.location.clone();
        ctx
    }

    fn outcome(&self) -> crate::model::Outcome {
        crate::model::Outcome::Panic
    }
}

impl ErrorContext {
    /// The same context with every text field passed through the
    /// process-wide sanitizer: message, chain, location, traceback text and
    /// source lines, gRPC message and details, crash stderr and command.
    pub fn sanitized(mut self) -> ErrorContext {
        use crate::sanitize::sanitize;
        let clean = |text: &mut String| {
            if let std::borrow::Cow::Owned(cleaned) = sanitize(text) {
                *text = cleaned;
            }
        };
        clean(&mut self.message);
        self.chain.iter_mut().for_each(clean);
        if let Some(location) = &mut self.location {
            clean(location);
        }
        if let Some(python) = &mut self.python {
            clean(&mut python.message);
            clean(&mut python.formatted);
            let frames = python
                .frames
                .iter_mut()
                .chain(python.chain.iter_mut().flat_map(|c| c.frames.iter_mut()));
            frames.filter_map(|f| f.source.as_mut()).for_each(clean);
            python.chain.iter_mut().for_each(|c| clean(&mut c.message));
            python.notes.iter_mut().for_each(clean);
            let members = std::mem::take(&mut python.exceptions);
            python.exceptions = members
                .into_iter()
                .map(|member| {
                    let mut context = ErrorContext::message(ErrorKind::Error, "", "");
                    context.python = Some(member);
                    context.sanitized().python.unwrap_or_default()
                })
                .collect();
        }
        if let Some(grpc) = &mut self.grpc {
            clean(&mut grpc.message);
            if let Some(details) = &mut grpc.details {
                clean(details);
            }
        }
        if let Some(crash) = &mut self.crash {
            if let Some(tail) = &mut crash.stderr_tail {
                clean(tail);
            }
            if let Some(command) = &mut crash.last_command {
                clean(command);
            }
            for frame in &mut crash.stack {
                clean(&mut frame.file);
            }
        }
        self
    }
}

/// An exception raised in a Python worker, with its parsed traceback.
///
/// ```
/// use poolscope_runtime::error::{ErrorDetails, PythonError};
/// let err = PythonError::parse("Traceback (most recent call last):\n  File \"w.py\", line 1, in <module>\nKeyError: 'user'\n").unwrap();
/// assert_eq!(err.to_string(), "KeyError: 'user'");
/// assert_eq!(err.error_context().python.unwrap().frames.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonError {
    /// The traceback (boxed: a `Result` carrying the error stays small).
    pub traceback: Box<PythonTraceback>,
}

impl PythonError {
    /// Wraps a parsed traceback.
    pub fn new(traceback: PythonTraceback) -> PythonError {
        PythonError {
            traceback: Box::new(traceback),
        }
    }

    /// Parses traceback text; `None` if it holds no exception.
    pub fn parse(text: &str) -> Option<PythonError> {
        PythonTraceback::parse(text).map(PythonError::new)
    }
}

impl fmt::Display for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.traceback.message.is_empty() {
            f.write_str(&self.traceback.exception_type)
        } else {
            write!(
                f,
                "{}: {}",
                self.traceback.exception_type, self.traceback.message
            )
        }
    }
}

impl std::error::Error for PythonError {}

impl ErrorDetails for PythonError {
    fn error_context(&self) -> ErrorContext {
        let tb = &self.traceback;
        let mut ctx = ErrorContext::message(ErrorKind::Error, "python", self.to_string());
        // Most recent cause first, as `source()` chains go.
        ctx.chain = tb
            .chain
            .iter()
            .rev()
            .map(|c| {
                if c.message.is_empty() {
                    c.exception_type.clone()
                } else {
                    format!("{}: {}", c.exception_type, c.message)
                }
            })
            .collect();
        ctx.python = Some(PythonTraceback::clone(tb));
        ctx.sanitized()
    }
}

/// At most this much of a crashed worker's stderr is kept.
pub const STDERR_TAIL_BYTES: usize = 4096;

/// A worker process that died: exit code or signal, the end of its stderr,
/// how long it ran, what it was doing.
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::error::{ErrorDetails, ErrorKind, WorkerCrash};
/// let crash = WorkerCrash::signaled(11, b"Fatal Python error: Segmentation fault\n", Duration::from_secs(3), Some("infer".into()));
/// assert_eq!(crash.to_string(), "worker killed by SIGSEGV after 3.0 s");
/// let ctx = crash.error_context();
/// assert_eq!((ctx.kind, ctx.crash.unwrap().signal.as_deref()), (ErrorKind::Crash, Some("SIGSEGV")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCrash {
    /// The crash, as recorded (boxed: a `Result` carrying the error stays
    /// small).
    pub context: Box<CrashContext>,
}

impl WorkerCrash {
    /// A worker that exited with `code`.
    pub fn exited(
        code: i32,
        stderr: &[u8],
        uptime: Duration,
        last_command: Option<String>,
    ) -> WorkerCrash {
        WorkerCrash::new(Some(code), None, stderr, uptime, last_command)
    }

    /// A worker killed by signal number `signal`.
    pub fn signaled(
        signal: i32,
        stderr: &[u8],
        uptime: Duration,
        last_command: Option<String>,
    ) -> WorkerCrash {
        WorkerCrash::new(
            None,
            Some(signal_name(signal)),
            stderr,
            uptime,
            last_command,
        )
    }

    /// A worker whose process was still running but could not be reached
    /// over its channel: neither an exit code nor a signal. Counted as kind
    /// `lost`.
    ///
    /// ```
    /// use poolscope_runtime::error::WorkerCrash;
    /// let crash = WorkerCrash::lost(b"", std::time::Duration::from_secs(3), None);
    /// assert!(crash.context.exit_code.is_none() && crash.context.signal.is_none());
    /// assert!(crash.to_string().starts_with("worker lost"), "{crash}");
    /// ```
    pub fn lost(stderr: &[u8], uptime: Duration, last_command: Option<String>) -> WorkerCrash {
        WorkerCrash::new(None, None, stderr, uptime, last_command)
    }

    /// From a child's exit status (exit code, or on Unix the signal).
    pub fn from_status(
        status: std::process::ExitStatus,
        stderr: &[u8],
        uptime: Duration,
        last_command: Option<String>,
    ) -> WorkerCrash {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(signal) = status.signal() {
                let mut crash = WorkerCrash::signaled(signal, stderr, uptime, last_command);
                crash.context.core_dumped = status.core_dumped();
                return crash;
            }
        }
        WorkerCrash::new(status.code(), None, stderr, uptime, last_command)
    }

    /// The same crash, of the process `pid`.
    pub fn with_pid(mut self, pid: u32) -> WorkerCrash {
        self.context.pid = Some(pid);
        self
    }

    /// The same crash, with the correlation ids of the requests the worker
    /// was running when it died.
    pub fn with_in_flight<I, S>(mut self, correlation_ids: I) -> WorkerCrash
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.context.in_flight = correlation_ids
            .into_iter()
            .map(Into::into)
            .filter(|id: &String| !id.is_empty())
            .collect();
        self
    }

    fn new(
        exit_code: Option<i32>,
        signal: Option<String>,
        stderr: &[u8],
        uptime: Duration,
        last_command: Option<String>,
    ) -> WorkerCrash {
        let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL_BYTES)..];
        let tail = String::from_utf8_lossy(tail);
        // Start at a line boundary when the cut fell mid-line.
        let tail = if stderr.len() > STDERR_TAIL_BYTES {
            tail.split_once('\n')
                .map_or(tail.as_ref(), |(_, rest)| rest)
                .to_owned()
        } else {
            tail.into_owned()
        };
        WorkerCrash {
            context: Box::new(CrashContext {
                exit_code,
                signal,
                stderr_tail: (!tail.trim().is_empty()).then_some(tail),
                uptime: Some(uptime),
                last_command,
                // Read from everything kept, not only the tail: a dump of
                // many threads runs longer than the tail.
                stack: crate::traceback::fault_stack(&String::from_utf8_lossy(stderr)),
                host: host_name(),
                ..CrashContext::default()
            }),
        }
    }
}

/// This machine's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`),
/// read once.
pub(crate) fn host_name() -> Option<String> {
    static HOST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
    })
    .clone()
}

/// The conventional name of a Linux signal number.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

impl fmt::Display for WorkerCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.context;
        match (&c.signal, c.exit_code) {
            (Some(signal), _) => write!(f, "worker killed by {signal}")?,
            (None, Some(code)) => write!(f, "worker exited with code {code}")?,
            (None, None) => f.write_str("worker lost")?,
        }
        if let Some(uptime) = c.uptime {
            write!(f, " after {:.1} s", uptime.as_secs_f64())?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkerCrash {}

impl ErrorDetails for WorkerCrash {
    fn error_context(&self) -> ErrorContext {
        let mut ctx = ErrorContext::message(ErrorKind::Crash, "crash", self.to_string());
        ctx.crash = Some(CrashContext::clone(&self.context));
        ctx.sanitized()
    }
}

#[cfg(feature = "grpc")]
impl ErrorDetails for tonic::Status {
    fn error_context(&self) -> ErrorContext {
        let code = self.code();
        let name = format!("{code:?}");
        // `NotFound` -> `NOT_FOUND`, the canonical gRPC name.
        let mut code_name = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                code_name.push('_');
            }
            code_name.push(c.to_ascii_uppercase());
        }
        let details =
            (!self.details().is_empty()).then(|| match std::str::from_utf8(self.details()) {
                Ok(text) => text.to_owned(),
                Err(_) => format!("<{} bytes of binary details>", self.details().len()),
            });
        let metadata = self
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                    let key = key.as_str();
                    let keep = !crate::sanitize::is_secret_key(key) && !key.starts_with("grpc-");
                    keep.then(|| {
                        (
                            key.to_owned(),
                            value.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let mut ctx = ErrorContext::message(
            ErrorKind::Error,
            "tonic::Status",
            format!("{code_name}: {}", self.message()),
        );
        ctx.grpc = Some(GrpcStatus {
            code: code as i32,
            code_name,
            message: self.message().to_owned(),
            details,
            metadata,
        });
        ctx.sanitized()
    }
}
