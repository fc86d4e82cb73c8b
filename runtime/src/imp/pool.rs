//! The imperative pool API: the events and gauges that are not function-shaped.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use metrics::{Counter, Gauge, Histogram};

use super::correlation::current;
use super::events::{self, active as events_active};
use super::series::{self, Series};
use crate::interner::{AsLabel, Label};
use crate::model::error::{CrashContext, ErrorContext, ErrorKind};
use crate::model::events::{
    Event, Field, PoolSaturated, PoolSaturationEnded, PoolStarted, SessionCleanup, SessionCreated,
    WorkerCrashed, WorkerStarted,
};
use crate::model::stats::{
    HistogramSnapshot, PoolState, WorkerCounts, WorkerInfo, MAX_LISTED_WORKERS,
};
use crate::model::{Kind, Outcome, WorkerState, DEFAULT_SATURATION_HOLD};

/// The live state of a pool, read by health checks: plain atomics beside the
/// metric handles, because a `metrics` handle cannot be read back.
#[derive(Default)]
struct Live {
    size: AtomicU64,
    /// Workers starting, crashed and stopped, by state index (the entries
    /// for available and busy stay zero: see `up`).
    workers: [AtomicI64; 5],
    /// Available and busy workers in one word (see [`UpPair`]), so that a
    /// worker moving between the two, as it does with every request, is one
    /// atomic change: a reader never sees it in neither state, and a
    /// readiness probe never sees a pool one worker short that is not.
    up: AtomicU64,
    queue_depth: AtomicU64,
    /// Requests the queue holds at most; 0 when not reported.
    queue_capacity: AtomicU64,
    /// Saturation episodes begun.
    saturations: AtomicU64,
    /// Whether an episode is open (running, or cleared and in its hold):
    /// lets the calls on a pool that is not saturated skip the lock.
    episode_open: std::sync::atomic::AtomicBool,
    episode: Mutex<Episode>,
    crashes: AtomicU64,
    sessions_active: AtomicI64,
    sessions_expired: AtomicU64,
    /// Nanoseconds workers spent busy, summed over finished busy periods.
    busy_nanos: AtomicU64,
}

/// Two signed counts in one `u64`: available in the low 32 bits, busy in
/// the high 32, each stored in two's complement and changed with wrapping
/// adds. A count may dip below zero for a moment (two threads moving the
/// same worker, their changes landing out of order), and the decoding
/// undoes the borrow that leaves in the high half.
struct UpPair;

impl UpPair {
    /// What one worker in `state` adds to the word, if the word counts it.
    fn unit(state: WorkerState) -> Option<u64> {
        match state {
            WorkerState::Available => Some(1),
            WorkerState::Busy => Some(1 << 32),
            _ => None,
        }
    }

    /// (available, busy).
    fn decode(word: u64) -> (i64, i64) {
        let available = i64::from(word as u32 as i32);
        let busy = (word.wrapping_sub(available as u64) as i64) >> 32;
        (available, busy)
    }
}

/// A fixed-bucket histogram in atomics, on the duration buckets in force
/// when the pool was created: what window percentiles of queue waits and
/// times in worker are computed from (the exporter's histograms cannot be
/// read back).
struct Durations {
    bounds: Arc<[f64]>,
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Durations {
    fn new() -> Durations {
        let bounds = crate::buckets::current();
        Durations {
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, nanos: u64) {
        let seconds = nanos as f64 / 1e9;
        let bucket = self.bounds.partition_point(|&bound| bound < seconds);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A saturation episode. It ends once the pool has stayed clear of
/// saturation for the hold: a pool whose queue drains between bursts it
/// cannot keep up with is one episode, not one per burst.
#[derive(Default)]
struct Episode {
    /// When it began ([`now_nanos`]); 0 when no episode is open.
    since: u64,
    /// When the pool last came clear of saturation; 0 while saturated.
    clear_at: u64,
    /// The longest queue reported during it.
    peak: u64,
    /// Nanoseconds spent saturated, over the episodes that ended.
    ended_nanos: u64,
}

impl Episode {
    /// Saturated now: open and not come clear.
    fn running(&self) -> bool {
        self.since != 0 && self.clear_at == 0
    }

    /// Nanoseconds spent saturated up to `now`, the open episode included
    /// up to when it came clear.
    fn total_nanos(&self, now: u64) -> u64 {
        let open = match (self.since, self.clear_at) {
            (0, _) => 0,
            (since, 0) => now.saturating_sub(since),
            (since, clear_at) => clear_at.saturating_sub(since),
        };
        self.ended_nanos + open
    }
}

/// Busy periods are timed against one process-wide origin, so a start can
/// live in an atomic.
fn now_nanos() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    // +1: 0 means "not busy".
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// One pool's shared state: every handle built for the same label shares it.
struct Inner {
    label: Label,
    live: Live,
    saturation_hold: u64,
    worker_list: Mutex<Vec<std::sync::Weak<WorkerShared>>>,
    /// Workers whose start an `#[observe(kind = worker_start)]` call counted
    /// before any handle on them existed, with that call site: the next
    /// handle built for the id is theirs.
    started_by_attribute: Mutex<Vec<(String, &'static str)>>,
    size: Gauge,
    workers: [Gauge; 5],
    queue_depth: Gauge,
    saturated: Counter,
    crashes_exit: Counter,
    crashes_signal: Counter,
    crashes_lost: Counter,
    sessions_active: Gauge,
    sessions_expired: Counter,
    cleanup_duration: Histogram,
    queue_wait: Durations,
    queue_wait_histogram: Histogram,
    busy: Durations,
    busy_histogram: Histogram,
    pool_starts: &'static Series,
    worker_starts: &'static Series,
}

/// A handle on one pool, for what `#[observe]` cannot see: worker states,
/// queue depth, saturation, crashes and sessions.
///
/// Metric handles are registered with the `metrics` recorder in force when
/// the pool is created, so create pools after installing the recorder
/// (`poolscope::metrics::install()`). Cloning is cheap.
///
/// ```
/// use poolscope_runtime::{Pool, WorkerState};
/// let pool = Pool::new("doc-pool");
/// let worker = pool.worker(1);
/// worker.set_state(WorkerState::Available);
/// pool.queue_depth(3);
/// pool.saturated(3, 0); // an episode begins: `pool.saturated`
/// pool.saturated(4, 0); // the same episode: no event
/// pool.queue_depth(0); // requests no longer wait: `pool.saturation_ended`
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("label", &self.inner.label)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Pool`]; see [`Pool::builder`].
#[must_use]
#[derive(Debug)]
pub struct PoolBuilder {
    label: Label,
    saturation_hold: Duration,
}

static POOLS: Mutex<Option<HashMap<Label, Arc<Inner>>>> = Mutex::new(None);

impl PoolBuilder {
    /// The handle on the pool: the one already registered under this name,
    /// or a new one whose metric handles are registered with the `metrics`
    /// recorder in force now.
    pub fn build(self) -> Pool {
        let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        let pools = pools.get_or_insert_with(HashMap::new);
        let inner = pools
            .entry(self.label)
            .or_insert_with(|| Arc::new(self.register()));
        Pool {
            inner: inner.clone(),
        }
    }

    /// How long the pool must stay clear of saturation before a saturation
    /// episode ends ([`DEFAULT_SATURATION_HOLD`] unless set). Zero ends an
    /// episode as soon as a worker is free or the queue is empty. Applies to
    /// a pool registered by this builder, not to one registered before.
    pub fn with_saturation_hold(mut self, hold: Duration) -> PoolBuilder {
        self.saturation_hold = hold;
        self
    }

    fn register(self) -> Inner {
        crate::describe::describe_all();
        let label = self.label;
        let l = label.as_str();
        let crashes = |kind: &'static str| metrics::counter!("poolscope_worker_crashes_total", "pool" => l, "kind" => kind);
        let empty = Label::from_static("");
        Inner {
            label,
            live: Live::default(),
            saturation_hold: nanos(self.saturation_hold),
            worker_list: Mutex::new(Vec::new()),
            started_by_attribute: Mutex::new(Vec::new()),
            size: metrics::gauge!("poolscope_pool_size", "pool" => l),
            workers: WorkerState::ALL
                .map(|s| metrics::gauge!("poolscope_workers", "pool" => l, "state" => s.as_str())),
            queue_depth: metrics::gauge!("poolscope_queue_depth", "pool" => l),
            saturated: metrics::counter!("poolscope_pool_saturated_total", "pool" => l),
            crashes_exit: crashes("exit"),
            crashes_signal: crashes("signal"),
            crashes_lost: crashes("lost"),
            sessions_active: metrics::gauge!("poolscope_sessions_active", "pool" => l),
            sessions_expired: metrics::counter!("poolscope_sessions_expired_total", "pool" => l),
            cleanup_duration: metrics::histogram!("poolscope_session_cleanup_duration_seconds", "pool" => l),
            queue_wait: Durations::new(),
            queue_wait_histogram: metrics::histogram!("poolscope_queue_wait_duration_seconds", "pool" => l),
            busy: Durations::new(),
            busy_histogram: metrics::histogram!("poolscope_worker_busy_duration_seconds", "pool" => l),
            pool_starts: series::series(Kind::PoolStart, label, empty),
            worker_starts: series::series(Kind::WorkerStart, label, empty),
        }
    }
}

impl Pool {
    /// A pool handle with default settings.
    pub fn new<L: AsLabel + ?Sized>(name: &L) -> Pool {
        Pool::builder(name).build()
    }

    /// A builder for a pool handle.
    pub fn builder<L: AsLabel + ?Sized>(name: &L) -> PoolBuilder {
        PoolBuilder {
            label: name.as_label(),
            saturation_hold: DEFAULT_SATURATION_HOLD,
        }
    }

    /// The pool's label.
    pub fn label(&self) -> Label {
        self.inner.label
    }

    /// Takes the pool out of the registry: health checks and `stats::pools`
    /// stop reporting its state (a pool shut down on purpose should not keep
    /// readiness failing). Handles still work; building one with the same
    /// name registers the pool again, with fresh state.
    pub fn retire(&self) {
        let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pools) = pools.as_mut() {
            if pools
                .get(&self.inner.label)
                .is_some_and(|p| Arc::ptr_eq(p, &self.inner))
            {
                pools.remove(&self.inner.label);
            }
        }
    }

    /// Reports that the pool started: `pool.started`, the pool-size gauge and
    /// the startup histogram.
    pub fn started(&self, size: usize, startup: Duration, config: Vec<Field>) {
        self.set_size(size);
        if !super::is_enabled() {
            return;
        }
        self.inner
            .pool_starts
            .record_completed(Outcome::Ok, nanos(startup));
        if events_active() {
            events::emit(Event::PoolStarted(PoolStarted {
                at: SystemTime::now(),
                pool: self.inner.label,
                startup: Some(startup),
                size: Some(size as u64),
                config: sanitized(config),
                outcome: Outcome::Ok,
                error: None,
                correlation_id: current(),
            }));
        }
    }

    /// Sets the pool-size gauge (workers the pool is configured to run).
    #[inline]
    pub fn set_size(&self, size: usize) {
        self.inner.live.size.store(size as u64, Ordering::Relaxed);
        self.inner.size.set(size as f64);
    }

    /// Reports how many requests the pool's queue holds at most, so that
    /// readiness can tell a full queue (see `HealthConfig::readiness`).
    pub fn set_queue_capacity(&self, capacity: usize) {
        self.inner
            .live
            .queue_capacity
            .store(capacity as u64, Ordering::Relaxed);
    }

    /// Sets the queue-depth gauge. An empty queue ends a saturation
    /// episode (see [`Pool::saturated`]).
    #[inline]
    pub fn queue_depth(&self, depth: usize) {
        self.inner
            .live
            .queue_depth
            .store(depth as u64, Ordering::Relaxed);
        self.inner.queue_depth.set(depth as f64);
        if depth == 0 {
            self.saturation_ended();
        }
    }

    /// Reports how long a request waited in the queue, from enqueue to
    /// dispatch to a worker: the `poolscope_queue_wait_duration_seconds`
    /// histogram and the queue-wait percentiles of `/health/detailed`.
    pub fn queue_wait(&self, wait: Duration) {
        if !super::is_enabled() {
            return;
        }
        let nanos = wait.as_nanos().min(u64::MAX as u128) as u64;
        self.inner.queue_wait.record(nanos);
        self.inner.queue_wait_histogram.record(wait.as_secs_f64());
    }

    /// Reports that the pool is saturated: requests wait and no worker is
    /// free, or the queue is full. Call it whenever that holds, as often as
    /// is convenient: only the call that begins an episode emits
    /// `pool.saturated` (with `queue_size` and `available_workers`) and
    /// counts `poolscope_pool_saturated_total`; later calls in the same
    /// episode only track its longest queue.
    ///
    /// The episode comes clear at [`Pool::saturation_ended`] (or when
    /// [`Pool::queue_depth`] reports an empty queue) and ends once it has
    /// stayed clear for the pool's hold ([`DEFAULT_SATURATION_HOLD`]); a
    /// saturation within the hold continues it. The end,
    /// `pool.saturation_ended`, is reported by the first call on the pool
    /// or read of its state (`/metrics`, `/health*`, `stats::pools`) after
    /// the hold, with the time from the start until it came clear.
    pub fn saturated(&self, queue_size: usize, available_workers: usize) {
        if !super::is_enabled() {
            return;
        }
        let now = now_nanos();
        let inner = &self.inner;
        let ended = {
            let mut episode = inner.live.episode.lock().unwrap_or_else(|e| e.into_inner());
            let ended = inner.settle(&mut episode, now);
            episode.peak = episode.peak.max(queue_size as u64);
            if episode.since != 0 {
                episode.clear_at = 0;
                drop(episode);
                inner.report_end(ended);
                return;
            }
            episode.since = now;
            episode.clear_at = 0;
            inner.live.episode_open.store(true, Ordering::Relaxed);
            ended
        };
        inner.report_end(ended);
        inner.live.saturations.fetch_add(1, Ordering::Relaxed);
        inner.saturated.increment(1);
        if events_active() {
            events::emit(Event::PoolSaturated(PoolSaturated {
                at: SystemTime::now(),
                pool: inner.label,
                queue_size: queue_size as u64,
                available_workers: available_workers as u64,
            }));
        }
    }

    /// Reports that the pool is clear of saturation: a worker is free for
    /// what waits, or nothing waits. The running episode ends once the pool
    /// stays clear for its hold (see [`Pool::saturated`]). One load when no
    /// episode is open, so call it freely.
    #[inline]
    pub fn saturation_ended(&self) {
        if self.inner.live.episode_open.load(Ordering::Relaxed) {
            self.inner.clear(now_nanos());
        }
    }

    /// Workers in [`WorkerState::Available`] now: one atomic load.
    #[inline]
    pub fn available(&self) -> usize {
        let (available, _) = UpPair::decode(self.inner.live.up.load(Ordering::Relaxed));
        available.max(0) as usize
    }

    /// Workers in [`WorkerState::Busy`] now: one atomic load.
    #[inline]
    pub fn busy(&self) -> usize {
        let (_, busy) = UpPair::decode(self.inner.live.up.load(Ordering::Relaxed));
        busy.max(0) as usize
    }

    /// Workers the pool is configured to run ([`Pool::set_size`]): one
    /// atomic load.
    #[inline]
    pub fn size(&self) -> usize {
        self.inner.live.size.load(Ordering::Relaxed) as usize
    }

    /// Requests waiting now, as last reported ([`Pool::queue_depth`]): one
    /// atomic load.
    #[inline]
    pub fn queued(&self) -> usize {
        self.inner.live.queue_depth.load(Ordering::Relaxed) as usize
    }

    /// Whether the pool is saturated now (an episode runs and has not come
    /// clear).
    pub fn is_saturated(&self) -> bool {
        self.inner.live.episode_open.load(Ordering::Relaxed) && self.inner.saturation(now_nanos()).1
    }

    /// A handle on one worker, counted as [`WorkerState::Starting`] until told
    /// otherwise. Dropping the handle removes the worker from the gauges.
    ///
    /// A worker whose start an `#[observe(kind = worker_start, worker = ..)]`
    /// call has already reported (with this id, on this pool) begins
    /// [`WorkerState::Available`]: its start is counted, and
    /// [`Worker::started`] is not to be called for it.
    pub fn worker<I: Display>(&self, id: I) -> Worker {
        let id = id.to_string();
        let counted_by = self.inner.take_attribute_start(&id);
        let state = if counted_by.is_some() {
            WorkerState::Available
        } else {
            WorkerState::Starting
        };
        self.inner.adjust_workers(state, 1);
        let shared = Arc::new(WorkerShared {
            id,
            state: AtomicU8::new(state.index() as u8),
            since: Instant::now(),
            pid: AtomicU32::new(0),
            resident_bytes: AtomicU64::new(0),
            busy_since: AtomicU64::new(0),
            counted_by: Mutex::new(counted_by.map(StartedBy::Attribute)),
        });
        let mut list = self
            .inner
            .worker_list
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Handles dropped since the last call leave dead entries: sweep them
        // here so the list stays as long as the live workers.
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&shared));
        Worker {
            pool: self.inner.clone(),
            shared,
        }
    }

    /// Reports a new session: `session.created` and the active-sessions gauge.
    /// (Creations are counted, with their duration, by an observed
    /// `#[observe(kind = session_create)]` function.)
    pub fn session_created(&self, session_id: &str, ttl: Duration, metadata: Vec<Field>) {
        self.inner
            .live
            .sessions_active
            .fetch_add(1, Ordering::Relaxed);
        self.inner.sessions_active.increment(1.0);
        if !super::is_enabled() {
            return;
        }
        if events_active() {
            events::emit(Event::SessionCreated(SessionCreated {
                at: SystemTime::now(),
                pool: self.inner.label,
                session_id: Some(session_id.to_owned()),
                ttl: Some(ttl),
                metadata: sanitized(metadata),
                outcome: Outcome::Ok,
                error: None,
                correlation_id: current(),
            }));
        }
    }

    /// Reports that `count` expired sessions were removed in `duration`:
    /// `session.cleanup`, the gauges and the cleanup histogram.
    pub fn sessions_cleaned(&self, count: usize, duration: Duration) {
        self.inner
            .live
            .sessions_active
            .fetch_sub(count as i64, Ordering::Relaxed);
        self.inner.sessions_active.decrement(count as f64);
        if !super::is_enabled() {
            return;
        }
        self.inner
            .live
            .sessions_expired
            .fetch_add(count as u64, Ordering::Relaxed);
        self.inner.sessions_expired.increment(count as u64);
        self.inner.cleanup_duration.record(duration.as_secs_f64());
        if events_active() {
            events::emit(Event::SessionCleanup(SessionCleanup {
                at: SystemTime::now(),
                pool: self.inner.label,
                count: count as u64,
                duration,
            }));
        }
    }
}

/// Metadata as events carry it: secret-named fields redacted whole, every
/// value sanitized.
fn sanitized(fields: Vec<Field>) -> Vec<Field> {
    let sanitizer = crate::sanitize::current();
    fields
        .into_iter()
        .map(|(name, value)| {
            let value = sanitizer.sanitize_field(&name, &value).into_owned();
            (name, value)
        })
        .collect()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A handle on one worker of a [`Pool`]; see [`Pool::worker`].
pub struct Worker {
    pool: Arc<Inner>,
    shared: Arc<WorkerShared>,
}

/// What the pool's registry sees of a worker handle.
struct WorkerShared {
    id: String,
    state: AtomicU8,
    since: Instant,
    /// The worker's process id; 0 until reported.
    pid: AtomicU32,
    /// Its resident memory at the memory sampler's last reading; 0 until
    /// read.
    resident_bytes: AtomicU64,
    /// When the current busy period began ([`now_nanos`]); 0 when not busy.
    busy_since: AtomicU64,
    /// Which of the two ways to report a start counted this worker's, so
    /// that using both is reported rather than counted twice.
    counted_by: Mutex<Option<StartedBy>>,
}

impl WorkerShared {
    /// Records that `by` counted this worker's start, unless the other way
    /// of reporting one did already: then that one is returned and nothing
    /// changes.
    fn claim_start(&self, by: StartedBy) -> Option<StartedBy> {
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
    fn set_state(&self, pool: &Inner, state: WorkerState) {
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
    fn end_busy(&self, pool: &Inner) {
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
enum StartedBy {
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
    fn end_busy(&self) {
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
    fn record_start(
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
    worker: &'a Worker,
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
fn double_start(pool: Label, worker: &str, first: StartedBy, second: StartedBy) {
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
const MAX_PENDING_STARTS: usize = 1024;

/// An `#[observe(kind = pool_start, size = ..)]` call started `pool` with
/// `size` workers: the pool-size gauge, when the pool is registered.
#[cold]
pub(crate) fn pool_started_by_attribute(pool: Label, size: u64) {
    if let Some(inner) = registered(pool) {
        (Pool { inner }).set_size(usize::try_from(size).unwrap_or(usize::MAX));
    }
}

fn registered(pool: Label) -> Option<Arc<Inner>> {
    let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.as_ref()?.get(&pool).cloned()
}

impl Inner {
    /// The call site of an attribute-reported start of `worker` that no
    /// handle has taken yet.
    fn take_attribute_start(&self, worker: &str) -> Option<&'static str> {
        let mut pending = self
            .started_by_attribute
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let at = pending.iter().position(|(id, _)| id == worker)?;
        Some(pending.remove(at).1)
    }

    /// Marks the open episode clear at `now` (ending it at once with no
    /// hold), and reports an episode whose hold has passed.
    #[cold]
    fn clear(&self, now: u64) {
        let ended = {
            let mut episode = self.live.episode.lock().unwrap_or_else(|e| e.into_inner());
            if episode.running() {
                episode.clear_at = now;
            }
            self.settle(&mut episode, now)
        };
        self.report_end(ended);
    }

    /// Ends the open episode if it has stayed clear for the hold: the
    /// episode's length and longest queue, to report once the lock is let
    /// go.
    fn settle(&self, episode: &mut Episode, now: u64) -> Option<(u64, u64)> {
        if episode.since == 0
            || episode.clear_at == 0
            || now.saturating_sub(episode.clear_at) < self.saturation_hold
        {
            return None;
        }
        let length = episode.clear_at.saturating_sub(episode.since);
        let peak = episode.peak;
        episode.ended_nanos += length;
        episode.since = 0;
        episode.clear_at = 0;
        episode.peak = 0;
        self.live.episode_open.store(false, Ordering::Relaxed);
        Some((length, peak))
    }

    fn report_end(&self, ended: Option<(u64, u64)>) {
        let Some((length, peak)) = ended else { return };
        if super::is_enabled() && events_active() {
            events::emit(Event::PoolSaturationEnded(PoolSaturationEnded {
                at: SystemTime::now(),
                pool: self.label,
                duration: Duration::from_nanos(length),
                peak_queue_size: peak,
            }));
        }
    }

    /// Nanoseconds spent saturated up to `now`, and whether the pool is
    /// saturated now, after ending an episode whose hold has passed.
    fn saturation(&self, now: u64) -> (u64, bool) {
        let (ended, total, running) = {
            let mut episode = self.live.episode.lock().unwrap_or_else(|e| e.into_inner());
            let ended = self.settle(&mut episode, now);
            (ended, episode.total_nanos(now), episode.running())
        };
        self.report_end(ended);
        (total, running)
    }

    /// Moves the count of workers in `state` by `by`, in the live state and
    /// in the gauge.
    fn adjust_workers(&self, state: WorkerState, by: i64) {
        match UpPair::unit(state) {
            Some(unit) => {
                self.live
                    .up
                    .fetch_add(unit.wrapping_mul(by as u64), Ordering::Relaxed);
            }
            None => {
                self.live.workers[state.index()].fetch_add(by, Ordering::Relaxed);
            }
        }
        // Increments, not a set from the count: two threads cannot then
        // leave the gauge at an older value.
        self.workers[state.index()].increment(by as f64);
    }

    /// A move between two states; between available and busy one atomic
    /// change of the counts.
    fn move_worker(&self, from: WorkerState, to: WorkerState) {
        match (UpPair::unit(from), UpPair::unit(to)) {
            (Some(from_unit), Some(to_unit)) => {
                self.live
                    .up
                    .fetch_add(to_unit.wrapping_sub(from_unit), Ordering::Relaxed);
                self.workers[from.index()].decrement(1.0);
                self.workers[to.index()].increment(1.0);
            }
            _ => {
                self.adjust_workers(from, -1);
                self.adjust_workers(to, 1);
            }
        }
    }

    fn snapshot(&self) -> PoolState {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        // Read first: a settled episode is reported, and counted, here.
        let (saturated_nanos, saturated) = self.saturation(now_nanos());
        let mut workers = self
            .live
            .workers
            .each_ref()
            .map(|w| w.load(Ordering::Relaxed).max(0) as u64);
        let (available, busy) = UpPair::decode(self.live.up.load(Ordering::Relaxed));
        workers[WorkerState::Available.index()] = available.max(0) as u64;
        workers[WorkerState::Busy.index()] = busy.max(0) as u64;
        let now = now_nanos();
        let mut busy_nanos = load(&self.live.busy_nanos);
        let mut shortest_busy: Option<u64> = None;
        let worker_list: Vec<WorkerInfo> = {
            let list = self.worker_list.lock().unwrap_or_else(|e| e.into_inner());
            let live: Vec<_> = list.iter().filter_map(std::sync::Weak::upgrade).collect();
            // Busy periods still running count up to now, for every worker,
            // not only the ones listed.
            for w in &live {
                let since = w.busy_since.load(Ordering::Relaxed);
                if since != 0 {
                    let busy_for = now.saturating_sub(since);
                    busy_nanos += busy_for;
                    shortest_busy = Some(shortest_busy.map_or(busy_for, |s| s.min(busy_for)));
                }
            }
            live.iter()
                .take(MAX_LISTED_WORKERS)
                .map(|w| WorkerInfo {
                    id: w.id.clone(),
                    state: WorkerState::from_index(w.state.load(Ordering::Relaxed) as usize),
                    uptime: w.since.elapsed(),
                    pid: match w.pid.load(Ordering::Relaxed) {
                        0 => None,
                        pid => Some(pid),
                    },
                })
                .collect()
        };
        PoolState {
            pool: self.label,
            size: load(&self.live.size),
            workers: WorkerCounts {
                starting: workers[0],
                available: workers[1],
                busy: workers[2],
                crashed: workers[3],
                stopped: workers[4],
            },
            queue_depth: load(&self.live.queue_depth),
            queue_capacity: Some(load(&self.live.queue_capacity)).filter(|&c| c != 0),
            shortest_busy: shortest_busy.map(Duration::from_nanos),
            saturations: load(&self.live.saturations),
            saturated_nanos,
            saturated,
            crashes: load(&self.live.crashes),
            sessions_active: self.live.sessions_active.load(Ordering::Relaxed).max(0) as u64,
            sessions_expired: load(&self.live.sessions_expired),
            busy_nanos,
            queue_wait: self.queue_wait.snapshot(),
            time_in_worker: self.busy.snapshot(),
            worker_list,
        }
    }
}

/// Every pool's time saturated, in seconds, in name order. A running
/// episode counts up to now, so the value grows while the pool stays
/// saturated.
#[cfg(feature = "metrics")]
pub(super) fn saturated_seconds() -> Vec<(Label, f64)> {
    let pools: Vec<Arc<Inner>> = {
        let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        pools.iter().flat_map(|p| p.values()).cloned().collect()
    };
    let now = now_nanos();
    let mut out: Vec<(Label, f64)> = pools
        .iter()
        .map(|pool| (pool.label, pool.saturation(now).0 as f64 / 1e9))
        .collect();
    out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    out
}

/// Keeps each worker's resident memory from a reading of `(pid, bytes)`
/// of `pool`'s workers, for the crash context of a worker that dies later.
pub(crate) fn note_resident(pool: Label, readings: &[(u32, u64)]) {
    let inner = {
        let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        match pools.as_ref().and_then(|p| p.get(&pool)) {
            Some(inner) => inner.clone(),
            None => return,
        }
    };
    let by_pid: HashMap<u32, u64> = readings.iter().copied().collect();
    let list = inner.worker_list.lock().unwrap_or_else(|e| e.into_inner());
    for worker in list.iter().filter_map(std::sync::Weak::upgrade) {
        if let Some(&bytes) = by_pid.get(&worker.pid.load(Ordering::Relaxed)) {
            worker.resident_bytes.store(bytes, Ordering::Relaxed);
        }
    }
}

/// The state of every pool built so far, in name order.
pub(crate) fn pool_states() -> Vec<PoolState> {
    let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let mut states: Vec<PoolState> = pools
        .iter()
        .flat_map(|p| p.values())
        .map(|p| p.snapshot())
        .collect();
    states.sort_by(|a, b| a.pool.as_str().cmp(b.pool.as_str()));
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(available: i64, busy: i64) -> u64 {
        (available as u64).wrapping_add((busy as u64).wrapping_mul(1 << 32))
    }

    #[test]
    fn busy_time_counts_workers_past_the_listed_ones() {
        let pool = crate::Pool::new("busy-past-list");
        let workers: Vec<_> = (0..MAX_LISTED_WORKERS + 44)
            .map(|id| pool.worker(id))
            .collect();
        for worker in &workers {
            worker.set_state(WorkerState::Busy);
        }
        std::thread::sleep(Duration::from_millis(20));
        let state = crate::imp::stats::pools()
            .into_iter()
            .find(|p| p.pool.as_str() == "busy-past-list")
            .and_then(|p| p.state)
            .unwrap();
        assert_eq!(state.worker_list.len(), MAX_LISTED_WORKERS);
        // 300 workers busy for at least 20 ms each.
        let least = (MAX_LISTED_WORKERS + 44) as u64 * 20_000_000;
        assert!(state.busy_nanos >= least, "{} < {least}", state.busy_nanos);
    }

    #[test]
    fn the_pair_decodes_counts_below_zero_too() {
        for (available, busy) in [(0, 0), (3, 5), (-1, 2), (2, -1), (-1, -1), (70_000, 0)] {
            assert_eq!(UpPair::decode(word(available, busy)), (available, busy));
        }
    }

    #[test]
    fn workers_moving_between_available_and_busy_never_read_as_down() {
        let pool = crate::Pool::new("up-pair-test");
        pool.set_size(4);
        let workers: Vec<_> = (0..4).map(|id| pool.worker(id)).collect();
        for worker in &workers {
            worker.set_state(WorkerState::Available);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flips = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let flippers: Vec<_> = workers
            .into_iter()
            .map(|worker| {
                let stop = stop.clone();
                let flips = flips.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        worker.set_state(WorkerState::Busy);
                        worker.set_state(WorkerState::Available);
                        flips.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Read until enough reads have met enough moves, however slowly
        // this machine runs either side; the limit only stops a hang.
        let started = std::time::Instant::now();
        let first = flips.load(Ordering::Relaxed);
        let mut reads = 0u64;
        while reads < 2_000 || flips.load(Ordering::Relaxed) - first < 20_000 {
            let state = crate::imp::stats::pools()
                .into_iter()
                .find(|p| p.pool.as_str() == "up-pair-test")
                .and_then(|p| p.state)
                .unwrap();
            assert_eq!(state.workers.up(), 4, "{:?}", state.workers);
            reads += 1;
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{reads} reads, {} moves",
                flips.load(Ordering::Relaxed) - first
            );
        }
        stop.store(true, Ordering::Relaxed);
        for flipper in flippers {
            flipper.join().unwrap();
        }
    }
}
