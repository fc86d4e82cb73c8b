//! The recent-errors and recent-alerts lists, fed by the event handler.
//! Everything stored here has been through the sanitizer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::interner::Label;
use crate::model::error::ErrorContext;
use crate::model::events::{Alert, Event};
use crate::model::Outcome;

/// One failure as the page lists it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct ErrorItem {
    /// Increasing; the page keys its rows on it.
    pub id: u64,
    pub at_ms: u64,
    /// The catalogue event it came from (`request.completed`, `worker.crashed`, ...).
    pub event: &'static str,
    pub pool: String,
    pub command: Option<String>,
    pub worker: Option<String>,
    pub correlation_id: Option<String>,
    /// `error`, `panic`, `crash` or `cancelled`.
    pub kind: &'static str,
    pub type_name: String,
    pub message: String,
    pub chain: Vec<String>,
    pub location: Option<String>,
    pub python: Option<PythonView>,
    pub grpc: Option<GrpcView>,
    pub crash: Option<CrashView>,
}

#[derive(Serialize, Debug, Clone)]
pub(crate) struct PythonView {
    pub exception_type: String,
    pub message: String,
    pub traceback: String,
}

#[derive(Serialize, Debug, Clone)]
pub(crate) struct GrpcView {
    pub code: i32,
    pub code_name: String,
    pub message: String,
    pub details: Option<String>,
}

#[derive(Serialize, Debug, Clone)]
pub(crate) struct CrashView {
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub uptime_seconds: Option<f64>,
    pub last_command: Option<String>,
    pub stderr_tail: Option<String>,
}

/// One alert transition.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct AlertItem {
    pub id: u64,
    pub at_ms: u64,
    /// `fired` or `resolved`.
    pub state: &'static str,
    pub rule: String,
    pub pool: Option<String>,
    pub value: f64,
    pub threshold: f64,
}

pub(crate) struct Recent {
    errors: VecDeque<Arc<ErrorItem>>,
    alerts: VecDeque<AlertItem>,
    /// Alerts firing now, by (rule, pool).
    firing: BTreeMap<(String, Option<String>), AlertItem>,
    max_errors: usize,
    max_alerts: usize,
    next_id: u64,
}

impl Recent {
    pub(crate) fn new(max_errors: usize, max_alerts: usize) -> Recent {
        Recent {
            errors: VecDeque::with_capacity(max_errors),
            alerts: VecDeque::with_capacity(max_alerts),
            firing: BTreeMap::new(),
            max_errors,
            max_alerts,
            next_id: 0,
        }
    }

    /// Newest first; shared, not copied.
    pub(crate) fn errors(&self) -> Vec<Arc<ErrorItem>> {
        self.errors.iter().rev().cloned().collect()
    }

    /// Newest first.
    pub(crate) fn alerts(&self) -> Vec<AlertItem> {
        self.alerts.iter().rev().cloned().collect()
    }

    pub(crate) fn firing(&self) -> Vec<AlertItem> {
        self.firing.values().cloned().collect()
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Takes in an event; `true` when the page should hear of it at once
    /// (a failure, an alert, a worker starting or crashing).
    pub(crate) fn record(&mut self, event: &Event) -> bool {
        // What differs between failure events; the time, the pool and the
        // correlation id every one of them has come from `Event`.
        let (command, worker, outcome, error) = match event {
            Event::RequestCompleted(e) => (
                Some(e.command),
                e.worker.as_deref(),
                e.outcome,
                e.error.as_ref(),
            ),
            Event::WorkerCrashed(e) => (
                None,
                Some(e.worker.as_str()),
                Outcome::Error,
                Some(&e.error),
            ),
            Event::WorkerStarted(e) => (None, e.worker.as_deref(), e.outcome, e.error.as_ref()),
            Event::PoolStarted(e) => (None, None, e.outcome, e.error.as_ref()),
            Event::SessionCreated(e) => (None, None, e.outcome, e.error.as_ref()),
            Event::AlertFired(alert) => {
                let item = self.alert("fired", alert);
                self.firing
                    .insert((item.rule.clone(), item.pool.clone()), item.clone());
                self.push_alert(item);
                return true;
            }
            Event::AlertResolved(alert) => {
                let item = self.alert("resolved", alert);
                self.firing.remove(&(item.rule.clone(), item.pool.clone()));
                self.push_alert(item);
                return true;
            }
            _ => return false,
        };
        if outcome == Outcome::Ok {
            // A started worker or pool changes the cards: news even when fine.
            return matches!(event, Event::WorkerStarted(_) | Event::PoolStarted(_));
        }
        let item = self.failure(event, command, worker, outcome, error);
        self.push_error(item);
        true
    }

    fn push_error(&mut self, item: ErrorItem) {
        if self.errors.len() == self.max_errors {
            self.errors.pop_front();
        }
        self.errors.push_back(Arc::new(item));
    }

    fn push_alert(&mut self, item: AlertItem) {
        if self.alerts.len() == self.max_alerts {
            self.alerts.pop_front();
        }
        self.alerts.push_back(item);
    }

    fn alert(&mut self, state: &'static str, alert: &Alert) -> AlertItem {
        AlertItem {
            id: self.id(),
            at_ms: super::unix_ms(alert.at),
            state,
            rule: crate::sanitize::sanitize(&alert.rule).into_owned(),
            pool: alert.pool.map(|p| p.as_str().to_owned()),
            value: alert.value,
            threshold: alert.threshold,
        }
    }

    fn failure(
        &mut self,
        event: &Event,
        command: Option<Label>,
        worker: Option<&str>,
        outcome: Outcome,
        error: Option<&ErrorContext>,
    ) -> ErrorItem {
        // Captured context is sanitized already; once more here (failures
        // are rare) so that no capture path that forgets can leak a secret
        // onto the page. Sanitizing is idempotent.
        use crate::sanitize::sanitize;
        let clean = |text: &str| sanitize(text).into_owned();
        let error = error.cloned().map(ErrorContext::sanitized);
        let kind = match (&error, outcome) {
            (_, Outcome::Cancelled) => "cancelled",
            (_, Outcome::Timeout) => "timeout",
            (_, Outcome::Rejected) => "rejected",
            (Some(e), _) => e.kind.as_str(),
            (None, Outcome::Panic) => "panic",
            (None, _) => "error",
        };
        let mut item = ErrorItem {
            id: self.id(),
            at_ms: super::unix_ms(event.at()),
            event: event.name(),
            pool: event
                .pool()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            command: command.map(|c| clean(c.as_str())),
            worker: worker.map(clean),
            correlation_id: event.correlation_id().map(|c| c.to_string()),
            kind,
            type_name: String::new(),
            message: match outcome {
                Outcome::Cancelled => "the caller dropped the request before it completed".into(),
                _ => "failed (no error context captured)".into(),
            },
            chain: Vec::new(),
            location: None,
            python: None,
            grpc: None,
            crash: None,
        };
        // The sanitized copy is ours: move its parts into the item.
        if let Some(e) = error {
            item.type_name = e.type_name.to_owned();
            item.message = e.message;
            item.chain = e.chain;
            item.location = e.location;
            item.python = e.python.map(|p| PythonView {
                exception_type: p.exception_type,
                message: p.message,
                traceback: p.formatted,
            });
            item.grpc = e.grpc.map(|g| GrpcView {
                code: g.code,
                code_name: g.code_name,
                message: g.message,
                details: g.details,
            });
            item.crash = e.crash.map(|c| CrashView {
                exit_code: c.exit_code,
                signal: c.signal,
                uptime_seconds: c.uptime.map(|u| u.as_secs_f64()),
                last_command: c.last_command,
                stderr_tail: c.stderr_tail,
            });
        }
        item
    }
}
