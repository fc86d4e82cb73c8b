//! Threshold alerts: rules over a pool's error rate, latency, queue depth,
//! queue wait, utilization, crash rate and memory, evaluated on a timer;
//! `alert.fired` when a value goes above its threshold, `alert.resolved`
//! when it falls back to a lower one (hysteresis, so a value hovering at the
//! threshold does not flap). Readiness rules fail `/health/ready` while they
//! fire.

use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::events::{self, active as events_active};
use crate::clock::{Clock, Ticking};
use crate::interner::Label;
pub use crate::model::alert_rule::{
    AlertError, AlertRule, ErrorRateRule, Measure, ERROR_RATE_RULE,
};
use crate::model::events::{Alert, Event};
use crate::model::stats::PoolSnapshot;
use crate::model::window::{History, WindowStats};
use crate::sync::lock;

/// Evaluates rules until dropped; dropping it resolves what still fires.
pub struct AlertWatcher {
    controls: AlertControls,
    watched: Arc<Mutex<Watched>>,
    /// What makes it evaluate; taken when dropped.
    driver: Option<Driver>,
}

/// A watcher's rules, its history and what it has seen.
struct Watched {
    rules: Rules,
    /// Rules waiting to replace `rules` at the next evaluation.
    pending: Arc<Mutex<Option<Vec<AlertRule>>>>,
    /// How far the history reaches past the longest window.
    margin: Duration,
    /// Set when the watcher is dropped: a tick already under way then
    /// evaluates nothing.
    stopped: bool,
}

impl Watched {
    fn tick(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        let replaced = lock(&self.pending).take();
        if let Some(rules) = replaced {
            self.rules.resolve_all();
            self.rules = Rules::new(rules, self.margin);
        }
        self.rules.evaluate(now);
    }
}

/// What makes a watcher evaluate.
enum Driver {
    /// A thread of its own, on the system clock, every period.
    Thread {
        // Dropping the sender wakes the thread at once.
        stop: mpsc::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    },
    /// A manual clock's advances.
    Manual(Ticking),
}

impl std::fmt::Debug for AlertWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Without the rules: printing must not wait for an evaluation.
        f.debug_struct("AlertWatcher")
            .field("controls", &self.controls)
            .field("manual", &matches!(self.driver, Some(Driver::Manual(_))))
            .finish_non_exhaustive()
    }
}

/// Replaces a running watcher's rules; see [`AlertWatcher::controls`].
/// Cloning is cheap.
#[derive(Clone, Debug, Default)]
pub struct AlertControls {
    pending: Arc<Mutex<Option<Vec<AlertRule>>>>,
}

impl AlertControls {
    /// Replaces the rules from the next evaluation on: alerts of the old
    /// rules resolve, the new rules start from a fresh history.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range (the old rules stay).
    pub fn set_rules(&self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
        crate::model::alert_rule::validate_all(&rules)?;
        *lock(&self.pending) = Some(rules);
        Ok(())
    }
}

impl AlertWatcher {
    /// A handle for replacing the rules while the watcher runs.
    pub fn controls(&self) -> AlertControls {
        self.controls.clone()
    }

    /// As [`AlertControls::set_rules`].
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range (the old rules stay).
    pub fn set_rules(&self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
        self.controls.set_rules(rules)
    }
}

impl Drop for AlertWatcher {
    fn drop(&mut self) {
        match self.driver.take() {
            Some(Driver::Thread { stop, thread }) => {
                drop(stop);
                let _ = thread.join();
            }
            Some(Driver::Manual(ticking)) => drop(ticking),
            None => {}
        }
        let mut watched = lock(&self.watched);
        watched.stopped = true;
        watched.rules.resolve_all();
    }
}

/// Starts evaluating `rule` for every pool on a thread of its own.
///
/// # Errors
///
/// [`AlertError::Rule`] for a window or period of zero or a resolve ratio
/// outside 0 to 1; [`AlertError::Thread`] if the thread cannot start.
pub fn watch_error_rate(rule: ErrorRateRule) -> Result<AlertWatcher, AlertError> {
    rule.validate()?;
    let mut general = AlertRule::from(&rule);
    // The old rule accepted any positive window.
    general.window = general.window.max(Duration::from_secs(1));
    watch(vec![general], rule.every)
}

/// Starts evaluating `rules` every `every` on a thread of its own. Each
/// rule is judged per pool (or once, for process-wide measures); a value
/// that cannot be measured (too few requests, no sampler) resolves a firing
/// alert rather than keep it stuck.
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::alerts::{watch, AlertRule, Measure};
/// let watcher = watch(
///     vec![
///         AlertRule::new("queue", Measure::QueueDepth, 100.0).unwrap().for_readiness(true),
///         AlertRule::new("busy", Measure::Utilization, 0.9).unwrap(),
///     ],
///     Duration::from_secs(1),
/// )
/// .unwrap();
/// drop(watcher);
/// ```
///
/// # Errors
///
/// [`AlertError::Rule`] for a rule out of range or a period of zero;
/// [`AlertError::Thread`] if the thread cannot start.
pub fn watch(rules: Vec<AlertRule>, every: Duration) -> Result<AlertWatcher, AlertError> {
    watch_with_clock(rules, every, Clock::system())
}

/// As [`watch`], with the time read from `clock`. On [`Clock::system`]
/// that is `watch`. On a [`ManualClock`] no thread starts: the rules are
/// evaluated once now and then at each [`ManualClock::advance`], on the
/// advancing thread, so a test fires and resolves alerts by stepping
/// through time instead of waiting for it (`every` then only sets how far
/// back the history reaches).
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::alerts::{watch_with_clock, AlertRule, Measure};
/// use poolscope_runtime::clock::ManualClock;
/// let clock = ManualClock::new();
/// let watcher = watch_with_clock(
///     vec![AlertRule::new("queue", Measure::QueueDepth, 100.0).unwrap()],
///     Duration::from_secs(1),
///     clock.clone(),
/// )
/// .unwrap();
/// clock.advance(Duration::from_secs(1));
/// drop(watcher);
/// ```
///
/// # Errors
///
/// [`AlertError::Rule`] for a rule out of range or a period of zero;
/// [`AlertError::Thread`] if the thread cannot start.
///
/// [`ManualClock`]: crate::clock::ManualClock
/// [`ManualClock::advance`]: crate::clock::ManualClock::advance
pub fn watch_with_clock(
    rules: Vec<AlertRule>,
    every: Duration,
    clock: impl Into<Clock>,
) -> Result<AlertWatcher, AlertError> {
    crate::describe::describe_all();
    crate::model::alert_rule::validate_watch(&rules, every)?;
    let clock = clock.into();
    let controls = AlertControls::default();
    let margin = every * 2;
    let watched = Arc::new(Mutex::new(Watched {
        rules: Rules::new(rules, margin),
        pending: controls.pending.clone(),
        margin,
        stopped: false,
    }));
    let ticked = watched.clone();
    let driver = match clock.manual_ticks(move |now| lock(&ticked).tick(now)) {
        Some(ticking) => {
            lock(&watched).tick(clock.now());
            Driver::Manual(ticking)
        }
        None => {
            let (stop, stopped) = mpsc::channel::<()>();
            let ticked = watched.clone();
            let thread = std::thread::Builder::new()
                .name("poolscope-alerts".into())
                .spawn(move || loop {
                    lock(&ticked).tick(clock.now());
                    match stopped.recv_timeout(every) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                })
                .map_err(|e| AlertError::Thread(e.to_string()))?;
            Driver::Thread { stop, thread }
        }
    };
    Ok(AlertWatcher {
        controls,
        watched,
        driver: Some(driver),
    })
}

/// Evaluates alert rules when told to, at the time it is given, on the
/// caller's thread: for an application that schedules evaluation itself,
/// and for tests that step through time instead of waiting for it.
/// [`watch`] runs one on a thread of its own. Dropping it resolves what
/// still fires.
///
/// Rates, percentiles and counts are taken over the times given to
/// [`evaluate_at`](AlertEvaluator::evaluate_at). Busy time, behind
/// [`Measure::Utilization`], is measured on the real clock, so step
/// through time no faster than it passes for that measure.
///
/// ```
/// use std::time::{Duration, Instant};
/// use poolscope_runtime::alerts::{AlertEvaluator, AlertRule, Measure};
/// let mut alerts =
///     AlertEvaluator::new(vec![AlertRule::new("queue", Measure::QueueDepth, 100.0).unwrap()])
///         .unwrap();
/// let start = Instant::now();
/// alerts.evaluate_at(start);
/// alerts.evaluate_at(start + Duration::from_secs(1));
/// ```
pub struct AlertEvaluator {
    rules: Rules,
}

impl std::fmt::Debug for AlertEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertEvaluator")
            .field("rules", &self.rules.rules)
            .finish_non_exhaustive()
    }
}

impl AlertEvaluator {
    /// Rules to evaluate, with nothing seen yet.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range.
    pub fn new(rules: Vec<AlertRule>) -> Result<AlertEvaluator, AlertError> {
        crate::describe::describe_all();
        crate::model::alert_rule::validate_all(&rules)?;
        Ok(AlertEvaluator {
            rules: Rules::new(rules, Duration::ZERO),
        })
    }

    /// Judges every rule at `now` (no earlier than the last time given):
    /// fires what passed its threshold, resolves what fell to its resolve
    /// level or can no longer be measured.
    pub fn evaluate_at(&mut self, now: Instant) {
        self.rules.evaluate(now);
    }

    /// Replaces the rules: alerts of the old ones resolve, the new ones
    /// start from a fresh history.
    ///
    /// # Errors
    ///
    /// [`AlertError::Rule`] for a rule out of range (the old rules stay).
    pub fn set_rules(&mut self, rules: Vec<AlertRule>) -> Result<(), AlertError> {
        crate::model::alert_rule::validate_all(&rules)?;
        self.rules.resolve_all();
        self.rules = Rules::new(rules, Duration::ZERO);
        Ok(())
    }
}

impl Drop for AlertEvaluator {
    fn drop(&mut self) {
        self.rules.resolve_all();
    }
}

/// A firing readiness rule: `(rule, pool)` to `(value, threshold)`.
type Firing = BTreeMap<(String, Option<String>), (f64, f64)>;

/// Readiness rules firing now.
static READINESS: Mutex<Firing> = Mutex::new(BTreeMap::new());

/// The readiness rules firing now, for `/health/ready`.
#[cfg(feature = "http")]
pub(crate) fn readiness_failures() -> Vec<(String, Option<String>, f64, f64)> {
    READINESS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|((rule, pool), (value, threshold))| (rule.clone(), pool.clone(), *value, *threshold))
        .collect()
}

struct Rules {
    rules: Vec<AlertRule>,
    history: History,
    /// Firing alerts by (rule index, pool), with the last value.
    firing: HashMap<(usize, Option<Label>), f64>,
}

impl Rules {
    /// Rules whose history reaches `margin` past their longest window.
    fn new(rules: Vec<AlertRule>, margin: Duration) -> Rules {
        let longest = rules
            .iter()
            .map(|r| r.window)
            .max()
            .unwrap_or(Duration::from_secs(60));
        Rules {
            rules,
            history: History::new(longest + margin),
            firing: HashMap::new(),
        }
    }

    fn evaluate(&mut self, now: Instant) {
        let pools = super::stats::pools();
        let memory = self
            .rules
            .iter()
            .any(|r| {
                matches!(
                    r.measure,
                    Measure::WorkersResidentBytes | Measure::ProcessResidentBytes
                )
            })
            .then(memory_now);
        for index in 0..self.rules.len() {
            // Cloned: judging needs `self` mutably.
            let rule = self.rules[index].clone();
            if rule.measure.is_process_wide() {
                let value = memory
                    .as_ref()
                    .and_then(|m| m.process)
                    .map(|p| p.resident_bytes as f64);
                self.judge(index, None, value);
                continue;
            }
            for pool in &pools {
                if !rule.pools.is_empty() && !rule.pools.iter().any(|p| p == pool.pool.as_str()) {
                    continue;
                }
                let window = self.history.window(now, rule.window, pool);
                let value = measure(&rule, pool, &window, memory.as_deref());
                self.judge(index, Some(pool.pool), value);
            }
        }
        self.history.record(now, &pools);
    }

    fn judge(&mut self, index: usize, pool: Option<Label>, value: Option<f64>) {
        let rule = &self.rules[index];
        let key = (index, pool);
        let firing = self.firing.get(&key).copied();
        match (value, firing) {
            (None, Some(last)) => self.resolve(index, pool, last),
            (Some(v), None) if v > rule.threshold => self.fire(index, pool, v),
            (Some(v), Some(_)) if v <= rule.resolve_at => self.resolve(index, pool, v),
            (Some(v), Some(_)) => {
                self.firing.insert(key, v);
            }
            _ => {}
        }
    }

    fn labels(&self, index: usize, pool: Option<Label>) -> [(&'static str, String); 2] {
        [
            ("rule", self.rules[index].name.clone()),
            (
                "pool",
                pool.map(|p| p.as_str().to_owned()).unwrap_or_default(),
            ),
        ]
    }

    fn fire(&mut self, index: usize, pool: Option<Label>, value: f64) {
        self.firing.insert((index, pool), value);
        let labels = self.labels(index, pool);
        metrics::gauge!("poolscope_alerts_firing", &labels).set(1.0);
        metrics::counter!("poolscope_alerts_fired_total", &labels).increment(1);
        let rule = &self.rules[index];
        if rule.readiness {
            READINESS.lock().unwrap_or_else(|e| e.into_inner()).insert(
                (rule.name.clone(), pool.map(|p| p.as_str().to_owned())),
                (value, rule.threshold),
            );
        }
        if events_active() {
            events::emit(Event::AlertFired(alert(rule, pool, value)));
        }
    }

    fn resolve(&mut self, index: usize, pool: Option<Label>, value: f64) {
        self.firing.remove(&(index, pool));
        let labels = self.labels(index, pool);
        metrics::gauge!("poolscope_alerts_firing", &labels).set(0.0);
        let rule = &self.rules[index];
        if rule.readiness {
            READINESS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(rule.name.clone(), pool.map(|p| p.as_str().to_owned())));
        }
        if events_active() {
            events::emit(Event::AlertResolved(alert(rule, pool, value)));
        }
    }

    /// A watcher going away leaves nothing firing.
    fn resolve_all(&mut self) {
        let firing: Vec<((usize, Option<Label>), f64)> =
            self.firing.iter().map(|(k, v)| (*k, *v)).collect();
        for ((index, pool), value) in firing {
            self.resolve(index, pool, value);
        }
    }
}

/// The memory sampler's last reading (shared, not copied), or a fresh one.
fn memory_now() -> Arc<crate::memory::MemorySnapshot> {
    crate::memory::latest().unwrap_or_else(|| Arc::new(crate::memory::snapshot()))
}

/// The rule's value for one pool; `None` when it cannot be judged.
fn measure(
    rule: &AlertRule,
    pool: &PoolSnapshot,
    window: &WindowStats,
    memory: Option<&crate::memory::MemorySnapshot>,
) -> Option<f64> {
    if rule.measure.needs_requests() && window.requests < rule.min_requests {
        return None;
    }
    match rule.measure {
        Measure::ErrorRate => window.error_rate,
        Measure::Latency { quantile } => window.durations.as_ref()?.quantile(quantile),
        Measure::QueueDepth => pool.state.as_ref().map(|s| s.queue_depth as f64),
        Measure::QueueWait { quantile } => window.queue_wait.as_ref()?.quantile(quantile),
        Measure::Utilization => window.utilization,
        Measure::CrashRate => {
            pool.state.as_ref()?;
            (window.seconds > 0.0).then(|| window.crashes as f64 * 60.0 / window.seconds)
        }
        Measure::WorkersResidentBytes => memory?
            .pools
            .iter()
            .find(|p| p.pool == pool.pool)
            .map(|p| p.resident_bytes as f64),
        Measure::ProcessResidentBytes => None,
    }
}

fn alert(rule: &AlertRule, pool: Option<Label>, value: f64) -> Alert {
    Alert {
        at: SystemTime::now(),
        rule: rule.name.clone(),
        pool,
        value,
        threshold: rule.threshold,
    }
}
