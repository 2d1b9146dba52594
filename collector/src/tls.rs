//! Native TLS for `serve` (`[tls]` in collector.toml): the certificate chain and its
//! private key from PEM files, rustls with the ring provider (no OpenSSL). Handshakes
//! run in each connection's own task with a time limit ([`crate::connections`]), so a
//! slow or silent client never holds up the others. Behind a reverse proxy that
//! terminates TLS, leave `[tls]` out.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// `[tls]`: PEM files readable by the collector's user.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate, followed by any intermediate certificates.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("TLS key {path}: {message}")]
    Key { path: String, message: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The rustls server configuration for `tls` (HTTP/1.1, TLS 1.2 and 1.3).
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certificate_error = |path: &Path, message: String| TlsError::Certificate {
        path: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| certificate_error(&tls.cert_file, error.to_string()))?;
    if chain.is_empty() {
        return Err(certificate_error(
            &tls.cert_file,
            "no certificate in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|error| TlsError::Key {
        path: tls.key_file.display().to_string(),
        message: error.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Setup(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Key {
            path: tls.key_file.display().to_string(),
            message: format!("does not fit the certificate: {error}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
