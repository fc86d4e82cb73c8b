//! The HTTP server: `/health`, `/health/ready`, `/health/detailed`,
//! `/metrics` and (feature `dashboard`) `/dashboard`, on hyper 1.x.
//!
//! The server only reads: pool state from atomics, request statistics from
//! the call-site series, the Prometheus text from the exporter's handle. It
//! renders on its own tasks; the pool's hot path never waits for it.
//!
//! In one call, with every endpoint compiled in and the defaults
//! ([`serve`](crate::http::serve)):
//!
//! ```no_run
//! # async fn run() -> Result<(), poolscope_runtime::http::HttpError> {
//! let server = poolscope_runtime::http::serve("127.0.0.1:9464")?;
//! # Ok(()) }
//! ```
//!
//! Or with the builder, for everything else:
//!
//! ```no_run
//! # async fn run() -> Result<(), poolscope_runtime::http::HttpError> {
//! use poolscope_runtime::http::{HealthConfig, Server};
//! let server = Server::builder()
//!     .with_address("127.0.0.1:0".parse().unwrap())
//!     .with_health(HealthConfig::default().with_max_queue_depth(100))
//!     .build()?;
//! println!("serving on http://{}", server.local_addr());
//! let handle = server.start()?;
//! // ... the application runs ...
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod auth;
#[cfg(feature = "dashboard")]
mod dashboard;
mod health;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
#[cfg(feature = "dashboard")]
use hyper::header::{LOCATION, SET_COOKIE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify, Semaphore};

#[cfg(feature = "dashboard")]
pub use dashboard::DashboardConfig;
use health::{CustomCheck, History, WindowStats};
pub use health::{HealthConfig, ReadinessPolicy};

use crate::imp::metrics::MetricsHandle;
use crate::types::stats::PoolSnapshot;

/// The default address: the Prometheus exporter port range's conventional
/// 9464, on loopback only. Expose it deliberately with
/// [`ServerBuilder::with_address`] (e.g. `0.0.0.0:9464`).
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9464";

/// What can go wrong building or running the server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}; pick another address or port (port 0 lets the OS choose)")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid HTTP server setting: {0}")]
    Config(String),
    /// `start` was called outside a tokio runtime.
    #[error("the HTTP server must be started from inside a tokio runtime: call `start` from async code or within `Runtime::enter`")]
    NoRuntime,
    /// [`serve`] was given an address that does not resolve.
    #[error("cannot listen on `{address}`: {reason}")]
    Address {
        /// The address as given.
        address: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// [`serve`] could not install the Prometheus recorder.
    #[error(transparent)]
    Metrics(#[from] crate::imp::metrics::MetricsError),
}

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
    if crate::imp::metrics::installed().is_none() {
        crate::imp::metrics::install()?;
    }
    Server::builder().with_address(resolved).build()?.start()
}

/// One of the server's endpoints, for switching it on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/health` (aliases `/healthz`, `/livez`).
    Health,
    /// `/health/ready` (alias `/readyz`).
    Ready,
    /// `/health/detailed`.
    Detailed,
    /// `/metrics`.
    Metrics,
    /// `/dashboard`, `/dashboard/events` and `/dashboard/snapshot`.
    #[cfg(feature = "dashboard")]
    Dashboard,
}

#[cfg(feature = "dashboard")]
const ENDPOINTS: usize = 5;
#[cfg(not(feature = "dashboard"))]
const ENDPOINTS: usize = 4;

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; ENDPOINTS] = [
        Endpoint::Health,
        Endpoint::Ready,
        Endpoint::Detailed,
        Endpoint::Metrics,
        #[cfg(feature = "dashboard")]
        Endpoint::Dashboard,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn of_path(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/health" | "/healthz" | "/livez" => Endpoint::Health,
            "/health/ready" | "/readyz" => Endpoint::Ready,
            "/health/detailed" => Endpoint::Detailed,
            "/metrics" => Endpoint::Metrics,
            #[cfg(feature = "dashboard")]
            "/dashboard" | "/dashboard/" | "/dashboard/events" | "/dashboard/snapshot" => {
                Endpoint::Dashboard
            }
            _ => return None,
        })
    }
}

/// Builds a [`Server`]; see [`Server::builder`].
#[must_use]
pub struct ServerBuilder {
    address: SocketAddr,
    enabled: [bool; ENDPOINTS],
    protected: [bool; ENDPOINTS],
    token: Option<String>,
    health: HealthConfig,
    #[cfg(feature = "dashboard")]
    dashboard: DashboardConfig,
    metrics: Option<MetricsHandle>,
    checks: Vec<(String, CustomCheck)>,
    max_connections: usize,
    header_read_timeout: Duration,
    max_header_bytes: usize,
    max_body_bytes: u64,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("address", &self.address)
            .field("enabled", &self.enabled)
            .field("health", &self.health)
            .field(
                "checks",
                &self.checks.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// hyper refuses read buffers smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

impl ServerBuilder {
    /// Where to listen. Default [`DEFAULT_ADDRESS`]; port 0 picks a free port,
    /// read back with [`Server::local_addr`].
    pub fn with_address(mut self, address: SocketAddr) -> Self {
        self.address = address;
        self
    }

    /// Switches an endpoint on or off from the start (all are on by
    /// default). A disabled endpoint answers 404, like an unknown path.
    pub fn with_endpoint(mut self, endpoint: Endpoint, enabled: bool) -> Self {
        self.enabled[endpoint.index()] = enabled;
        self
    }

    /// Requires `Authorization: Bearer <token>` on the protected endpoints
    /// (by default `/health/detailed`, `/metrics` and the dashboard; the
    /// probes `/health` and `/health/ready` stay open for load balancers).
    /// A browser opens the dashboard once as `/dashboard?token=<token>`: the
    /// server answers with an `HttpOnly`, `SameSite=Lax` cookie and
    /// redirects to `/dashboard`, so the token leaves the address bar.
    /// Requests without the token get 401. Serve it over TLS (a proxy) when
    /// the network is not trusted: the token travels in clear otherwise.
    /// The token must be at least 16 characters of `A-Z a-z 0-9 . _ ~ -`.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Chooses whether an endpoint needs the bearer token (see
    /// [`ServerBuilder::with_bearer_token`]); without a token, nothing is
    /// protected.
    pub fn with_protected(mut self, endpoint: Endpoint, protected: bool) -> Self {
        self.protected[endpoint.index()] = protected;
        self
    }

    /// The dashboard's settings.
    #[cfg(feature = "dashboard")]
    pub fn with_dashboard(mut self, dashboard: DashboardConfig) -> Self {
        self.dashboard = dashboard;
        self
    }

    /// The readiness thresholds.
    pub fn with_health(mut self, health: HealthConfig) -> Self {
        self.health = health;
        self
    }

    /// What `/metrics` renders. Default: the handle `metrics::install()`
    /// returned, else only poolscope's call-site series.
    pub fn with_metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds a readiness check of the application's own: `/health/ready`
    /// answers 503 while it returns `Err(reason)`. It runs on every probe,
    /// on the server's task, so it must be quick. The dashboard reuses its
    /// last result for up to a second.
    pub fn with_readiness_check(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((name.into(), Arc::new(check)));
        self
    }

    /// Most connections served at once; more wait in the listen backlog.
    /// Default 256.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// How long a client may take to send a request's headers before the
    /// connection is closed (slowloris). Default 5 s.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Largest request head accepted, in bytes (at least 8192). Default 16 KiB.
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// How long [`ServerHandle::shutdown`] lets open connections finish.
    /// Default 5 s.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Checks the settings and binds the address.
    ///
    /// # Errors
    ///
    /// [`HttpError::Config`] for a setting out of range, [`HttpError::Bind`]
    /// when the address cannot be bound.
    pub fn build(self) -> Result<Server, HttpError> {
        self.health.validate().map_err(HttpError::Config)?;
        #[cfg(feature = "dashboard")]
        self.dashboard.validate().map_err(HttpError::Config)?;
        let auth = self
            .token
            .map(auth::Auth::new)
            .transpose()
            .map_err(HttpError::Config)?;
        if self.max_connections == 0 {
            return Err(HttpError::Config(
                "`max_connections` must be at least 1".into(),
            ));
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(HttpError::Config(format!(
                "`max_header_bytes` is {}: it must be at least {MIN_HEADER_BYTES}",
                self.max_header_bytes
            )));
        }
        if self.header_read_timeout.is_zero() {
            return Err(HttpError::Config(
                "`header_read_timeout` must be more than zero".into(),
            ));
        }
        let bind = |source| HttpError::Bind {
            address: self.address,
            source,
        };
        let listener = std::net::TcpListener::bind(self.address).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let history = History::new(self.health.window + Duration::from_secs(2));
        Ok(Server {
            listener,
            local_addr,
            settings: Settings {
                max_connections: self.max_connections,
                header_read_timeout: self.header_read_timeout,
                max_header_bytes: self.max_header_bytes,
                shutdown_grace: self.shutdown_grace,
            },
            state: Arc::new(State {
                enabled: self.enabled.map(AtomicBool::new),
                protected: self.protected,
                auth,
                #[cfg(feature = "dashboard")]
                dashboard: {
                    let hub = dashboard::Hub::new(self.dashboard);
                    hub.set_enabled(self.enabled[Endpoint::Dashboard.index()]);
                    hub
                },
                shutting_down: AtomicBool::new(false),
                started: Instant::now(),
                health: arc_swap::ArcSwap::from_pointee(self.health),
                metrics: self.metrics,
                checks: self.checks,
                #[cfg(feature = "dashboard")]
                custom_results: Mutex::new(None),
                max_body_bytes: self.max_body_bytes,
                history: Mutex::new(history),
            }),
        })
    }
}

struct Settings {
    max_connections: usize,
    header_read_timeout: Duration,
    max_header_bytes: usize,
    shutdown_grace: Duration,
}

/// What every connection's service shares.
struct State {
    enabled: [AtomicBool; ENDPOINTS],
    /// Swapped whole by `ServerControls::set_health`; readers never lock.
    protected: [bool; ENDPOINTS],
    auth: Option<auth::Auth>,
    #[cfg(feature = "dashboard")]
    dashboard: std::sync::Arc<dashboard::Hub>,
    shutting_down: AtomicBool,
    started: Instant,
    health: arc_swap::ArcSwap<HealthConfig>,
    metrics: Option<MetricsHandle>,
    checks: Vec<(String, CustomCheck)>,
    /// The custom checks' last results and when they ran: the dashboard
    /// reuses them for a second instead of running application code (a
    /// database ping, say) on every tick. Probes always run them.
    /// On tokio's clock, so a paused clock in tests covers the expiry.
    #[cfg(feature = "dashboard")]
    custom_results: Mutex<Option<(tokio::time::Instant, Vec<health::Check>)>>,
    max_body_bytes: u64,
    history: Mutex<History>,
}

/// A bound, not yet running server; see [`Server::start`].
pub struct Server {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    settings: Settings,
    state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with the defaults: [`DEFAULT_ADDRESS`], every endpoint on.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            address: DEFAULT_ADDRESS
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9464))),
            enabled: [true; ENDPOINTS],
            protected: Endpoint::ALL.map(|e| !matches!(e, Endpoint::Health | Endpoint::Ready)),
            token: None,
            health: HealthConfig::default(),
            #[cfg(feature = "dashboard")]
            dashboard: DashboardConfig::default(),
            metrics: None,
            checks: Vec::new(),
            max_connections: 256,
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }

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
        let task = runtime.spawn(accept_loop(
            listener,
            self.state,
            self.settings,
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
        accept_loop(listener, self.state, self.settings, signal).await;
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
    fn switch(&self, endpoint: Endpoint) -> &AtomicBool {
        #[cfg(feature = "dashboard")]
        if endpoint == Endpoint::Dashboard {
            return &self.dashboard.enabled;
        }
        &self.enabled[endpoint.index()]
    }

    fn set_switch(&self, endpoint: Endpoint, enabled: bool) {
        #[cfg(feature = "dashboard")]
        if endpoint == Endpoint::Dashboard {
            self.dashboard.set_enabled(enabled);
            return;
        }
        self.switch(endpoint).store(enabled, Ordering::Relaxed);
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
    /// [`HttpError::Config`] for a threshold out of range (the old ones stay).
    pub fn set_health(&self, health: HealthConfig) -> Result<(), HttpError> {
        health.validate().map_err(HttpError::Config)?;
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
    /// [`HttpError::Config`] for a name that is not a metric name.
    #[cfg(feature = "dashboard")]
    pub fn set_dashboard_metrics(&self, names: Vec<String>) -> Result<(), HttpError> {
        dashboard::check_metrics(&names).map_err(HttpError::Config)?;
        *self
            .state
            .dashboard
            .custom
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = names;
        Ok(())
    }

    /// The readiness thresholds in force.
    pub fn health(&self) -> HealthConfig {
        (**self.state.health.load()).clone()
    }
}

/// How often the history takes a sample.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    settings: Settings,
    signal: impl Future<Output = ()>,
) {
    let sampler = tokio::spawn(sample(Arc::downgrade(&state)));
    #[cfg(feature = "dashboard")]
    let ticker = {
        let weak = Arc::downgrade(&state);
        tokio::spawn(dashboard::tick(state.dashboard.clone(), move || {
            weak.upgrade().map(|state| dashboard_view(&state))
        }))
    };
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
            async move { Ok::<_, Infallible>(respond(&state, &request, &kill)) }
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
    sampler.abort();
    // Its end closes every dashboard stream, which would otherwise hold the
    // graceful shutdown for the whole grace period.
    #[cfg(feature = "dashboard")]
    ticker.abort();
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?settings.shutdown_grace, "poolscope HTTP server: connections still open after the grace period");
    }
}

/// Takes a history sample every second while the server lives.
async fn sample(state: std::sync::Weak<State>) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(state) = state.upgrade() else { return };
        let pools = crate::imp::stats::pools();
        let now = Instant::now();
        #[cfg(feature = "dashboard")]
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
}

#[cfg(feature = "dashboard")]
type Body = http_body_util::Either<Full<Bytes>, dashboard::SseBody>;
#[cfg(not(feature = "dashboard"))]
type Body = Full<Bytes>;

fn full(bytes: Bytes) -> Body {
    #[cfg(feature = "dashboard")]
    return http_body_util::Either::Left(Full::new(bytes));
    #[cfg(not(feature = "dashboard"))]
    Full::new(bytes)
}

fn respond(state: &State, request: &Request<Incoming>, kill: &Arc<Notify>) -> Response<Body> {
    let endpoint = Endpoint::of_path(request.uri().path())
        .filter(|e| state.switch(*e).load(Ordering::Relaxed));
    let Some(endpoint) = endpoint else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET or HEAD\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    if let Some(auth) = state
        .auth
        .as_ref()
        .filter(|_| state.protected[endpoint.index()])
    {
        // A valid token in the address signs in and leaves the address,
        // whether or not the browser already holds the cookie.
        #[cfg(feature = "dashboard")]
        if endpoint == Endpoint::Dashboard
            && matches!(request.uri().path(), "/dashboard" | "/dashboard/")
            && auth.query_token(request.uri().query())
        {
            return sign_in(auth);
        }
        if !auth.allows(request) {
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "unauthorized: send `Authorization: Bearer <token>` (or open /dashboard?token=<token> in a browser)\n",
            );
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"poolscope\""),
            );
            return response;
        }
    }
    // A bug in rendering must cost one response, not the process.
    let mut response = catch_unwind(AssertUnwindSafe(|| render(state, endpoint, request, kill)))
        .unwrap_or_else(|payload| {
            let cause = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(
                ?endpoint,
                cause,
                "poolscope HTTP server failed to render a response"
            );
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        });
    if method == Method::HEAD {
        let length = response.headers().get(CONTENT_LENGTH).cloned();
        *response.body_mut() = full(Bytes::new());
        if let Some(length) = length {
            response.headers_mut().insert(CONTENT_LENGTH, length);
        }
    }
    response
}

fn render(
    state: &State,
    endpoint: Endpoint,
    request: &Request<Incoming>,
    kill: &Arc<Notify>,
) -> Response<Body> {
    #[cfg(not(feature = "dashboard"))]
    let _ = (request, kill);
    match endpoint {
        Endpoint::Health => {
            let shutting_down = state.shutting_down.load(Ordering::Relaxed);
            let body = health::Liveness {
                status: if shutting_down { "shutting_down" } else { "ok" },
                version: env!("CARGO_PKG_VERSION"),
                uptime_seconds: state.started.elapsed().as_secs_f64(),
            };
            json(
                if shutting_down {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                },
                &body,
            )
        }
        Endpoint::Ready => {
            let (_, checks) = evaluate(state, Custom::Run);
            let failed: Vec<_> = checks.iter().filter(|c| !c.passed).cloned().collect();
            let ready = failed.is_empty() && !state.shutting_down.load(Ordering::Relaxed);
            let body = health::Readiness {
                status: if ready { "ready" } else { "unavailable" },
                failed,
                checks,
            };
            json(
                if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                &body,
            )
        }
        Endpoint::Detailed => {
            let (pools, checks) = evaluate(state, Custom::Run);
            let ready = checks.iter().all(|c| c.passed);
            let body = health::Detailed {
                status: if ready { "ready" } else { "unavailable" },
                version: env!("CARGO_PKG_VERSION"),
                uptime_seconds: state.started.elapsed().as_secs_f64(),
                window_seconds: state.health.load().window.as_secs_f64(),
                memory: health::MemoryReport::now(),
                pools: pools
                    .iter()
                    .map(|(pool, window)| health::PoolReport::new(pool, window))
                    .collect(),
                checks,
            };
            json(StatusCode::OK, &body)
        }
        Endpoint::Metrics => {
            let body = metrics_text(state);
            let mut response = Response::new(full(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            finish(response)
        }
        #[cfg(feature = "dashboard")]
        Endpoint::Dashboard => render_dashboard(state, request, kill),
    }
}

/// The Prometheus text `/metrics` serves.
fn metrics_text(state: &State) -> String {
    match state
        .metrics
        .clone()
        .or_else(crate::imp::metrics::installed)
    {
        Some(handle) => handle.render(),
        None => crate::imp::metrics::render(),
    }
}

/// Answers `/dashboard?token=..`: sets the cookie and sends the browser to
/// the page without the token in its address.
#[cfg(feature = "dashboard")]
fn sign_in(auth: &auth::Auth) -> Response<Body> {
    let mut response = text(StatusCode::SEE_OTHER, "signed in: see /dashboard\n");
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static("/dashboard"));
    if let Ok(cookie) = HeaderValue::from_str(&auth.cookie()) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

#[cfg(feature = "dashboard")]
fn render_dashboard(
    state: &State,
    request: &Request<Incoming>,
    kill: &Arc<Notify>,
) -> Response<Body> {
    match request.uri().path() {
        "/dashboard/events" => {
            if request.method() == Method::HEAD {
                let mut response = Response::new(full(Bytes::new()));
                sse_headers(&mut response);
                return response;
            }
            match dashboard::open(&state.dashboard, kill.clone()) {
                Ok(body) => {
                    let mut response = Response::new(http_body_util::Either::Right(body));
                    sse_headers(&mut response);
                    response
                }
                Err(dashboard::Refused::TooManyViewers) => {
                    let mut response = text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many dashboard viewers; retry later\n",
                    );
                    response
                        .headers_mut()
                        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
                    response
                }
            }
        }
        "/dashboard/snapshot" => {
            let view = dashboard_view(state);
            let (json, _, _) = state.dashboard.render(&view, 0, None, true);
            let json = json.unwrap_or_else(|| b"{}".to_vec());
            let mut response = Response::new(full(Bytes::from(json)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            finish(response)
        }
        _ => {
            let nonce = dashboard::nonce();
            let mut response = Response::new(full(Bytes::from(dashboard::page(&nonce))));
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            if let Ok(policy) = HeaderValue::from_str(&dashboard::content_security_policy(&nonce)) {
                headers.insert(hyper::header::CONTENT_SECURITY_POLICY, policy);
            }
            headers.insert(
                hyper::header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                hyper::header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            finish(response)
        }
    }
}

#[cfg(feature = "dashboard")]
fn sse_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx would otherwise hold the stream back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// How far back the dashboard's "requests a second now" looks.
#[cfg(feature = "dashboard")]
const RATE_NOW_WINDOW: Duration = Duration::from_secs(5);

/// What the dashboard shows now: the same pool statistics and readiness
/// checks `/health/detailed` and `/health/ready` report.
#[cfg(feature = "dashboard")]
fn dashboard_view(state: &State) -> dashboard::View {
    // Before anything is read: whatever happened before this time shows.
    let at = std::time::SystemTime::now();
    let (pools, checks) = evaluate(state, Custom::Recent);
    let now = Instant::now();
    let rates: Vec<f64> = {
        let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .iter()
            .map(|(pool, _)| history.window(now, RATE_NOW_WINDOW, pool).request_rate)
            .collect()
    };
    let reports = pools
        .iter()
        .zip(rates)
        .map(|((pool, window), rate)| (health::PoolReport::new(pool, window), rate))
        .collect();
    let snapshots: Vec<PoolSnapshot> = pools.into_iter().map(|(pool, _)| pool).collect();
    let names = state
        .dashboard
        .custom
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // Rendering the whole exposition costs; only when metrics are declared.
    let custom = if names.is_empty() {
        Vec::new()
    } else {
        dashboard::custom_series(&metrics_text(state), &names)
    };
    dashboard::View {
        at,
        custom,
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        window_seconds: state.health.load().window.as_secs_f64(),
        shutting_down: state.shutting_down.load(Ordering::Relaxed),
        pools: reports,
        pool_states: snapshots,
        checks,
    }
}

/// How long the dashboard reuses the custom checks' results.
#[cfg(feature = "dashboard")]
const CUSTOM_RESULTS_TTL: Duration = Duration::from_secs(1);

/// Whether the custom readiness checks run now or may come from the last run.
#[derive(Clone, Copy, PartialEq)]
enum Custom {
    /// Run them (a probe asks).
    Run,
    /// The results of a run younger than `CUSTOM_RESULTS_TTL` will do.
    #[cfg(feature = "dashboard")]
    Recent,
}

fn custom_results(state: &State, how: Custom) -> Vec<health::Check> {
    if state.checks.is_empty() {
        return Vec::new();
    }
    #[cfg(feature = "dashboard")]
    if how == Custom::Recent {
        let cached = state
            .custom_results
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((at, results)) = cached.as_ref() {
            if at.elapsed() < CUSTOM_RESULTS_TTL {
                return results.clone();
            }
        }
    }
    let _ = how;
    // Run outside the lock: a slow check must not hold up the next caller.
    let results = health::run_custom(&state.checks);
    #[cfg(feature = "dashboard")]
    {
        *state
            .custom_results
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            Some((tokio::time::Instant::now(), results.clone()));
    }
    results
}

/// Every pool with its window statistics, and the readiness checks.
fn evaluate(state: &State, how: Custom) -> (Vec<(PoolSnapshot, WindowStats)>, Vec<health::Check>) {
    let now = Instant::now();
    let health = state.health.load();
    let pools: Vec<(PoolSnapshot, WindowStats)> = {
        let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
        crate::imp::stats::pools()
            .into_iter()
            .map(|pool| {
                let window = history.window(now, health.window, &pool);
                (pool, window)
            })
            .collect()
    };
    let checks = health::checks(&health, &pools, custom_results(state, how));
    (pools, checks)
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec_pretty(body) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            let mut response = Response::new(full(Bytes::from(bytes)));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            finish(response)
        }
        Err(err) => {
            tracing::error!(error = %err, "poolscope HTTP server could not encode a response");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    finish(response)
}

/// Headers every response carries: an explicit length (kept for `HEAD`) and
/// no caching, since every answer is about now.
fn finish(mut response: Response<Body>) -> Response<Body> {
    let length = hyper::body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(all(test, feature = "dashboard"))]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_dashboard_reuses_custom_check_results_for_a_second_and_probes_never_do() {
        let runs = Arc::new(AtomicU64::new(0));
        let counted = runs.clone();
        let server = Server::builder()
            .with_address("127.0.0.1:0".parse().unwrap())
            .with_readiness_check("db", move || {
                counted.fetch_add(1, Ordering::Relaxed);
                Err("connection refused".into())
            })
            .build()
            .unwrap();
        let state = &server.state;
        let runs = || runs.load(Ordering::Relaxed);
        for _ in 0..10 {
            let view = dashboard_view(state);
            assert!(view
                .checks
                .iter()
                .any(|c| c.message == "connection refused"));
        }
        assert_eq!(runs(), 1, "ten snapshots within a second, one run");
        tokio::time::advance(CUSTOM_RESULTS_TTL - Duration::from_millis(1)).await;
        dashboard_view(state);
        assert_eq!(runs(), 1, "still fresh");
        tokio::time::advance(Duration::from_millis(1)).await;
        dashboard_view(state);
        dashboard_view(state);
        assert_eq!(runs(), 2, "a second old: run again, once");
        for probe in 1..=5 {
            evaluate(state, Custom::Run);
            assert_eq!(runs(), 2 + probe, "a probe always runs the checks");
        }
    }
}
