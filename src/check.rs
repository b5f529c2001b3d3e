//! `ngbak check`: connects to every configured backend and to the store, as a backup or restore
//! would, and reports for each whether it answered, its version, TLS on/off and whether the
//! credentials were accepted — in seconds, before a scheduled job finds out the hard way.

use crate::config::{set, BackendArgs};
use crate::net::{clients, policy, redact_url, scrub};
use crate::store::ObjectStore;
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::future::Future;
use std::time::Instant;

/// What one check found.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// Where it connected (credentials redacted).
    pub target: String,
    pub ok: bool,
    pub tls: bool,
    /// The credentials were accepted (`None` where there are none to check).
    pub auth: Option<bool>,
    pub version: Option<String>,
    pub error: Option<String>,
    pub millis: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// What a probe learned: the server's version (when it says) and whether credentials were used.
struct Probe {
    version: Option<String>,
    authenticated: bool,
}

/// Checks every configured backend and the store, concurrently; each within the connect and
/// answer timeouts.
pub async fn run(store: &dyn ObjectStore, backends: &BackendArgs) -> Report {
    run_only(store, backends, &[]).await
}

/// Before a job: the store and the backends it will use (`only`, or all when empty) must answer,
/// so that a restore does not write one backend and then find the next one down.
pub async fn preflight(store: &dyn ObjectStore, backends: &BackendArgs, only: &[String]) -> Result<()> {
    let report = run_only(store, backends, only).await;
    if report.ok {
        return Ok(());
    }
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} ({}): {}", c.name, c.target, c.error.as_deref().unwrap_or("failed")))
        .collect();
    Err(anyhow!("preflight failed, nothing was read or written: {}", failed.join("; ")))
}

/// As [`run`], limited to the backends named in `only` (all when empty).
pub async fn run_only(store: &dyn ObjectStore, backends: &BackendArgs, only: &[String]) -> Report {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let s3 = store.url().starts_with("s3://");
    let endpoint = crate::store::s3::endpoint().filter(|_| s3);
    let target = match endpoint {
        Some(e) => format!("{} at {e}", store.url()),
        None => store.url(),
    };
    let tls = s3 && !endpoint.is_some_and(|e| e.starts_with("http://"));
    let mut checks = vec![timed("store", target, tls, probe_store(store)).await];
    let mut pending = Vec::new();
    if let Some(url) = set(&backends.redis_url).filter(|_| wanted("redis")) {
        let tls = url.trim_start().starts_with("rediss://");
        pending.push(Box::pin(timed("redis", redact_url(url), tls, probe_redis(url.to_string())))
            as std::pin::Pin<Box<dyn Future<Output = Check> + Send>>);
    }
    if let Some(g) = backends.neo4j(crate::sources::RestoreMode::Merge).filter(|_| wanted("neo4j")) {
        let tls = g.uri.contains("+s");
        pending.push(Box::pin(timed("neo4j", redact_url(&g.uri), tls, probe_neo4j(g))));
    }
    if let Some(q) = backends.qdrant(None).filter(|_| wanted("qdrant")) {
        let tls = q.url.trim_start().starts_with("https://");
        if q.mode == crate::sources::qdrant::CaptureMode::Points {
            // A URL the gRPC address cannot be derived from is probed as given (and fails there).
            let grpc = q.grpc_url().unwrap_or_else(|_| q.url.clone());
            let tls = grpc.starts_with("https://");
            pending.push(Box::pin(timed("qdrant-grpc", redact_url(&grpc), tls, probe_grpc(grpc, q.api_key.clone()))));
        }
        pending.push(Box::pin(timed("qdrant", redact_url(&q.url), tls, probe_qdrant(q.url, q.api_key))));
    }
    checks.extend(futures::future::join_all(pending).await);
    if let Some(dir) = backends.kv_dir.as_ref().filter(|d| !d.as_os_str().is_empty() && wanted("jsonkv")) {
        let shown = dir.display().to_string();
        checks.push(timed("jsonkv", shown, false, probe_dir(dir.clone())).await);
    }
    Report { ok: checks.iter().all(|c| c.ok), checks }
}

async fn timed(
    name: &'static str,
    target: String,
    tls: bool,
    probe: impl Future<Output = Result<Probe>> + Send,
) -> Check {
    let p = policy();
    let started = Instant::now();
    let outcome = match tokio::time::timeout(p.connect + p.request, probe).await {
        Ok(r) => r,
        Err(_) => Err(anyhow!("no answer in {} s", (p.connect + p.request).as_secs())),
    };
    let millis = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(probe) => Check {
            name,
            target,
            ok: true,
            tls,
            auth: probe.authenticated.then_some(true),
            version: probe.version,
            error: None,
            millis,
        },
        Err(e) => {
            let error = scrub(&format!("{e:#}"));
            let auth = auth_refused(&error).then_some(false);
            Check { name, target, ok: false, tls, auth, version: None, error: Some(error), millis }
        }
    }
}

/// Whether an error says the credentials were refused (as each server words it).
fn auth_refused(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    ["wrongpass", "authentication", "unauthorized", "401", "403", "noauth", "credentials"].iter().any(|w| e.contains(w))
}

async fn probe_store(store: &dyn ObjectStore) -> Result<Probe> {
    // A listing fails on a missing bucket or a refused credential, and reads nothing.
    store.list("ngbak-check-probe").await?;
    Ok(Probe { version: None, authenticated: store.url().starts_with("s3://") })
}

async fn probe_redis(url: String) -> Result<Probe> {
    let mut con = clients::redis(&url).await?;
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut con).await?;
    let version = info.lines().find_map(|l| l.strip_prefix("redis_version:")).map(|v| v.trim().to_string());
    Ok(Probe {
        version,
        authenticated: redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .map(|i| i.redis_settings().password().is_some())
            .unwrap_or(false),
    })
}

async fn probe_neo4j(g: crate::sources::neo4j::Neo4jSettings) -> Result<Probe> {
    let config = clients::neo4j(&g.uri, &g.user, &g.password, &g.database).max_connections(1).build()?;
    let graph = clients::neo4j_connect(config, &g.uri, &g.database).await?;
    // Neo4j says its version here; other Bolt servers (ArcadeDB) may not.
    let mut version = None;
    if let Ok(mut rows) =
        graph.execute(neo4rs::query("CALL dbms.components() YIELD versions RETURN versions[0] AS v")).await
    {
        if let Ok(Some(row)) = rows.next().await {
            version = row.get::<String>("v").ok();
        }
    }
    Ok(Probe { version, authenticated: true })
}

async fn probe_qdrant(url: String, api_key: Option<String>) -> Result<Probe> {
    let rest = crate::sources::qdrant::rest::Rest::new(&url, api_key.as_deref())?;
    let version = rest.version().await?;
    // The version endpoint is open on secured servers: list collections to check the key.
    rest.result(rest.request(reqwest::Method::GET, "/collections"), "list collections").await?;
    Ok(Probe { version: Some(version), authenticated: api_key.is_some() })
}

/// Qdrant's gRPC health check (points mode talks gRPC), at the URL `QdrantSettings::grpc_url` gives.
async fn probe_grpc(url: String, api_key: Option<String>) -> Result<Probe> {
    let client = crate::sources::qdrant::grpc::Grpc::new(&url, api_key.as_deref())?;
    let health = client.health_check().await.map_err(|e| {
        anyhow!("Qdrant gRPC at {} did not answer a health check: {}", redact_url(&url), scrub(&e.to_string()))
    })?;
    Ok(Probe { version: Some(health.version), authenticated: api_key.is_some() })
}

async fn probe_dir(dir: std::path::PathBuf) -> Result<Probe> {
    // A directory that does not exist yet is fine where its parent does: a restore creates it
    // (a backup of it then fails, naming it).
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if tokio::fs::metadata(&dir).await.is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        && tokio::fs::metadata(parent).await.is_ok_and(|m| m.is_dir())
    {
        return Ok(Probe { version: None, authenticated: false });
    }
    let meta = tokio::fs::metadata(&dir).await.map_err(|e| anyhow!("cannot read {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(anyhow!("{} is not a directory", dir.display()));
    }
    Ok(Probe { version: None, authenticated: false })
}

/// The human-readable report.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    for c in &report.checks {
        let status = if c.ok { "ok  " } else { "FAIL" };
        let tls = if c.tls { "TLS on " } else { "TLS off" };
        let auth = match c.auth {
            Some(true) => "auth ok",
            Some(false) => "auth refused",
            None => "no auth",
        };
        s += &format!(
            "{status} {:<7} {} ({tls}, {auth}, version {}, {} ms)\n",
            c.name,
            c.target,
            c.version.as_deref().unwrap_or("unknown"),
            c.millis
        );
        if let Some(e) = &c.error {
            s += &format!("     {e}\n");
        }
    }
    s
}
