//! One pool's shared state behind every handle on it: the live counts
//! health checks read, the metric handles, busy and queue-wait durations,
//! the saturation episode.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use metrics::{Counter, Gauge, Histogram};

use super::events::{self, active as events_active};
use super::series::Series;
use crate::interner::Label;
use crate::model::events::{Event, PoolSaturationEnded};
use crate::model::stats::{
    HistogramSnapshot, PoolState, WorkerCounts, WorkerInfo, MAX_LISTED_WORKERS,
};
use crate::model::WorkerState;

use super::worker::WorkerShared;

/// The live state of a pool, read by health checks: plain atomics beside the
/// metric handles, because a `metrics` handle cannot be read back.
#[derive(Default)]
pub(super) struct Live {
    pub(super) size: AtomicU64,
    /// Workers starting, crashed and stopped, by state index (the entries
    /// for available and busy stay zero: see `up`).
    pub(super) workers: [AtomicI64; 5],
    /// Available and busy workers in one word (see [`UpPair`]), so that a
    /// worker moving between the two, as it does with every request, is one
    /// atomic change: a reader never sees it in neither state, and a
    /// readiness probe never sees a pool one worker short that is not.
    pub(super) up: AtomicU64,
    pub(super) queue_depth: AtomicU64,
    /// Requests the queue holds at most; 0 when not reported.
    pub(super) queue_capacity: AtomicU64,
    /// Saturation episodes begun.
    pub(super) saturations: AtomicU64,
    /// Whether an episode is open (running, or cleared and in its hold):
    /// lets the calls on a pool that is not saturated skip the lock.
    pub(super) episode_open: std::sync::atomic::AtomicBool,
    pub(super) episode: Mutex<Episode>,
    pub(super) crashes: AtomicU64,
    pub(super) sessions_active: AtomicI64,
    pub(super) sessions_expired: AtomicU64,
    /// Nanoseconds workers spent busy, summed over finished busy periods.
    pub(super) busy_nanos: AtomicU64,
}

/// Two signed counts in one `u64`: available in the low 32 bits, busy in
/// the high 32, each stored in two's complement and changed with wrapping
/// adds. A count may dip below zero for a moment (two threads moving the
/// same worker, their changes landing out of order), and the decoding
/// undoes the borrow that leaves in the high half.
pub(super) struct UpPair;

impl UpPair {
    /// What one worker in `state` adds to the word, if the word counts it.
    pub(super) fn unit(state: WorkerState) -> Option<u64> {
        match state {
            WorkerState::Available => Some(1),
            WorkerState::Busy => Some(1 << 32),
            _ => None,
        }
    }

    /// (available, busy).
    pub(super) fn decode(word: u64) -> (i64, i64) {
        let available = i64::from(word as u32 as i32);
        let busy = (word.wrapping_sub(available as u64) as i64) >> 32;
        (available, busy)
    }
}

/// A fixed-bucket histogram in atomics, on the duration buckets in force
/// when the pool was created: what window percentiles of queue waits and
/// times in worker are computed from (the exporter's histograms cannot be
/// read back).
pub(super) struct Durations {
    pub(super) bounds: Arc<[f64]>,
    pub(super) counts: Box<[AtomicU64]>,
    pub(super) sum_nanos: AtomicU64,
}

impl Durations {
    pub(super) fn new() -> Durations {
        let bounds = crate::buckets::current();
        Durations {
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(super) fn record(&self, nanos: u64) {
        let seconds = nanos as f64 / 1e9;
        let bucket = self.bounds.partition_point(|&bound| bound < seconds);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> HistogramSnapshot {
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
pub(super) struct Episode {
    /// When it began ([`now_nanos`]); 0 when no episode is open.
    pub(super) since: u64,
    /// When the pool last came clear of saturation; 0 while saturated.
    pub(super) clear_at: u64,
    /// The longest queue reported during it.
    pub(super) peak: u64,
    /// Nanoseconds spent saturated, over the episodes that ended.
    pub(super) ended_nanos: u64,
}

impl Episode {
    /// Saturated now: open and not come clear.
    pub(super) fn running(&self) -> bool {
        self.since != 0 && self.clear_at == 0
    }

    /// Nanoseconds spent saturated up to `now`, the open episode included
    /// up to when it came clear.
    pub(super) fn total_nanos(&self, now: u64) -> u64 {
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
pub(super) fn now_nanos() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    // +1: 0 means "not busy".
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// One pool's shared state: every handle built for the same label shares it.
pub(super) struct Inner {
    pub(super) label: Label,
    pub(super) live: Live,
    pub(super) saturation_hold: u64,
    pub(super) worker_list: Mutex<Vec<std::sync::Weak<WorkerShared>>>,
    /// Workers whose start an `#[observe(kind = worker_start)]` call counted
    /// before any handle on them existed, with that call site: the next
    /// handle built for the id is theirs.
    pub(super) started_by_attribute: Mutex<Vec<(String, &'static str)>>,
    pub(super) size: Gauge,
    pub(super) workers: [Gauge; 5],
    pub(super) queue_depth: Gauge,
    pub(super) saturated: Counter,
    pub(super) crashes_exit: Counter,
    pub(super) crashes_signal: Counter,
    pub(super) crashes_lost: Counter,
    pub(super) sessions_active: Gauge,
    pub(super) sessions_expired: Counter,
    pub(super) cleanup_duration: Histogram,
    pub(super) queue_wait: Durations,
    pub(super) queue_wait_histogram: Histogram,
    pub(super) busy: Durations,
    pub(super) busy_histogram: Histogram,
    pub(super) pool_starts: &'static Series,
    pub(super) worker_starts: &'static Series,
}

impl Inner {
    /// The call site of an attribute-reported start of `worker` that no
    /// handle has taken yet.
    pub(super) fn take_attribute_start(&self, worker: &str) -> Option<&'static str> {
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
    pub(super) fn clear(&self, now: u64) {
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
    pub(super) fn settle(&self, episode: &mut Episode, now: u64) -> Option<(u64, u64)> {
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

    pub(super) fn report_end(&self, ended: Option<(u64, u64)>) {
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
    pub(super) fn saturation(&self, now: u64) -> (u64, bool) {
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
    pub(super) fn adjust_workers(&self, state: WorkerState, by: i64) {
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
    pub(super) fn move_worker(&self, from: WorkerState, to: WorkerState) {
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

    pub(super) fn snapshot(&self) -> PoolState {
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
