//! [`ServerBuilder`]: the server's settings, checked and bound in
//! [`ServerBuilder::build`], so a bad setting or a taken port is an error
//! before anything runs.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dashboard::{self, DashboardConfig};
use super::health::{CustomCheck, History};
use super::routes::{Endpoint, ENDPOINTS};
use super::server::{Server, Settings, State};
use super::{auth, HealthConfig, HttpError, DEFAULT_ADDRESS};
use crate::clock::Clock;
use crate::prometheus::MetricsHandle;

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
            dashboard: DashboardConfig::default(),
            metrics: None,
            checks: Vec::new(),
            max_connections: 256,
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            clock: Clock::system(),
        }
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
    dashboard: DashboardConfig,
    metrics: Option<MetricsHandle>,
    checks: Vec<(String, CustomCheck)>,
    max_connections: usize,
    header_read_timeout: Duration,
    max_header_bytes: usize,
    max_body_bytes: u64,
    shutdown_grace: Duration,
    clock: Clock,
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

    /// How long [`ServerHandle::shutdown`](super::ServerHandle::shutdown) lets open connections finish.
    /// Default 5 s.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The clock the window history is timed by: what "over the window"
    /// means for the error-rate and p99 checks, `/health/detailed`'s
    /// window statistics, the utilization gauge and the dashboard's rates.
    /// Default [`Clock::system`], sampled each second. With a
    /// [`ManualClock`](crate::clock::ManualClock) the server samples when
    /// it starts and at each advance, never on its own, so a test moves
    /// the window by advancing the clock instead of sleeping:
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread()
    /// #     .enable_all()
    /// #     .build()
    /// #     .unwrap();
    /// # runtime.block_on(async {
    /// use std::time::Duration;
    /// use poolscope_runtime::clock::ManualClock;
    /// use poolscope_runtime::http::{HealthConfig, Server};
    /// let clock = ManualClock::new();
    /// let server = Server::builder()
    ///     .with_address("127.0.0.1:0".parse().unwrap())
    ///     .with_health(HealthConfig::default().with_window(Duration::from_secs(60)))
    ///     .with_clock(clock.clone())
    ///     .build()
    ///     .unwrap()
    ///     .start()
    ///     .unwrap();
    /// // A window passes, and the sampler has taken its sample.
    /// clock.advance(Duration::from_secs(60));
    /// server.shutdown().await;
    /// # });
    /// ```
    pub fn with_clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Checks the settings and binds the address.
    ///
    /// # Errors
    ///
    /// [`HttpError::Health`], [`HttpError::Dashboard`] or
    /// [`HttpError::Config`] for a setting out of range, [`HttpError::Bind`]
    /// when the address cannot be bound.
    pub fn build(self) -> Result<Server, HttpError> {
        self.health.validate()?;
        self.dashboard.validate()?;
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
        let dashboard = dashboard::Hub::new(self.dashboard);
        for endpoint in Endpoint::ALL {
            // The switch the hub holds starts as the builder set it.
            dashboard.set_switch(endpoint, self.enabled[endpoint.index()]);
        }
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
                dashboard,
                shutting_down: AtomicBool::new(false),
                started: Instant::now(),
                health: arc_swap::ArcSwap::from_pointee(self.health),
                metrics: self.metrics,
                checks: self.checks,
                max_body_bytes: self.max_body_bytes,
                history: Mutex::new(history),
                clock: self.clock,
            }),
        })
    }
}
