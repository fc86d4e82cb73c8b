//! Watching a configuration file: reloaded and applied when it changes,
//! refused whole when it is broken.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{Config, ConfigError, Live};

/// Reloads a configuration file when it changes, until dropped.
#[derive(Debug)]
pub struct ConfigWatcher {
    state: Arc<WatchState>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct WatchState {
    last_error: Mutex<Option<ConfigError>>,
    applied: AtomicU64,
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How often the file's modification time and size are checked.
const POLL: Duration = Duration::from_millis(250);

impl ConfigWatcher {
    /// Loads `path` (with the environment), applies it to `live`, then
    /// reloads and applies it whenever the file changes (checked every
    /// 250 ms). A file that fails to load or apply is reported (a `tracing`
    /// error and [`ConfigWatcher::last_error`]) and the configuration in
    /// force stays.
    ///
    /// # Errors
    ///
    /// The first load's error: a watcher does not start from a broken file.
    pub fn start(path: impl Into<PathBuf>, live: Live) -> Result<ConfigWatcher, ConfigError> {
        let path = path.into();
        // Stamped before the first load: a change made while it loads (or
        // before the thread below first looks) is then seen as a change.
        let mut seen = stamp(&path);
        let config = Config::load(&path)?;
        live.apply(&config)?;
        let state = Arc::new(WatchState::default());
        state.applied.store(1, Ordering::Relaxed);
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("poolscope-config".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                    let now = stamp(&path);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    let result = Config::load(&path).and_then(|config| live.apply(&config));
                    match result {
                        Ok(()) => {
                            shared.applied.fetch_add(1, Ordering::Release);
                            *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                            tracing::info!(path = %path.display(), "poolscope configuration reloaded");
                        }
                        Err(err) => {
                            tracing::error!(path = %path.display(), error = %err, "poolscope configuration rejected; the previous one stays in force");
                            *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                        }
                    }
                }
            })
            .map_err(|source| ConfigError::Watcher {
                source: Arc::new(source),
            })?;
        Ok(ConfigWatcher {
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Why the last reload was rejected; `None` once one succeeds.
    pub fn last_error(&self) -> Option<ConfigError> {
        self.state
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Configurations applied so far (the first load counts). One is
    /// counted once all of it is in force, so a change of this count tells
    /// a reload has finished.
    pub fn applied(&self) -> u64 {
        self.state.applied.load(Ordering::Acquire)
    }
}

/// Largest configuration file read. A real one is a few KiB; a larger file
/// is a mistake (a log or a binary written to the wrong path), and reading
/// it whole on every change would hold that much memory in the watcher.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

pub(super) fn read_limited(path: &Path) -> Result<String, ConfigError> {
    use std::io::{Error, ErrorKind, Read};
    let error = |source: Error| ConfigError::Read {
        path: path.to_owned(),
        source: Arc::new(source),
    };
    let file = std::fs::File::open(path).map_err(error)?;
    let mut bytes = Vec::new();
    // One byte past the limit tells a file that is too large, even one
    // still growing while it is read.
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(error)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(error(Error::new(
            ErrorKind::FileTooLarge,
            format!("larger than {MAX_CONFIG_BYTES} bytes, the most a configuration may be"),
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        error(Error::new(
            ErrorKind::InvalidData,
            format!("not UTF-8 text: {e}"),
        ))
    })
}

/// What tells a changed file: modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
