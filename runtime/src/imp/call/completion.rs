//! What a completion leaves beyond the call's series, out of line because
//! most calls leave nothing: the completion event, for a call that was kept
//! or failed while someone listens, and the pool's state after a start.

use std::time::{Duration, SystemTime};

use super::Active;
use crate::imp::events;
use crate::model::error::ErrorContext;
use crate::model::events::{Event, PoolStarted, RequestCompleted, SessionCreated, WorkerStarted};
use crate::model::{Kind, Outcome};

impl Active {
    /// A pool or worker start that succeeded: the pool's state follows it
    /// (the size a pool started with, the worker now available).
    #[cold]
    #[inline(never)]
    pub(super) fn started(&self) {
        let Some(details) = &self.details else {
            return;
        };
        let (pool, _) = self.site.labels_of(self.labels);
        match self.site.kind {
            Kind::PoolStart => {
                if let Some(size) = details.size {
                    crate::imp::pool::pool_started_by_attribute(pool, size);
                }
            }
            Kind::WorkerStart => {
                if let Some(worker) = &details.worker {
                    crate::imp::worker::started_by_attribute(pool, worker, self.site.name);
                }
            }
            _ => {}
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn emit_completion(
        self,
        outcome: Outcome,
        duration: Option<Duration>,
        error: Option<ErrorContext>,
        worker: Option<String>,
    ) {
        let at = SystemTime::now();
        let correlation_id = self.correlation;
        let (pool, command) = self.site.labels_of(self.labels);
        let extra = self.details.map(|d| *d).unwrap_or_default();
        let event = match self.site.kind {
            Kind::Request => Event::RequestCompleted(RequestCompleted {
                at,
                name: self.site.name,
                pool,
                command,
                worker: worker.or(extra.worker),
                correlation_id,
                duration,
                outcome,
                error,
                // A failure says what it was asked, sampled or not.
                args: if outcome == Outcome::Ok {
                    Vec::new()
                } else {
                    extra.args
                },
            }),
            Kind::PoolStart => Event::PoolStarted(PoolStarted {
                at,
                pool,
                startup: duration,
                size: extra.size,
                config: extra.args,
                outcome,
                error,
                correlation_id,
            }),
            Kind::WorkerStart => Event::WorkerStarted(WorkerStarted {
                at,
                pool,
                worker: extra.worker,
                pid: None,
                startup: duration,
                outcome,
                error,
                correlation_id,
            }),
            Kind::SessionCreate => Event::SessionCreated(SessionCreated {
                at,
                pool,
                session_id: None,
                ttl: extra.ttl,
                metadata: extra.args,
                outcome,
                error,
                correlation_id,
            }),
        };
        events::emit(event);
    }
}
