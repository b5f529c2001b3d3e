//! The timeout and retry policy: one per process, set from [`super::NetArgs`] at start-up and
//! read by every client as it connects, so no network call can wait forever.

use super::tls::CaBundle;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Default connect timeout (seconds): generous for a cross-region TLS handshake.
pub const CONNECT_SECS: u64 = 10;
/// Default wait for one answer (seconds): well above a latency spike, well below Lambda's 15 min.
pub const REQUEST_SECS: u64 = 60;
/// Default attempts per idempotent call.
pub const MAX_ATTEMPTS: u32 = 3;

#[derive(Clone, Debug)]
pub struct Policy {
    pub connect: Duration,
    pub request: Duration,
    pub max_attempts: u32,
    /// Extra trust anchors from `--ca-file`.
    pub ca: Option<Arc<CaBundle>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            connect: Duration::from_secs(CONNECT_SECS),
            request: Duration::from_secs(REQUEST_SECS),
            max_attempts: MAX_ATTEMPTS,
            ca: None,
        }
    }
}

static POLICY: RwLock<Option<Arc<Policy>>> = RwLock::new(None);

/// The first pause before an idempotent call is retried (Redis reads, Qdrant gRPC); it doubles
/// up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The backoff between `attempts` attempts (`NGBAK_MAX_ATTEMPTS` for idempotent calls): from
/// [`FIRST_BACKOFF`], doubling up to [`MAX_BACKOFF`], with jitter.
pub fn backoff(attempts: u32) -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(FIRST_BACKOFF)
        .with_max_delay(MAX_BACKOFF)
        .with_max_times(attempts.max(1) as usize - 1)
        .with_jitter()
}

/// Sets the process's policy (a Lambda function keeps it across invocations).
pub fn configure(policy: Policy) {
    *POLICY.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(policy));
}

/// The process's policy (the defaults until [`configure`] is called).
pub fn policy() -> Arc<Policy> {
    POLICY.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}
