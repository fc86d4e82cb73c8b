//! What only events carry, collected when someone listens, and the
//! `request.started` event built from it. All of it runs out of line: a
//! request nobody listens to never gets here.

use std::fmt::Display;
use std::time::{Duration, SystemTime};

use super::Site;
use crate::imp::events;
use crate::interner::Label;
use crate::model::correlation::CorrelationId;
use crate::model::events::{Event, Field, RequestStarted};
use crate::model::Kind;

/// What only events carry: arguments, worker id, pool size, session ttl.
/// Filled by a second generated closure that runs only when an event will be
/// emitted (someone subscribed).
#[derive(Default)]
pub struct Details {
    // Whether the call's events are kept (`request.started` was emitted).
    pub(super) sampled: bool,
    pub(super) worker: Option<String>,
    pub(super) size: Option<u64>,
    pub(super) ttl: Option<Duration>,
    pub(super) args: Vec<Field>,
}

impl Details {
    /// Sets the worker id.
    pub fn worker(&mut self, worker: &dyn Display) {
        self.worker = Some(worker.to_string());
    }

    /// The pool size, for `pool.started`.
    pub fn size(&mut self, size: Option<u64>) {
        self.size = size;
    }

    /// The session's time to live, for `session.created`.
    pub fn ttl(&mut self, ttl: Duration) {
        self.ttl = Some(ttl);
    }

    /// Records one formatted argument, sanitized: an argument named like a
    /// secret (`password`, `api_key`) is redacted whole.
    pub fn arg(&mut self, name: &'static str, value: String) {
        let value = match crate::sanitize::current().sanitize_field(name, &value) {
            std::borrow::Cow::Borrowed(same) if same == value => value,
            other => other.into_owned(),
        };
        self.args.push((name.into(), value));
    }
}

/// Collects the details for events and emits `request.started`; kept out of
/// line so the hot path stays small.
#[cold]
#[inline(never)]
pub(super) fn describe<D: FnOnce(&mut Details)>(
    site: &'static Site,
    labels: Option<(Option<Label>, Option<Label>)>,
    correlation: Option<CorrelationId>,
    fill: D,
    sampled: bool,
) -> Box<Details> {
    let mut details = Box::<Details>::default();
    details.sampled = sampled;
    fill(&mut details);
    if sampled && site.kind == Kind::Request {
        let (pool, command) = site.labels_of(labels);
        events::emit(Event::RequestStarted(RequestStarted {
            at: SystemTime::now(),
            name: site.name,
            pool,
            command,
            worker: details.worker.clone(),
            correlation_id: correlation,
            args: details.args.clone(),
        }));
    }
    details
}
