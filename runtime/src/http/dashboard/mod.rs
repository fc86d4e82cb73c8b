//! The live dashboard: `GET /dashboard` serves one self-contained page,
//! `GET /dashboard/events` streams snapshots to it as Server-Sent Events,
//! `GET /dashboard/snapshot` answers one snapshot as JSON.
//!
//! One task computes a snapshot per tick (and at once after an error, an
//! alert or a worker start or crash) and every viewer's stream shares it, so
//! a hundred viewers cost what one does. A viewer that falls
//! [`DashboardConfig::viewer_buffer`] snapshots behind is disconnected; its
//! page reconnects on its own.

mod chart;
mod hub;
mod page;
mod recent;
mod snapshot;
mod sse;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::Notify;

use super::auth::Auth;
use super::report::PoolReport;
use super::response::{self, full, text, Body};
use super::routes::{evaluate, metrics_text, Endpoint};
use super::server::State;
use crate::model::stats::PoolSnapshot;
use crate::sync::lock;
pub(crate) use hub::Hub;
use snapshot::View;
pub(crate) use sse::SseBody;

/// The endpoints the dashboard adds: [`Endpoint::Dashboard`].
pub(super) const ENDPOINTS: usize = 1;

pub use crate::model::dashboard::{DashboardConfig, DashboardError};

/// Bursts of errors push at most this often, so an error storm costs a
/// bounded number of snapshots.
const MIN_GAP: Duration = crate::model::dashboard::MIN_INTERVAL;

/// The endpoint that serves `path`, when it is the dashboard's.
pub(super) fn endpoint_of(path: &str) -> Option<Endpoint> {
    matches!(
        path,
        "/dashboard" | "/dashboard/" | "/dashboard/events" | "/dashboard/snapshot"
    )
    .then_some(Endpoint::Dashboard)
}

/// Starts the ticker that pushes snapshots to the open streams; it ends
/// when the server's state is gone or the handle is aborted.
pub(super) fn start(state: &Arc<State>) -> Option<tokio::task::JoinHandle<()>> {
    let weak = Arc::downgrade(state);
    Some(tokio::spawn(sse::tick(
        state.dashboard.clone(),
        move || weak.upgrade().map(|state| view(&state)),
    )))
}

/// The answer to `/dashboard?token=..` with the valid token, protected or
/// not by a cookie yet: sign in. `None` for every other request.
pub(super) fn sign_in(
    endpoint: Endpoint,
    request: &Request<Incoming>,
    auth: &Auth,
) -> Option<Response<Body>> {
    (endpoint == Endpoint::Dashboard
        && matches!(request.uri().path(), "/dashboard" | "/dashboard/")
        && auth.query_token(request.uri().query()))
    .then(|| signed_in(auth))
}

/// Answers `/dashboard?token=..`: sets the cookie and sends the browser to
/// the page without the token in its address.
fn signed_in(auth: &Auth) -> Response<Body> {
    let mut response = text(StatusCode::SEE_OTHER, "signed in: see /dashboard\n");
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static("/dashboard"));
    if let Ok(cookie) = HeaderValue::from_str(&auth.cookie()) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

/// Answers a request for the dashboard's endpoint; `None` for the other
/// endpoints.
pub(super) fn respond(
    state: &State,
    endpoint: Endpoint,
    request: &Request<Incoming>,
    kill: &Arc<Notify>,
) -> Option<Response<Body>> {
    if endpoint != Endpoint::Dashboard {
        return None;
    }
    Some(match request.uri().path() {
        "/dashboard/events" => events(state, request, kill),
        "/dashboard/snapshot" => {
            response::typed("application/json", state.dashboard.snapshot(&view(state)))
        }
        _ => page::respond(),
    })
}

/// `/dashboard/events`: a viewer's stream of snapshots.
fn events(state: &State, request: &Request<Incoming>, kill: &Arc<Notify>) -> Response<Body> {
    if request.method() == Method::HEAD {
        let mut response = Response::new(full(Bytes::new()));
        sse_headers(&mut response);
        return response;
    }
    match sse::open(&state.dashboard, kill.clone()) {
        Ok(body) => {
            let mut response = Response::new(http_body_util::Either::Right(body));
            sse_headers(&mut response);
            response
        }
        Err(sse::Refused::TooManyViewers) => {
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

fn sse_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx would otherwise hold the stream back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// How far back the dashboard's "requests a second now" looks.
const RATE_NOW_WINDOW: Duration = Duration::from_secs(5);

/// What the dashboard shows now: the same pool statistics and readiness
/// checks `/health/detailed` and `/health/ready` report.
fn view(state: &State) -> View {
    // Before anything is read: whatever happened before this time shows.
    let at = std::time::SystemTime::now();
    let (pools, checks) = evaluate(state, state.dashboard.recent_checks(&state.checks));
    let now = state.clock.now();
    let rates: Vec<f64> = {
        let history = lock(&state.history);
        pools
            .iter()
            .map(|(pool, _)| history.window(now, RATE_NOW_WINDOW, pool).request_rate)
            .collect()
    };
    let reports = pools
        .iter()
        .zip(rates)
        .map(|((pool, window), rate)| (PoolReport::new(pool, window), rate))
        .collect();
    let snapshots: Vec<PoolSnapshot> = pools.into_iter().map(|(pool, _)| pool).collect();
    let names = lock(&state.dashboard.custom).clone();
    // Rendering the whole exposition costs; only when metrics are declared.
    let custom = if names.is_empty() {
        Vec::new()
    } else {
        snapshot::custom_series(&metrics_text(state), &names)
    };
    View {
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

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod switch_tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn the_hub_listens_to_events_only_while_the_dashboard_is_on() {
        let hub = Hub::new(DashboardConfig::default());
        assert!(!hub.listening() && !hub.enabled.load(Ordering::Relaxed));
        hub.set_enabled(true);
        assert!(hub.listening() && hub.enabled.load(Ordering::Relaxed));
        hub.set_enabled(true);
        assert!(hub.listening());
        hub.set_enabled(false);
        assert!(!hub.listening() && !hub.enabled.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod check_cache_tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::http::Server;

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
            let view = view(state);
            assert!(view
                .checks
                .iter()
                .any(|c| c.message == "connection refused"));
        }
        assert_eq!(runs(), 1, "ten snapshots within a second, one run");
        tokio::time::advance(hub::CHECKS_TTL - Duration::from_millis(1)).await;
        view(state);
        assert_eq!(runs(), 1, "still fresh");
        tokio::time::advance(Duration::from_millis(1)).await;
        view(state);
        view(state);
        assert_eq!(runs(), 2, "a second old: run again, once");
        for probe in 1..=5 {
            crate::http::routes::readiness(state);
            assert_eq!(runs(), 2 + probe, "a probe always runs the checks");
        }
    }
}
