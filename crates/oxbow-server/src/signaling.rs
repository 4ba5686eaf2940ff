//! KVS WebRTC signaling over WebSocket: `GET /?X-Amz-ChannelARN=...[&X-Amz-ClientId=...]`
//! with a presigned query, as every SDK opens it. A client id makes the caller a viewer,
//! none the master. The handshake is authorized (`ConnectAsMaster` / `ConnectAsViewer` on the
//! ARN as named, before the channel is looked up), admitted by the hub (the viewer limit),
//! upgraded, and then a thin driver moves text frames between the socket and the hub
//! (`relay/`), which does the routing.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderValue, Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use oxbow_catalog::{AccessKey, ChannelRecord};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::{Message, Role as WsRole, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::access;
use crate::api::{Call, Handled, Operation};
use crate::authz::RequestEnv;
use crate::deadline::sleep_until;
use crate::http::{forbidden_on_denial, full, Reply};
use crate::relay::{ConnId, Out, Refused, Relay, Role};
use crate::resource::check_client_id;
use crate::resource::lookup::{self, Need};
use crate::state::AppState;

/// Routes the handshake: `GET /` naming a channel.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    let names_channel = parts
        .uri
        .query()
        .is_some_and(|q| q.contains("X-Amz-ChannelARN="));
    (parts.method == Method::GET && parts.uri.path() == "/" && names_channel)
        .then(|| Box::new(Handshake) as Box<dyn Operation>)
}

/// Judges the caller itself: the query is checked before the ARN it names is judged.
struct Handshake;

impl Operation for Handshake {
    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move { accept(state, call).await })
    }

    /// Denials are 403 here, as the WebRTC guide lists them.
    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        forbidden_on_denial(e, request_id)
    }
}

/// Who connects to which channel, from the query.
struct Joining {
    channel: ChannelRecord,
    role: Role,
}

async fn accept(state: &Arc<AppState>, mut call: Call) -> Result<Reply, ApiError> {
    let joining = authorize(state, call.key()?, call.parts.uri.query(), call.env()).await?;
    let headers = &call.parts.headers;
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(key)) = (upgrade, key) else {
        return Err(ApiError::invalid_argument(
            "The signaling endpoint takes WebSocket connections only.",
        ));
    };
    // The C SDK (libwebsockets) asks for the subprotocol `wss`; browsers ask for none. Only
    // what the client asked for is ever echoed.
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.split(',').any(|p| p.trim() == "wss"))
        .map(|_| HeaderValue::from_static("wss"));
    let Some(on_upgrade) = call.parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::internal(
            "accept a WebSocket upgrade hyper did not offer",
        ));
    };
    let api = match joining.role {
        Role::Master => "ConnectAsMaster",
        Role::Viewer(_) => "ConnectAsViewer",
    };
    // In a cluster only the channel's owner relays it: a connection elsewhere is refused
    // (retryable), so the SDK asks GetSignalingChannelEndpoint again.
    let lease = crate::leases::channel_key(&joining.channel.name);
    if let Some(leases) = &state.leases {
        if let Some(url) = leases
            .claim(state.catalog.as_ref(), &lease)
            .await?
            .elsewhere()
        {
            return Err(crate::leases::not_here(&url));
        }
    }
    let tps = state.config.limits.signaling_connect_tps;
    state.limit_rate(&joining.channel.arn, api, tps, "channel")?;
    let ttl = Duration::from_secs(joining.channel.message_ttl_seconds.clamp(5, 120) as u64);
    let (conn, outbox) = state
        .relay
        .connect(&joining.channel.arn, ttl, joining.role.clone())
        .map_err(|Refused::TooManyViewers| {
            ApiError::new(
                ErrorKind::ClientLimitExceeded,
                "More than the supported maximum number of viewers are connected to the channel.",
            )
        })?;
    tracing::info!(channel = %joining.channel.name, role = ?joining.role, conn, "signaling connection");
    let relay = Arc::clone(&state.relay);
    let draining = state.draining.subscribe();
    if let Some(leases) = &state.leases {
        leases.pin(&lease);
    }
    let held = Arc::clone(state);
    let max_frame = state.config.limits.signaling_max_payload + 4096;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(conn, error = %e, "signaling upgrade failed");
                relay.disconnect(conn);
                if let Some(leases) = &held.leases {
                    leases.unpin(&lease);
                }
                return;
            }
        };
        // Small buffers: an idle connection should cost little (tungstenite's defaults are
        // 128 KiB each way), and messages are at most a few KiB. Writes go out at once.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_write_buffer_size(max_frame * 4)
            .max_message_size(Some(max_frame))
            .max_frame_size(Some(max_frame));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), WsRole::Server, Some(config))
                .await;
        drive(ws, &relay, conn, outbox, draining).await;
        relay.disconnect(conn);
        if let Some(leases) = &held.leases {
            leases.unpin(&lease);
        }
    });
    let mut r = Response::new(full(bytes::Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    Ok(r)
}

/// Authorizes a handshake (already authenticated as `key`): the channel must exist under
/// exactly that ARN, and the key may connect as master (no `X-Amz-ClientId`) or viewer.
async fn authorize(
    state: &AppState,
    key: &AccessKey,
    query: Option<&str>,
    env: RequestEnv,
) -> Result<Joining, ApiError> {
    let q: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let arn = q.get("X-Amz-ChannelARN").map(String::as_str);
    let client_id = q.get("X-Amz-ClientId").map(String::as_str);
    Checks::new()
        .string("X-Amz-ChannelARN", arn, &v::RESOURCE_ARN)
        .finish()?;
    if let Some(id) = client_id {
        check_client_id(id)?;
    }
    let target = lookup::target::<ChannelRecord>(state, None, arn, ErrorKind::InvalidArgument)?;
    // Judged on the ARN as named, before the lookup: a caller without rights must not learn
    // whether the channel exists.
    if let Some(arn) = arn {
        let access = access::connect(arn, client_id.is_none());
        state.authz.authorize(key, &access, env).await?;
    }
    let channel = lookup::get::<ChannelRecord>(state, &target, Need::Live).await?;
    let role = match client_id {
        Some(id) => Role::Viewer(id.to_string()),
        None => Role::Master,
    };
    Ok(Joining { channel, role })
}

/// Moves frames between one socket and the hub until either side ends. Only text frames
/// carry messages; pings are answered; a binary frame is ignored, as the SDKs never send
/// one. On server shutdown the client gets GO_AWAY, then the close.
async fn drive<S>(
    ws: WebSocketStream<S>,
    relay: &Relay,
    conn: ConnId,
    mut outbox: mpsc::Receiver<Out>,
    mut draining: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    if *draining.borrow() {
        let _ = sink.send(Message::text(crate::relay::hub::GO_AWAY)).await;
        let _ = sink.send(Message::Close(None)).await;
        return;
    }
    loop {
        let deadline = relay.poll_timeout(conn);
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => relay.message(conn, t.as_str()),
                // tungstenite queues the pong; flushing sends it.
                Some(Ok(Message::Ping(_))) => {
                    if sink.flush().await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!(conn, error = %e, "signaling connection ended");
                    break;
                }
            },
            out = outbox.recv() => match out {
                Some(Out::Text(t)) => {
                    if sink.send(Message::text(t)).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close) | None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            _ = sleep_until(deadline) => relay.timeout(conn),
            _ = async { drop(draining.changed().await) } => {
                let _ = sink.send(Message::text(crate::relay::hub::GO_AWAY)).await;
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
}
