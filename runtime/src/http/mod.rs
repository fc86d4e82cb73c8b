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
mod builder;
// The dashboard, or in a build without it a module of the same interface
// whose parts are empty: the server's code is the same in both.
#[cfg(feature = "dashboard")]
mod dashboard;
#[cfg(not(feature = "dashboard"))]
mod no_dashboard;
#[cfg(not(feature = "dashboard"))]
use no_dashboard as dashboard;
mod health;
mod report;
mod response;
mod routes;
mod sampler;
mod server;

use std::net::SocketAddr;

pub use builder::ServerBuilder;
#[cfg(feature = "dashboard")]
pub use dashboard::{DashboardConfig, DashboardError};
pub use health::{HealthConfig, HealthError, ReadinessPolicy};
pub use routes::Endpoint;
pub use server::{serve, Server, ServerControls, ServerHandle};

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
    /// A readiness threshold is out of range.
    #[error("invalid HTTP server setting: {0}")]
    Health(#[from] HealthError),
    /// A dashboard setting is out of range.
    #[cfg(feature = "dashboard")]
    #[error("invalid HTTP server setting: {0}")]
    Dashboard(#[from] DashboardError),
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
    Metrics(#[from] crate::prometheus::MetricsError),
}
