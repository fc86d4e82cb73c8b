//! The sampler: one sample of every pool into the window history (and a
//! point of the dashboard's chart) when the server starts, then each
//! second on the system clock, or at each advance of a manual one.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::server::State;
use crate::clock::Ticking;

/// How often the history takes a sample on the system clock.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Takes the server's samples until dropped.
pub(super) enum Sampler {
    /// A task on the system clock's second.
    Timer(tokio::task::JoinHandle<()>),
    /// A manual clock's advances, while this is held.
    Manual { _ticking: Ticking },
}

impl Sampler {
    /// Takes the first sample now, so that a window reaches back to the
    /// server's start, and the next ones as the server's clock says. Call
    /// inside a tokio runtime.
    pub(super) fn start(state: &Arc<State>) -> Sampler {
        sample(state, state.clock.now());
        let ticked = Arc::downgrade(state);
        let ticking = state.clock.manual_ticks(move |now| {
            if let Some(state) = ticked.upgrade() {
                sample(&state, now);
            }
        });
        match ticking {
            Some(ticking) => Sampler::Manual { _ticking: ticking },
            None => Sampler::Timer(tokio::spawn(every_second(Arc::downgrade(state)))),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Sampler::Timer(task) = self {
            task.abort();
        }
    }
}

/// Takes a sample every second while the server lives.
async fn every_second(state: Weak<State>) {
    let mut every =
        tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(state) = state.upgrade() else { return };
        sample(&state, state.clock.now());
    }
}

/// Records every pool at `now` and sets the utilization gauges.
fn sample(state: &State, now: Instant) {
    let pools = crate::stats::pools();
    state.dashboard.record_chart(now, &pools);
    let window = state.health.load().window;
    let mut history = state.history.lock().unwrap_or_else(|e| e.into_inner());
    history.record(now, &pools);
    // Utilization needs a window, which only this history has.
    for pool in pools.iter().filter(|p| p.state.is_some()) {
        if let Some(utilization) = history.window(now, window, pool).utilization {
            metrics::gauge!("poolscope_pool_utilization", "pool" => pool.pool.as_str())
                .set(utilization);
        }
    }
}

#[cfg(all(test, feature = "aspects"))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::http::routes::evaluate;
    use crate::http::{HealthConfig, Server};

    /// The queue waits of `pool` over the last second, and the seconds the
    /// window covers, as `/health/detailed` would report them now.
    fn waits(state: &State, pool: &str) -> (u64, f64) {
        let (pools, _) = evaluate(state, Vec::new());
        pools
            .iter()
            .find(|(p, _)| p.pool.as_str() == pool)
            .map(|(_, w)| (w.queue_waits, w.seconds))
            .expect("the pool is reported")
    }

    #[tokio::test(start_paused = true)]
    async fn on_a_manual_clock_the_window_moves_only_when_the_clock_is_advanced() {
        let clock = ManualClock::new();
        let server = Server::builder()
            .with_address("127.0.0.1:0".parse().unwrap())
            .with_health(HealthConfig::default().with_window(Duration::from_secs(1)))
            .with_clock(clock.clone())
            .build()
            .unwrap();
        let state = server.state.clone();
        let handle = server.start().unwrap();
        let pool = crate::Pool::new("sampler-manual");
        for _ in 0..3 {
            pool.queue_wait(Duration::from_millis(1));
        }
        assert_eq!(waits(&state, "sampler-manual"), (3, 0.0));
        // Ten seconds of the runtime's timers, on which the system clock's
        // sampler runs: no sample. One would have started the next window
        // after the three waits.
        tokio::time::advance(Duration::from_secs(10)).await;
        tokio::task::yield_now().await;
        assert_eq!(waits(&state, "sampler-manual"), (3, 0.0));

        clock.advance(Duration::from_secs(1));
        assert_eq!(waits(&state, "sampler-manual"), (3, 1.0));
        pool.queue_wait(Duration::from_millis(1));
        pool.queue_wait(Duration::from_millis(1));
        assert_eq!(
            waits(&state, "sampler-manual"),
            (5, 1.0),
            "the window still starts where it did"
        );
        // The advance's sample, with three waits, starts the next window.
        clock.advance(Duration::from_secs(1));
        assert_eq!(waits(&state, "sampler-manual"), (2, 1.0));
        clock.advance(Duration::from_secs(1));
        assert_eq!(waits(&state, "sampler-manual"), (0, 1.0));

        handle.shutdown().await;
        pool.retire();
    }
}
