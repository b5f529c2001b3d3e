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

/// Sets the process's policy (a Lambda function keeps it across invocations).
pub fn configure(policy: Policy) {
    *POLICY.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(policy));
}

/// The process's policy (the defaults until [`configure`] is called).
pub fn policy() -> Arc<Policy> {
    POLICY.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}
