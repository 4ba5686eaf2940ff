//! TLS to PostgreSQL (when the catalog URL asks for it, see `postgres_url`) over the rustls
//! the server already uses, so no second TLS stack is built. The server's certificate is always verified (against
//! the roots the connector was given): a catalog holds every credential of the deployment, and
//! an unverified connection would hand them to whoever sits in between. The connector comes
//! from the caller, which knows the system's roots and any CA files configured.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// Makes a TLS handshake per catalog connection, or none: without a connector the URL did not
/// ask for TLS, tokio-postgres is told not to use TLS, and so never asks for a
/// handshake. One type for both keeps one connection path.
#[derive(Clone)]
pub struct PgTls(pub Option<TlsConnector>);

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgHandshake;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgHandshake, io::Error> {
        let Some(connector) = &self.0 else {
            return Ok(PgHandshake(None));
        };
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(PgHandshake(Some((connector.clone(), name))))
    }
}

/// One connection's handshake, to the host it was made for (none without a connector).
pub struct PgHandshake(Option<(TlsConnector, ServerName<'static>)>);

impl TlsConnect<Socket> for PgHandshake {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let Some((connector, name)) = self.0 else {
                return Err(io::Error::other("TLS to PostgreSQL is not configured"));
            };
            let stream = connector.connect(name, socket).await?;
            Ok(PgTlsStream(Box::new(stream)))
        })
    }
}

/// A TLS connection to PostgreSQL.
pub struct PgTlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for PgTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl TlsStream for PgTlsStream {
    /// Without channel binding: SCRAM still authenticates both sides, and the certificate
    /// check above is what ties the connection to the server.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
