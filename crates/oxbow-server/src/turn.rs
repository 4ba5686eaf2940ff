//! The embedded STUN/TURN server, on UDP and TCP at the same port and, when Oxbow serves TLS,
//! TURN over TLS on its own port (`turns:`): a thin driver around `turn-server-proto`'s
//! sans-IO `TurnServer` (one per listener), which answers STUN binding
//! requests and runs TURN allocations, permissions, channel bindings and relaying. The driver
//! owns the sockets: the listeners, the TCP client connections, and one relayed UDP socket per
//! allocation (bound to the external address peers can reach, never 0.0.0.0), whose
//! datagrams a small reader task hands back to the task that owns that transport's state.
//!
//! Credentials: GetIceServerConfig issues TURN REST credentials and registers each with the
//! server as it issues it (`TurnHandle::add_user`), so only credentials Oxbow handed out are
//! accepted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
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
    /// One queue per transport's server task.
    users: Vec<mpsc::Sender<(String, String)>>,
    /// `host:port` peers and clients reach the listeners at.
    pub external: SocketAddr,
    /// `host:port` of the TURN-over-TLS listener, when there is one.
    pub external_tls: Option<SocketAddr>,
    issued: Arc<std::sync::atomic::AtomicUsize>,
}

impl TurnHandle {
    /// Registers credentials the servers must accept; false if they could not be.
    pub fn add_user(&self, username: String, password: String) -> bool {
        if self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            >= MAX_USERS
        {
            tracing::warn!("TURN: too many credentials issued since start; restart to reset");
            return false;
        }
        self.users
            .iter()
            .all(|u| u.try_send((username.clone(), password.clone())).is_ok())
    }

    /// The URIs GetIceServerConfig hands out for this server.
    pub fn uris(&self) -> Vec<String> {
        let mut uris = vec![
            format!("turn:{}?transport=udp", self.external),
            format!("turn:{}?transport=tcp", self.external),
        ];
        if let Some(tls) = self.external_tls {
            uris.push(format!("turns:{tls}?transport=tcp"));
        }
        uris
    }
}

/// Bound TURN listeners, not yet running.
pub struct TurnListener {
    udp: UdpSocket,
    tcp: TcpListener,
    tls: Option<(TcpListener, TlsAcceptor)>,
    external: SocketAddr,
    realm: String,
    users: Vec<mpsc::Receiver<(String, String)>>,
    limits: TurnLimits,
}

/// What each allocation may use.
#[derive(Debug, Clone, Copy)]
pub struct TurnLimits {
    /// Relayed kbit/s per allocation and direction (0: unlimited).
    pub max_kbps: u64,
    /// Allocations open at once per signaling channel, as its credentials name it (0:
    /// unlimited).
    pub max_allocations_per_channel: usize,
}

/// Binds the UDP and TCP listeners on one port, and the TLS one (`tls`: where, and the
/// server's certificate) when given. `external_ip` is the address relayed sockets bind to and
/// clients are told about.
pub async fn bind(
    listen: SocketAddr,
    tls: Option<(SocketAddr, TlsAcceptor)>,
    external_ip: IpAddr,
    realm: &str,
    limits: TurnLimits,
) -> Result<(TurnListener, TurnHandle), ServerError> {
    let bind_err = |addr: SocketAddr| move |source| ServerError::Bind { addr, source };
    // UDP and TCP share the port. For "any port" the UDP one is picked first, and another is
    // tried if its TCP twin is taken (by some connection's local port, say).
    let mut attempt = 0;
    let (udp, tcp, port) = loop {
        attempt += 1;
        let udp = udp_socket(listen).map_err(bind_err(listen))?;
        let port = udp.local_addr().map_err(bind_err(listen))?.port();
        let tcp_addr = SocketAddr::new(listen.ip(), port);
        match TcpListener::bind(tcp_addr).await {
            Ok(tcp) => break (udp, tcp, port),
            Err(e) if listen.port() == 0 && attempt < 20 => {
                tracing::debug!(%tcp_addr, error = %e, "TURN: the TCP twin of a free UDP port is taken");
            }
            Err(e) => return Err(bind_err(tcp_addr)(e)),
        }
    };
    let external = SocketAddr::new(external_ip, port);
    let tls = match tls {
        Some((addr, acceptor)) => {
            let listener = TcpListener::bind(addr).await.map_err(bind_err(addr))?;
            let port = listener.local_addr().map_err(bind_err(addr))?.port();
            Some((listener, acceptor, SocketAddr::new(external_ip, port)))
        }
        None => None,
    };
    let external_tls = tls.as_ref().map(|t| t.2);
    let (mut senders, mut receivers) = (Vec::new(), Vec::new());
    for _ in 0..if tls.is_some() { 3 } else { 2 } {
        let (tx, rx) = mpsc::channel(1024);
        senders.push(tx);
        receivers.push(rx);
    }
    Ok((
        TurnListener {
            udp,
            tcp,
            tls: tls.map(|(l, a, _)| (l, a)),
            external,
            realm: realm.to_string(),
            users: receivers,
            limits,
        },
        TurnHandle {
            users: senders,
            external,
            external_tls,
            issued: Arc::default(),
        },
    ))
}

/// Runs every listener until `stop` turns true.
pub async fn run(listener: TurnListener, stop: watch::Receiver<bool>) {
    let TurnListener {
        udp,
        tcp,
        tls,
        external,
        realm,
        users,
        limits,
    } = listener;
    tracing::info!(%external, "TURN/STUN listening (UDP and TCP)");
    let mut users = users.into_iter();
    let transports = [
        Some((Clients::Udp(udp), TransportType::Udp, external)),
        Some((
            Clients::Tcp(TcpClients::new(tcp, None)),
            TransportType::Tcp,
            external,
        )),
        tls.and_then(|(listener, acceptor)| {
            let addr = SocketAddr::new(external.ip(), listener.local_addr().ok()?.port());
            tracing::info!(%addr, "TURN listening (TLS)");
            let clients = Clients::Tcp(TcpClients::new(listener, Some(acceptor)));
            Some((clients, TransportType::Tcp, addr))
        }),
    ];
    let tasks = transports
        .into_iter()
        .flatten()
        .filter_map(|(clients, kind, addr)| {
            Some(serve(
                clients,
                kind,
                addr,
                realm.clone(),
                users.next()?,
                Meter::new(limits.max_kbps * 1000 / 8),
                Quota::new(limits.max_allocations_per_channel),
                stop.clone(),
            ))
        });
    futures_util::future::join_all(tasks).await;
}

/// Where a transport's clients are: the UDP listener, or TCP connections by peer address.
enum Clients {
    Udp(UdpSocket),
    Tcp(TcpClients),
}

/// TCP (or TLS) clients: each connection's reader task hands its bytes to the server task;
/// each has a writer task fed through a bounded queue.
struct TcpClients {
    listener: TcpListener,
    /// TURN over TLS: the handshake each connection goes through first.
    tls: Option<TlsAcceptor>,
    writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    incoming: TcpIncoming,
}

/// Bytes from TCP clients on their way to the server task.
type TcpIncoming = (
    mpsc::Sender<(SocketAddr, Vec<u8>)>,
    mpsc::Receiver<(SocketAddr, Vec<u8>)>,
);

/// Bytes queued for one TCP client at most (in writes).
const TCP_WRITE_QUEUE: usize = 1024;

impl TcpClients {
    fn new(listener: TcpListener, tls: Option<TlsAcceptor>) -> Self {
        Self {
            listener,
            tls,
            writers: HashMap::new(),
            incoming: mpsc::channel(RELAY_QUEUE),
        }
    }

    fn accept(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel::<Vec<u8>>(TCP_WRITE_QUEUE);
        self.writers.insert(peer, tx);
        let to_server = self.incoming.0.clone();
        let tls = self.tls.clone();
        tokio::spawn(async move {
            match tls {
                None => pump(stream, peer, rx, to_server).await,
                // The handshake runs here, off the server task; what the server wrote to
                // this client meanwhile waits in its queue.
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => pump(stream, peer, rx, to_server).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TURN: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TURN: TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// How long a TURN-over-TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Moves one client connection's bytes: what it sends to the server task, what the server
/// task queued for it to the connection, until either side ends.
async fn pump<S>(
    stream: S,
    peer: SocketAddr,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    to_server: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let writer = async move {
        while let Some(bytes) = outgoing.recv().await {
            if write.write_all(&bytes).await.is_err() || write.flush().await.is_err() {
                break;
            }
        }
    };
    let reader = async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 || to_server.send((peer, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}

type Relays = HashMap<SocketAddr, (Arc<UdpSocket>, tokio::task::JoinHandle<()>)>;

/// One transport's server: everything `TurnServer` asks for, until `stop` turns true.
#[allow(clippy::too_many_arguments)] // a transport's whole configuration, passed once
async fn serve(
    mut clients: Clients,
    transport: TransportType,
    external: SocketAddr,
    realm: String,
    mut users: mpsc::Receiver<(String, String)>,
    mut meter: Meter,
    mut quota: Quota,
    mut stop: watch::Receiver<bool>,
) {
    let base = std::time::Instant::now();
    let now = || Instant::from_std(base);
    let mut server = TurnServer::new(transport, external, realm);
    let mut relays: Relays = HashMap::new();
    let (relay_tx, mut relay_rx) = mpsc::channel::<(SocketAddr, SocketAddr, Vec<u8>)>(RELAY_QUEUE);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    // Polling walks every client's state, so it runs when something may have changed it (a
    // STUN request, a timer), not for every relayed media packet.
    let mut needs_poll = true;
    let mut deadline = std::time::Instant::now();
    loop {
        if needs_poll || std::time::Instant::now() >= deadline {
            needs_poll = false;
            // Everything the server wants done now: sockets to open or close, data to send.
            deadline = loop {
                match server.poll(now()) {
                    TurnServerPollRet::WaitUntil(t) => break t.to_std(base),
                    TurnServerPollRet::AllocateSocket {
                        transport,
                        listen_addr,
                        client_addr,
                        allocation_transport,
                        family,
                    } => {
                        let admitted = quota.admit(client_addr);
                        let result = match (admitted, allocation_transport) {
                            (true, TransportType::Udp) => {
                                allocate(external, &mut relays, &relay_tx)
                            }
                            _ => None,
                        }
                        .ok_or(turn_server_proto::api::SocketAllocateError::InsufficientCapacity);
                        if let Ok(relay) = result {
                            quota.opened(client_addr, relay);
                        }
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
                        meter.forget(listen_addr);
                        quota.closed(listen_addr);
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
                    TurnServerPollRet::TcpClose { remote_addr, .. } => {
                        if let Clients::Tcp(c) = &mut clients {
                            c.writers.remove(&remote_addr);
                        }
                    }
                }
            };
            while let Some(t) = server.poll_transmit(now()) {
                send(&clients, &relays, external, &t.data, t.from, t.to).await;
            }
        }
        let got: Option<Got> = tokio::select! {
            got = async {
                match &mut clients {
                    Clients::Udp(socket) => socket
                        .recv_from(&mut buf)
                        .await
                        .ok()
                        .map(|(n, from)| Got::Listener(from, n)),
                    Clients::Tcp(c) => tokio::select! {
                        accepted = c.listener.accept() => {
                            if let Ok((stream, peer)) = accepted {
                                c.accept(stream, peer);
                            }
                            None
                        }
                        bytes = c.incoming.1.recv() => {
                            bytes.map(|(from, data)| Got::Owned(from, external, transport, data))
                        }
                    },
                }
            } => got,
            Some((relay, peer, data)) = relay_rx.recv() => {
                Some(Got::Owned(peer, relay, TransportType::Udp, data))
            }
            Some((user, password)) = users.recv() => {
                server.add_user(user, password);
                None
            }
            _ = tokio::time::sleep_until(deadline.into()) => None,
            _ = async { drop(stop.wait_for(|s| *s).await) } => break,
        };
        let Some(got) = got else { continue };
        // A UDP client's datagram is read where it landed; the rest arrived owned.
        let (from, to, kind, data) = match &got {
            Got::Listener(from, n) => (*from, external, transport, &buf[..*n]),
            Got::Owned(from, to, kind, data) => (*from, *to, *kind, &data[..]),
        };
        if to == external {
            // STUN messages (not ChannelData) may change what the server wants done; TCP
            // reads need not start at a message, so they always count.
            needs_poll |= kind == TransportType::Tcp || data.first().is_some_and(|b| b & 0xC0 == 0);
            if let Some(user) = username(data) {
                // The TURN REST convention: a username names its own expiry.
                // `turn-server-proto` cannot forget a user, so requests under an expired one
                // stop here (an allocation made before then is not refreshed and lapses).
                if rest_expired(user, unix_secs()) {
                    tracing::debug!(%from, "TURN: a request with expired credentials, dropped");
                    continue;
                }
                quota.saw(from, user);
            }
        } else if !meter.allow(to, data.len()) {
            // Data a peer sent to a relay counts against that allocation's rate...
            continue;
        }
        let transmit = Transmit::new(data, kind, from, to);
        if let Some(out) = server.recv(transmit, now()) {
            let (from, to) = (out.from, out.to);
            let data = out.data.build();
            // ... and so does data a client sends out through its relay.
            if from != external && !meter.allow(from, data.len()) {
                continue;
            }
            send(&clients, &relays, external, &data, from, to).await;
        }
    }
    for (_, (_, reader)) in relays {
        reader.abort();
    }
}

/// What one wait brought: a datagram on the UDP listener (in the read buffer), or bytes that
/// came owned (a TCP client's read, a relayed socket's datagram) with their 5-tuple.
enum Got {
    Listener(SocketAddr, usize),
    Owned(SocketAddr, SocketAddr, TransportType, Vec<u8>),
}

/// Relayed bytes per allocation (relayed address) and direction, in one-second windows; past
/// the limit the datagram is dropped, as a congested path would (KVS: 5 Mbps per allocation).
struct Meter {
    max_bytes_per_sec: u64,
    windows: HashMap<SocketAddr, (std::time::Instant, u64)>,
}

impl Meter {
    fn new(max_bytes_per_sec: u64) -> Self {
        Self {
            max_bytes_per_sec,
            windows: HashMap::new(),
        }
    }

    fn allow(&mut self, relay: SocketAddr, bytes: usize) -> bool {
        if self.max_bytes_per_sec == 0 {
            return true;
        }
        let now = std::time::Instant::now();
        let (start, used) = self.windows.entry(relay).or_insert((now, 0));
        if now.duration_since(*start) >= std::time::Duration::from_secs(1) {
            *start = now;
            *used = 0;
        }
        *used += bytes as u64;
        *used <= self.max_bytes_per_sec
    }

    fn forget(&mut self, relay: SocketAddr) {
        self.windows.remove(&relay);
    }
}

/// Allocations per signaling channel. A client's channel is the opaque part of the REST
/// username its requests carry (`<expiry>:<base64 of v1:<ARN>>`), as KVS uses it.
struct Quota {
    max: usize,
    /// The channel each client's latest request named.
    clients: HashMap<SocketAddr, String>,
    /// Each relayed address's channel, and the count per channel.
    relays: HashMap<SocketAddr, String>,
    open: HashMap<String, usize>,
}

impl Quota {
    fn new(max: usize) -> Self {
        Self {
            max,
            clients: HashMap::new(),
            relays: HashMap::new(),
            open: HashMap::new(),
        }
    }

    fn saw(&mut self, client: SocketAddr, username: &str) {
        if let Some((_, channel)) = username.split_once(':') {
            if self.clients.len() > 100_000 {
                self.clients.clear();
            }
            self.clients.insert(client, channel.to_string());
        }
    }

    fn admit(&self, client: SocketAddr) -> bool {
        let Some(channel) = self.clients.get(&client) else {
            return true;
        };
        self.max == 0 || self.open.get(channel).copied().unwrap_or(0) < self.max
    }

    fn opened(&mut self, client: SocketAddr, relay: SocketAddr) {
        if let Some(channel) = self.clients.get(&client).cloned() {
            *self.open.entry(channel.clone()).or_default() += 1;
            self.relays.insert(relay, channel);
        }
    }

    fn closed(&mut self, relay: SocketAddr) {
        if let Some(channel) = self.relays.remove(&relay) {
            if let Some(n) = self.open.get_mut(&channel) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.open.remove(&channel);
                }
            }
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a TURN REST username (`<expiry>:...`) expired before `now_secs`; other usernames
/// do not expire.
fn rest_expired(username: &str, now_secs: u64) -> bool {
    username
        .split_once(':')
        .and_then(|(t, _)| t.parse::<u64>().ok())
        .is_some_and(|t| t < now_secs)
}

/// The USERNAME of the STUN message `data` starts with, if any (not for ChannelData, other
/// data or a TCP read that does not start at a message).
fn username(data: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if data.len() < 20 || data[0] & 0xC0 != 0 || data[4..8] != MAGIC {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let attrs = &data[20..data.len().min(20 + len)];
    let mut at = 0;
    while at + 4 <= attrs.len() {
        let kind = u16::from_be_bytes([attrs[at], attrs[at + 1]]);
        let size = usize::from(u16::from_be_bytes([attrs[at + 2], attrs[at + 3]]));
        let value = attrs.get(at + 4..at + 4 + size)?;
        if kind == USERNAME {
            return std::str::from_utf8(value).ok();
        }
        at += 4 + size.div_ceil(4) * 4;
    }
    None
}

/// A relayed UDP socket on the external address, with its reader task.
fn allocate(
    external: SocketAddr,
    relays: &mut Relays,
    relay_tx: &mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
) -> Option<SocketAddr> {
    let socket = udp_socket(SocketAddr::new(external.ip(), 0)).ok()?;
    let addr = socket.local_addr().ok()?;
    let socket = Arc::new(socket);
    let reader = tokio::spawn(read_relay(Arc::clone(&socket), addr, relay_tx.clone()));
    relays.insert(addr, (socket, reader));
    Some(addr)
}

/// Sends to a client (from the listener, or its TCP connection) or from the relayed socket
/// the server named as the source.
async fn send(
    clients: &Clients,
    relays: &Relays,
    external: SocketAddr,
    data: &[u8],
    from: SocketAddr,
    to: SocketAddr,
) {
    let socket = match (from == external, clients) {
        (true, Clients::Udp(listener)) => listener,
        (true, Clients::Tcp(c)) => {
            if let Some(w) = c.writers.get(&to) {
                // A client that does not take its data loses it, as over UDP.
                let _ = w.try_send(data.to_vec());
            }
            return;
        }
        (false, _) => match relays.get(&from) {
            Some((relay, _)) => relay.as_ref(),
            None => return,
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A STUN Allocate request carrying `username` (and a SOFTWARE attribute before it).
    fn allocate_with(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        for (kind, value) in [(0x8022u16, b"x".as_slice()), (0x0006, username.as_bytes())] {
            attrs.extend_from_slice(&kind.to_be_bytes());
            attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
            attrs.extend_from_slice(value);
            attrs.resize(attrs.len().div_ceil(4) * 4, 0);
        }
        let mut m = vec![0x00, 0x03];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    fn expired_username(data: &[u8], now_secs: u64) -> bool {
        username(data).is_some_and(|u| rest_expired(u, now_secs))
    }

    #[test]
    fn expired_rest_usernames_are_recognised() {
        let now = 1_700_000_000;
        assert!(expired_username(&allocate_with("1699999999:djE6YXJu"), now));
        assert!(!expired_username(
            &allocate_with("1700000300:djE6YXJu"),
            now
        ));
        assert!(!expired_username(&allocate_with("plain-user"), now));
        // ChannelData (0b01 prefix), truncated and foreign data are left alone.
        assert!(!expired_username(
            &[0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4],
            now
        ));
        assert!(!expired_username(&allocate_with("1699999999:x")[..24], now));
        assert!(!expired_username(b"GET / HTTP/1.1\r\n\r\n....", now));
    }

    #[test]
    fn allocations_are_counted_per_channel_and_freed() {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut q = Quota::new(2);
        q.saw(addr(1), "1700000300:Y2hhbm5lbEE=");
        q.saw(addr(2), "1700000300:Y2hhbm5lbEE=");
        q.saw(addr(3), "1700000300:Y2hhbm5lbEE=");
        q.saw(addr(4), "1700000300:Y2hhbm5lbEI=");
        assert!(q.admit(addr(1)));
        q.opened(addr(1), addr(101));
        q.opened(addr(2), addr(102));
        assert!(!q.admit(addr(3)), "the channel's two are in use");
        assert!(q.admit(addr(4)), "another channel has its own count");
        assert!(
            q.admit(addr(9)),
            "a client that named no channel is not counted"
        );
        q.closed(addr(101));
        assert!(q.admit(addr(3)), "a closed allocation frees its place");
        assert!(Quota::new(0).admit(addr(1)), "0 is unlimited");
    }
}
