//! Qdrant's REST API, for what gRPC does not stream: snapshots. The API key goes with every
//! request (the Python tool forgot it on snapshot transfers and failed on secured servers).

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
}

impl Rest {
    pub fn new(base: &str, api_key: Option<&str>) -> Result<Self> {
        let http = crate::net::clients::qdrant_http()?;
        Ok(Rest { http, base: base.trim_end_matches('/').to_string(), api_key: api_key.map(str::to_string) })
    }

    /// A request with the API key attached.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.api_key {
            Some(key) => req.header("api-key", key),
            None => req,
        }
    }

    /// Sends, and turns any non-2xx answer into an error naming what was attempted.
    pub async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response> {
        let resp = req.send().await.with_context(|| format!("Qdrant {what}: cannot reach {}", self.base))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let hint = match status.as_u16() {
            401 | 403 => " — the API key is missing or wrong (QDRANT_API_KEY)",
            404 => " — no such collection or snapshot",
            _ => "",
        };
        bail!("Qdrant {what} failed: HTTP {status}{hint}: {}", body.chars().take(500).collect::<String>())
    }

    /// Sends and returns the `result` of Qdrant's JSON envelope.
    pub async fn result(&self, req: RequestBuilder, what: &str) -> Result<Value> {
        let mut body: Value =
            self.send(req, what).await?.json().await.with_context(|| format!("Qdrant {what}: bad JSON"))?;
        Ok(body.get_mut("result").map(Value::take).unwrap_or(Value::Null))
    }

    /// The server's version (`GET /`).
    pub async fn version(&self) -> Result<String> {
        let body: Value = self.send(self.request(Method::GET, "/"), "version").await?.json().await?;
        body.get("version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("Qdrant did not say its version"))
    }
}

/// `major.minor` of a version string, for snapshot compatibility.
pub fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(super::major_minor("1.15.4"), Some((1, 15)));
        assert_eq!(super::major_minor("v1.9.0-dev"), Some((1, 9)));
        assert_eq!(super::major_minor("nonsense"), None);
    }
}
