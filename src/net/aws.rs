//! AWS SDK clients (S3, Secrets Manager) on the one TLS stack, with the timeout and retry policy.
//!
//! The SDK crates are built without their default HTTPS client (it would bring aws-lc-rs, a
//! second crypto provider), so every SDK config must come from [`loader`].

use super::timeouts::policy;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder;

/// An HTTPS client with rustls on ring, trusting the system roots plus `--ca-file`.
pub fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    let mut trust = TrustStore::default();
    if let Some(ca) = &policy().ca {
        trust = trust.with_pem_certificate(ca.pem.clone());
    }
    let context = TlsContext::builder().with_trust_store(trust).build().expect("a TLS context with a trust store");
    Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).tls_context(context).build_https()
}

/// The timeouts of [`policy`]: connect, and the wait for a response to start (request body
/// included, so a stalled UploadPart fails too).
pub fn timeouts() -> TimeoutConfig {
    let p = policy();
    TimeoutConfig::builder().connect_timeout(p.connect).read_timeout(p.request).build()
}

/// `aws_config::defaults` with our HTTPS client, timeouts and bounded retries (the SDK's
/// standard mode: exponential backoff with jitter, only for retryable errors).
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(policy().max_attempts))
}

/// Says on stderr, before each retry of an AWS call, which endpoint, which call, which attempt
/// and how long each attempt may wait: an endpoint that accepts connections and never answers
/// would otherwise keep the terminal silent for minutes (by default three attempts of a minute).
#[derive(Debug)]
pub struct RetriesAloud {
    /// Where the calls go, redacted.
    pub endpoint: String,
}

impl aws_sdk_s3::config::Intercept for RetriesAloud {
    fn name(&self) -> &'static str {
        "RetriesAloud"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        use aws_smithy_runtime_api::client::retries::RequestAttempts;
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let p = policy();
            let call = cfg.load::<Metadata>().map_or("a request", |m| m.name());
            eprintln!(
                "ngbak: {call} to {}: attempt {} of {} failed or got no answer within {} s \
                 (NGBAK_REQUEST_TIMEOUT); retrying, attempt {attempt} of {}",
                self.endpoint,
                attempt - 1,
                p.max_attempts,
                p.request.as_secs(),
                p.max_attempts
            );
        }
        Ok(())
    }
}
