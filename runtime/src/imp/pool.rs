//! The imperative pool API: the events and gauges that are not function-shaped.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::correlation::current;
use super::events::{self, active as events_active};
use super::pool_state::{now_nanos, Durations, Inner, Live, UpPair};
use super::series::{self};
use super::worker::{nanos, StartedBy, WorkerShared};
pub use super::worker::{BusyGuard, Worker};
use crate::interner::{AsLabel, Label};
use crate::model::events::{
    Event, Field, PoolSaturated, PoolStarted, SessionCleanup, SessionCreated,
};
use crate::model::stats::PoolState;
use crate::model::{Kind, Outcome, WorkerState, DEFAULT_SATURATION_HOLD};

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

/// An `#[observe(kind = pool_start, size = ..)]` call started `pool` with
/// `size` workers: the pool-size gauge, when the pool is registered.
#[cold]
pub(crate) fn pool_started_by_attribute(pool: Label, size: u64) {
    if let Some(inner) = registered(pool) {
        (Pool { inner }).set_size(usize::try_from(size).unwrap_or(usize::MAX));
    }
}

pub(super) fn registered(pool: Label) -> Option<Arc<Inner>> {
    let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.as_ref()?.get(&pool).cloned()
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
    use crate::model::stats::MAX_LISTED_WORKERS;

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
