//! What an observed call does at run time. The macro generates the calls into
//! this module; everything here is reached through `__private`.
//!
//! This file is the path every call takes: start, time, finish, drop, so
//! that the fast path reads in one place. An async call adds the future in
//! `observed`; what only some calls need (event details, the completion
//! event, a panic or a cancellation, a worker named late) is in the other
//! sibling modules, out of line.

use std::time::Duration;

use super::correlation::swap;
use super::events;
use super::series::{Block, Series};
use crate::interner::Label;
use crate::model::correlation::CorrelationId;
use crate::model::error::ErrorContext;
use crate::model::{Kind, Outcome};

mod abandoned;
pub mod classify;
mod completion;
mod details;
mod late_worker;
mod observed;
mod outcome;
mod site;

use details::describe;
pub use details::Details;
pub use late_worker::set_worker;
use late_worker::{put_worker, take_worker};
pub use observed::Observed;
pub use outcome::{Classified, ErrView};
pub use site::Site;

const TIMING: bool = cfg!(feature = "timing");
const CORRELATION: bool = cfg!(feature = "correlation");
const ERRORS: bool = cfg!(feature = "errors");

/// The per-call labels and correlation id of an observed call, set by a
/// closure the macro generates, which only runs when recording is on.
/// Everything here is set inline, so literal labels stay known at compile
/// time and the series is resolved through the call site's cache.
pub struct Start {
    pool: Option<Label>,
    command: Option<Label>,
    correlation: Option<CorrelationId>,
}

impl Start {
    /// Sets the pool label.
    #[inline(always)]
    pub fn pool(&mut self, pool: Label) {
        self.pool = Some(pool);
    }

    /// Sets the command label.
    #[inline(always)]
    pub fn command(&mut self, command: Label) {
        self.command = Some(command);
    }

    /// Adopts a correlation id from the caller.
    #[inline(always)]
    pub fn correlation(&mut self, id: Option<CorrelationId>) {
        self.correlation = id;
    }
}

struct Active {
    site: &'static Site,
    // The series, and for a sync call the block its start was counted in.
    series: Option<(&'static Series, Option<Block>)>,
    // Labels when they were given per call (static ones are in `site`).
    labels: Option<(Option<Label>, Option<Label>)>,
    started: u64,
    correlation: Option<CorrelationId>,
    // For a sync call: the id to put back on exit.
    restore: Option<Option<CorrelationId>>,
    // True while the body runs: a drop with this set is a panic, a drop
    // without it (an async call between polls) a cancellation.
    in_body: bool,
    // Present whenever anyone listens (and always for a start or session);
    // it says whether the call's events are kept.
    details: Option<Box<Details>>,
}

/// One observed call in progress. Dropping it without [`Call::finish`]
/// records a panic or a cancellation.
pub struct Call {
    active: Option<Active>,
}

/// Without `timing` nothing is timed: these stubs fold away.
#[cfg(not(feature = "timing"))]
mod clock {
    #[inline(always)]
    pub(crate) fn now() -> u64 {
        0
    }
    #[inline(always)]
    pub(crate) fn nanos_between(_: u64, _: u64) -> u64 {
        0
    }
}
#[cfg(feature = "timing")]
use super::clock;

impl Call {
    /// Starts a sync call: opens its correlation scope on this thread.
    #[inline(always)]
    pub fn enter<F: FnOnce(&mut Start), D: FnOnce(&mut Details)>(
        site: &'static Site,
        init: F,
        details: D,
    ) -> Call {
        if !super::is_enabled() {
            return Call { active: None };
        }
        Call::begin(site, true, init, details)
    }

    /// Starts an async call: the correlation scope is set on each poll by
    /// [`Observed`] instead.
    #[inline(always)]
    pub fn enter_async<F: FnOnce(&mut Start), D: FnOnce(&mut Details)>(
        site: &'static Site,
        init: F,
        details: D,
    ) -> Call {
        if !super::is_enabled() {
            return Call { active: None };
        }
        Call::begin(site, false, init, details)
    }

    // Out of line, like `finish`: the function the macro generates then
    // stays small, and the path taken while recording is off (one load, the
    // body, return) needs almost no stack frame.
    #[inline(never)]
    fn begin<F: FnOnce(&mut Start), D: FnOnce(&mut Details)>(
        site: &'static Site,
        sync: bool,
        init: F,
        details: D,
    ) -> Call {
        let mut start = Start {
            pool: None,
            command: None,
            correlation: None,
        };
        init(&mut start);
        let dynamic = start.pool.is_some() || start.command.is_some();
        let series = if TIMING {
            let series = if dynamic {
                site.series(start.pool, start.command)
            } else {
                site.fixed_series()
            };
            let block = series.start();
            Some((series, if sync { block } else { None }))
        } else {
            None
        };
        let (correlation, restore) = if CORRELATION {
            let (id, restore) = super::correlation::enter(start.correlation, sync);
            (Some(id), restore)
        } else {
            (None, None)
        };
        if ERRORS {
            super::panic::install_hook();
        }
        let labels = dynamic.then_some((start.pool, start.command));
        // Sampling happens here; a request is kept or dropped whole. The
        // details are taken whenever anyone listens, sampled or not: the
        // arguments are gone once the body has run, and a failure, which is
        // never sampled away, must still say what it was asked to do and by
        // which worker. Starts and sessions are rare and never sampled; their
        // details are always taken, since the pool's state follows them.
        let details = match site.kind {
            // With no subscriber, one load decides: nothing to describe.
            Kind::Request if !events::active() => None,
            Kind::Request => {
                let sampled = events::wants_requests() && events::sampled(correlation);
                Some(describe(site, labels, correlation, details, sampled))
            }
            _ => Some(describe(
                site,
                labels,
                correlation,
                details,
                events::active(),
            )),
        };
        Call {
            active: Some(Active {
                site,
                series,
                labels,
                started: if TIMING { clock::now() } else { 0 },
                correlation,
                restore,
                in_body: sync,
                details,
            }),
        }
    }

    /// Whether this call records anything (recording was on when it began).
    #[inline(always)]
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Completes the call with the outcome read off its return value.
    /// Takes the call by reference: moving it would copy it.
    #[inline(never)]
    pub fn finish(&mut self, result: Classified<'_>) {
        let ended = if TIMING { clock::now() } else { 0 };
        if let Some(active) = self.active.take() {
            match result {
                Classified::Ok => active.complete(Outcome::Ok, ended, || None),
                Classified::Err(type_name, view) => {
                    let outcome = view.outcome();
                    active.complete(outcome, ended, move || Some(view.context(type_name)))
                }
            }
        }
    }
}

impl Drop for Call {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(active) = self.active.take() {
            active.abandoned();
        }
    }
}

impl Active {
    #[inline(always)]
    fn complete(self, outcome: Outcome, ended: u64, error: impl FnOnce() -> Option<ErrorContext>) {
        let worker = take_worker();
        let duration = if TIMING {
            let nanos = clock::nanos_between(self.started, ended);
            if let Some((series, block)) = self.series {
                series.record(block, outcome, nanos);
            }
            Some(nanos)
        } else {
            None
        };
        if let Some(previous) = self.restore {
            swap(previous);
        }
        // A request that was kept is completed; a failure is never sampled
        // away, and neither are the rare non-request kinds.
        let kept = match &self.details {
            None => false,
            Some(details) => {
                if self.site.kind != Kind::Request && outcome == Outcome::Ok {
                    self.started();
                }
                details.sampled
            }
        };
        if kept || (outcome != Outcome::Ok && events::active()) {
            let error = if ERRORS { error() } else { None };
            self.emit_completion(outcome, duration.map(Duration::from_nanos), error, worker);
        }
    }
}

/// Returns `f`. Passing the body through an `FnOnce` bound makes the closure
/// `FnOnce`, so a body that returns a reborrow of a `&mut` argument still
/// compiles.
#[inline(always)]
pub fn once<R, F: FnOnce() -> R>(f: F) -> F {
    f
}

/// Calls `f` once. Passing the body through an `FnOnce` bound makes the
/// closure `FnOnce`, so a body that returns a reborrow of a `&mut` argument
/// still compiles.
#[inline(always)]
pub fn call_once<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}
