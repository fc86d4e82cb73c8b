//! The time the window history's drivers read: the HTTP server's sampler
//! and the alert watcher, which keep cumulative samples and compute rates
//! and percentiles "over the last window" from them. Not the clock of
//! observed calls, which time themselves on the TSC and never read this.

use std::cell::Cell;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::sync::lock;

/// Where the window history's drivers read the time, and what makes them
/// tick: the HTTP server's sampler (`ServerBuilder::with_clock`) and the
/// alert watcher ([`watch_with_clock`](crate::alerts::watch_with_clock)).
///
/// The default, [`Clock::system`], reads [`Instant::now`] and leaves each
/// driver on its own timer: a sample a second, an evaluation every period.
/// A [`ManualClock`] turned into a `Clock` stands still until it is
/// advanced, and drives them itself.
///
/// ```
/// use poolscope_runtime::clock::{Clock, ManualClock};
/// let manual = ManualClock::new();
/// let clock = Clock::from(manual.clone());
/// assert_eq!(clock.now(), manual.now());
/// assert!(Clock::system().now() >= manual.now());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<ManualClock>,
}

impl Clock {
    /// The real clock, [`Instant::now`]: what every driver uses unless
    /// given another.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// The time now on this clock.
    pub fn now(&self) -> Instant {
        self.manual
            .as_ref()
            .map_or_else(Instant::now, ManualClock::now)
    }

    /// On a manual clock, has `tick` run at each advance, with the new
    /// time, for as long as the returned guard lives. On the system clock,
    /// `None`: the driver keeps time with a timer of its own.
    #[cfg(any(feature = "aspects", feature = "http"))]
    pub(crate) fn manual_ticks(
        &self,
        tick: impl Fn(Instant) + Send + Sync + 'static,
    ) -> Option<Ticking> {
        let manual = self.manual.as_ref()?;
        let tick: Arc<Tick> = Arc::new(tick);
        let mut tickers = lock(&manual.shared.tickers);
        tickers.retain(|t| t.strong_count() > 0);
        tickers.push(Arc::downgrade(&tick));
        Some(Ticking { _tick: tick })
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Clock {
        Clock {
            manual: Some(manual),
        }
    }
}

/// A clock that moves only when told to, for tests that step through a
/// window instead of sleeping through it. Clones share one time.
///
/// A driver given this clock takes its first sample (or evaluation) when
/// it starts, and then one at each [`advance`](ManualClock::advance), on
/// the advancing thread, before `advance` returns; never on a timer of its
/// own. So once `advance` returns, what the window holds at the new time
/// can be read, and nothing moves it until the next advance.
///
/// Busy time (behind utilization) and saturation time are measured by the
/// pool on the real clock, which this one does not move: a window of manual
/// time divides whatever busy time really passed.
///
/// ```
/// use std::time::Duration;
/// use poolscope_runtime::alerts::{watch_with_clock, AlertRule, Measure};
/// use poolscope_runtime::clock::ManualClock;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// // Evaluates now, then at each advance: never on its own.
/// let watcher = watch_with_clock(
///     vec![AlertRule::new("backlog", Measure::QueueDepth, 100.0).unwrap()],
///     Duration::from_secs(1),
///     clock.clone(),
/// )
/// .unwrap();
/// // A minute passes for the watcher at once, and it evaluates.
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now() - start, Duration::from_secs(60));
/// drop(watcher);
/// ```
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<Shared>,
}

/// What a driver does at an advance.
type Tick = dyn Fn(Instant) + Send + Sync;

struct Shared {
    now: Mutex<Instant>,
    /// Held through an advance, so that advances from several threads take
    /// turns and every driver sees its times in order.
    advancing: Mutex<()>,
    /// The drivers on this clock; each one's guard holds the strong count.
    tickers: Mutex<Vec<Weak<Tick>>>,
}

thread_local! {
    /// Whether this thread is inside an advance, where another would wait
    /// for itself.
    static ADVANCING: Cell<bool> = const { Cell::new(false) };
}

impl ManualClock {
    /// A clock standing at the real time now, with no driver on it yet.
    pub fn new() -> ManualClock {
        ManualClock {
            shared: Arc::new(Shared {
                now: Mutex::new(Instant::now()),
                advancing: Mutex::new(()),
                tickers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The time now on this clock: where it started plus every advance.
    pub fn now(&self) -> Instant {
        *lock(&self.shared.now)
    }

    /// Moves the clock `by` forward, then has every driver on it tick once
    /// at the new time: the HTTP server's sampler takes a sample (and sets
    /// the utilization gauge), an alert watcher evaluates its rules (and
    /// fires or resolves). Both are done when this returns. An advance of
    /// zero ticks them without moving the time: a sample now.
    ///
    /// # Panics
    ///
    /// When called from inside a tick, e.g. from an event subscriber that
    /// an alert firing during an advance runs: the advance would wait for
    /// itself.
    pub fn advance(&self, by: Duration) {
        assert!(
            !ADVANCING.get(),
            "`ManualClock::advance` was called during an advance (from an event subscriber?); advance from the test's own code"
        );
        let _turn = lock(&self.shared.advancing);
        let now = {
            let mut now = lock(&self.shared.now);
            *now += by;
            *now
        };
        // Called without the list locked: a tick may start a driver.
        let tickers: Vec<Arc<Tick>> = lock(&self.shared.tickers)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        ADVANCING.set(true);
        let _reset = ResetOnDrop;
        for tick in tickers {
            tick(now);
        }
    }
}

/// Clears [`ADVANCING`] even when a tick panics.
struct ResetOnDrop;

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        ADVANCING.set(false);
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

/// Keeps a driver ticking at a manual clock's advances; dropping it stops
/// them.
#[cfg(any(feature = "aspects", feature = "http"))]
pub(crate) struct Ticking {
    _tick: Arc<Tick>,
}

#[cfg(all(test, any(feature = "aspects", feature = "http")))]
mod tests {
    use super::*;
    use crate::interner::Label;
    use crate::model::stats::{HistogramSnapshot, PoolSnapshot, RequestTotals};
    use crate::model::window::History;

    /// A pool that completed `ok` and `failed` requests in all.
    fn pool(ok: u64, failed: u64) -> PoolSnapshot {
        PoolSnapshot {
            pool: Label::from_static("manual"),
            state: None,
            requests: Some(RequestTotals {
                by_outcome: [ok, failed, 0, 0, 0, 0],
                in_flight: 0,
                durations: HistogramSnapshot {
                    bounds: vec![1.0],
                    counts: vec![ok + failed, 0],
                    sum_seconds: 0.0,
                },
            }),
        }
    }

    #[test]
    fn the_window_moves_only_when_the_manual_clock_is_advanced() {
        let clock = ManualClock::new();
        let history = Arc::new(Mutex::new(History::new(Duration::from_secs(10))));
        // The pool's counts as the application left them; a sampler on
        // the clock records them at each advance.
        let counts = Arc::new(Mutex::new(pool(0, 0)));
        let sampler = {
            let (history, counts) = (history.clone(), counts.clone());
            Clock::from(clock.clone())
                .manual_ticks(move |now| {
                    let current = lock(&counts).clone();
                    lock(&history).record(now, &[current]);
                })
                .expect("a manual clock ticks its drivers")
        };
        let window = || lock(&history).window(clock.now(), Duration::from_secs(1), &lock(&counts));
        let start = clock.now();
        clock.advance(Duration::ZERO);
        *lock(&counts) = pool(8, 2);
        // Requests came, but no time passed: a window of no time.
        assert_eq!((window().seconds, window().requests), (0.0, 10));
        assert_eq!(clock.now(), start);

        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now() - start, Duration::from_secs(1));
        let moved = window();
        assert_eq!((moved.seconds, moved.requests), (1.0, 10));
        assert_eq!(moved.error_rate, Some(0.2));
        // The sample taken at that advance starts the next window.
        *lock(&counts) = pool(12, 2);
        clock.advance(Duration::from_secs(1));
        let next = window();
        assert_eq!((next.requests, next.failed), (4, 0));
        clock.advance(Duration::from_secs(1));
        assert_eq!(window().requests, 0, "nothing happened in the last second");

        // Its guard dropped, the driver no longer ticks.
        drop(sampler);
        *lock(&counts) = pool(20, 2);
        clock.advance(Duration::from_secs(1));
        assert_eq!(window().requests, 8, "no sample since the last tick");
    }

    #[test]
    fn the_system_clock_leaves_drivers_to_their_own_timers() {
        assert!(Clock::system().manual_ticks(|_| {}).is_none());
        let before = Instant::now();
        assert!(Clock::default().now() >= before);
    }

    #[test]
    #[should_panic(expected = "during an advance")]
    fn an_advance_from_inside_a_tick_panics_instead_of_waiting_for_itself() {
        let clock = ManualClock::new();
        let inner = clock.clone();
        let _ticking = Clock::from(clock.clone())
            .manual_ticks(move |_| inner.advance(Duration::from_secs(1)))
            .unwrap();
        clock.advance(Duration::from_secs(1));
    }
}
