//! Per-series statistics of observed calls: fixed-bucket histograms.
//!
//! The exporter's own histogram handles keep every sample until upkeep drains
//! them, so memory grows with the call rate; here a sample lands in buckets
//! fixed when the series is created, and memory is constant.
//!
//! Each thread that records into a series gets its own block of counters,
//! which only that thread writes: a sample is a few plain adds, with no
//! locked instruction and no cache line shared between threads. Readers sum
//! the blocks under the series' lock; a thread that exits folds its block
//! into the series' shared block under the same lock, so nothing is lost or
//! counted twice. Where thread-local storage is gone (a thread being torn
//! down), samples go to the shared block with atomic adds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::interner::Label;
use crate::model::stats::{HistogramSnapshot, RequestTotals, SeriesSnapshot};
use crate::model::{Kind, Outcome};

/// One block of counters: calls started, then per outcome the bucket counts
/// (`<= bounds[i]`, the last one `+Inf`) and the sum in nanoseconds.
pub(crate) struct Stats {
    started: AtomicU64,
    counts: Box<[AtomicU64]>,
    sums: [AtomicU64; Outcome::COUNT],
}

impl Stats {
    fn new(buckets: usize) -> Stats {
        Stats {
            started: AtomicU64::new(0),
            counts: (0..buckets * Outcome::COUNT)
                .map(|_| AtomicU64::new(0))
                .collect(),
            sums: Default::default(),
        }
    }

    /// Adds to a counter that only this thread writes: a plain load and
    /// store, which compile to one unlocked add.
    #[inline(always)]
    fn bump(counter: &AtomicU64, by: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(by),
            Ordering::Relaxed,
        );
    }

    fn fold_into(&self, into: &Stats) {
        into.started
            .fetch_add(self.started.load(Ordering::Relaxed), Ordering::Relaxed);
        for (from, to) in self.counts.iter().zip(into.counts.iter()) {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        for (from, to) in self.sums.iter().zip(into.sums.iter()) {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// Summed counters of a series at one moment.
struct Totals {
    started: u64,
    counts: Vec<u64>,
    sums: [u64; Outcome::COUNT],
}

impl Totals {
    fn outcome_counts(&self, outcome: Outcome, buckets: usize) -> &[u64] {
        &self.counts[outcome.index() * buckets..(outcome.index() + 1) * buckets]
    }

    fn completed(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The statistics of one (kind, pool, command).
pub(crate) struct Series {
    pub(crate) kind: Kind,
    pub(crate) pool: Label,
    pub(crate) command: Label,
    /// A call site's `labels(..)`: literals, so a bounded set. Only the
    /// exposition shows them; without it they are part of the key alone.
    #[cfg(feature = "metrics")]
    pub(crate) extra: Extra,
    id: usize,
    bounds: Arc<[f64]>,
    bounds_ns: Box<[u64]>,
    // For each power of two `2^e`, the first bucket whose bound is at least
    // `2^e`: a sample's bucket is then one table load and a step or two,
    // instead of a binary search whose dependent loads dominated the cost
    // of an observed call.
    first_at_least: [u8; 65],
    shared: Stats,
    locals: Mutex<Vec<Arc<Stats>>>,
}

/// A pointer to the calling thread's block of one series.
///
/// Valid on that thread until it exits: the thread's `Slots` holds the block,
/// and only the thread's exit drops `Slots`. Only a sync call keeps one, from
/// its start to its completion, which happen in one stack frame on one
/// thread; async calls, which may move between threads, look their block up
/// again when they complete.
#[derive(Clone, Copy)]
pub(crate) struct Block(*const Stats);

// SAFETY: a `Block` is only dereferenced on the thread that obtained it (see
// above); it travels inside `Call`, which must be `Send` for async calls,
// but an async call never holds one.
unsafe impl Send for Block {}
unsafe impl Sync for Block {}

/// This thread's counter blocks, indexed by series id.
struct Slots(Vec<Option<(&'static Series, Arc<Stats>)>>);

impl Drop for Slots {
    fn drop(&mut self) {
        for (series, stats) in self.0.drain(..).flatten() {
            series.retire(&stats);
        }
    }
}

thread_local! {
    static SLOTS: RefCell<Slots> = const { RefCell::new(Slots(Vec::new())) };
}

impl Series {
    fn new(id: usize, key: Key, bounds: Arc<[f64]>) -> Series {
        let (kind, pool, command, _) = key;
        let bounds_ns: Box<[u64]> = bounds.iter().map(|s| (s * 1e9).round() as u64).collect();
        let buckets = bounds.len() + 1;
        let first_at_least = std::array::from_fn(|e| {
            let power = if e == 64 { u64::MAX } else { 1u64 << e };
            // At most 64 bounds (see `buckets::MAX_BUCKETS`), so this fits.
            bounds_ns.partition_point(|&bound| bound < power) as u8
        });
        Series {
            kind,
            pool,
            command,
            #[cfg(feature = "metrics")]
            extra: key.3,
            id,
            bounds,
            bounds_ns,
            first_at_least,
            shared: Stats::new(buckets),
            locals: Mutex::new(Vec::new()),
        }
    }

    fn buckets(&self) -> usize {
        self.bounds.len() + 1
    }

    /// This thread's block, or `None` where thread-local storage is gone.
    #[inline(always)]
    fn local(&'static self) -> Option<Block> {
        SLOTS
            .try_with(|slots| {
                let mut slots = slots.try_borrow_mut().ok()?;
                let stats = match slots.0.get(self.id) {
                    Some(Some((_, stats))) => stats,
                    _ => self.adopt(&mut slots),
                };
                Some(Block(Arc::as_ptr(stats)))
            })
            .ok()
            .flatten()
    }

    #[cold]
    #[inline(never)]
    fn adopt<'s>(&'static self, slots: &'s mut Slots) -> &'s Arc<Stats> {
        let stats = Arc::new(Stats::new(self.buckets()));
        self.locals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stats.clone());
        if slots.0.len() <= self.id {
            slots.0.resize_with(self.id + 1, || None);
        }
        let slot = &mut slots.0[self.id];
        &slot.insert((self, stats)).1
    }

    /// Folds an exiting thread's block into the shared one.
    fn retire(&self, stats: &Arc<Stats>) {
        let mut locals = self.locals.lock().unwrap_or_else(|e| e.into_inner());
        stats.fold_into(&self.shared);
        locals.retain(|l| !Arc::ptr_eq(l, stats));
    }

    /// The bucket of a sample: the first whose bound is not below it.
    #[inline(always)]
    fn bucket(&self, nanos: u64) -> usize {
        // `2^e <= nanos < 2^(e+1)`; every bound before `first_at_least[e]` is
        // below `2^e`, so the answer is at or after it.
        let e = if nanos == 0 {
            0
        } else {
            63 - nanos.leading_zeros() as usize
        };
        let mut bucket = self.first_at_least[e] as usize;
        while bucket < self.bounds_ns.len() && self.bounds_ns[bucket] < nanos {
            bucket += 1;
        }
        bucket
    }

    /// Counts a call as started, in this thread's block; the block is
    /// returned so a sync call can record its completion without a second
    /// lookup.
    #[inline(always)]
    pub(crate) fn start(&'static self) -> Option<Block> {
        let block = self.local();
        match block {
            // SAFETY: see `Block`.
            Some(block) => Stats::bump(&unsafe { &*block.0 }.started, 1),
            None => {
                self.shared.started.fetch_add(1, Ordering::Relaxed);
            }
        }
        block
    }

    /// Records a completion in `block`, which must be this thread's (a sync
    /// call's own `start`), or looks the block up (an async call may finish
    /// on another thread than it started).
    #[inline(always)]
    pub(crate) fn record(&'static self, block: Option<Block>, outcome: Outcome, nanos: u64) {
        let index = outcome.index() * self.buckets() + self.bucket(nanos);
        match block.or_else(|| self.local()) {
            Some(block) => {
                // SAFETY: see `Block`.
                let stats = unsafe { &*block.0 };
                Stats::bump(&stats.counts[index], 1);
                Stats::bump(&stats.sums[outcome.index()], nanos);
            }
            None => {
                self.shared.counts[index].fetch_add(1, Ordering::Relaxed);
                self.shared.sums[outcome.index()].fetch_add(nanos, Ordering::Relaxed);
            }
        }
    }

    /// Records a completed call that was never counted as started (the
    /// imperative API reports only completions).
    pub(crate) fn record_completed(&'static self, outcome: Outcome, nanos: u64) {
        let block = self.start();
        self.record(block, outcome, nanos);
    }

    fn totals(&self) -> Totals {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let locals = self.locals.lock().unwrap_or_else(|e| e.into_inner());
        let mut totals = Totals {
            started: load(&self.shared.started),
            counts: self.shared.counts.iter().map(load).collect(),
            sums: self.shared.sums.each_ref().map(load),
        };
        for stats in locals.iter() {
            totals.started += load(&stats.started);
            for (total, count) in totals.counts.iter_mut().zip(stats.counts.iter()) {
                *total += load(count);
            }
            for (total, sum) in totals.sums.iter_mut().zip(stats.sums.iter()) {
                *total += load(sum);
            }
        }
        totals
    }

    pub(crate) fn snapshot(&self) -> SeriesSnapshot {
        let totals = self.totals();
        let buckets = self.buckets();
        SeriesSnapshot {
            // Blocks are read one after another while threads record, so a
            // completion can be seen without its start: never go negative.
            in_flight: totals.started.saturating_sub(totals.completed()),
            by_outcome: Outcome::ALL.map(|outcome| HistogramSnapshot {
                bounds: self.bounds.to_vec(),
                counts: totals.outcome_counts(outcome, buckets).to_vec(),
                sum_seconds: totals.sums[outcome.index()] as f64 / 1e9,
            }),
        }
    }
}

/// Extra labels of a call site, name and value.
pub(crate) type Extra = &'static [(&'static str, &'static str)];

type Key = (Kind, Label, Label, Extra);

struct Registry {
    by_key: HashMap<Key, &'static Series>,
    ordered: Vec<&'static Series>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Most series the registry creates; past it, calls share one overflow series
/// per kind so that a runaway label cannot exhaust memory.
pub(crate) const MAX_SERIES: usize = 10_000;

/// The series for `(kind, pool, command)`, created on first use and kept for
/// the life of the process.
pub(crate) fn series(kind: Kind, pool: Label, command: Label) -> &'static Series {
    series_with(kind, pool, command, &[], crate::buckets::current)
}

/// As [`series`], with a call site's extra labels (series with the same
/// labels are the same series, whichever site records into them).
pub(crate) fn series_labeled(
    kind: Kind,
    pool: Label,
    command: Label,
    extra: Extra,
) -> &'static Series {
    series_with(kind, pool, command, extra, crate::buckets::current)
}

fn series_with(
    kind: Kind,
    pool: Label,
    command: Label,
    extra: Extra,
    bounds: impl FnOnce() -> Arc<[f64]>,
) -> &'static Series {
    let mut guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let registry = guard.get_or_insert_with(|| Registry {
        by_key: HashMap::new(),
        ordered: Vec::new(),
    });
    let key = if registry.by_key.len() >= MAX_SERIES
        && !registry.by_key.contains_key(&(kind, pool, command, extra))
    {
        let overflow = Label::from_static(crate::interner::OVERFLOW_LABEL);
        // Only requests have a command label; for the other kinds the
        // overflow series must render like any other pool's.
        let command = if kind == Kind::Request {
            overflow
        } else {
            Label::from_static("")
        };
        (kind, overflow, command, &[][..])
    } else {
        (kind, pool, command, extra)
    };
    if let Some(series) = registry.by_key.get(&key) {
        return series;
    }
    // Leaked on purpose: call sites cache the reference without a lock or a
    // reference count, and a series lives as long as the process.
    let id = registry.ordered.len();
    let series: &'static Series = Box::leak(Box::new(Series::new(id, key, bounds())));
    registry.by_key.insert(key, series);
    registry.ordered.push(series);
    series
}

/// The statistics of the observed calls of `kind` for `pool` and `command`
/// (use `""` as the command for kinds other than [`Kind::Request`]), or
/// `None` if no such call was recorded.
///
/// ```
/// use poolscope_runtime::{stats, Kind};
/// assert!(stats::series(Kind::Request, "no-such-pool", "x").is_none());
/// ```
pub fn snapshot(kind: Kind, pool: &str, command: &str) -> Option<SeriesSnapshot> {
    let series =
        {
            let guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            guard.as_ref()?.ordered.iter().copied().find(|s| {
                s.kind == kind && s.pool.as_str() == pool && s.command.as_str() == command
            })?
        };
    Some(series.snapshot())
}

/// Every request series of `pool` summed: outcomes, in-flight, and the
/// durations of all outcomes in one histogram (series created with other
/// buckets than the first one's are left out of the histogram).
pub(crate) fn request_totals(pool: Label) -> Option<RequestTotals> {
    let of_pool: Vec<&'static Series> = {
        let guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()?
            .ordered
            .iter()
            .copied()
            .filter(|s| s.kind == Kind::Request && s.pool == pool)
            .collect()
    };
    let mut totals: Option<RequestTotals> = None;
    for series in of_pool {
        let snapshot = series.snapshot();
        let totals = totals.get_or_insert_with(|| RequestTotals {
            by_outcome: [0; Outcome::COUNT],
            in_flight: 0,
            durations: HistogramSnapshot {
                bounds: snapshot.by_outcome[0].bounds.clone(),
                counts: vec![0; snapshot.by_outcome[0].counts.len()],
                sum_seconds: 0.0,
            },
        });
        totals.in_flight += snapshot.in_flight;
        for (outcome, hist) in snapshot.by_outcome.iter().enumerate() {
            totals.by_outcome[outcome] += hist.count();
            if hist.bounds == totals.durations.bounds {
                for (total, count) in totals.durations.counts.iter_mut().zip(&hist.counts) {
                    *total += count;
                }
                totals.durations.sum_seconds += hist.sum_seconds;
            }
        }
    }
    totals
}

/// The pools that have request series.
pub(crate) fn request_pools() -> Vec<Label> {
    let guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut pools: Vec<Label> = guard
        .as_ref()
        .map(|r| {
            r.ordered
                .iter()
                .filter(|s| s.kind == Kind::Request)
                .map(|s| s.pool)
                .collect()
        })
        .unwrap_or_default();
    pools.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    pools.dedup();
    pools
}

/// Every series registered, in registration order.
#[cfg(feature = "metrics")]
pub(super) fn registered() -> Vec<&'static Series> {
    let guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map(|registry| registry.ordered.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_into_the_bucket_whose_bound_is_not_below_the_sample() {
        let s = series_with(
            Kind::Request,
            Label::new("bucket-test"),
            Label::new("c"),
            &[],
            || Arc::from(&[0.001, 0.01][..]),
        );
        s.record(None, Outcome::Ok, 1_000_000); // exactly 1 ms: `le` is inclusive
        s.record(None, Outcome::Ok, 1_000_001);
        s.record(None, Outcome::Ok, 20_000_000);
        s.record(None, Outcome::Error, 5);
        let snapshot = s.snapshot();
        let ok = snapshot.outcome(Outcome::Ok);
        assert_eq!(ok.counts, vec![1, 1, 1]);
        assert!((ok.sum_seconds - 0.022_000_001).abs() < 1e-12);
        assert_eq!(snapshot.outcome(Outcome::Error).counts, vec![1, 0, 0]);
    }

    #[test]
    fn the_bucket_table_agrees_with_a_binary_search() {
        let bounds: Arc<[f64]> = crate::buckets::DEFAULT_DURATION_BUCKETS.into();
        let s = series_with(
            Kind::Request,
            Label::new("table-test"),
            Label::new("c"),
            &[],
            || bounds,
        );
        let mut samples: Vec<u64> = vec![0, 1, 2, 3, u64::MAX, u64::MAX - 1, 1 << 63];
        for &bound in s.bounds_ns.iter() {
            samples.extend([bound - 1, bound, bound + 1]);
        }
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x >> (x % 64));
        }
        for nanos in samples {
            assert_eq!(
                s.bucket(nanos),
                s.bounds_ns.partition_point(|&b| b < nanos),
                "{nanos}"
            );
        }
    }

    #[test]
    fn in_flight_is_started_minus_completed() {
        let s = series(Kind::Request, Label::new("in-flight-test"), Label::new("c"));
        s.start();
        let block = s.start();
        s.record(block, Outcome::Panic, 1);
        assert_eq!(s.snapshot().in_flight, 1);
    }

    #[test]
    fn blocks_of_exited_threads_are_folded_in_and_nothing_is_lost() {
        let s = series(Kind::Request, Label::new("threads-test"), Label::new("c"));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let block = s.start();
                        s.record(block, Outcome::Ok, i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snapshot = s.snapshot();
        assert_eq!(snapshot.outcome(Outcome::Ok).count(), 8000);
        assert_eq!(snapshot.in_flight, 0);
        assert!(
            s.locals.lock().unwrap().is_empty(),
            "exited threads retired their blocks"
        );
        assert!((snapshot.outcome(Outcome::Ok).sum_seconds - 8.0 * 499_500.0 / 1e9).abs() < 1e-12);
    }

    #[test]
    fn readers_see_live_threads_blocks() {
        let s = series(Kind::Request, Label::new("live-test"), Label::new("c"));
        s.start();
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            s.start();
            s.record(None, Outcome::Error, 10);
            tx.send(()).unwrap();
            done_rx.recv().unwrap();
        });
        rx.recv().unwrap();
        let snapshot = s.snapshot();
        assert_eq!(snapshot.outcome(Outcome::Error).count(), 1);
        assert_eq!(snapshot.in_flight, 1);
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(s.snapshot().outcome(Outcome::Error).count(), 1);
    }
}
