//! Connections and signed JSON calls.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

use crate::signing::{self, Credentials};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint must be http(s)://host[:port], got {0}")]
    Endpoint(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("connection: {0}")]
    Connect(String),
    #[error("HTTP {status} {error_type}: {message}")]
    Api {
        status: u16,
        error_type: String,
        message: String,
    },
    #[error("unexpected response: {0}")]
    Response(String),
    #[error("input: {0}")]
    Input(String),
}

impl ClientError {
    pub fn error_type(&self) -> Option<&str> {
        match self {
            ClientError::Api { error_type, .. } => Some(error_type),
            _ => None,
        }
    }
}

/// Whom an HTTPS client trusts: the system's roots plus any CA files given (Oxbow's own
/// `<data>/tls/ca.pem` for a self-signed server).
#[derive(Clone)]
pub struct Trust {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trust")
    }
}

impl Trust {
    /// The system's roots and every certificate in `ca_files` (PEM).
    pub fn new(ca_files: &[std::path::PathBuf]) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for path in ca_files {
            let pem = std::fs::read(path)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
                added += 1;
            }
            if added == 0 {
                return Err(ClientError::Tls(format!(
                    "{} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// One KVS endpoint and the credentials to sign for it.
#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port` to connect to.
    addr: String,
    /// The Host header value (what gets signed).
    host: String,
    /// Set for https endpoints: the name the server's certificate must carry.
    server_name: Option<rustls::pki_types::ServerName<'static>>,
    /// Whom https connections trust (system roots when none was given); passed on to the
    /// clients of other endpoints (`with_endpoint`).
    trust: Option<Trust>,
    pub region: String,
    pub credentials: Credentials,
}

impl Client {
    /// A client for an `http://` endpoint, or an `https://` one trusting the system's roots.
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self, ClientError> {
        Self::with_trust(endpoint, region, credentials, None)
    }

    /// A client whose https connections trust `trust` (system roots when `None`).
    pub fn with_trust(
        endpoint: &str,
        region: &str,
        credentials: Credentials,
        trust: Option<Trust>,
    ) -> Result<Self, ClientError> {
        let (secure, rest) = match (
            endpoint.strip_prefix("http://"),
            endpoint.strip_prefix("https://"),
        ) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(ClientError::Endpoint(endpoint.to_string())),
        };
        let host = rest.split('/').next().unwrap_or_default().to_string();
        if host.is_empty() {
            return Err(ClientError::Endpoint(endpoint.to_string()));
        }
        let has_port = host.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
        let addr = if has_port {
            host.clone()
        } else {
            format!("{host}:{}", if secure { 443 } else { 80 })
        };
        let (server_name, trust) = if secure {
            let name = addr
                .rsplit_once(':')
                .map_or(addr.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let name = rustls::pki_types::ServerName::try_from(name)
                .map_err(|_| ClientError::Endpoint(endpoint.to_string()))?;
            let trust = match trust {
                Some(t) => t,
                None => Trust::new(&[])?,
            };
            (Some(name), Some(trust))
        } else {
            (None, trust)
        };
        Ok(Self {
            addr,
            host,
            server_name,
            trust,
            region: region.to_string(),
            credentials,
        })
    }

    /// The endpoint this client calls, `scheme://host[:port]`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.server_name.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host)
    }

    /// The same credentials (and trust) against another endpoint (e.g. a data endpoint).
    pub fn with_endpoint(&self, endpoint: &str) -> Result<Self, ClientError> {
        Self::with_trust(
            endpoint,
            &self.region,
            self.credentials.clone(),
            self.trust.clone(),
        )
    }

    pub(crate) fn headers(&self, extra: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&self.host) {
            h.insert("host", v);
        }
        for (k, v) in extra {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(*k, v);
            }
        }
        h
    }

    pub(crate) fn sign(
        &self,
        headers: &mut HeaderMap,
        method: &str,
        path: &str,
        payload_hash: &str,
    ) {
        signing::sign(
            headers,
            method,
            path,
            payload_hash,
            &self.credentials,
            &self.region,
        );
    }

    /// Opens a connection and sends one request, returning the response with its body still
    /// streaming.
    pub(crate) async fn send<B>(&self, req: Request<B>) -> Result<Response<Incoming>, ClientError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| ClientError::Connect(format!("{}: {e}", self.addr)))?;
        let _ = tcp.set_nodelay(true);
        match (&self.server_name, &self.trust) {
            (Some(name), Some(trust)) => {
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&trust.config));
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| ClientError::Tls(format!("{}: {e}", self.addr)))?;
                exchange(stream, req).await
            }
            _ => exchange(tcp, req).await,
        }
    }

    /// A signed JSON POST; an error status becomes [`ClientError::Api`].
    pub async fn call(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Response<Incoming>, ClientError> {
        let payload = Bytes::from(body.to_string());
        let mut headers = self.headers(&[("content-type", "application/json".into())]);
        self.sign(
            &mut headers,
            "POST",
            path,
            &hex::encode(Sha256::digest(&payload)),
        );
        let mut req = Request::new(Full::new(payload));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = path
            .parse()
            .map_err(|_| ClientError::Input(format!("bad path {path}")))?;
        *req.headers_mut() = headers;
        let resp = self.send(req).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(api_error(resp).await)
    }

    /// A signed JSON POST whose response is JSON.
    pub async fn call_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let resp = self.call(path, body).await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Response(e.to_string()))?
            .to_bytes();
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Response(e.to_string()))
    }

    /// The endpoint for a stream's media API (GetDataEndpoint).
    pub async fn data_endpoint(&self, stream: &str, api: &str) -> Result<Client, ClientError> {
        let v = self
            .call_json(
                "/getDataEndpoint",
                &serde_json::json!({ "StreamName": stream, "APIName": api }),
            )
            .await?;
        let url = v["DataEndpoint"]
            .as_str()
            .ok_or_else(|| ClientError::Response("no DataEndpoint".into()))?;
        self.with_endpoint(url)
    }

    /// Creates the stream unless it exists (as the producer SDK does: DescribeStream, then
    /// CreateStream on 404).
    pub async fn ensure_stream(
        &self,
        stream: &str,
        retention_hours: i64,
    ) -> Result<(), ClientError> {
        match self
            .call_json(
                "/describeStream",
                &serde_json::json!({ "StreamName": stream }),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.error_type() == Some("ResourceNotFoundException") => {
                self.call_json(
                    "/createStream",
                    &serde_json::json!({ "StreamName": stream, "DataRetentionInHours": retention_hours, "MediaType": "video/h264,audio/aac" }),
                )
                .await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// GetMedia: the MKV body as it streams.
    pub async fn get_media(
        &self,
        stream: &str,
        start_selector: serde_json::Value,
    ) -> Result<Incoming, ClientError> {
        let resp = self
            .call(
                "/getMedia",
                &serde_json::json!({ "StreamName": stream, "StartSelector": start_selector }),
            )
            .await?;
        Ok(resp.into_body())
    }
}

/// One request over a fresh HTTP/1.1 connection on `io`.
async fn exchange<S, B>(io: S, req: Request<B>) -> Result<Response<Incoming>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))
}

pub(crate) async fn api_error(resp: Response<Incoming>) -> ClientError {
    let status = resp.status().as_u16();
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["Message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    ClientError::Api {
        status,
        error_type,
        message,
    }
}
