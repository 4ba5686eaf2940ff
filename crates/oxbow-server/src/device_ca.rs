//! Oxbow's device CA: issues device certificates the way `aws iot
//! create-keys-and-certificate` does. Its key and certificate are created once in
//! `<data>/iot/`, and the IoT credentials listener trusts it for client certificates.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

use crate::tls::write_private;
use crate::ServerError;

fn ca_err(e: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(format!("IoT CA: {e}"))
}

pub struct IotCa {
    key: KeyPair,
    /// The CA as a signer. Re-derived from the stored key and the fixed subject on every
    /// start: children name the issuer by subject and key, which both stay the same.
    signer: Certificate,
    /// The CA certificate as first written, which clients and the listener trust.
    pub pem: String,
    pub path: PathBuf,
}

/// A certificate and key issued to a device.
pub struct Issued {
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub public_key_pem: String,
    pub der: Vec<u8>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Oxbow IoT device CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl IotCa {
    /// Loads the CA from `dir`, creating it on first use.
    pub fn open_or_create(dir: &Path) -> Result<Self, ServerError> {
        let path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let (key, pem) = if path.exists() && key_path.exists() {
            let key_pem = fs::read_to_string(&key_path).map_err(ca_err)?;
            let key = KeyPair::from_pem(&key_pem).map_err(ca_err)?;
            (key, fs::read_to_string(&path).map_err(ca_err)?)
        } else {
            fs::create_dir_all(dir).map_err(ca_err)?;
            let key = KeyPair::generate().map_err(ca_err)?;
            let pem = ca_params().self_signed(&key).map_err(ca_err)?.pem();
            write_private(&key_path, &key.serialize_pem())?;
            fs::write(&path, &pem).map_err(ca_err)?;
            tracing::info!(path = %path.display(), "created the IoT device CA");
            (key, pem)
        };
        let signer = ca_params().self_signed(&key).map_err(ca_err)?;
        Ok(Self {
            key,
            signer,
            pem,
            path,
        })
    }

    /// The CA as PEM, certificate and key: what a cluster's nodes share (see [`IotCa::adopt`]).
    pub fn to_pems(&self) -> (String, String) {
        (self.pem.clone(), self.key.serialize_pem())
    }

    /// Makes `dir` hold the given CA (the cluster's, made by another node) and loads it, so
    /// certificates any node makes are accepted by every node's IoT listener.
    pub fn adopt(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<Self, ServerError> {
        fs::create_dir_all(dir).map_err(ca_err)?;
        write_private(&dir.join("ca-key.pem"), key_pem)?;
        fs::write(dir.join("ca.pem"), cert_pem).map_err(ca_err)?;
        tracing::info!(dir = %dir.display(), "adopted the cluster's IoT device CA");
        Self::open_or_create(dir)
    }

    /// A new key pair and a client certificate for it, signed by this CA.
    pub fn issue(&self) -> Result<Issued, ServerError> {
        let key = KeyPair::generate().map_err(ca_err)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "Oxbow IoT device");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &self.signer, &self.key)
            .map_err(ca_err)?;
        Ok(Issued {
            certificate_pem: cert.pem(),
            private_key_pem: key.serialize_pem(),
            public_key_pem: key.public_key_pem(),
            der: cert.der().to_vec(),
        })
    }
}

/// AWS IoT's certificate id: the hex SHA-256 of the DER encoding.
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The first certificate in a PEM text, as DER.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

/// Whether `der` parses as an X.509 certificate (what IoT's RegisterCertificate checks
/// before anything else).
pub fn is_certificate(der: &[u8]) -> bool {
    let der = rustls::pki_types::CertificateDer::from(der);
    webpki::EndEntityCert::try_from(&der).is_ok()
}
