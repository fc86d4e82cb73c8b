//! Plain data shared by the real and the no-op runtime: the types a user
//! constructs or matches on must exist, with the same shape, in every build.
//! What keeps global state or parses text lives beside it (`interner`,
//! `traceback`, `sanitize`).

pub(crate) mod alert_rule;
pub(crate) mod catalogue;
pub(crate) mod correlation;
#[cfg(any(feature = "dashboard", feature = "config"))]
pub(crate) mod dashboard;
pub(crate) mod error;
pub(crate) mod events;
#[cfg(any(feature = "http", feature = "config"))]
pub(crate) mod health;
#[cfg(feature = "config")]
pub(crate) mod seconds;
pub(crate) mod stats;
pub(crate) mod trace_context;
#[cfg(any(feature = "aspects", feature = "http"))]
pub(crate) mod window;

/// How log lines look.
#[cfg(any(feature = "logging", feature = "config"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(rename_all = "lowercase"))]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// `timestamp LEVEL target: message key=value ...`.
    Human,
}

/// How long a pool must stay clear of saturation before its saturation
/// episode ends, unless set with `PoolBuilder::with_saturation_hold`.
pub const DEFAULT_SATURATION_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// `true` when at least one aspect feature is compiled in.
///
/// ```
/// if !poolscope_runtime::COMPILED_IN {
///     println!("poolscope is compiled out: nothing is recorded");
/// }
/// ```
pub const COMPILED_IN: bool = cfg!(feature = "aspects");

/// Which aspects this build records, one constant each: what a test or a
/// status page checks before it expects a duration, a correlation id or a
/// captured error. [`COMPILED_IN`] is any of them.
///
/// ```
/// use poolscope_runtime::compiled_in;
/// assert_eq!(
///     poolscope_runtime::COMPILED_IN,
///     compiled_in::TIMING || compiled_in::CORRELATION || compiled_in::ERRORS
/// );
/// ```
pub mod compiled_in {
    /// The `timing` aspect: durations and their histograms.
    pub const TIMING: bool = cfg!(feature = "timing");
    /// The `correlation` aspect: correlation ids on events and logs.
    pub const CORRELATION: bool = cfg!(feature = "correlation");
    /// The `errors` aspect: failures captured with their kind and message.
    pub const ERRORS: bool = cfg!(feature = "errors");
}

/// Which catalogue event an observed call produces.
///
/// ```
/// assert_eq!(poolscope_runtime::Kind::Request.as_str(), "request");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A request handled by the pool: `request.started` and `request.completed`.
    Request,
    /// Starting a pool: `pool.started`.
    PoolStart,
    /// Starting a worker: `worker.started`.
    WorkerStart,
    /// Creating a session: `session.created`.
    SessionCreate,
}

impl Kind {
    /// The name used in `#[observe(kind = ..)]`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::PoolStart => "pool_start",
            Kind::WorkerStart => "worker_start",
            Kind::SessionCreate => "session_create",
        }
    }
}

/// How an observed call ended.
///
/// ```
/// use poolscope_runtime::Outcome;
/// assert_eq!(
///     Outcome::ALL.map(Outcome::as_str),
///     ["ok", "error", "panic", "cancelled", "timeout", "rejected"]
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Returned normally (for a `Result`, an `Ok`).
    Ok,
    /// Returned an `Err`.
    Error,
    /// Unwound with a panic; the panic itself was left to continue.
    Panic,
    /// An async call whose future was dropped before it completed.
    Cancelled,
    /// Returned an `Err` that says the request ran out of time (its
    /// `ErrorDetails::outcome`).
    Timeout,
    /// Returned an `Err` that says the request was refused without being
    /// run, e.g. because the queue was full (its `ErrorDetails::outcome`).
    Rejected,
}

impl Outcome {
    /// How many outcomes there are.
    pub const COUNT: usize = 6;

    /// Every outcome, in label order.
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Panic,
        Outcome::Cancelled,
        Outcome::Timeout,
        Outcome::Rejected,
    ];

    /// The value of the `outcome` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Panic => "panic",
            Outcome::Cancelled => "cancelled",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
        }
    }

    /// Position in [`Outcome::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The state of one worker, as the pool reports it.
///
/// ```
/// assert_eq!(poolscope_runtime::WorkerState::Busy.as_str(), "busy");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// Spawned, not yet ready.
    Starting,
    /// Ready and waiting for work.
    Available,
    /// Running a request.
    Busy,
    /// Exited unexpectedly and not yet restarted.
    Crashed,
    /// Shut down on purpose.
    Stopped,
}

impl WorkerState {
    /// Every state, in label order.
    pub const ALL: [WorkerState; 5] = [
        WorkerState::Starting,
        WorkerState::Available,
        WorkerState::Busy,
        WorkerState::Crashed,
        WorkerState::Stopped,
    ];

    /// The value of the `state` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Available => "available",
            WorkerState::Busy => "busy",
            WorkerState::Crashed => "crashed",
            WorkerState::Stopped => "stopped",
        }
    }

    /// Position in [`WorkerState::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Inverse of [`WorkerState::index`]; out-of-range values read as `Stopped`.
    pub const fn from_index(i: usize) -> WorkerState {
        match i {
            0 => WorkerState::Starting,
            1 => WorkerState::Available,
            2 => WorkerState::Busy,
            3 => WorkerState::Crashed,
            _ => WorkerState::Stopped,
        }
    }
}
