//! The hub: the dashboard's shared state, one per server. The ticker, every
//! viewer's stream, the sampler and the event handler meet here.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};

use super::chart::Chart;
use super::recent::Recent;
use super::sse::Frames;
use super::{lock, page, DashboardConfig, DashboardError};
use crate::http::health::{self, Check, CustomCheck};
use crate::http::routes::Endpoint;
use crate::model::dashboard::check_metrics;
use crate::model::stats::PoolSnapshot;

/// How long the dashboard reuses the custom checks' results.
pub(super) const CHECKS_TTL: Duration = Duration::from_secs(1);

/// The dashboard's shared state: the latest snapshot, the recent errors and
/// alerts, the chart's points.
pub(crate) struct Hub {
    pub(super) config: DashboardConfig,
    /// The latest tick's frames; every viewer's feeder watches them.
    pub(super) frames: watch::Receiver<Arc<Frames>>,
    /// Taken by the ticker when the server starts.
    pub(super) sender: Mutex<Option<watch::Sender<Arc<Frames>>>>,
    /// Rung by the event handler: push a snapshot now.
    pub(super) wake: Notify,
    /// A viewer needs a full snapshot (it just came, or missed a tick):
    /// the next tick encodes one. Otherwise a tick encodes the delta only,
    /// a few KB instead of the whole snapshot.
    pub(super) need_full: AtomicBool,
    pub(super) recent: Arc<Mutex<Recent>>,
    pub(super) chart: Mutex<Chart>,
    pub(super) viewers: AtomicUsize,
    pub(super) dropped: AtomicU64,
    /// Application metrics shown on the page; replaced by configuration.
    pub(super) custom: Mutex<Vec<String>>,
    /// The custom readiness checks' last results and when they ran: the
    /// dashboard reuses them for a second instead of running application
    /// code (a database ping, say) on every tick. Probes always run them.
    /// On tokio's clock, so a paused clock in tests covers the expiry.
    checks: Mutex<Option<(tokio::time::Instant, Vec<Check>)>>,
    /// The endpoint's switch: open streams end when it goes off. Set it
    /// through [`Hub::set_enabled`], which also (un)subscribes.
    pub(super) enabled: AtomicBool,
    /// Tells this server's snapshots from a restarted one's: error ids and
    /// sequence numbers start again with a new instance.
    pub(super) instance: u64,
    /// Keeps the event handler subscribed while the hub lives.
    subscription: Mutex<Option<crate::events::Subscription>>,
}

impl Hub {
    pub(crate) fn new(config: DashboardConfig) -> Arc<Hub> {
        let (sender, frames) = watch::channel(Arc::new(Frames::default()));
        let recent = Arc::new(Mutex::new(Recent::new(
            config.recent_errors,
            config.recent_alerts,
        )));
        let custom = Mutex::new(config.metrics.clone());
        let hub = Arc::new(Hub {
            chart: Mutex::new(Chart::new(config.chart_span)),
            config,
            frames,
            sender: Mutex::new(Some(sender)),
            wake: Notify::new(),
            need_full: AtomicBool::new(true),
            recent,
            viewers: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            enabled: AtomicBool::new(false),
            custom,
            checks: Mutex::new(None),
            instance: u64::from_str_radix(&page::nonce()[..12], 16).unwrap_or(0),
            subscription: Mutex::new(None),
        });
        crate::describe::describe_all();
        // Registered at zero, so a scrape shows "none dropped" rather than
        // nothing.
        metrics::counter!("poolscope_dashboard_viewers_dropped_total").increment(0);
        metrics::gauge!("poolscope_dashboard_viewers").increment(0.0);
        hub
    }

    /// Switches the dashboard on or off. Off, it also stops listening to
    /// events, so a failing call builds no event for it; back on, the
    /// recent-errors list resumes from then.
    pub(crate) fn set_enabled(self: &Arc<Self>, enabled: bool) {
        let mut subscription = lock(&self.subscription);
        self.enabled.store(enabled, Ordering::Relaxed);
        if !enabled {
            *subscription = None;
            // The ticker closes the open streams now, not at its next tick.
            self.wake.notify_one();
            return;
        }
        if subscription.is_some() {
            return;
        }
        let weak = Arc::downgrade(self);
        *subscription = Some(crate::seam::subscribe_with(
            crate::model::events::Interest::Failures,
            Arc::new(move |event| {
                if let Some(hub) = weak.upgrade() {
                    hub.hear(event);
                }
            }),
        ));
    }

    /// Takes in an event (on the emitting thread); one the page should hear
    /// of at once rings the ticker.
    pub(super) fn hear(&self, event: &crate::model::events::Event) {
        let urgent = lock(&self.recent).record(event);
        if urgent {
            self.wake.notify_one();
        }
    }

    /// Whether the dashboard listens to events (it does while it is on).
    #[cfg(test)]
    pub(crate) fn listening(&self) -> bool {
        lock(&self.subscription).is_some()
    }

    /// Whether someone is watching.
    pub(super) fn watched(&self) -> bool {
        self.viewers.load(Ordering::Relaxed) > 0
    }

    /// Adds the chart's per-second point; called by the server's sampler.
    pub(crate) fn record_chart(&self, now: Instant, pools: &[PoolSnapshot]) {
        lock(&self.chart).record(now, SystemTime::now(), pools);
    }

    /// The dashboard's switch, when `endpoint` is the dashboard: open
    /// streams read it, so there is one flag, not a mirrored pair.
    pub(crate) fn switch(&self, endpoint: Endpoint) -> Option<&AtomicBool> {
        (endpoint == Endpoint::Dashboard).then_some(&self.enabled)
    }

    /// Sets the dashboard's switch, when `endpoint` is the dashboard;
    /// whether it was.
    pub(crate) fn set_switch(self: &Arc<Self>, endpoint: Endpoint, enabled: bool) -> bool {
        let ours = endpoint == Endpoint::Dashboard;
        if ours {
            self.set_enabled(enabled);
        }
        ours
    }

    /// Replaces the application metrics shown on the page.
    pub(crate) fn set_metrics(&self, names: Vec<String>) -> Result<(), DashboardError> {
        check_metrics(&names)?;
        *lock(&self.custom) = names;
        Ok(())
    }

    /// The custom readiness checks' results: those of a run younger than
    /// [`CHECKS_TTL`], else a new run's.
    pub(super) fn recent_checks(&self, checks: &[(String, CustomCheck)]) -> Vec<Check> {
        if checks.is_empty() {
            return Vec::new();
        }
        if let Some((at, results)) = lock(&self.checks).as_ref() {
            if at.elapsed() < CHECKS_TTL {
                return results.clone();
            }
        }
        // Run outside the lock: a slow check must not hold up the next caller.
        let results = health::run_custom(checks);
        *lock(&self.checks) = Some((tokio::time::Instant::now(), results.clone()));
        results
    }
}
