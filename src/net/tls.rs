//! The one TLS stack: rustls with ring (see Cargo.toml for why ring), and the CA bundle from
//! `--ca-file`, read and checked once so that a wrong path fails before any connection.

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};

/// Makes ring the process-wide rustls provider. Clients that build their TLS config with the
/// default provider (neo4rs, tonic, redis) would otherwise panic when rustls cannot tell which
/// provider to use; calling this twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// CA certificates from a PEM file.
#[derive(Clone)]
pub struct CaBundle {
    pub path: PathBuf,
    /// The file as read (PEM), for clients that take PEM bytes.
    pub pem: Vec<u8>,
    pub certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaBundle({}, {} certificates)", self.path.display(), self.certs.len())
    }
}

impl CaBundle {
    pub fn load(path: &Path) -> Result<Self> {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA file {} (--ca-file / NGBAK_CA_FILE)", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().with_context(|| {
            format!(
                "the CA file {} is not valid PEM; give one or more -----BEGIN CERTIFICATE----- blocks",
                path.display()
            )
        })?;
        if certs.is_empty() {
            bail!("the CA file {} holds no certificate; give a PEM bundle of CA certificates", path.display());
        }
        Ok(CaBundle { path: path.to_path_buf(), pem, certs })
    }
}
