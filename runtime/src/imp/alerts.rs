//! Error-rate alerts: a per-pool failure rate over a sliding window, checked
//! on a timer; `alert.fired` when it passes the threshold, `alert.resolved`
//! when it falls back below a lower one (hysteresis, so a rate hovering at
//! the threshold does not flap).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Instant, SystemTime};

use super::events::{self, active as events_active};
pub use crate::types::alert_rule::{AlertError, ErrorRateRule, ERROR_RATE_RULE};
use crate::types::events::{Alert, Event};
use crate::types::label::Label;
use crate::types::window::History;

/// Evaluates a rule until dropped.
#[derive(Debug)]
pub struct AlertWatcher {
    // Dropping the sender wakes the thread at once.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for AlertWatcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts evaluating `rule` for every pool on a thread of its own.
///
/// # Errors
///
/// [`AlertError::Rule`] for a window or period of zero or a resolve ratio
/// outside 0 to 1; [`AlertError::Thread`] if the thread cannot start.
pub fn watch_error_rate(rule: ErrorRateRule) -> Result<AlertWatcher, AlertError> {
    describe();
    rule.validate()?;
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("poolscope-alerts".into())
        .spawn(move || {
            let mut state = ErrorRateState::new(rule);
            loop {
                state.evaluate(Instant::now());
                match stopped.recv_timeout(state.rule.every) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
            state.resolve_all();
        })
        .map_err(|e| AlertError::Thread(e.to_string()))?;
    Ok(AlertWatcher {
        stop: Some(stop),
        thread: Some(thread),
    })
}

struct ErrorRateState {
    rule: ErrorRateRule,
    history: History,
    firing: HashMap<Label, f64>,
}

impl ErrorRateState {
    fn new(rule: ErrorRateRule) -> ErrorRateState {
        let keep = rule.window + rule.every * 2;
        ErrorRateState {
            rule,
            history: History::new(keep),
            firing: HashMap::new(),
        }
    }

    fn evaluate(&mut self, now: Instant) {
        let pools = super::stats::pools();
        for pool in &pools {
            let window = self.history.window(now, self.rule.window, pool);
            let rate = (window.requests >= self.rule.min_requests)
                .then_some(window.error_rate)
                .flatten();
            let firing = self.firing.contains_key(&pool.pool);
            match rate {
                // Too few requests to judge: a firing alert has nothing left
                // to stand on, so it resolves rather than stay stuck.
                None if firing => self.resolve(pool.pool, window.error_rate.unwrap_or(0.0)),
                Some(rate) if !firing && rate > self.rule.threshold => self.fire(pool.pool, rate),
                Some(rate) if firing && rate <= self.rule.threshold * self.rule.resolve_ratio => {
                    self.resolve(pool.pool, rate)
                }
                Some(rate) if firing => {
                    self.firing.insert(pool.pool, rate);
                }
                _ => {}
            }
        }
        self.history.record(now, &pools);
    }

    fn fire(&mut self, pool: Label, rate: f64) {
        self.firing.insert(pool, rate);
        let labels = [
            ("rule", ERROR_RATE_RULE.to_owned()),
            ("pool", pool.as_str().to_owned()),
        ];
        metrics::gauge!("poolscope_alerts_firing", &labels).set(1.0);
        metrics::counter!("poolscope_alerts_fired_total", &labels).increment(1);
        if events_active() {
            events::emit(Event::AlertFired(alert(pool, rate, self.rule.threshold)));
        }
    }

    fn resolve(&mut self, pool: Label, rate: f64) {
        self.firing.remove(&pool);
        let labels = [
            ("rule", ERROR_RATE_RULE.to_owned()),
            ("pool", pool.as_str().to_owned()),
        ];
        metrics::gauge!("poolscope_alerts_firing", &labels).set(0.0);
        if events_active() {
            events::emit(Event::AlertResolved(alert(pool, rate, self.rule.threshold)));
        }
    }

    /// A watcher going away leaves nothing firing.
    fn resolve_all(&mut self) {
        let firing: Vec<(Label, f64)> = self.firing.iter().map(|(p, r)| (*p, *r)).collect();
        for (pool, rate) in firing {
            self.resolve(pool, rate);
        }
    }
}

fn alert(pool: Label, value: f64, threshold: f64) -> Alert {
    Alert {
        at: SystemTime::now(),
        rule: ERROR_RATE_RULE.to_owned(),
        pool: Some(pool),
        value,
        threshold,
    }
}

/// Descriptions for the exporter.
fn describe() {
    metrics::describe_gauge!(
        "poolscope_alerts_firing",
        metrics::Unit::Count,
        "1 while an alert rule fires for a pool, else 0."
    );
    metrics::describe_counter!(
        "poolscope_alerts_fired_total",
        metrics::Unit::Count,
        "Times an alert rule fired."
    );
}
