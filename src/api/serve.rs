//! `ngbak serve`: the API and the operator page on a local address, over the configured store
//! (a directory works: no cloud needed). A bearer token always guards it; beyond loopback it
//! also needs TLS (`--tls-cert/--tls-key`) or `--insecure-behind-proxy` (a proxy that does TLS).

use super::{Api, Host};
use crate::config::{BackendArgs, RestoreArgs, TuningArgs};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a stopping server waits for the running job to finish its own clean-up.
const STOP_GRACE: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, env = "NGBAK_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// A PEM certificate chain: serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen beyond loopback without TLS, because a proxy in front does TLS.
    #[arg(long)]
    pub insecure_behind_proxy: bool,
    /// The largest archive `POST /api/v1/uploads` takes, in bytes.
    #[arg(long, env = "NGBAK_API_MAX_UPLOAD_BYTES", default_value_t = super::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
    #[command(flatten)]
    pub backends: BackendArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub restore: RestoreArgs,
}

/// Serves until SIGINT/SIGTERM; then the running job stops cleanly and queued ones are marked
/// stopped.
pub async fn serve(args: ServeArgs, mut config: crate::lambda::FunctionConfig) -> Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    if !args.listen.ip().is_loopback() && tls.is_none() && !args.insecure_behind_proxy {
        bail!(
            "refusing to listen on {} without TLS: the token would cross the network in clear. Pass --tls-cert and \
             --tls-key, or --insecure-behind-proxy when a proxy in front of ngbak does TLS",
            args.listen
        );
    }
    crate::secrets::resolve(&mut config.backends).await?;
    let store = config.store.open().await?;
    let (token, generated) = match std::env::var("NGBAK_API_TOKEN").ok().filter(|t| !t.is_empty()) {
        Some(token) => (token, false),
        None => (super::auth::new_token(), true),
    };
    let (queue, queued) = tokio::sync::mpsc::unbounded_channel();
    let host_name = format!("ngbak serve on {} (pid {})", crate::telemetry::host_name(), std::process::id());
    let keys = config.auth.keys().await?;
    let api = Arc::new(Api {
        store,
        keys,
        config,
        host: Host::Serve { queue },
        token: Some(token.clone()),
        max_upload_bytes: args.max_upload_bytes,
        host_name,
    });
    let worker = tokio::spawn(super::work_queue(api.clone(), queued));
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("ngbak serve: listening on {scheme}://{address}/ (store {})", api.store.url());
    if generated {
        // Printed once, as Jupyter does; set NGBAK_API_TOKEN to choose it instead.
        eprintln!("ngbak serve: open {scheme}://{address}/?token={token}");
    } else {
        eprintln!("ngbak serve: the token is NGBAK_API_TOKEN's");
    }
    let app = super::router(api.clone());
    let served = match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(crate::stop::signalled()).await,
        Some(acceptor) => {
            let listener = TlsListener { tcp: listener, acceptor };
            axum::serve(listener, app).with_graceful_shutdown(crate::stop::signalled()).await
        }
    };
    served.context("serving")?;
    eprintln!("ngbak serve: stopping; waiting for the running job to stop cleanly");
    drop(api);
    if tokio::time::timeout(STOP_GRACE, worker).await.is_err() {
        eprintln!("ngbak serve: the running job did not stop within {} s", STOP_GRACE.as_secs());
    }
    Ok(())
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate chain {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the private key {}", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not go together")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections and completes their TLS handshakes; a failed handshake is logged
/// and the next connection taken.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => tracing::info!("TLS handshake with {peer} failed: {e}"),
                Err(_) => tracing::info!("TLS handshake with {peer} timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
