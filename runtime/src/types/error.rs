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

/// A Python exception: type, message and frames.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PythonTraceback {
    /// The exception class, e.g. `ValueError`.
    pub exception_type: String,
    /// `str(exc)`.
    pub message: String,
    /// Frames, outermost first.
    pub frames: Vec<PythonFrame>,
    /// The formatted traceback as Python printed it, chained causes included.
    pub formatted: String,
}

/// One frame of a Python traceback.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PythonFrame {
    /// Source file.
    pub file: String,
    /// Line number.
    pub line: u32,
    /// Function name.
    pub function: String,
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
}

/// How a worker process died.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CrashContext {
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal's name, when a signal killed it (e.g. `SIGSEGV`).
    pub signal: Option<String>,
    /// The last lines the worker wrote to stderr.
    pub stderr_tail: Option<String>,
    /// How long the worker had been up.
    pub uptime: Option<Duration>,
    /// The last command the worker was running.
    pub last_command: Option<String>,
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
