//! Method × path → handler: which endpoint a request is for, whether it may
//! have it (switch, method, size, token), and the handlers of the health
//! endpoints and `/metrics`. The dashboard's handlers are its own
//! ([`dashboard::respond`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::Notify;

use super::dashboard;
use super::health::{self, Check, WindowStats};
use super::report;
use super::response::{self, json, text, Body};
use super::server::State;
use crate::model::stats::PoolSnapshot;

/// How many endpoints there are: the four health and metrics ones, and the
/// dashboard's when it is compiled in.
pub(super) const ENDPOINTS: usize = 4 + dashboard::ENDPOINTS;

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

    pub(super) fn index(self) -> usize {
        self as usize
    }

    fn of_path(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/health" | "/healthz" | "/livez" => Endpoint::Health,
            "/health/ready" | "/readyz" => Endpoint::Ready,
            "/health/detailed" => Endpoint::Detailed,
            "/metrics" => Endpoint::Metrics,
            _ => return dashboard::endpoint_of(path),
        })
    }
}

/// Answers one request.
pub(super) fn respond(
    state: &State,
    request: &Request<Incoming>,
    kill: &Arc<Notify>,
) -> Response<Body> {
    let endpoint = Endpoint::of_path(request.uri().path())
        .filter(|e| state.switch(*e).load(Ordering::Relaxed));
    let Some(endpoint) = endpoint else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    if let Some(refused) = refuse(state, endpoint, request) {
        return refused;
    }
    // A bug in rendering must cost one response, not the process.
    let response = catch_unwind(AssertUnwindSafe(|| {
        dashboard::respond(state, endpoint, request, kill)
            .unwrap_or_else(|| handle(state, endpoint))
    }))
    .unwrap_or_else(|payload| {
        let cause = crate::error::Panicked::from_payload(payload.as_ref()).message;
        tracing::error!(
            ?endpoint,
            cause,
            "poolscope HTTP server failed to render a response"
        );
        text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
    });
    if request.method() == Method::HEAD {
        return response::head(response);
    }
    response
}

/// The answer to a request the endpoint does not take: a method other than
/// `GET` and `HEAD`, a body too large, a missing token. `None` lets it in.
fn refuse(
    state: &State,
    endpoint: Endpoint,
    request: &Request<Incoming>,
) -> Option<Response<Body>> {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET or HEAD\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(response);
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return Some(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
        ));
    }
    let auth = state
        .auth
        .as_ref()
        .filter(|_| state.protected[endpoint.index()])?;
    // A valid token in the address signs in and leaves the address,
    // whether or not the browser already holds the cookie.
    if let Some(signed_in) = dashboard::sign_in(endpoint, request, auth) {
        return Some(signed_in);
    }
    if auth.allows(request) {
        return None;
    }
    let mut response = text(
        StatusCode::UNAUTHORIZED,
        "unauthorized: send `Authorization: Bearer <token>` (or open /dashboard?token=<token> in a browser)\n",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"poolscope\""),
    );
    Some(response)
}

/// The handlers of the endpoints the dashboard did not take.
fn handle(state: &State, endpoint: Endpoint) -> Response<Body> {
    match endpoint {
        Endpoint::Health => liveness(state),
        Endpoint::Ready => readiness(state),
        Endpoint::Detailed => detailed(state),
        Endpoint::Metrics => response::typed(
            "text/plain; version=0.0.4; charset=utf-8",
            metrics_text(state),
        ),
        // `dashboard::respond` answers it before this is asked; a 404 keeps
        // the table whole without handing the dashboard's request and stream
        // switch to every handler.
        #[cfg(feature = "dashboard")]
        Endpoint::Dashboard => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// 200 or 503 as [`StatusCode`].
fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `/health`: up, or shutting down.
fn liveness(state: &State) -> Response<Body> {
    let shutting_down = state.shutting_down.load(Ordering::Relaxed);
    let body = report::Liveness {
        status: if shutting_down { "shutting_down" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
    };
    json(status(!shutting_down), &body)
}

/// `/health/ready`: every check passes and the server is not stopping.
pub(super) fn readiness(state: &State) -> Response<Body> {
    let (_, checks) = evaluate(state, health::run_custom(&state.checks));
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).cloned().collect();
    let ready = failed.is_empty() && !state.shutting_down.load(Ordering::Relaxed);
    let body = report::Readiness {
        status: if ready { "ready" } else { "unavailable" },
        failed,
        checks,
    };
    json(status(ready), &body)
}

/// `/health/detailed`: everything readiness looks at, with the numbers.
fn detailed(state: &State) -> Response<Body> {
    let (pools, checks) = evaluate(state, health::run_custom(&state.checks));
    let ready = checks.iter().all(|c| c.passed);
    let body = report::Detailed {
        status: if ready { "ready" } else { "unavailable" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        window_seconds: state.health.load().window.as_secs_f64(),
        memory: report::MemoryReport::now(),
        pools: pools
            .iter()
            .map(|(pool, window)| report::PoolReport::new(pool, window))
            .collect(),
        checks,
    };
    json(StatusCode::OK, &body)
}

/// The Prometheus text `/metrics` serves.
pub(super) fn metrics_text(state: &State) -> String {
    match state.metrics.clone().or_else(crate::prometheus::installed) {
        Some(handle) => handle.render(),
        None => crate::prometheus::render(),
    }
}

/// Every pool with its window statistics, and the readiness checks with
/// the application's own (`custom`, already run) among them.
pub(super) fn evaluate(
    state: &State,
    custom: Vec<Check>,
) -> (Vec<(PoolSnapshot, WindowStats)>, Vec<Check>) {
    let now = state.clock.now();
    let health = state.health.load();
    let pools: Vec<(PoolSnapshot, WindowStats)> = {
        let history = state.history.lock().unwrap_or_else(|e| e.into_inner());
        crate::stats::pools()
            .into_iter()
            .map(|pool| {
                let window = history.window(now, health.window, &pool);
                (pool, window)
            })
            .collect()
    };
    let checks = health::checks(&health, &pools, custom);
    (pools, checks)
}
