//! The embedded STUN/TURN server (UDP): a thin driver around `turn-server-proto`'s sans-IO
//! `TurnServer`, which answers STUN binding requests and runs TURN allocations, permissions,
//! channel bindings and relaying. The driver owns the sockets: the listener, and one relayed
//! UDP socket per allocation (bound to the external address peers can reach, never 0.0.0.0),
//! whose datagrams a small reader task hands back to the one task that owns the state.
//!
//! Credentials: GetIceServerConfig issues TURN REST credentials and registers each with the
//! server as it issues it (`TurnHandle::add_user`), so only credentials Oxbow handed out are
//! accepted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use turn_server_proto::api::{TurnServerApi, TurnServerPollRet};
use turn_server_proto::server::TurnServer;
use turn_server_proto::stun::agent::Transmit;
use turn_server_proto::types::prelude::DelayedTransmitBuild;
use turn_server_proto::types::{Instant, TransportType};

use crate::ServerError;

/// Largest UDP datagram read.
const MAX_DATAGRAM: usize = 65_536;
/// Datagrams from relayed sockets queued for the server task at most.
const RELAY_QUEUE: usize = 8192;
/// Kernel buffer of each UDP socket: bursts of media wait here rather than being dropped while
/// the one server task is busy.
const SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket with large kernel buffers.
fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
/// Credentials registered at most; past this the oldest process restart is the only cleanup
/// (`turn-server-proto` cannot forget a user), so issuing stops with a warning.
const MAX_USERS: usize = 200_000;

/// What the rest of the server can ask of the TURN server.
#[derive(Clone)]
pub struct TurnHandle {
    users: mpsc::Sender<(String, String)>,
    /// `host:port` peers and clients reach the listener at.
    pub external: SocketAddr,
    issued: Arc<std::sync::atomic::AtomicUsize>,
}

impl TurnHandle {
    /// Registers credentials the server must accept; false if they could not be.
    pub fn add_user(&self, username: String, password: String) -> bool {
        if self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            >= MAX_USERS
        {
            tracing::warn!("TURN: too many credentials issued since start; restart to reset");
            return false;
        }
        self.users.try_send((username, password)).is_ok()
    }

    /// The URI GetIceServerConfig hands out for this server.
    pub fn uris(&self) -> Vec<String> {
        vec![format!("turn:{}?transport=udp", self.external)]
    }
}

/// A bound TURN listener, not yet running.
pub struct TurnListener {
    socket: UdpSocket,
    external: SocketAddr,
    realm: String,
    users_rx: mpsc::Receiver<(String, String)>,
}

/// Binds the listener. `external_ip` is the address relayed sockets bind to and clients are
/// told about.
pub async fn bind(
    listen: SocketAddr,
    external_ip: IpAddr,
    realm: &str,
) -> Result<(TurnListener, TurnHandle), ServerError> {
    let socket = udp_socket(listen).map_err(|source| ServerError::Bind {
        addr: listen,
        source,
    })?;
    let port = socket
        .local_addr()
        .map_err(|source| ServerError::Bind {
            addr: listen,
            source,
        })?
        .port();
    let external = SocketAddr::new(external_ip, port);
    let (users, users_rx) = mpsc::channel(1024);
    Ok((
        TurnListener {
            socket,
            external,
            realm: realm.to_string(),
            users_rx,
        },
        TurnHandle {
            users,
            external,
            issued: Arc::default(),
        },
    ))
}

/// Runs the server until `stop` turns true.
pub async fn run(listener: TurnListener, mut stop: watch::Receiver<bool>) {
    let TurnListener {
        socket,
        external,
        realm,
        mut users_rx,
    } = listener;
    let base = std::time::Instant::now();
    let now = || Instant::from_std(base);
    let mut server = TurnServer::new(TransportType::Udp, external, realm);
    let mut relays: HashMap<SocketAddr, (Arc<UdpSocket>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    let (relay_tx, mut relay_rx) = mpsc::channel::<(SocketAddr, SocketAddr, Vec<u8>)>(RELAY_QUEUE);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    tracing::info!(%external, "TURN/STUN listening (UDP)");
    loop {
        // Everything the server wants done now: sockets to open or close, datagrams to send.
        let deadline = loop {
            match server.poll(now()) {
                TurnServerPollRet::WaitUntil(t) => break t.to_std(base),
                TurnServerPollRet::AllocateSocket {
                    transport,
                    listen_addr,
                    client_addr,
                    allocation_transport,
                    family,
                } => {
                    let bound = match allocation_transport {
                        TransportType::Udp => udp_socket(SocketAddr::new(external.ip(), 0))
                            .ok()
                            .and_then(|s| Some((s.local_addr().ok()?, s))),
                        TransportType::Tcp => None,
                    };
                    let result = match bound {
                        Some((addr, socket)) => {
                            let socket = Arc::new(socket);
                            let reader = tokio::spawn(read_relay(
                                Arc::clone(&socket),
                                addr,
                                relay_tx.clone(),
                            ));
                            relays.insert(addr, (socket, reader));
                            Ok(addr)
                        }
                        None => {
                            Err(turn_server_proto::api::SocketAllocateError::InsufficientCapacity)
                        }
                    };
                    server.allocated_socket(
                        transport,
                        listen_addr,
                        client_addr,
                        allocation_transport,
                        family,
                        result,
                        now(),
                    );
                }
                TurnServerPollRet::SocketClose { listen_addr, .. } => {
                    if let Some((_, reader)) = relays.remove(&listen_addr) {
                        reader.abort();
                    }
                }
                TurnServerPollRet::TcpConnect {
                    relayed_addr,
                    peer_addr,
                    listen_addr,
                    client_addr,
                } => server.tcp_connected(
                    relayed_addr,
                    peer_addr,
                    listen_addr,
                    client_addr,
                    Err(turn_server_proto::api::TcpConnectError::Forbidden),
                    now(),
                ),
                TurnServerPollRet::TcpClose { .. } => {}
            }
        };
        while let Some(t) = server.poll_transmit(now()) {
            send(&socket, &relays, external, &t.data, t.from, t.to).await;
        }
        tokio::select! {
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                let transmit = Transmit::new(&buf[..n], TransportType::Udp, from, external);
                if let Some(out) = server.recv(transmit, now()) {
                    let (from, to) = (out.from, out.to);
                    let data = out.data.build();
                    send(&socket, &relays, external, &data, from, to).await;
                }
            }
            Some((relay, peer, data)) = relay_rx.recv() => {
                let transmit = Transmit::new(&data[..], TransportType::Udp, peer, relay);
                if let Some(out) = server.recv(transmit, now()) {
                    let (from, to) = (out.from, out.to);
                    let data = out.data.build();
                    send(&socket, &relays, external, &data, from, to).await;
                }
            }
            Some((user, password)) = users_rx.recv() => server.add_user(user, password),
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = async { drop(stop.wait_for(|s| *s).await) } => break,
        }
    }
    for (_, (_, reader)) in relays {
        reader.abort();
    }
}

/// Sends from the listener or from the relayed socket the server named as the source.
async fn send(
    listener: &UdpSocket,
    relays: &HashMap<SocketAddr, (Arc<UdpSocket>, tokio::task::JoinHandle<()>)>,
    external: SocketAddr,
    data: &[u8],
    from: SocketAddr,
    to: SocketAddr,
) {
    let socket = if from == external {
        listener
    } else if let Some((relay, _)) = relays.get(&from) {
        relay.as_ref()
    } else {
        return;
    };
    // Straight into the kernel buffer; only a full buffer waits.
    let result = match socket.try_send_to(data, to) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => socket.send_to(data, to).await,
        other => other,
    };
    if let Err(e) = result {
        tracing::debug!(%from, %to, error = %e, "TURN: a datagram could not be sent");
    }
}

/// Hands every datagram a relayed socket receives to the server task.
async fn read_relay(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    to_server: mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        // A full queue drops the datagram, as a congested UDP path would.
        let _ = to_server.try_send((local, from, buf[..n].to_vec()));
    }
}
