//! Worker handles: state changes, starts (counted once however they are
//! reported), crashes, busy periods.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::correlation::current;
use super::events::{self, active as events_active};
use crate::interner::Label;
use crate::model::error::{CrashContext, ErrorContext, ErrorKind};
use crate::model::events::{Event, WorkerCrashed, WorkerStarted};
use crate::model::{Outcome, WorkerState};

use super::pool::registered;
use super::pool_state::{now_nanos, Inner};

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A handle on one worker of a [`Pool`](crate::Pool); see [`Pool::worker`](crate::Pool::worker).
pub struct Worker {
    pub(super) pool: Arc<Inner>,
    pub(super) shared: Arc<WorkerShared>,
}

/// What the pool's registry sees of a worker handle.
pub(super) struct WorkerShared {
    pub(super) id: String,
    pub(super) state: AtomicU8,
    pub(super) since: Instant,
    /// The worker's process id; 0 until reported.
    pub(super) pid: AtomicU32,
    /// Its resident memory at the memory sampler's last reading; 0 until
    /// read.
    pub(super) resident_bytes: AtomicU64,
    /// When the current busy period began ([`now_nanos`]); 0 when not busy.
    pub(super) busy_since: AtomicU64,
    /// Which of the two ways to report a start counted this worker's, so
    /// that using both is reported rather than counted twice.
    pub(super) counted_by: Mutex<Option<StartedBy>>,
}

impl WorkerShared {
    /// Records that `by` counted this worker's start, unless the other way
    /// of reporting one did already: then that one is returned and nothing
    /// changes.
    pub(super) fn claim_start(&self, by: StartedBy) -> Option<StartedBy> {
        let mut counted = self.counted_by.lock().unwrap_or_else(|e| e.into_inner());
        match (*counted, by) {
            (Some(earlier @ StartedBy::Attribute(_)), StartedBy::Call(_))
            | (Some(earlier @ StartedBy::Call(_)), StartedBy::Attribute(_)) => Some(earlier),
            _ => {
                *counted = Some(by);
                None
            }
        }
    }

    #[inline]
    pub(super) fn set_state(&self, pool: &Inner, state: WorkerState) {
        let old = self.state.swap(state.index() as u8, Ordering::Relaxed) as usize;
        if old != state.index() {
            pool.move_worker(WorkerState::from_index(old), state);
            if state == WorkerState::Busy {
                self.busy_since.store(now_nanos(), Ordering::Relaxed);
            } else if old == WorkerState::Busy.index() {
                self.end_busy(pool);
            }
        }
    }

    /// Closes the current busy period: the time in worker histogram and the
    /// busy time behind utilization.
    pub(super) fn end_busy(&self, pool: &Inner) {
        let since = self.busy_since.swap(0, Ordering::Relaxed);
        if since == 0 || !super::is_enabled() {
            return;
        }
        let nanos = now_nanos().saturating_sub(since);
        pool.live.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        pool.busy.record(nanos);
        pool.busy_histogram.record(nanos as f64 / 1e9);
    }
}

/// Who counted a worker's start.
#[derive(Clone, Copy, Debug)]
pub(super) enum StartedBy {
    /// An `#[observe(kind = worker_start)]` function, by its name.
    Attribute(&'static str),
    /// [`Worker::started`], by its call site.
    Call(&'static std::panic::Location<'static>),
}

impl std::fmt::Display for StartedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartedBy::Attribute(site) => {
                write!(f, "`#[observe(kind = worker_start)]` on `{site}`")
            }
            StartedBy::Call(at) => write!(f, "`Worker::started` at {at}"),
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("pool", &self.pool.label)
            .field("id", &self.shared.id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The state last set.
    pub fn state(&self) -> WorkerState {
        WorkerState::from_index(self.shared.state.load(Ordering::Relaxed) as usize)
    }

    /// Moves the worker to `state`, updating the per-state gauges. Gauges
    /// follow state even while recording is off, so they are right when it
    /// comes back on.
    #[inline]
    pub fn set_state(&self, state: WorkerState) {
        self.shared.set_state(&self.pool, state);
    }

    /// Closes the current busy period.
    pub(super) fn end_busy(&self) {
        self.shared.end_busy(&self.pool);
    }

    /// Records the worker's process id, so the memory sampler can read its
    /// resident size (`/proc/<pid>`) and the pool's state lists it.
    pub fn set_pid(&self, pid: u32) {
        if self.shared.pid.swap(pid, Ordering::Relaxed) != pid {
            // Another process: the last reading was not of it.
            self.shared.resident_bytes.store(0, Ordering::Relaxed);
        }
    }

    /// Reports that the worker is ready: `worker.started`, the startup
    /// histogram, and the state [`WorkerState::Available`].
    ///
    /// This and `#[observe(kind = worker_start, worker = ..)]` are two ways
    /// to report one start: the call for a start that is not one function
    /// call, the attribute for one that is. A worker whose start the
    /// attribute counted already is not counted again here: its pid and
    /// state are set, and a warning names this call site (log target
    /// `poolscope`).
    #[track_caller]
    pub fn started(&self, pid: Option<u32>, startup: Duration) {
        if let Some(pid) = pid {
            self.set_pid(pid);
        }
        self.set_state(WorkerState::Available);
        let here = StartedBy::Call(std::panic::Location::caller());
        match self.shared.claim_start(here) {
            Some(earlier) => double_start(self.pool.label, &self.shared.id, earlier, here),
            None => self.record_start(Outcome::Ok, pid, startup, || None),
        }
    }

    /// Reports that the worker failed to start: `worker.started` with
    /// outcome `error` and `error`, and the startup histogram and counter
    /// under that outcome. The state is left as it is: set it to what the
    /// pool does next (`Crashed` while it waits to retry, `Stopped`).
    pub fn start_failed(&self, startup: Duration, error: ErrorContext) {
        self.record_start(Outcome::Error, None, startup, || Some(error.sanitized()));
    }

    /// A start, ended `outcome`: the startup series and `worker.started`.
    pub(super) fn record_start(
        &self,
        outcome: Outcome,
        pid: Option<u32>,
        startup: Duration,
        error: impl FnOnce() -> Option<ErrorContext>,
    ) {
        if !super::is_enabled() {
            return;
        }
        self.pool
            .worker_starts
            .record_completed(outcome, nanos(startup));
        if events_active() {
            events::emit(Event::WorkerStarted(WorkerStarted {
                at: SystemTime::now(),
                pool: self.pool.label,
                worker: Some(self.shared.id.clone()),
                pid,
                startup: Some(startup),
                outcome,
                error: error(),
                correlation_id: current(),
            }));
        }
    }

    /// Marks the worker [`WorkerState::Busy`] until the returned guard
    /// drops, which puts it back to [`WorkerState::Available`] — or, when
    /// the guard drops while a panic unwinds through it, to
    /// [`WorkerState::Crashed`]: the job took its worker down. A state set
    /// while the guard lives (`Stopped`, `Crashed`) is left as it is.
    ///
    /// ```
    /// # use poolscope_runtime::{Pool, WorkerState};
    /// let pool = Pool::new("doc-busy");
    /// let worker = pool.worker(1);
    /// worker.set_state(WorkerState::Available);
    /// {
    ///     let _busy = worker.busy();
    ///     assert_eq!(pool.busy(), 1);
    /// }
    /// assert_eq!(pool.available(), 1);
    /// ```
    pub fn busy(&self) -> BusyGuard<'_> {
        self.set_state(WorkerState::Busy);
        BusyGuard { worker: self }
    }

    /// Runs one job on this worker: busy while it runs (see
    /// [`Worker::busy`]), and a panic inside it comes back as
    /// [`Panicked`](crate::error::Panicked) with the worker available
    /// again, instead of unwinding through the worker's loop. An observed
    /// function that returns the `Panicked` records the outcome `panic`.
    ///
    /// ```
    /// # use poolscope_runtime::{Pool, WorkerState};
    /// let pool = Pool::new("doc-run");
    /// let worker = pool.worker(1);
    /// worker.set_state(WorkerState::Available);
    /// assert_eq!(worker.run(|| 6 * 7), Ok(42));
    /// let failed = worker.run(|| -> u8 { panic!("bad input") });
    /// assert_eq!(failed.unwrap_err().message, "bad input");
    /// assert_eq!(worker.state(), WorkerState::Available);
    /// ```
    ///
    /// # Errors
    ///
    /// [`Panicked`](crate::error::Panicked) when `job` panicked.
    pub fn run<R>(&self, job: impl FnOnce() -> R) -> Result<R, crate::model::error::Panicked> {
        let _busy = self.busy();
        crate::task::catch(job)
    }

    /// [`Worker::run`] for async jobs: the worker is busy until `job`
    /// completes (or is dropped), and a panic in any of its polls comes back
    /// as [`Panicked`](crate::error::Panicked). The job runs in the calling
    /// task: nothing is spawned, and it needs neither `Send` nor `'static`.
    ///
    /// # Errors
    ///
    /// [`Panicked`](crate::error::Panicked) when `job` panicked.
    pub async fn run_async<F: std::future::Future>(
        &self,
        job: F,
    ) -> Result<F::Output, crate::model::error::Panicked> {
        let _busy = self.busy();
        crate::task::catch_async(job).await
    }

    /// Reports that the worker died: `worker.crashed` with the crash context,
    /// the crash counter (by `kind`: `exit`, `signal` or `lost`), and the
    /// state [`WorkerState::Crashed`]. `uptime` defaults to the time since the
    /// handle was created.
    ///
    /// What the crash leaves out and the handle knows is filled in: the pid
    /// ([`Worker::set_pid`]), the resident memory at the memory sampler's
    /// last reading, the host name. The event's correlation id is the one
    /// in scope, or else the first of `crash.in_flight`: the request the
    /// worker died running.
    pub fn crashed(&self, reason: &str, mut crash: CrashContext) {
        self.set_state(WorkerState::Crashed);
        // A restart on this handle is a new start, to count again.
        *self
            .shared
            .counted_by
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        if crash.pid.is_none() {
            crash.pid = Some(self.shared.pid.load(Ordering::Relaxed)).filter(|&pid| pid != 0);
        }
        if crash.resident_bytes.is_none() {
            crash.resident_bytes =
                Some(self.shared.resident_bytes.load(Ordering::Relaxed)).filter(|&b| b != 0);
        }
        if crash.host.is_none() {
            crash.host = crate::model::error::host_name();
        }
        if !super::is_enabled() {
            return;
        }
        let counter = if crash.signal.is_some() {
            &self.pool.crashes_signal
        } else if crash.exit_code.is_some() {
            &self.pool.crashes_exit
        } else {
            &self.pool.crashes_lost
        };
        counter.increment(1);
        self.pool.live.crashes.fetch_add(1, Ordering::Relaxed);
        if events_active() {
            let uptime = *crash
                .uptime
                .get_or_insert_with(|| self.shared.since.elapsed());
            let mut error = ErrorContext::message(ErrorKind::Crash, "crash", reason);
            error.crash = Some(crash);
            let error = error.sanitized();
            events::emit(Event::WorkerCrashed(WorkerCrashed {
                at: SystemTime::now(),
                pool: self.pool.label,
                worker: self.shared.id.clone(),
                uptime: Some(uptime),
                reason: error.message.clone(),
                correlation_id: current().or_else(|| {
                    let crash = error.crash.as_ref()?;
                    crash.in_flight.iter().find_map(|id| id.parse().ok())
                }),
                error,
            }));
        }
    }
}

/// Keeps a worker [`WorkerState::Busy`]; see [`Worker::busy`].
#[must_use = "the worker is available again as soon as the guard drops"]
#[derive(Debug)]
pub struct BusyGuard<'a> {
    pub(super) worker: &'a Worker,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if self.worker.state() == WorkerState::Busy {
            self.worker.set_state(if std::thread::panicking() {
                WorkerState::Crashed
            } else {
                WorkerState::Available
            });
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.state() == WorkerState::Busy {
            self.end_busy();
        }
        self.pool.adjust_workers(self.state(), -1);
    }
}

/// Reports a start counted twice, once per worker.
#[cold]
pub(super) fn double_start(pool: Label, worker: &str, first: StartedBy, second: StartedBy) {
    tracing::warn!(
        target: "poolscope",
        pool = %pool,
        worker,
        "worker {worker} of pool {pool}: its start is reported twice, by {first} and by {second}; \
         poolscope counted it once. Report a worker's start one way: the attribute for a \
         function that starts it, `Worker::started` otherwise"
    );
}

/// An `#[observe(kind = worker_start, worker = ..)]` call at `site` started
/// `worker` of `pool`: its handle, if one exists, becomes available, and
/// otherwise the next one built for it will be.
#[cold]
pub(crate) fn started_by_attribute(pool: Label, worker: &str, site: &'static str) {
    let Some(inner) = registered(pool) else {
        return;
    };
    let handle = {
        let list = inner.worker_list.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .filter_map(std::sync::Weak::upgrade)
            .rfind(|w| w.id == worker)
    };
    let Some(shared) = handle else {
        let mut pending = inner
            .started_by_attribute
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.retain(|(id, _)| id != worker);
        // A start reported for a worker that never gets a handle must not
        // grow this for ever.
        if pending.len() >= MAX_PENDING_STARTS {
            pending.remove(0);
        }
        pending.push((worker.to_owned(), site));
        return;
    };
    if let Some(earlier) = shared.claim_start(StartedBy::Attribute(site)) {
        double_start(pool, worker, earlier, StartedBy::Attribute(site));
        return;
    }
    if shared.state.load(Ordering::Relaxed) as usize == WorkerState::Starting.index() {
        shared.set_state(&inner, WorkerState::Available);
    }
}

/// How many attribute-reported starts wait for their handle, at most.
pub(super) const MAX_PENDING_STARTS: usize = 1024;
