//! The running server: [`Server`] (bound), [`ServerHandle`] and
//! [`ServerControls`] (running), the accept loop with its graceful
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify, Semaphore};

use super::health::{CustomCheck, History};
use super::routes::{self, Endpoint, ENDPOINTS};
use super::sampler::Sampler;
use super::{auth, dashboard, HealthConfig, HttpError};
use crate::clock::Clock;
use crate::prometheus::MetricsHandle;

/// Serves every endpoint compiled in — `/health`, `/health/ready`,
/// `/health/detailed`, `/metrics` and (feature `dashboard`) `/dashboard` —
/// on `address`, in one call: installs poolscope's Prometheus recorder
/// unless [`install`](crate::metrics::install) already did, builds a
/// [`Server`] with the defaults and starts it on the current tokio runtime.
/// The returned handle shuts the server down when dropped; keep it for as
/// long as the server should run. Use [`Server::builder`] for anything
/// else: health thresholds, a bearer token, endpoints switched off.
///
/// ```
/// # let runtime = tokio::runtime::Runtime::new().unwrap();
/// # runtime.block_on(async {
/// let server = poolscope_runtime::http::serve("127.0.0.1:0").unwrap();
/// println!("metrics on http://{}/metrics", server.local_addr());
/// server.shutdown().await;
/// # });
/// ```
///
/// # Errors
///
/// [`HttpError::Address`] for an address that does not resolve;
/// [`HttpError::Metrics`] when another `metrics` recorder is installed;
/// [`HttpError::Bind`] when the address cannot be bound;
/// [`HttpError::NoRuntime`] outside a tokio runtime.
pub fn serve(
    address: impl std::net::ToSocketAddrs + std::fmt::Display,
) -> Result<ServerHandle, HttpError> {
    let unresolved = |reason: String| HttpError::Address {
        address: address.to_string(),
        reason,
    };
    let resolved = address
        .to_socket_addrs()
        .map_err(|e| unresolved(e.to_string()))?
        .next()
        .ok_or_else(|| unresolved("it resolves to no address".into()))?;
    tokio::runtime::Handle::try_current().map_err(|_| HttpError::NoRuntime)?;
    if crate::prometheus::installed().is_none() {
        crate::prometheus::install()?;
    }
    Server::builder().with_address(resolved).build()?.start()
}

/// What every connection's service shares.
pub(super) struct State {
    /// The switches of every endpoint but the dashboard, whose switch its
    /// hub holds (see [`State::switch`]).
    pub(super) enabled: [AtomicBool; ENDPOINTS],
    pub(super) protected: [bool; ENDPOINTS],
    pub(super) auth: Option<auth::Auth>,
    pub(super) dashboard: Arc<dashboard::Hub>,
    pub(super) shutting_down: AtomicBool,
    pub(super) started: Instant,
    /// Swapped whole by `ServerControls::set_health`; readers never lock.
    pub(super) health: arc_swap::ArcSwap<HealthConfig>,
    pub(super) metrics: Option<MetricsHandle>,
    pub(super) checks: Vec<(String, CustomCheck)>,
    pub(super) max_body_bytes: u64,
    pub(super) history: Mutex<History>,
    /// What the history's samples and windows are timed by.
    pub(super) clock: Clock,
}

/// How the accept loop serves connections.
pub(super) struct Settings {
    pub(super) max_connections: usize,
    pub(super) header_read_timeout: Duration,
    pub(super) max_header_bytes: usize,
    pub(super) shutdown_grace: Duration,
}

/// A bound, not yet running server; see [`Server::start`].
pub struct Server {
    pub(super) listener: std::net::TcpListener,
    pub(super) local_addr: SocketAddr,
    pub(super) settings: Settings,
    pub(super) state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts serving on the current tokio runtime and returns a handle;
    /// dropping the handle shuts the server down.
    ///
    /// # Errors
    ///
    /// [`HttpError::NoRuntime`] outside a tokio runtime;
    /// [`HttpError::Bind`] if the socket cannot join the runtime.
    pub fn start(self) -> Result<ServerHandle, HttpError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| HttpError::NoRuntime)?;
        let _guard = runtime.enter();
        let listener = TcpListener::from_std(self.listener).map_err(|source| HttpError::Bind {
            address: self.local_addr,
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let state = self.state.clone();
        // Before returning: a manual clock advanced next must find it.
        let sampler = Sampler::start(&state);
        let task = runtime.spawn(accept_loop(
            listener,
            self.state,
            self.settings,
            sampler,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(ServerHandle {
            local_addr: self.local_addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Serves until `signal` completes (e.g. `tokio::signal::ctrl_c()`), then
    /// shuts down gracefully.
    ///
    /// # Errors
    ///
    /// [`HttpError::Bind`] if the socket cannot join the runtime.
    pub async fn serve_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HttpError> {
        let listener = TcpListener::from_std(self.listener).map_err(|source| HttpError::Bind {
            address: self.local_addr,
            source,
        })?;
        let sampler = Sampler::start(&self.state);
        accept_loop(listener, self.state, self.settings, sampler, signal).await;
        Ok(())
    }
}

/// A running server. Dropping it shuts the server down without waiting;
/// [`ServerHandle::shutdown`] waits for open connections (up to the grace
/// period).
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl State {
    /// An endpoint's on/off switch. The dashboard's lives in its hub, where
    /// its open streams read it, so there is one flag, not a mirrored pair.
    pub(super) fn switch(&self, endpoint: Endpoint) -> &AtomicBool {
        self.dashboard
            .switch(endpoint)
            .unwrap_or(&self.enabled[endpoint.index()])
    }

    fn set_switch(&self, endpoint: Endpoint, enabled: bool) {
        if !self.dashboard.set_switch(endpoint, enabled) {
            self.switch(endpoint).store(enabled, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A cheap handle for changing the running server's switches and
    /// thresholds from elsewhere (e.g. a configuration reload).
    pub fn controls(&self) -> ServerControls {
        ServerControls {
            state: self.state.clone(),
        }
    }

    /// Switches an endpoint on or off while the server runs; a disabled
    /// endpoint answers 404.
    pub fn set_enabled(&self, endpoint: Endpoint, enabled: bool) {
        self.state.set_switch(endpoint, enabled);
    }

    /// Whether an endpoint is on.
    pub fn is_enabled(&self, endpoint: Endpoint) -> bool {
        self.state.switch(endpoint).load(Ordering::Relaxed)
    }

    /// Stops accepting, lets open connections finish (up to the grace
    /// period), and waits for the server to stop.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "the poolscope HTTP server task failed");
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Changes a running server's endpoint switches and readiness thresholds;
/// see [`ServerHandle::controls`]. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct ServerControls {
    state: Arc<State>,
}

impl ServerControls {
    /// As [`ServerHandle::set_enabled`].
    pub fn set_enabled(&self, endpoint: Endpoint, enabled: bool) {
        self.state.set_switch(endpoint, enabled);
    }

    /// Replaces the readiness thresholds; the next probe uses them.
    ///
    /// # Errors
    ///
    /// [`HttpError::Health`] for a threshold out of range (the old ones stay).
    pub fn set_health(&self, health: HealthConfig) -> Result<(), HttpError> {
        health.validate()?;
        self.state
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_keep(health.window + Duration::from_secs(2));
        self.state.health.store(Arc::new(health));
        Ok(())
    }

    /// Replaces the application metrics the dashboard shows.
    ///
    /// # Errors
    ///
    /// [`HttpError::Dashboard`] for a name that is not a metric name.
    #[cfg(feature = "dashboard")]
    pub fn set_dashboard_metrics(&self, names: Vec<String>) -> Result<(), HttpError> {
        Ok(self.state.dashboard.set_metrics(names)?)
    }

    /// The readiness thresholds in force.
    pub fn health(&self) -> HealthConfig {
        (**self.state.health.load()).clone()
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    settings: Settings,
    sampler: Sampler,
    signal: impl Future<Output = ()>,
) {
    let ticker = dashboard::start(&state);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_header_bytes)
        .keep_alive(true);
    tokio::pin!(signal);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut signal => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: log, back off,
                    // keep serving.
                    tracing::warn!(error = %err, "poolscope HTTP server could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        // Rung to close this connection at once (a dashboard viewer that
        // stopped reading).
        let kill = Arc::new(Notify::new());
        let service_kill = kill.clone();
        let service = service_fn(move |request| {
            let state = state.clone();
            let kill = service_kill.clone();
            async move { Ok::<_, Infallible>(routes::respond(&state, &request, &kill)) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                ended = connection => {
                    if let Err(err) = ended {
                        tracing::debug!(error = %err, "poolscope HTTP connection ended with an error");
                    }
                }
                () = kill.notified() => {}
            }
        });
    }
    state.shutting_down.store(true, Ordering::Relaxed);
    drop(listener);
    drop(sampler);
    // Its end closes every dashboard stream, which would otherwise hold the
    // graceful shutdown for the whole grace period.
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?settings.shutdown_grace, "poolscope HTTP server: connections still open after the grace period");
    }
}
