//! Client set-up for each backend with the process's [`Policy`]: TLS trust, timeouts and
//! redaction in one place, so the backends' own modules only say what to connect to.

use super::redact::{redact_url, scrub};
use super::timeouts::{policy, Policy};
use anyhow::{anyhow, Context, Result};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};

/// What to tell an operator about the timeouts that applied.
fn timeouts_hint(p: &Policy) -> String {
    format!(
        "connect timeout {} s (NGBAK_CONNECT_TIMEOUT), answer timeout {} s (NGBAK_REQUEST_TIMEOUT)",
        p.connect.as_secs(),
        p.request.as_secs()
    )
}

/// Where a Redis URL leads, ready to connect (as often as needed: a read that lost its
/// connection opens a new one, see `sources::redis_reads`).
pub struct RedisTarget {
    pub client: redis::Client,
    pub config: AsyncConnectionConfig,
    /// The URL with its password replaced, for messages.
    pub shown: String,
    /// `host:port` (or the socket path).
    pub addr: String,
    pub tls: bool,
}

impl RedisTarget {
    /// One connection attempt, with the error as the client gives it (to tell a lost connection,
    /// worth another try, from a refusal such as a wrong password).
    pub async fn connect_once(&self) -> redis::RedisResult<MultiplexedConnection> {
        self.client.get_multiplexed_async_connection_with_config(&self.config).await
    }

    /// The message for a connection that could not be made.
    pub fn cannot_connect(&self, e: &redis::RedisError) -> anyhow::Error {
        anyhow!(
            "cannot connect to Redis at {} ({}, TLS {}): {}. Check that it is running and reachable, \
             the user and password, and for TLS the CA (--ca-file); {}",
            self.shown,
            self.addr,
            if self.tls { "on" } else { "off" },
            scrub(&e.to_string()),
            timeouts_hint(&policy())
        )
    }
}

/// Sets up a Redis client: `redis://` or `rediss://` (TLS; `#insecure` skips verification only
/// when the URL says so), with the CA file as the trust anchors when one is given, and the
/// policy's connect and response timeouts (the client's own default, 500 ms, fails on a latency
/// spike). Nothing is connected yet.
pub fn redis_target(url: &str) -> Result<RedisTarget> {
    let p = policy();
    let shown = redact_url(url);
    let info = url.into_connection_info().map_err(|e| {
        anyhow!(
            "invalid Redis URL {shown}: {}; use redis://[user:password@]host:port[/db] or rediss://… for TLS",
            scrub(&e.to_string())
        )
    })?;
    let addr = info.addr().to_string();
    let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    let client = match (&p.ca, tls) {
        (Some(ca), true) => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates { client_tls: None, root_cert: Some(ca.pem.clone()) },
        ),
        _ => redis::Client::open(info),
    }
    .map_err(|e| anyhow!("cannot set up the Redis client for {shown}: {}", scrub(&e.to_string())))?;
    let config =
        AsyncConnectionConfig::new().set_connection_timeout(Some(p.connect)).set_response_timeout(Some(p.request));
    Ok(RedisTarget { client, config, shown, addr, tls })
}

/// A Redis connection (see [`redis_target`]), one attempt.
pub async fn redis(url: &str) -> Result<MultiplexedConnection> {
    let target = redis_target(url)?;
    target.connect_once().await.map_err(|e| target.cannot_connect(&e))
}

/// A Bolt driver configuration: `bolt://`, `bolt+s://`, `bolt+ssc://`, `neo4j://`, `neo4j+s://`,
/// `neo4j+ssc://`; basic auth; the CA file as trust anchors for `+s`. neo4rs has one timeout for
/// connecting and for each fetch: the answer timeout, the longer of the two.
pub fn neo4j(uri: &str, user: &str, password: &str, database: &str) -> neo4rs::ConfigBuilder {
    let p = policy();
    let mut config = neo4rs::ConfigBuilder::default()
        .uri(uri)
        .user(user)
        .password(password)
        .db(database)
        .connection_timeout(p.request.max(p.connect));
    if let Some(ca) = &p.ca {
        config = config.with_client_certificate(&ca.path);
    }
    config
}

/// Connects and runs `RETURN 1`, within the connect and answer timeouts together: neo4rs
/// bounds the TCP connect and each fetch, but not the Bolt handshake (a silent server hung it).
pub async fn neo4j_connect(config: neo4rs::Config, uri: &str, database: &str) -> Result<neo4rs::Graph> {
    let p = policy();
    let unreachable = |why: String| {
        anyhow!(
            "cannot reach Neo4j at {} (database {database}): {why}. Is it running and reachable, are \
             NEO4J_USERNAME/NEO4J_PASSWORD right, and for +s schemes is the CA trusted (--ca-file)? {}",
            redact_url(uri),
            timeouts_hint(&p)
        )
    };
    let graph = neo4rs::Graph::connect(config)
        .map_err(|e| anyhow!("invalid Neo4j settings for {}: {}", redact_url(uri), scrub(&e.to_string())))?;
    match tokio::time::timeout(p.connect + p.request, graph.run(neo4rs::query("RETURN 1"))).await {
        Ok(Ok(())) => Ok(graph),
        Ok(Err(e)) => Err(unreachable(scrub(&e.to_string()))),
        Err(_) => Err(unreachable(format!("no answer in {} s", (p.connect + p.request).as_secs()))),
    }
}

/// The HTTP client for Qdrant's REST API: rustls (ring), system roots plus the CA file,
/// connect timeout, and a read timeout between bytes (a snapshot streams for as long as it
/// keeps moving; a server that stops answering fails the call).
pub fn qdrant_http() -> Result<reqwest::Client> {
    let p = policy();
    let mut builder = reqwest::Client::builder().use_rustls_tls().connect_timeout(p.connect).read_timeout(p.request);
    if let Some(ca) = &p.ca {
        for cert in &ca.certs {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_der(cert).context("a certificate of the CA file is not usable")?,
            );
        }
    }
    builder.build().context("cannot set up the HTTPS client for Qdrant")
}

/// The gRPC channel to Qdrant, opened on first use: the policy's connect and answer timeouts,
/// and for `https://` the system roots plus the CA file (rustls with ring, like every client).
pub fn qdrant_channel(url: &str) -> Result<tonic::transport::Channel> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let p = policy();
    let invalid = |e: &dyn std::fmt::Display| {
        anyhow!("cannot set up the Qdrant gRPC client for {}: {}", redact_url(url), scrub(&e.to_string()))
    };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| invalid(&e))?
        .timeout(p.request)
        .connect_timeout(p.connect)
        .user_agent(concat!("ngbak/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| invalid(&e))?;
    match endpoint.uri().scheme_str() {
        Some("https") => {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &p.ca {
                tls = tls.ca_certificate(Certificate::from_pem(&ca.pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| invalid(&e))?;
        }
        Some("http") => {}
        _ => return Err(anyhow!("QDRANT_GRPC_URL {} must start with http:// or https://", redact_url(url))),
    }
    Ok(endpoint.connect_lazy())
}

/// A plain HTTPS client for downloads (`ngbak import <URL>`): the same trust, connect timeout
/// and between-bytes read timeout as every other client.
pub fn http() -> Result<reqwest::Client> {
    qdrant_http().context("cannot set up the HTTPS client")
}
