use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::interner::Label;
use crate::model::correlation::CorrelationId;
use crate::model::error::ErrorContext;
use crate::model::Outcome;

/// A named value attached to an event: a sanitized argument or a piece of
/// metadata.
pub type Field = (Cow<'static, str>, String);

/// One telemetry event. The catalogue, with every field, is `docs/events.md`.
///
/// ```
/// use poolscope_runtime::events::Event;
/// fn on_event(event: &Event) {
///     if let Event::RequestCompleted(done) = event {
///         println!("{} took {:?}: {}", done.command, done.duration, done.outcome.as_str());
///     }
/// }
/// # let _ = on_event;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// `pool.started`
    PoolStarted(PoolStarted),
    /// `pool.saturated`
    PoolSaturated(PoolSaturated),
    /// `pool.saturation_ended`
    PoolSaturationEnded(PoolSaturationEnded),
    /// `worker.started`
    WorkerStarted(WorkerStarted),
    /// `worker.crashed`
    WorkerCrashed(WorkerCrashed),
    /// `request.started`
    RequestStarted(RequestStarted),
    /// `request.completed`
    RequestCompleted(RequestCompleted),
    /// `session.created`
    SessionCreated(SessionCreated),
    /// `session.cleanup`
    SessionCleanup(SessionCleanup),
    /// `alert.fired`
    AlertFired(Alert),
    /// `alert.resolved`
    AlertResolved(Alert),
}

impl Event {
    /// The catalogue name, e.g. `request.completed`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::PoolStarted(_) => "pool.started",
            Event::PoolSaturated(_) => "pool.saturated",
            Event::PoolSaturationEnded(_) => "pool.saturation_ended",
            Event::WorkerStarted(_) => "worker.started",
            Event::WorkerCrashed(_) => "worker.crashed",
            Event::RequestStarted(_) => "request.started",
            Event::RequestCompleted(_) => "request.completed",
            Event::SessionCreated(_) => "session.created",
            Event::SessionCleanup(_) => "session.cleanup",
            Event::AlertFired(_) => "alert.fired",
            Event::AlertResolved(_) => "alert.resolved",
        }
    }

    /// When the event happened (wall clock).
    pub fn at(&self) -> SystemTime {
        match self {
            Event::PoolStarted(e) => e.at,
            Event::PoolSaturated(e) => e.at,
            Event::PoolSaturationEnded(e) => e.at,
            Event::WorkerStarted(e) => e.at,
            Event::WorkerCrashed(e) => e.at,
            Event::RequestStarted(e) => e.at,
            Event::RequestCompleted(e) => e.at,
            Event::SessionCreated(e) => e.at,
            Event::SessionCleanup(e) => e.at,
            Event::AlertFired(e) | Event::AlertResolved(e) => e.at,
        }
    }

    /// The pool the event belongs to, when it belongs to one.
    pub fn pool(&self) -> Option<Label> {
        match self {
            Event::PoolStarted(e) => Some(e.pool),
            Event::PoolSaturated(e) => Some(e.pool),
            Event::PoolSaturationEnded(e) => Some(e.pool),
            Event::WorkerStarted(e) => Some(e.pool),
            Event::WorkerCrashed(e) => Some(e.pool),
            Event::RequestStarted(e) => Some(e.pool),
            Event::RequestCompleted(e) => Some(e.pool),
            Event::SessionCreated(e) => Some(e.pool),
            Event::SessionCleanup(e) => Some(e.pool),
            Event::AlertFired(e) | Event::AlertResolved(e) => e.pool,
        }
    }

    /// The correlation id in scope when the event was produced.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        match self {
            Event::PoolStarted(e) => e.correlation_id,
            Event::WorkerStarted(e) => e.correlation_id,
            Event::WorkerCrashed(e) => e.correlation_id,
            Event::RequestStarted(e) => e.correlation_id,
            Event::RequestCompleted(e) => e.correlation_id,
            Event::SessionCreated(e) => e.correlation_id,
            Event::PoolSaturated(_)
            | Event::PoolSaturationEnded(_)
            | Event::SessionCleanup(_)
            | Event::AlertFired(_)
            | Event::AlertResolved(_) => None,
        }
    }
}

/// `pool.started`: a pool finished starting (or failed to).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolStarted {
    /// When it finished.
    pub at: SystemTime,
    /// The pool.
    pub pool: Label,
    /// How long starting took.
    pub startup: Option<Duration>,
    /// Number of workers.
    pub size: Option<u64>,
    /// A summary of the configuration (the observed function's arguments).
    pub config: Vec<Field>,
    /// Whether it started.
    pub outcome: Outcome,
    /// Why it did not.
    pub error: Option<ErrorContext>,
    /// Correlation id of the start.
    pub correlation_id: Option<CorrelationId>,
}

/// `pool.saturated`: the pool became saturated (requests wait and no
/// worker is free, or the queue is full). One per episode; the episode's
/// end is [`PoolSaturationEnded`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolSaturated {
    /// When.
    pub at: SystemTime,
    /// The pool.
    pub pool: Label,
    /// Requests waiting.
    pub queue_size: u64,
    /// Workers free to take one.
    pub available_workers: u64,
}

/// `pool.saturation_ended`: a saturation episode ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolSaturationEnded {
    /// When.
    pub at: SystemTime,
    /// The pool.
    pub pool: Label,
    /// How long the pool stayed saturated.
    pub duration: Duration,
    /// The longest queue reported during the episode.
    pub peak_queue_size: u64,
}

/// `worker.started`: a worker is ready (or failed to start).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerStarted {
    /// When.
    pub at: SystemTime,
    /// The pool.
    pub pool: Label,
    /// The worker's id.
    pub worker: Option<String>,
    /// Its process id, for a process worker.
    pub pid: Option<u32>,
    /// How long starting took.
    pub startup: Option<Duration>,
    /// Whether it started.
    pub outcome: Outcome,
    /// Why it did not.
    pub error: Option<ErrorContext>,
    /// Correlation id of the start.
    pub correlation_id: Option<CorrelationId>,
}

/// `worker.crashed`: a worker died unexpectedly.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerCrashed {
    /// When it was seen dead.
    pub at: SystemTime,
    /// The pool.
    pub pool: Label,
    /// The worker's id.
    pub worker: String,
    /// How long it had been up.
    pub uptime: Option<Duration>,
    /// A short reason, e.g. `signal SIGSEGV` or `exit code 3`.
    pub reason: String,
    /// The crash with its context (exit status or signal, stderr tail).
    pub error: ErrorContext,
    /// The request it was serving, if any.
    pub correlation_id: Option<CorrelationId>,
}

/// `request.started`: a request began execution.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RequestStarted {
    /// When.
    pub at: SystemTime,
    /// The observed function (or the name given with `name = ..`).
    pub name: &'static str,
    /// The pool.
    pub pool: Label,
    /// The command.
    pub command: Label,
    /// The worker, when known at the start.
    pub worker: Option<String>,
    /// The request's correlation id.
    pub correlation_id: Option<CorrelationId>,
    /// The arguments, formatted with `Debug`; skipped ones are absent.
    pub args: Vec<Field>,
}

/// `request.completed`: a request finished, one way or another.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RequestCompleted {
    /// When.
    pub at: SystemTime,
    /// The observed function (or the name given with `name = ..`).
    pub name: &'static str,
    /// The pool.
    pub pool: Label,
    /// The command.
    pub command: Label,
    /// The worker.
    pub worker: Option<String>,
    /// The request's correlation id.
    pub correlation_id: Option<CorrelationId>,
    /// How long it took (present with the `timing` aspect).
    pub duration: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
    /// What went wrong (present with the `errors` aspect).
    pub error: Option<ErrorContext>,
    /// The call's arguments (sanitized), on a failure only: a failed
    /// request's completion says what it was asked whether or not its start
    /// was sampled.
    pub args: Vec<Field>,
}

/// `session.created`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionCreated {
    /// When.
    pub at: SystemTime,
    /// The pool.
    pub pool: Label,
    /// The session's id, when known.
    pub session_id: Option<String>,
    /// Time to live.
    pub ttl: Option<Duration>,
    /// Metadata (for an observed call, its arguments).
    pub metadata: Vec<Field>,
    /// Whether it was created.
    pub outcome: Outcome,
    /// Why it was not.
    pub error: Option<ErrorContext>,
    /// Correlation id.
    pub correlation_id: Option<CorrelationId>,
}

/// `session.cleanup`: expired sessions were removed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionCleanup {
    /// When.
    pub at: SystemTime,
    /// The pool.
    pub pool: Label,
    /// How many sessions were removed.
    pub count: u64,
    /// How long the cleanup took.
    pub duration: Duration,
}

/// `alert.fired` / `alert.resolved`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Alert {
    /// When.
    pub at: SystemTime,
    /// The rule's name.
    pub rule: String,
    /// The pool the rule watches, if it watches one.
    pub pool: Option<Label>,
    /// The measured value.
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
}

/// What a subscriber wants: every event; what the log sink writes (request
/// events only while the log level lets them through); or failures and the
/// rare life-cycle events only (the dashboard), so that successful requests
/// never build an event for it. The sinks' kinds exist only with the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Every event: a subscriber of the public API.
    All,
    /// The log sink's.
    #[cfg(feature = "logging")]
    Logs,
    /// The dashboard's.
    #[cfg(feature = "dashboard")]
    Failures,
}
