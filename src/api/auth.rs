//! `serve`'s bearer token: in the `Authorization` header (scripts), or in a cookie the page's
//! first visit (`/?token=…`, as Jupyter hands it out) sets. A request authenticated by the
//! cookie that changes something must also carry `X-Ngbak-Request` (a header another site's
//! form cannot send). On Lambda there is no token: IAM guards the Function URL.

use super::problem::Problem;
use super::Api;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "ngbak_token";
/// The header the page sends with every request that changes something.
pub const REQUEST_HEADER: &str = "x-ngbak-request";

/// A new random token (256 bits, URL-safe).
pub fn new_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("the system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Equal tokens, compared in constant time (over their digests, so the length leaks nothing).
fn same(given: &str, token: &str) -> bool {
    Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(token.as_bytes())).into()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn query_token(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
}

/// The middleware: lets through what the token (or no token, on Lambda) allows.
pub async fn check(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let Some(token) = api.token.as_deref() else { return next.run(request).await };
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    if request.uri().path() == "/" {
        if let Some(given) = query_token(&request) {
            if !same(&given, token) {
                return unauthorized("the token in the address is not this server's");
            }
            // Keep the token out of the address bar and the history: a cookie, then `/`.
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            return ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response();
        }
    }
    if bearer(request.headers()).is_some_and(|given| same(given, token)) {
        return next.run(request).await;
    }
    if cookie(request.headers()).is_some_and(|given| same(given, token)) {
        let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
        if changes && !request.headers().contains_key(REQUEST_HEADER) {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "a request that changes something, authenticated by the page's cookie, must carry the X-Ngbak-Request header",
                "send it from the operator page, or use Authorization: Bearer",
            )
            .into_response();
        }
        return next.run(request).await;
    }
    unauthorized("this server needs its token")
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        detail,
        "send Authorization: Bearer <token> (NGBAK_API_TOKEN, or the one `ngbak serve` printed), or open the address it printed",
    )
    .into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_compared_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "theme=dark; ngbak_token=abc; other=1".parse().unwrap());
        assert_eq!(cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, "ngbak_token_old=abc".parse().unwrap());
        assert_eq!(cookie(&headers), None, "a cookie whose name only starts with ngbak_token");
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "abc"));
    }

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
