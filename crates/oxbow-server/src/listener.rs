//! The accept loop: plain TCP or TLS, HTTP/1.1 with keep-alive, one task per connection.
//! A slow TLS handshake is bounded so a stalled client cannot hold a task forever.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::front;
use crate::head_check::{check_first_head, MAX_HEAD};
use crate::stall::StallGuard;
use crate::state::AppState;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
    plain_beside_tls: bool,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
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
        let state = Arc::clone(&state);
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let stall = Duration::from_millis(state.config.limits.write_stall_timeout_ms);
        let conn = front::Conn {
            peer,
            secure: tls.is_some(),
            plain_beside_tls,
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(front::handle(state, req, conn).await) }
            });
            let builder = {
                let mut b = http1::Builder::new();
                // The buffer bounds what hyper queues for a client that stops reading (with
                // the response's own small window, what such a reader costs) and the largest
                // head it reads, the same limit as the first-head check.
                b.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_HEAD)
                    .keep_alive(true);
                b
            };
            let result = match tls {
                None => {
                    let Some(io) = check_first_head(tcp, HEADER_TIMEOUT).await else {
                        return;
                    };
                    let conn =
                        builder.serve_connection(TokioIo::new(StallGuard::new(io, stall)), service);
                    watcher.watch(conn).await
                }
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
                    let Some(io) = check_first_head(stream, HEADER_TIMEOUT).await else {
                        return;
                    };
                    let conn =
                        builder.serve_connection(TokioIo::new(StallGuard::new(io, stall)), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the drain timeout");
    }
}
