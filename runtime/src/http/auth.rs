//! Optional bearer-token protection for chosen endpoints.
//!
//! A client proves it knows the token with `Authorization: Bearer <token>`,
//! or (for a browser, whose `EventSource` cannot set headers) with the
//! `poolscope_token` cookie that opening `/dashboard?token=<token>` sets.

use hyper::header::{AUTHORIZATION, COOKIE};
use hyper::Request;

/// The cookie the dashboard's token travels in.
pub(crate) const COOKIE_NAME: &str = "poolscope_token";

pub(crate) struct Auth {
    token: String,
}

impl std::fmt::Debug for Auth {
    // Never the token itself: settings get logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { token: \"[REDACTED]\" }")
    }
}

impl Auth {
    /// Checks that the token can travel in a header and a cookie.
    pub(crate) fn new(token: String) -> Result<Auth, String> {
        if token.len() < 16 {
            return Err(format!(
                "the bearer token is {} characters long: use at least 16 (e.g. `openssl rand -hex 32`)",
                token.len()
            ));
        }
        // Characters that travel unchanged in a header, a cookie and a URL
        // query (no percent-decoding needed).
        if let Some(bad) = token
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-')))
        {
            return Err(format!(
                "the bearer token holds {bad:?}: use letters, digits, `.`, `_`, `~` and `-` (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(Auth { token })
    }

    /// Whether `request` carries the token, in its `Authorization` header or
    /// in the cookie.
    pub(crate) fn allows<B>(&self, request: &Request<B>) -> bool {
        let headers = request.headers();
        let bearer = headers
            .get_all(AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .any(|token| self.matches(token));
        bearer
            || headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .any(|(name, value)| name == COOKIE_NAME && self.matches(value))
    }

    /// `token=` in a query string, when it is the right one.
    #[cfg(any(feature = "dashboard", test))]
    pub(crate) fn query_token(&self, query: Option<&str>) -> bool {
        query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|pair| pair.split_once('='))
            .any(|(name, value)| name == "token" && self.matches(value))
    }

    /// The `Set-Cookie` value that keeps the browser signed in for this
    /// server: not readable by scripts, sent only to the dashboard's paths,
    /// and on top-level navigation from other sites (`Lax`: a link to the
    /// dashboard works) but not on their subrequests.
    #[cfg(feature = "dashboard")]
    pub(crate) fn cookie(&self) -> String {
        format!(
            "{COOKIE_NAME}={}; Path=/dashboard; HttpOnly; SameSite=Lax",
            self.token
        )
    }

    /// Compares in time that depends on the length only, so the answer's
    /// timing does not tell how much of a guess was right.
    fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), candidate.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-token";

    fn request(header: (&str, &str)) -> Request<()> {
        Request::builder()
            .header(header.0, header.1)
            .body(())
            .unwrap()
    }

    #[test]
    fn accepts_the_bearer_header_and_the_cookie_only_with_the_right_token() {
        let auth = Auth::new(TOKEN.into()).unwrap();
        assert!(auth.allows(&request(("authorization", &format!("Bearer {TOKEN}")))));
        assert!(auth.allows(&request(("authorization", &format!("bearer  {TOKEN} ")))));
        assert!(auth.allows(&request((
            "cookie",
            &format!("a=b; {COOKIE_NAME}={TOKEN}; c=d")
        ))));
        assert!(!auth.allows(&request(("authorization", "Bearer wrong-token-wrong-t"))));
        assert!(!auth.allows(&request(("authorization", &format!("Basic {TOKEN}")))));
        assert!(!auth.allows(&request(("cookie", &format!("other={TOKEN}")))));
        assert!(!auth.allows(&request(("x-other", TOKEN))));
    }

    #[test]
    fn the_query_token_must_match_whole() {
        let auth = Auth::new(TOKEN.into()).unwrap();
        assert!(auth.query_token(Some(&format!("a=1&token={TOKEN}"))));
        assert!(!auth.query_token(Some(&format!("token={TOKEN}x"))));
        assert!(!auth.query_token(Some("token=")));
        assert!(!auth.query_token(None));
    }

    #[test]
    fn short_or_unsafe_tokens_are_refused_with_the_reason() {
        assert!(Auth::new("short".into())
            .unwrap_err()
            .contains("at least 16"));
        assert!(Auth::new("0123456789abcdef;x".into())
            .unwrap_err()
            .contains("';'"));
        assert!(Auth::new("0123456789abcdef x".into()).is_err());
        assert!(Auth::new("0123456789abcdef&x".into()).is_err());
        assert!(Auth::new("0123456789abcdef#x".into()).is_err());
        assert!(Auth::new("0123456789abcdef.x_y~z-w".into()).is_ok());
    }
}
