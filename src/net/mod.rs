//! How ngbak reaches servers: one TLS stack and trust store, one timeout and retry policy, and
//! redaction of credentials, shared by every client (Redis, Bolt, Qdrant REST and gRPC, S3,
//! Secrets Manager) so that each behaves the same way and is configured in one place.

pub mod aws;
pub mod clients;
pub mod redact;
pub mod secret_value;
pub mod timeouts;
pub mod tls;

pub use redact::{redact_url, scrub, Secret};
pub use timeouts::{policy, Policy};

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// The connection settings every command and both Lambda functions take.
#[derive(Args, Clone, Debug, Default)]
pub struct NetArgs {
    /// PEM file of CA certificates to trust (private CA, self-signed test servers). S3 and Qdrant
    /// REST trust it besides the system roots; Redis and Bolt trust only it. Qdrant gRPC cannot
    /// take it (qdrant-client builds its TLS from the system roots): set SSL_CERT_FILE there.
    #[arg(long, env = "NGBAK_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for a connection (TCP, TLS and authentication) to any server.
    #[arg(long, env = "NGBAK_CONNECT_TIMEOUT", global = true, default_value_t = timeouts::CONNECT_SECS)]
    pub connect_timeout: u64,
    /// Seconds to wait for any one answer (a Redis reply, a Bolt fetch, a Qdrant call, the start
    /// of an S3 response) before the attempt fails.
    #[arg(long, env = "NGBAK_REQUEST_TIMEOUT", global = true, default_value_t = timeouts::REQUEST_SECS)]
    pub request_timeout: u64,
    /// Attempts per idempotent call (S3 requests, Redis reads) before the job fails.
    #[arg(long, env = "NGBAK_MAX_ATTEMPTS", global = true, default_value_t = timeouts::MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,
}

impl NetArgs {
    /// Installs the crypto provider, reads the CA file and makes this the process's policy.
    /// Call once, before the first connection.
    pub fn apply(&self) -> Result<()> {
        tls::install_crypto_provider();
        let ca = match self.ca_file.as_deref().filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => Some(std::sync::Arc::new(tls::CaBundle::load(path)?)),
            None => None,
        };
        timeouts::configure(Policy {
            connect: std::time::Duration::from_secs(self.connect_timeout.max(1)),
            request: std::time::Duration::from_secs(self.request_timeout.max(1)),
            max_attempts: self.max_attempts.max(1),
            ca,
        });
        Ok(())
    }
}
