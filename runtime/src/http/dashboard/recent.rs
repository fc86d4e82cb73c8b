//! The recent-errors and recent-alerts lists, fed by the event handler.
//! Everything stored here has been through the sanitizer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::types::correlation::CorrelationId;
use crate::types::error::ErrorContext;
use crate::types::events::{Alert, Event};
use crate::types::label::Label;
use crate::types::Outcome;

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

/// What every failure event carries, whatever its kind.
struct Failure<'a> {
    at: SystemTime,
    pool: Label,
    command: Option<Label>,
    worker: Option<&'a str>,
    correlation_id: Option<CorrelationId>,
    outcome: Outcome,
    error: Option<&'a ErrorContext>,
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
        let failure = match event {
            Event::RequestCompleted(e) => Failure {
                at: e.at,
                pool: e.pool,
                command: Some(e.command),
                worker: e.worker.as_deref(),
                correlation_id: e.correlation_id,
                outcome: e.outcome,
                error: e.error.as_ref(),
            },
            Event::WorkerCrashed(e) => Failure {
                at: e.at,
                pool: e.pool,
                command: None,
                worker: Some(&e.worker),
                correlation_id: e.correlation_id,
                outcome: Outcome::Error,
                error: Some(&e.error),
            },
            Event::WorkerStarted(e) => Failure {
                at: e.at,
                pool: e.pool,
                command: None,
                worker: e.worker.as_deref(),
                correlation_id: e.correlation_id,
                outcome: e.outcome,
                error: e.error.as_ref(),
            },
            Event::PoolStarted(e) => Failure {
                at: e.at,
                pool: e.pool,
                command: None,
                worker: None,
                correlation_id: e.correlation_id,
                outcome: e.outcome,
                error: e.error.as_ref(),
            },
            Event::SessionCreated(e) => Failure {
                at: e.at,
                pool: e.pool,
                command: None,
                worker: None,
                correlation_id: e.correlation_id,
                outcome: e.outcome,
                error: e.error.as_ref(),
            },
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
        if failure.outcome == Outcome::Ok {
            // A started worker or pool changes the cards: news even when fine.
            return matches!(event, Event::WorkerStarted(_) | Event::PoolStarted(_));
        }
        let item = self.failure(event.name(), failure);
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
            rule: crate::types::sanitize::sanitize(&alert.rule).into_owned(),
            pool: alert.pool.map(|p| p.as_str().to_owned()),
            value: alert.value,
            threshold: alert.threshold,
        }
    }

    fn failure(&mut self, event: &'static str, failure: Failure<'_>) -> ErrorItem {
        let Failure {
            at,
            pool,
            command,
            worker,
            correlation_id,
            outcome,
            error,
        } = failure;
        // Captured context is sanitized already; once more here (failures
        // are rare) so that no capture path that forgets can leak a secret
        // onto the page. Sanitizing is idempotent.
        use crate::types::sanitize::sanitize;
        let clean = |text: &str| sanitize(text).into_owned();
        let error = error.cloned().map(ErrorContext::sanitized);
        let kind = match (&error, outcome) {
            (_, Outcome::Cancelled) => "cancelled",
            (Some(e), _) => e.kind.as_str(),
            (None, Outcome::Panic) => "panic",
            (None, _) => "error",
        };
        let message = match (&error, outcome) {
            (Some(e), _) => e.message.clone(),
            (None, Outcome::Cancelled) => {
                "the caller dropped the request before it completed".into()
            }
            (None, _) => "failed (no error context captured)".into(),
        };
        ErrorItem {
            id: self.id(),
            at_ms: super::unix_ms(at),
            event,
            pool: pool.as_str().to_owned(),
            command: command.map(|c| clean(c.as_str())),
            worker: worker.map(clean),
            correlation_id: correlation_id.map(|c| c.to_string()),
            kind,
            type_name: error
                .as_ref()
                .map_or_else(String::new, |e| e.type_name.to_owned()),
            message,
            chain: error.as_ref().map_or_else(Vec::new, |e| e.chain.clone()),
            location: error.as_ref().and_then(|e| e.location.clone()),
            python: error
                .as_ref()
                .and_then(|e| e.python.as_ref())
                .map(|p| PythonView {
                    exception_type: p.exception_type.clone(),
                    message: p.message.clone(),
                    traceback: p.formatted.clone(),
                }),
            grpc: error
                .as_ref()
                .and_then(|e| e.grpc.as_ref())
                .map(|g| GrpcView {
                    code: g.code,
                    code_name: g.code_name.clone(),
                    message: g.message.clone(),
                    details: g.details.clone(),
                }),
            crash: error
                .as_ref()
                .and_then(|e| e.crash.as_ref())
                .map(|c| CrashView {
                    exit_code: c.exit_code,
                    signal: c.signal.clone(),
                    uptime_seconds: c.uptime.map(|u| u.as_secs_f64()),
                    last_command: c.last_command.clone(),
                    stderr_tail: c.stderr_tail.clone(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::events::{Alert, RequestCompleted};
    use crate::types::label::Label;

    fn failed(message: &str) -> Event {
        let mut error = ErrorContext::from_error(&std::io::Error::other(message.to_owned()));
        error.message = message.to_owned();
        Event::RequestCompleted(RequestCompleted {
            at: SystemTime::now(),
            name: "call",
            pool: Label::from_static("p"),
            command: Label::from_static("c"),
            worker: None,
            correlation_id: None,
            duration: None,
            outcome: Outcome::Error,
            error: Some(error),
        })
    }

    #[test]
    fn keeps_the_newest_failures_first_and_drops_the_oldest() {
        let mut recent = Recent::new(3, 3);
        for i in 0..5 {
            assert!(recent.record(&failed(&format!("failure {i}"))));
        }
        let messages: Vec<_> = recent.errors().iter().map(|e| e.message.clone()).collect();
        assert_eq!(messages, ["failure 4", "failure 3", "failure 2"]);
    }

    #[test]
    fn secrets_in_messages_never_reach_the_list() {
        let mut recent = Recent::new(3, 3);
        recent.record(&failed("login failed password=hunter2 for bob"));
        let message = &recent.errors()[0].message;
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("for bob"), "{message}");
    }

    #[test]
    fn an_alert_fires_then_resolves() {
        let mut recent = Recent::new(3, 3);
        let alert = Alert {
            at: SystemTime::now(),
            rule: "error_rate".into(),
            pool: Some(Label::from_static("p")),
            value: 0.5,
            threshold: 0.1,
        };
        recent.record(&Event::AlertFired(alert.clone()));
        assert_eq!(recent.firing().len(), 1);
        recent.record(&Event::AlertResolved(alert));
        assert!(recent.firing().is_empty());
        let states: Vec<_> = recent.alerts().iter().map(|a| a.state).collect();
        assert_eq!(states, ["resolved", "fired"]);
    }
}
