//! The page: one self-contained HTML document (style and script inlined),
//! served with a Content-Security-Policy that allows only its own nonce'd
//! script and style.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::Response;

use super::unix_ms;
use crate::http::response::{finish, full, Body};

/// `/dashboard`: the page, under a fresh nonce.
pub(super) fn respond() -> Response<Body> {
    let nonce = nonce();
    let mut response = Response::new(full(Bytes::from(page(&nonce))));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    finish(response)
}

/// The page, with its style and script inlined; `{nonce}` is replaced per
/// response so the Content-Security-Policy can forbid every other script.
fn page(nonce: &str) -> String {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            include_str!("page.html")
                .replace("/*STYLE*/", include_str!("page.css"))
                .replace("/*SCRIPT*/", include_str!("page.js"))
        })
        .replace("{nonce}", nonce)
}

/// The policy the page is served with: its own nonce'd script and style,
/// fetches to this server only, nothing else.
fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// An unguessable nonce: two SipHash outputs under fresh random keys
/// (std seeds `RandomState` from the OS).
pub(crate) fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let part = |salt: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(n);
        hasher.write_u64(salt);
        hasher.write_u128(unix_ms(SystemTime::now()) as u128);
        hasher.finish()
    };
    format!("{:016x}{:016x}", part(1), part(2))
}
