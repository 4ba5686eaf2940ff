//! The one accept loop every listener runs (the main one, the plain one beside TLS, the IoT
//! credentials provider's mutual-TLS one): TLS with a bounded handshake, the first-head
//! check, the write-stall guard, HTTP/1.1 with keep-alive, one task per connection, and a
//! graceful drain on shutdown. What a listener serves is the list of API families it routes
//! to; the front door does the rest.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::api::{Conn, RouteFn};
use crate::front;
use crate::head_check::{check_first_head, MAX_HEAD};
use crate::stall::StallGuard;
use crate::state::AppState;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound socket and what it serves.
pub struct Listener {
    pub tcp: TcpListener,
    /// TLS (with client certificates required, for the IoT listener), or plain TCP.
    pub tls: Option<TlsAcceptor>,
    /// The API families this listener routes to.
    pub routes: &'static [RouteFn],
    /// A plain listener beside a TLS one (`--http-listen`).
    pub plain_beside_tls: bool,
}

pub async fn run(listener: Listener, state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    // Every connection task holds a clone; when all are gone, the drain is over.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let listener = Arc::new(listener);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            peer,
            secure: listener.tls.is_some(),
            plain_beside_tls: listener.plain_beside_tls,
            client_certificate: None,
        };
        let (state, listener, open) = (Arc::clone(&state), Arc::clone(&listener), open_tx.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let result = match &listener.tls {
                None => serve(tcp, conn, listener.routes, state, stop).await,
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let client_certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| Arc::from(c.as_ref()));
                    let conn = Conn {
                        client_certificate,
                        ..conn
                    };
                    serve(stream, conn, listener.routes, state, stop).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(open_tx);
    if tokio::time::timeout(DRAIN_TIMEOUT, open_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the drain timeout");
    }
}

/// Serves HTTP/1.1 on one accepted (and, for TLS, handshaken) connection.
async fn serve<S>(
    io: S,
    conn: Conn,
    routes: &'static [RouteFn],
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(io) = check_first_head(io, HEADER_TIMEOUT).await else {
        return Ok(());
    };
    let stall = Duration::from_millis(state.config.limits.write_stall_timeout_ms);
    let service = hyper::service::service_fn(move |req| {
        let (state, conn) = (Arc::clone(&state), conn.clone());
        async move { Ok::<_, std::convert::Infallible>(front::handle(state, routes, req, conn).await) }
    });
    let mut builder = http1::Builder::new();
    // The buffer bounds what hyper queues for a client that stops reading (with the
    // response's own small window, what such a reader costs) and the largest head it reads,
    // the same limit as the first-head check.
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    // With upgrades: a signaling handshake hands its connection over to WebSocket.
    let connection = builder
        .serve_connection(TokioIo::new(StallGuard::new(io, stall)), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        _ = async { drop(stop.wait_for(|s| *s).await) } => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}
