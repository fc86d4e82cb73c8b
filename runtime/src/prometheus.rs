use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What can go wrong installing the Prometheus sink.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Another `metrics` recorder is installed already.
    #[error("a `metrics` recorder is already installed: install poolscope's once, before any other, or wrap your own handle with `MetricsHandle::from_prometheus`")]
    AlreadyInstalled,
    /// The exporter rejected its configuration.
    #[error("the Prometheus exporter rejected its configuration: {0}")]
    Build(#[from] metrics_exporter_prometheus::BuildError),
    /// The upkeep thread could not be started.
    #[error("could not start the metrics upkeep thread: {0}")]
    Upkeep(#[from] std::io::Error),
}

/// Renders the whole Prometheus exposition: the exporter's registry (pool
/// gauges, counters, and any application metric registered through the
/// `metrics` facade) followed by poolscope's per-call-site histograms.
#[derive(Clone, Debug)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
}

/// How often the exporter's upkeep drains histogram buffers.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the `metrics-exporter-prometheus` recorder as the global
/// `metrics` recorder, with poolscope's duration buckets for every
/// `poolscope_` histogram (real histograms, not the exporter's default
/// summaries), and starts a thread that runs the exporter's upkeep every 5 s.
///
/// # Errors
///
/// [`MetricsError::AlreadyInstalled`] if a recorder is installed already;
/// [`MetricsError::Build`] if the exporter rejects the buckets.
///
/// ```
/// let handle = poolscope_runtime::metrics::install().unwrap();
/// metrics::counter!("app_jobs_total").increment(1);
/// assert!(handle.render().contains("app_jobs_total 1"));
/// ```
pub fn install() -> Result<MetricsHandle, MetricsError> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Prefix("poolscope_".into()),
            &crate::buckets::current(),
        )?
        .build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
    crate::describe::describe_all();
    let upkeep = prometheus.clone();
    std::thread::Builder::new()
        .name("poolscope-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        })?;
    let handle = MetricsHandle { prometheus };
    let _ = INSTALLED.set(handle.clone());
    Ok(handle)
}

static INSTALLED: std::sync::OnceLock<MetricsHandle> = std::sync::OnceLock::new();

/// The handle [`install`] returned, if it was called: what the HTTP server
/// renders on `/metrics` unless it is given another.
pub fn installed() -> Option<MetricsHandle> {
    INSTALLED.get().cloned()
}

impl MetricsHandle {
    /// Wraps an exporter handle built elsewhere (your own `PrometheusBuilder`,
    /// or a local recorder in a test).
    pub fn from_prometheus(prometheus: PrometheusHandle) -> MetricsHandle {
        MetricsHandle { prometheus }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = self.prometheus.render();
        render_into(&mut out);
        out
    }
}

/// Renders only what poolscope writes itself (the per-call-site series and
/// `poolscope_pool_saturated_seconds_total`), for use beside an exporter of
/// your own.
pub fn render() -> String {
    let mut out = String::new();
    render_into(&mut out);
    out
}

/// What poolscope renders itself: the per-call-site series, and the pools'
/// time saturated.
fn render_into(out: &mut String) {
    crate::seam::render_series(out);
    crate::seam::render_pools(out);
}
