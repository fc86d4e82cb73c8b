//! The dashboard's interface in a build without the dashboard: no endpoint,
//! no hub state, no stream. The server calls it exactly as it calls the
//! dashboard, so none of its handlers carries a `cfg`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::sync::Notify;

use super::auth::Auth;
use super::response::Body;
use super::routes::Endpoint;
use super::server::State;
use crate::model::stats::PoolSnapshot;

/// No endpoint of its own.
pub(super) const ENDPOINTS: usize = 0;

/// Nothing to configure.
#[derive(Clone, Debug, Default)]
pub(super) struct DashboardConfig {}

impl DashboardConfig {
    pub(super) fn validate(&self) -> Result<(), super::HttpError> {
        Ok(())
    }
}

/// No state.
pub(super) struct Hub;

impl Hub {
    pub(super) fn new(_: DashboardConfig) -> Arc<Hub> {
        Arc::new(Hub)
    }

    /// No endpoint's switch is the dashboard's.
    pub(super) fn switch(&self, _: Endpoint) -> Option<&AtomicBool> {
        None
    }

    pub(super) fn set_switch(self: &Arc<Self>, _: Endpoint, _: bool) -> bool {
        false
    }

    pub(super) fn record_chart(&self, _: Instant, _: &[PoolSnapshot]) {}
}

/// No path is the dashboard's.
pub(super) fn endpoint_of(_: &str) -> Option<Endpoint> {
    None
}

/// No ticker to start.
pub(super) fn start(_: &Arc<State>) -> Option<tokio::task::JoinHandle<()>> {
    None
}

/// No sign-in page.
pub(super) fn sign_in(_: Endpoint, _: &Request<Incoming>, _: &Auth) -> Option<Response<Body>> {
    None
}

/// No request is the dashboard's.
pub(super) fn respond(
    _: &State,
    _: Endpoint,
    _: &Request<Incoming>,
    _: &Arc<Notify>,
) -> Option<Response<Body>> {
    None
}

/// The event stream's body: uninhabited, as no stream is ever opened.
pub(crate) enum SseBody {}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match *self {}
    }
}
