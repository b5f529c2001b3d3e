//! What a backend is, said once per backend: its name and kind, how an operator configures it,
//! and — through [`Backend`], implemented by its settings group — its exporter, restorer, probe,
//! secrets and configuration echo. The pipeline, `check`, the secrets and the functions iterate
//! over the registered backends (see `register_backends!` in `mod.rs`) instead of naming them.

use super::{Exporter, RestoreMode, Restorer};
use anyhow::Result;
use futures::future::BoxFuture;

/// Treats an empty setting (as templates write for "not configured") like an absent one.
pub fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The facts about a backend that hold whatever its settings.
#[derive(Debug)]
pub struct Descriptor {
    /// Its name in the archive, in reports and for `--only`.
    pub name: &'static str,
    /// `kv`, `graph` or `vector`: the manifest's kind, and which `--<kind>-mode` its restore takes.
    pub kind: &'static str,
    /// The flag and the variable that configure it (named in errors when it is missing).
    pub flag: &'static str,
    pub env: &'static str,
    /// The statistics that count its records for the `Records` metric, first found first.
    pub record_stats: &'static [&'static str],
}

impl Descriptor {
    /// What to do when a restore needs this backend and it is not configured.
    pub fn how_to_configure(&self) -> String {
        format!("pass {} / {}", self.flag, self.env)
    }
}

/// What a probe learned: the server's version (when it says) and whether credentials were used.
pub struct ProbeFound {
    pub version: Option<String>,
    pub authenticated: bool,
}

/// One connection check of `ngbak check` and of the preflight before every job.
pub struct Probe {
    /// The check's name (the backend's, or e.g. `qdrant-grpc` for a second endpoint).
    pub name: &'static str,
    /// Where it connects, credentials redacted.
    pub target: String,
    pub tls: bool,
    pub run: BoxFuture<'static, Result<ProbeFound>>,
}

/// A setting that may come from AWS Secrets Manager (the template passes ARNs, never values).
pub struct SecretSetting<'a> {
    /// The field that holds the value when the secret is a JSON object.
    pub field: &'static str,
    /// How the operator names the ARN, for error messages.
    pub flag: &'static str,
    /// The value, filled from the secret when it is not given directly.
    pub value: &'a mut Option<String>,
    /// The secret's ARN, when given.
    pub arn: Option<String>,
}

/// A backend's settings group (clap `Args`, flattened into every command that uses backends).
pub trait Backend: Send + Sync {
    fn descriptor(&self) -> &'static Descriptor;
    /// Whether its settings say where the backend is.
    fn is_configured(&self) -> bool;
    /// An exporter of what the settings select. Called only when configured.
    fn exporter(&self) -> Box<dyn Exporter>;
    /// A restorer into the configured target, in `mode` (the one its kind's flag chose), with
    /// the restore-only settings of every backend at hand. Called only when configured.
    fn restorer(&self, mode: RestoreMode, restore: &super::BackendRestoreArgs) -> Box<dyn Restorer>;
    /// The connection checks that prove it answers. Called only when configured.
    fn probes(&self) -> Vec<Probe>;
    /// Its settings that may come from Secrets Manager.
    fn secrets(&mut self) -> Vec<SecretSetting<'_>> {
        Vec::new()
    }
    /// Registers its secret values with the redaction (see [`crate::net::redact`]).
    fn remember_secrets(&self) {}
    /// Adds its settings, secrets redacted, to the configuration echo of the manifest.
    fn echo(&self, config: &mut serde_json::Map<String, serde_json::Value>);
    /// What it holds of a GraphRAG deployment, for the consistency check; `None` for a backend
    /// that cannot say yet. Called only when configured.
    fn deployment(&self, _layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::Deployment>> {
        None
    }
    /// The reader of what it holds of a GraphRAG deployment in its archive entries, for the
    /// check of an archive; `None` for a backend that cannot say. Called configured or not.
    fn archived(&self, _layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::ArchivedFacts>> {
        None
    }
}
