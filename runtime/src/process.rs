//! Worker processes as every pool of them needs them: bound to the host's
//! life, their stderr read line by line into the host's logs, and what a
//! crash report needs kept from it.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use poolscope_runtime::process::{bind_to_host, StderrSource, WorkerStderr};
//! let mut command = tokio::process::Command::new("python3");
//! command.arg("worker.py").stdin(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
//! bind_to_host(command.as_std_mut());
//! let mut child = command.spawn()?;
//! let stderr = WorkerStderr::read(
//!     child.stderr.take().expect("piped"),
//!     StderrSource::new("python", 0, child.id()),
//! );
//! let status = child.wait().await?;
//! // Every line the worker wrote before it exited, routine log lines left out.
//! let kept = stderr.complete(std::time::Duration::from_secs(10)).await;
//! let crash = poolscope_runtime::error::WorkerCrash::from_status(status, &kept, std::time::Duration::ZERO, None);
//! # let _ = crash; Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::interner::{AsLabel, Label};
use crate::model::error::STDERR_TAIL_BYTES;

/// Binds a child to the host's life: on Linux, the kernel sends it SIGKILL
/// when the thread that spawned it exits (`PR_SET_PDEATHSIG`, set in the
/// child between `fork` and `exec`), so a host killed by any signal,
/// SIGKILL included, leaves no worker behind. A host that died before the
/// child set it makes the spawn fail.
///
/// The signal follows the *thread* that spawned the child, not the
/// process: spawn from a thread that lives as long as the host (a tokio
/// runtime's worker threads do; `spawn_blocking` threads, which exit when
/// idle, do not). Pair it with a pipe the worker watches (its stdin: exit
/// at end of file), which closes however the host ends, on any system.
/// Elsewhere than Linux this does nothing.
pub fn bind_to_host(command: &mut std::process::Command) -> &mut std::process::Command {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let host = std::process::id();
        // SAFETY: the closure runs in the forked child before `exec` and
        // calls only async-signal-safe functions (prctl, getppid); it
        // allocates nothing, its error included.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The host may have died between fork and prctl: the child
                // was then adopted by another process and no signal comes.
                if libc::getppid() as u32 != host {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    command
}

/// Whose stderr a [`WorkerStderr`] reads: the fields its re-emitted lines
/// carry.
#[derive(Clone, Debug)]
pub struct StderrSource {
    pool: Label,
    worker: String,
    pid: Option<u32>,
}

impl StderrSource {
    /// The worker `worker` of `pool`, process `pid`.
    pub fn new<L: AsLabel + ?Sized>(
        pool: &L,
        worker: impl std::fmt::Display,
        pid: Option<u32>,
    ) -> StderrSource {
        StderrSource {
            pool: pool.as_label(),
            worker: worker.to_string(),
            pid,
        }
    }
}

/// Most bytes of stderr a [`WorkerStderr`] keeps: enough for a
/// `faulthandler` dump of a process with a few threads, which the crash
/// context parses for the crashed thread's stack.
pub const KEPT_STDERR_BYTES: usize = STDERR_TAIL_BYTES * 4;

/// A worker's stderr, read line by line as it writes:
///
/// - a JSON object line is a log line of the worker's own: it is re-emitted
///   as a `tracing` event (target `poolscope::worker`) at its level, with
///   its message, the pool, worker and pid, its `correlation_id` and its
///   other fields as `extra`; poolscope's logging sanitizes it like any
///   line;
/// - any other line (a Python warning, an uncaught traceback, a
///   `faulthandler` dump) is re-emitted at WARN as it is;
/// - both are kept for a crash report, except routine log lines (JSON
///   lines at DEBUG or INFO), which would crowd out what explains a crash.
///
/// Cloning is cheap: clones share what was read.
#[derive(Clone)]
pub struct WorkerStderr {
    kept: Arc<Mutex<Vec<u8>>>,
    // Its sender lives in the reader task: closed once the pipe has ended.
    eof: watch::Receiver<()>,
}

impl std::fmt::Debug for WorkerStderr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerStderr")
            .field("kept_bytes", &self.kept().len())
            .finish_non_exhaustive()
    }
}

impl WorkerStderr {
    /// Starts reading `pipe` on a tokio task (call it inside a runtime).
    pub fn read<R>(pipe: R, source: StderrSource) -> WorkerStderr
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (at_eof, eof) = watch::channel(());
        let kept = Arc::new(Mutex::new(Vec::new()));
        let into = kept.clone();
        tokio::spawn(async move {
            let _at_eof = at_eof;
            let mut lines = BufReader::new(pipe);
            let mut line = Vec::new();
            while matches!(lines.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
                if !reemit(&line, &source) {
                    keep(&into, &line);
                }
                line.clear();
            }
        });
        WorkerStderr { kept, eof }
    }

    /// What it keeps now: the last [`KEPT_STDERR_BYTES`] of the lines that
    /// were not routine.
    pub fn kept(&self) -> Vec<u8> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What it keeps once the pipe has ended (every line the worker wrote
    /// before it exited), or after `wait`: something the worker started
    /// may hold the pipe open, and a crash report must not wait for it.
    pub async fn complete(&self, wait: Duration) -> Vec<u8> {
        let mut eof = self.eof.clone();
        // Nothing is ever sent: this returns when the reader drops its end.
        let _ = tokio::time::timeout(wait, eof.changed()).await;
        self.kept()
    }
}

fn keep(kept: &Mutex<Vec<u8>>, line: &[u8]) {
    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
    kept.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        kept.push(b'\n');
    }
    let excess = kept.len().saturating_sub(KEPT_STDERR_BYTES);
    if excess > 0 {
        // Drop whole lines, so the kept text starts at a line.
        let cut = kept[excess..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(kept.len(), |at| excess + at + 1);
        kept.drain(..cut);
    }
}

/// The level a worker's JSON line names, as `tracing` has it; `None` for a
/// level it does not know (kept, and emitted at WARN).
fn level_of(line: &Map<String, Value>) -> Option<tracing::Level> {
    let name = ["level", "levelname", "severity"]
        .iter()
        .find_map(|key| line.get(*key)?.as_str())?;
    Some(match name.to_ascii_uppercase().as_str() {
        "TRACE" => tracing::Level::TRACE,
        "DEBUG" => tracing::Level::DEBUG,
        "INFO" => tracing::Level::INFO,
        "WARN" | "WARNING" => tracing::Level::WARN,
        "ERROR" | "CRITICAL" | "FATAL" | "EXCEPTION" => tracing::Level::ERROR,
        _ => return None,
    })
}

/// Emits a line of the worker's as a `tracing` event; `true` when it was
/// a routine log line (not to keep for a crash report).
fn reemit(raw: &[u8], source: &StderrSource) -> bool {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return true;
    }
    let parsed = serde_json::from_str::<Value>(text).ok();
    let Some(Value::Object(mut fields)) = parsed else {
        emit(tracing::Level::WARN, source, text, "", None, "stderr");
        return false;
    };
    let level = level_of(&fields);
    for key in [
        "level",
        "levelname",
        "severity",
        "worker",
        "pid",
        "time",
        "timestamp",
    ] {
        fields.remove(key);
    }
    let message = ["message", "msg"]
        .iter()
        .find_map(|key| fields.remove(*key))
        .map(|m| match m {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .unwrap_or_default();
    let correlation_id = match fields.remove("correlation_id") {
        Some(Value::String(id)) => id,
        _ => String::new(),
    };
    let extra = (!fields.is_empty()).then(|| Value::Object(fields).to_string());
    let level = level.unwrap_or(tracing::Level::WARN);
    emit(
        level,
        source,
        &message,
        &correlation_id,
        extra.as_deref(),
        "log",
    );
    level > tracing::Level::WARN
}

fn emit(
    level: tracing::Level,
    source: &StderrSource,
    message: &str,
    correlation_id: &str,
    extra: Option<&str>,
    stream: &'static str,
) {
    // `tracing` takes the level as a constant: one call per level.
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(
                target: "poolscope::worker",
                $level,
                event = "worker.log",
                pool = %source.pool,
                worker = source.worker.as_str(),
                pid = source.pid.unwrap_or_default(),
                correlation_id = correlation_id,
                extra = extra.unwrap_or_default(),
                stream,
                "{message}"
            )
        };
    }
    match level {
        tracing::Level::TRACE => at!(tracing::Level::TRACE),
        tracing::Level::DEBUG => at!(tracing::Level::DEBUG),
        tracing::Level::INFO => at!(tracing::Level::INFO),
        tracing::Level::WARN => at!(tracing::Level::WARN),
        _ => at!(tracing::Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routine_lines_are_not_kept_and_the_rest_is() {
        let source = StderrSource::new("stderr-unit", 1, Some(42));
        assert!(reemit(
            br#"{"level": "INFO", "message": "executing", "correlation_id": "ab"}"#,
            &source
        ));
        assert!(reemit(br#"{"levelname": "debug", "msg": "x"}"#, &source));
        assert!(!reemit(
            br#"{"level": "ERROR", "message": "raised"}"#,
            &source
        ));
        assert!(!reemit(
            br#"{"level": "WARNING", "message": "slow"}"#,
            &source
        ));
        assert!(!reemit(br#"{"level": "NOTICE", "message": "?"}"#, &source));
        assert!(!reemit(
            b"Fatal Python error: Segmentation fault\n",
            &source
        ));
        assert!(!reemit(b"[1, 2]\n", &source), "JSON, but not a log line");
    }

    #[test]
    fn the_kept_text_is_bounded_and_starts_at_a_line() {
        let kept = Mutex::new(Vec::new());
        for i in 0..10_000 {
            keep(&kept, format!("line {i}\n").as_bytes());
        }
        let kept = kept.into_inner().unwrap();
        assert!(kept.len() <= KEPT_STDERR_BYTES);
        assert!(kept.len() > KEPT_STDERR_BYTES - 20);
        assert!(kept.starts_with(b"line "));
        assert!(kept.ends_with(b"line 9999\n"));
    }
}
