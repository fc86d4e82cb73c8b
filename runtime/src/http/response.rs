//! Building responses: every answer the server gives goes through here, so
//! each carries an explicit length and `Cache-Control: no-store`.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::dashboard::SseBody;

/// A response body: bytes known up front, or the dashboard's event stream
/// (uninhabited in a build without the dashboard).
pub(super) type Body = Either<Full<Bytes>, SseBody>;

/// A body of bytes known up front.
pub(super) fn full(bytes: Bytes) -> Body {
    Either::Left(Full::new(bytes))
}

/// `body` as pretty JSON with `status`; a body that cannot be encoded is
/// logged and answered with 500.
pub(super) fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
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

/// A plain-text answer.
pub(super) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    finish(response)
}

/// A body of bytes with its content type.
pub(super) fn typed(content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    finish(response)
}

/// Headers every response carries: an explicit length (kept for `HEAD`) and
/// no caching, since every answer is about now.
pub(super) fn finish(mut response: Response<Body>) -> Response<Body> {
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

/// The answer to `HEAD`: the `GET` answer's headers, its length included,
/// without the body.
pub(super) fn head(mut response: Response<Body>) -> Response<Body> {
    let length = response.headers().get(CONTENT_LENGTH).cloned();
    *response.body_mut() = full(Bytes::new());
    if let Some(length) = length {
        response.headers_mut().insert(CONTENT_LENGTH, length);
    }
    response
}
