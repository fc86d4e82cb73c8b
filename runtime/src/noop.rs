//! The runtime with no aspect compiled in: the same API on zero-sized types
//! with empty bodies, so code written against poolscope compiles unchanged and
//! the optimizer removes every call.

use std::fmt::Display;
use std::time::Duration;

use crate::types::error::{CrashContext, ErrorContext, Panicked};
use crate::types::events::Field;
use crate::types::label::{AsLabel, Label};
use crate::types::WorkerState;

#[path = "imp/buckets.rs"]
pub(crate) mod buckets;

/// Does nothing: no aspect is compiled in.
#[inline(always)]
pub fn set_enabled(_on: bool) {}

/// Always `false`: no aspect is compiled in.
#[inline(always)]
pub fn is_enabled() -> bool {
    false
}

// The derives match the real types', so code that compiles against one
// compiles, warning-free, against the other.

/// A pool handle; with no aspect compiled in, every method is empty.
#[derive(Clone, Debug)]
pub struct Pool;

/// Builds a [`Pool`].
#[must_use]
#[derive(Debug)]
pub struct PoolBuilder;

impl PoolBuilder {
    /// The pool.
    #[inline(always)]
    pub fn build(self) -> Pool {
        Pool
    }

    /// Does nothing.
    #[inline(always)]
    pub fn with_saturation_hold(self, _hold: Duration) -> PoolBuilder {
        self
    }
}

impl Pool {
    /// A pool handle.
    #[inline(always)]
    pub fn new<L: AsLabel + ?Sized>(_name: &L) -> Pool {
        Pool
    }

    /// A builder.
    #[inline(always)]
    pub fn builder<L: AsLabel + ?Sized>(_name: &L) -> PoolBuilder {
        PoolBuilder
    }

    /// An empty label.
    #[inline(always)]
    pub fn label(&self) -> Label {
        Label::from_static("")
    }

    /// Does nothing.
    #[inline(always)]
    pub fn started(&self, _size: usize, _startup: Duration, _config: Vec<Field>) {}

    /// Does nothing.
    #[inline(always)]
    pub fn retire(&self) {}

    /// Does nothing.
    #[inline(always)]
    pub fn set_size(&self, _size: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn queue_depth(&self, _depth: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn queue_wait(&self, _wait: Duration) {}

    /// Does nothing.
    #[inline(always)]
    pub fn set_queue_capacity(&self, _capacity: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn saturated(&self, _queue_size: usize, _available_workers: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn saturation_ended(&self) {}

    /// Always `false`.
    #[inline(always)]
    pub fn is_saturated(&self) -> bool {
        false
    }

    /// Always 0.
    #[inline(always)]
    pub fn available(&self) -> usize {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn busy(&self) -> usize {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn size(&self) -> usize {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn queued(&self) -> usize {
        0
    }

    /// A worker handle that does nothing.
    #[inline(always)]
    pub fn worker<I: Display>(&self, _id: I) -> Worker {
        Worker
    }

    /// Does nothing.
    #[inline(always)]
    pub fn session_created(&self, _session_id: &str, _ttl: Duration, _metadata: Vec<Field>) {}

    /// Does nothing.
    #[inline(always)]
    pub fn sessions_cleaned(&self, _count: usize, _duration: Duration) {}
}

/// A worker handle; with no aspect compiled in, every method is empty.
#[derive(Debug)]
pub struct Worker;

impl Worker {
    /// Does nothing.
    #[inline(always)]
    pub fn start_failed(&self, _startup: Duration, _error: ErrorContext) {}

    /// An empty id.
    #[inline(always)]
    pub fn id(&self) -> &str {
        ""
    }

    /// Always [`WorkerState::Stopped`]: nothing is tracked.
    #[inline(always)]
    pub fn state(&self) -> WorkerState {
        WorkerState::Stopped
    }

    /// Does nothing.
    #[inline(always)]
    pub fn set_state(&self, _state: WorkerState) {}

    /// Does nothing.
    #[inline(always)]
    pub fn started(&self, _pid: Option<u32>, _startup: Duration) {}

    /// Does nothing.
    #[inline(always)]
    pub fn set_pid(&self, _pid: u32) {}

    /// Does nothing.
    #[inline(always)]
    pub fn crashed(&self, _reason: &str, _crash: CrashContext) {}

    /// A guard that does nothing.
    #[inline(always)]
    pub fn busy(&self) -> BusyGuard<'_> {
        BusyGuard(std::marker::PhantomData)
    }

    /// Runs `job`; a panic inside it comes back as [`Panicked`], as in the
    /// real build.
    ///
    /// # Errors
    ///
    /// [`Panicked`] when `job` panicked.
    #[inline(always)]
    pub fn run<R>(&self, job: impl FnOnce() -> R) -> Result<R, Panicked> {
        crate::task::catch(job)
    }

    /// Drives `job`; a panic in any of its polls comes back as
    /// [`Panicked`], as in the real build.
    ///
    /// # Errors
    ///
    /// [`Panicked`] when `job` panicked.
    pub async fn run_async<F: std::future::Future>(&self, job: F) -> Result<F::Output, Panicked> {
        crate::task::catch_async(job).await
    }
}

// Empty, but present as in the real build (which takes the worker out of
// the gauges), so code that drops a worker explicitly lints the same.
impl Drop for Worker {
    #[inline(always)]
    fn drop(&mut self) {}
}

/// A guard that does nothing: nothing is tracked.
#[must_use = "the worker is available again as soon as the guard drops"]
#[derive(Debug)]
pub struct BusyGuard<'a>(std::marker::PhantomData<&'a Worker>);

// Empty, but present as in the real build, so `drop(guard)` lints the same.
impl Drop for BusyGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {}
}

/// Nothing to install.
#[inline(always)]
pub(crate) fn panic_hook() {}

/// Never known: no panic hook.
#[inline(always)]
pub(crate) fn panic_location() -> Option<String> {
    None
}

pub(crate) mod correlation {
    use crate::types::correlation::CorrelationId;
    use std::future::Future;

    /// Always `None`: no aspect is compiled in.
    #[inline(always)]
    pub fn current() -> Option<CorrelationId> {
        None
    }

    /// Runs `f`.
    #[inline(always)]
    pub fn with_id<R>(_id: CorrelationId, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// The future itself.
    pub type Bound<F> = F;

    /// Returns `future` unchanged.
    #[inline(always)]
    pub fn bind<F: Future>(_id: Option<CorrelationId>, future: F) -> Bound<F> {
        future
    }
}

pub(crate) mod events {
    use crate::types::events::Event;

    /// Drops `handler`: with no aspect compiled in there are no events.
    #[inline(always)]
    pub fn subscribe(handler: impl Fn(&Event) + Send + Sync + 'static) -> Subscription {
        drop(handler);
        Subscription
    }

    /// Who a handler is for (see the real module); unused here.
    #[allow(dead_code)]
    pub(crate) enum Interest {
        All,
        Logs,
        Failures,
    }

    /// Drops `handler`: there are no events.
    #[allow(dead_code)]
    pub(crate) fn subscribe_with(
        _interest: Interest,
        handler: std::sync::Arc<dyn Fn(&Event) + Send + Sync>,
    ) -> Subscription {
        drop(handler);
        Subscription
    }

    /// Does nothing: there are no events to sample.
    #[inline(always)]
    pub fn set_sample_rate(_rate: f64) {}

    /// Does nothing: there are no events.
    #[inline(always)]
    pub fn set_worker<W: std::fmt::Display + ?Sized>(_worker: &W) {}

    /// Always 1.
    #[inline(always)]
    pub fn sample_rate() -> f64 {
        1.0
    }

    /// A subscription that holds nothing.
    #[derive(Debug)]
    pub struct Subscription;

    impl Subscription {
        /// Does nothing.
        #[inline(always)]
        pub fn forever(self) {}
    }
}

pub(crate) mod stats {
    use crate::types::stats::{PoolSnapshot, SeriesSnapshot};
    use crate::types::Kind;

    /// Always empty: nothing is recorded.
    #[inline(always)]
    pub fn pools() -> Vec<PoolSnapshot> {
        Vec::new()
    }

    /// Always `None`: nothing is recorded.
    #[inline(always)]
    pub fn snapshot(_kind: Kind, _pool: &str, _command: &str) -> Option<SeriesSnapshot> {
        None
    }
}

// The Prometheus sink is a part, not an aspect: it serves the
// application's own metrics in this build too, and poolscope's exposition
// is empty.
#[cfg(feature = "metrics")]
#[path = "imp/metrics.rs"]
pub(crate) mod metrics;

/// Nothing is recorded per call site.
#[cfg(feature = "metrics")]
pub(crate) mod series {
    #[inline(always)]
    pub(crate) fn render(_out: &mut String) {}
}

/// No pool tracks time saturated.
#[cfg(feature = "metrics")]
pub(crate) mod pool {
    #[inline(always)]
    pub(crate) fn render(_out: &mut String) {}
}

pub(crate) mod private {}

pub(crate) mod alerts {
    pub use crate::types::alert_rule::{
        AlertError, AlertRule, ErrorRateRule, Measure, ERROR_RATE_RULE,
    };

    /// Watches nothing: with no aspect there are no request statistics.
    #[derive(Debug)]
    pub struct AlertWatcher;

    /// Holds nothing: there is no watcher thread.
    #[derive(Clone, Debug, Default)]
    pub struct AlertControls;

    impl AlertControls {
        /// Checks the rules, as in the real build.
        ///
        /// # Errors
        ///
        /// [`AlertError::Rule`] for a rule out of range.
        pub fn set_rules(&self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
            crate::types::alert_rule::validate_all(&rules)
        }
    }

    impl AlertWatcher {
        /// A handle that checks rules and keeps none.
        pub fn controls(&self) -> AlertControls {
            AlertControls
        }

        /// Checks the rules, as in the real build.
        ///
        /// # Errors
        ///
        /// [`AlertError::Rule`] for a rule out of range.
        pub fn set_rules(&self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
            AlertControls.set_rules(rules)
        }
    }

    // Empty, but present as in the real build, so code that drops a watcher
    // explicitly compiles (and lints) the same.
    impl Drop for AlertWatcher {
        #[inline(always)]
        fn drop(&mut self) {}
    }

    /// Checks the rule and returns a watcher that does nothing.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range, as in the real build.
    pub fn watch_error_rate(rule: ErrorRateRule) -> Result<AlertWatcher, AlertError> {
        rule.validate()?;
        Ok(AlertWatcher)
    }

    /// Checks the rules and returns a watcher that does nothing.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range, as in the real build.
    pub fn watch(
        rules: Vec<AlertRule>,
        every: std::time::Duration,
    ) -> Result<AlertWatcher, AlertError> {
        crate::types::alert_rule::validate_watch(&rules, every)?;
        Ok(AlertWatcher)
    }

    /// Evaluates nothing: with no aspect there are no request statistics.
    #[derive(Debug)]
    pub struct AlertEvaluator;

    impl AlertEvaluator {
        /// Checks the rules, as in the real build.
        ///
        /// # Errors
        ///
        /// [`AlertError::Rule`] for a rule out of range.
        pub fn new(rules: Vec<AlertRule>) -> Result<AlertEvaluator, AlertError> {
            crate::types::alert_rule::validate_all(&rules)?;
            Ok(AlertEvaluator)
        }

        /// Does nothing.
        #[inline(always)]
        pub fn evaluate_at(&mut self, _now: std::time::Instant) {}

        /// Checks the rules, as in the real build.
        ///
        /// # Errors
        ///
        /// [`AlertError::Rule`] for a rule out of range.
        pub fn set_rules(&mut self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
            crate::types::alert_rule::validate_all(&rules)
        }
    }

    /// Nothing fires without aspects.
    #[allow(dead_code)]
    pub(crate) fn readiness_failures() -> Vec<(String, Option<String>, f64, f64)> {
        Vec::new()
    }
}

/// A queue records nothing: its items carry no stamp.
#[cfg(feature = "queue")]
pub(crate) mod queue {
    use super::Pool;

    /// No time is taken: a zero-sized stand-in.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Stamp;

    #[derive(Clone, Debug)]
    pub(crate) struct Tracker;

    impl Tracker {
        #[inline(always)]
        pub(crate) fn new(_pool: &Pool, _capacity: usize) -> Tracker {
            Tracker
        }

        #[inline(always)]
        pub(crate) fn enter(&self) -> Ticket<'_> {
            Ticket(std::marker::PhantomData)
        }

        #[inline(always)]
        pub(crate) fn taken(&self, _stamp: Stamp) {}

        #[inline(always)]
        pub(crate) fn leave(&self) {}
    }

    pub(crate) struct Ticket<'a>(std::marker::PhantomData<&'a Tracker>);

    impl Ticket<'_> {
        #[inline(always)]
        pub(crate) fn stamp(&self) -> Stamp {
            Stamp
        }

        #[inline(always)]
        pub(crate) fn full(&self) {}

        #[inline(always)]
        pub(crate) fn queued(self) {}
    }
}
