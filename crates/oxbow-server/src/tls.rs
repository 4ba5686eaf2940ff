//! TLS for the listener: operator-supplied PEM files, or a self-signed CA plus a server
//! certificate for localhost, created once in the data directory so clients can keep trusting
//! the same CA file (the KVS C SDKs take it through `AWS_KVS_CACERT_PATH`).

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::ServerError;

fn tls_err(e: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(e.to_string())
}

/// The server's certificate chain and key, and (self-signed) the CA file clients should trust.
pub struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub ca: Option<PathBuf>,
}

/// Loads the configured certificate, or creates the self-signed one.
pub fn identity(
    config: &TlsConfig,
    data_dir: &Path,
    public_url: &str,
) -> Result<Identity, ServerError> {
    let (cert_path, key_path, ca) = match config {
        TlsConfig::Files { cert, key } => (cert.clone(), key.clone(), None),
        TlsConfig::SelfSigned => {
            let dir = data_dir.join("tls");
            let ca = self_signed(&dir, public_url)?;
            (dir.join("server.pem"), dir.join("server-key.pem"), Some(ca))
        }
    };
    Ok(Identity {
        certs: load_certs(&cert_path)?,
        key: load_key(&key_path)?,
        ca,
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The acceptor of the main listener.
pub fn acceptor(id: &Identity) -> Result<TlsAcceptor, ServerError> {
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(id.certs.clone(), id.key.clone_key())
        .map_err(tls_err)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The connector Oxbow's own outgoing HTTPS (notification webhooks) uses: the system's root
/// certificates and any CA files given.
pub fn client_connector(extra_cas: &[PathBuf]) -> Result<tokio_rustls::TlsConnector, ServerError> {
    connector(extra_cas.iter(), None, true)
}

/// The connector for the PostgreSQL catalog: the system's roots, `--catalog-ca` and the URL's
/// `sslrootcert`; the URL's `sslcert`/`sslkey` as the node's client certificate; the host name
/// checked unless the URL says `sslmode=verify-ca`.
pub fn catalog_connector(
    extra_cas: &[PathBuf],
    tls: &oxbow_catalog::CatalogTls,
) -> Result<tokio_rustls::TlsConnector, ServerError> {
    let identity = tls
        .client_identity
        .as_ref()
        .map(|(cert, key)| Ok::<_, ServerError>((load_certs(cert)?, load_key(key)?)))
        .transpose()?;
    connector(
        extra_cas.iter().chain(&tls.root_cert),
        identity,
        tls.check_host_name,
    )
}

fn connector<'a>(
    extra_cas: impl Iterator<Item = &'a PathBuf>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    check_host_name: bool,
) -> Result<tokio_rustls::TlsConnector, ServerError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    for path in extra_cas {
        for cert in load_certs(path)? {
            roots.add(cert).map_err(tls_err)?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    let builder = if check_host_name {
        builder.with_root_certificates(roots)
    } else {
        let chain = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(tls_err)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
    };
    let config = match identity {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// libpq's `verify-ca`: the certificate must chain to a trusted root, whatever host it names.
/// rustls checks the chain before the name, so a name mismatch is the only error let through.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The acceptor of the TURN-over-TLS listener: the main certificate, no ALPN (TURN clients
/// offer none, or `stun.turn`).
pub fn turn_acceptor(id: &Identity) -> Result<TlsAcceptor, ServerError> {
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(id.certs.clone(), id.key.clone_key())
        .map_err(tls_err)?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The acceptor of the IoT credentials listener: a client certificate is required and must
/// chain to one of `client_cas` (PEM files).
pub fn mutual_acceptor(id: &Identity, client_cas: &[PathBuf]) -> Result<TlsAcceptor, ServerError> {
    let mut roots = rustls::RootCertStore::empty();
    for path in client_cas {
        for cert in load_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
        }
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(tls_err)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(id.certs.clone(), id.key.clone_key())
        .map_err(tls_err)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let file = fs::File::open(path).map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_err(format!("{}: no certificate found", path.display())));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    let file = fs::File::open(path).map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))?
        .ok_or_else(|| tls_err(format!("{}: no private key found", path.display())))
}

/// Creates `ca.pem`, `server.pem` and `server-key.pem` in `dir` unless they all exist.
/// Returns the CA path.
fn self_signed(dir: &Path, public_url: &str) -> Result<PathBuf, ServerError> {
    let ca_path = dir.join("ca.pem");
    let files = [
        &ca_path,
        &dir.join("server.pem"),
        &dir.join("server-key.pem"),
    ];
    if files.iter().all(|p| p.exists()) {
        return Ok(ca_path);
    }
    fs::create_dir_all(dir).map_err(tls_err)?;
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Oxbow local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_err)?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = url_host(public_url) {
        names.push(host);
    }
    names.dedup();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Oxbow server");
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()
        .map_err(tls_err)?;
    let key = KeyPair::generate().map_err(tls_err)?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(tls_err)?;

    write_private(&dir.join("ca-key.pem"), &ca_key.serialize_pem())?;
    write_private(&dir.join("server-key.pem"), &key.serialize_pem())?;
    fs::write(dir.join("server.pem"), cert.pem()).map_err(tls_err)?;
    fs::write(&ca_path, ca_cert.pem()).map_err(tls_err)?;
    tracing::info!(dir = %dir.display(), "created a self-signed CA and server certificate");
    Ok(ca_path)
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), ServerError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_urls() {
        assert_eq!(
            url_host("https://kvs.example.net").as_deref(),
            Some("kvs.example.net")
        );
        assert_eq!(
            url_host("https://10.0.0.1:8443/x").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(url_host("http://[::1]:80").as_deref(), Some("::1"));
    }
}
