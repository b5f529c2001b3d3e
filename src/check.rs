//! `ngbak check`: connects to every configured backend and to the store, as a backup or restore
//! would, and reports for each whether it answered, its version, TLS on/off and whether the
//! credentials were accepted — in seconds, before a scheduled job finds out the hard way.

use crate::backends::descriptor::ProbeFound;
use crate::config::BackendArgs;
use crate::net::{policy, scrub};
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
    let message = format!("preflight failed, nothing was read or written: {}", failed.join("; "));
    Err(crate::failure::FailureKind::BackendUnavailable.marked(message).into())
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
    let probes = backends.configured().filter(|b| wanted(b.descriptor().name)).flat_map(|b| b.probes());
    let pending = probes.map(|p| timed(p.name, p.target, p.tls, p.run));
    checks.extend(futures::future::join_all(pending).await);
    Report { ok: checks.iter().all(|c| c.ok), checks }
}

async fn timed(
    name: &'static str,
    target: String,
    tls: bool,
    probe: impl Future<Output = Result<ProbeFound>> + Send,
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

async fn probe_store(store: &dyn ObjectStore) -> Result<ProbeFound> {
    // A listing fails on a missing bucket or a refused credential, and reads nothing.
    store.list("ngbak-check-probe").await?;
    Ok(ProbeFound { version: None, authenticated: store.url().starts_with("s3://") })
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
