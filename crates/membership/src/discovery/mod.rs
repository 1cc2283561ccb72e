//! Optional LAN discovery: each node announces `(cluster_id, node_id, gossip address)`
//! to a UDP multicast group every `announce_interval_ms` and listens on the same group,
//! so nodes find each other without a seed list. Discovered peers are handed to gossip
//! with [`feed_membership`] (or read with [`Discovery::recv`]); from then on chitchat
//! keeps them. Announcements from other clusters and from this node are dropped here.
//!
//! Discovery only finds addresses: it proves nothing about a peer, and a peer of the
//! same cluster id is trusted as much as gossip trusts it (not at all for correctness:
//! Raft decides membership). The multicast TTL defaults to 1 (one LAN segment).

pub mod announcement;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::error::MembershipError;
use crate::membership::Membership;
use crate::node_info::{NodeId, validate_cluster_id};
use crate::view::MemberState;
pub use announcement::{Announcement, AnnouncementError};

/// Default multicast group: administratively scoped (239/8), citystream's own.
pub const GROUP_DEFAULT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), 9477);
pub const ANNOUNCE_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Announcements waiting for the consumer; more are dropped (the next comes soon).
pub const ANNOUNCEMENTS_QUEUED_MAX: usize = 64;
/// Receive buffer: any valid announcement fits, longer datagrams are cut and refused.
const DATAGRAM_BYTES_MAX: usize = 512;
/// Pause after a failed receive.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Where and how to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    pub cluster_id: String,
    pub node_id: NodeId,
    /// This node's gossip address as peers should dial it (an unspecified IP is
    /// replaced by the receiver with the datagram's source IP).
    pub gossip_addr: SocketAddr,
    pub group: SocketAddrV4,
    /// Interface to join the group on and send from; `0.0.0.0` lets the OS choose.
    pub interface: Ipv4Addr,
    /// Multicast TTL: 0 stays on this host, 1 stays on the LAN segment.
    pub ttl: u32,
    pub announce_interval_ms: u64,
}

impl DiscoveryConfig {
    /// Announces on the default group, every second, TTL 1, OS-chosen interface.
    pub fn new(cluster_id: impl Into<String>, node_id: NodeId, gossip_addr: SocketAddr) -> Self {
        DiscoveryConfig {
            cluster_id: cluster_id.into(),
            node_id,
            gossip_addr,
            group: GROUP_DEFAULT,
            interface: Ipv4Addr::UNSPECIFIED,
            ttl: 1,
            announce_interval_ms: ANNOUNCE_INTERVAL_MS_DEFAULT,
        }
    }
}

/// A running announcer and listener.
pub struct Discovery {
    announcements: mpsc::Receiver<Announcement>,
    tasks: TaskTracker,
    cancel_on_drop: DropGuard,
}

impl Discovery {
    /// Joins the group and starts announcing. Must be called inside a tokio runtime.
    /// Fails if the group cannot be joined (no multicast route or interface).
    pub fn start(config: DiscoveryConfig) -> Result<Discovery, MembershipError> {
        validate_cluster_id(&config.cluster_id).map_err(|error| {
            MembershipError::InvalidConfig {
                reason: error.to_string(),
            }
        })?;
        if config.announce_interval_ms == 0 || !config.group.ip().is_multicast() {
            return Err(MembershipError::InvalidConfig {
                reason: format!(
                    "discovery needs a multicast group and a non-zero interval, got {} every {} ms",
                    config.group, config.announce_interval_ms
                ),
            });
        }
        let socket = multicast_socket(&config)?;
        let (sender, announcements) = mpsc::channel(ANNOUNCEMENTS_QUEUED_MAX);
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        info!(node = %config.node_id, group = %config.group, interface = %config.interface,
            "multicast discovery started");
        tasks.spawn(run(config, socket, sender, cancel.clone()));
        tasks.close();
        Ok(Discovery {
            announcements,
            tasks,
            cancel_on_drop: cancel.drop_guard(),
        })
    }

    /// The next announcement of another node of this cluster; `None` once stopped.
    pub async fn recv(&mut self) -> Option<Announcement> {
        self.announcements.recv().await
    }

    /// Stops announcing and waits until the socket is closed.
    pub async fn shutdown(self) {
        self.cancel_on_drop.disarm().cancel();
        self.tasks.wait().await;
    }
}

/// Hands every announced peer that is not already an `Alive` member at that address to
/// gossip, until discovery stops. Run it beside the membership (e.g. in a `select!`).
pub async fn feed_membership(discovery: &mut Discovery, membership: &Membership) {
    while let Some(announcement) = discovery.recv().await {
        let known = membership
            .member(announcement.node_id)
            .is_some_and(|member| {
                member.state == MemberState::Alive && member.gossip_addr == announcement.gossip_addr
            });
        if !known {
            debug!(peer = %announcement.node_id, gossip = %announcement.gossip_addr,
                "contacting a discovered peer");
            let _ = membership.contact_peer(announcement.gossip_addr);
        }
    }
}

/// A socket bound to the group's port, joined on the configured interface, looping
/// multicast back to this host (so several nodes on one machine find each other).
fn multicast_socket(config: &DiscoveryConfig) -> Result<UdpSocket, MembershipError> {
    let group = config.group;
    let error = |action| {
        move |source| MembershipError::Socket {
            action,
            addr: group.into(),
            source,
        }
    };
    let socket =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(error("create"))?;
    socket
        .set_reuse_address(true)
        .map_err(error("set SO_REUSEADDR on"))?;
    #[cfg(unix)]
    socket
        .set_reuse_port(true)
        .map_err(error("set SO_REUSEPORT on"))?;
    // Binding to the group address (not 0.0.0.0) keeps unrelated datagrams to this port
    // out; Linux and the BSDs allow it.
    socket
        .bind(&SocketAddr::from(group).into())
        .map_err(error("bind"))?;
    socket
        .join_multicast_v4(group.ip(), &config.interface)
        .map_err(error("join the multicast group with"))?;
    socket
        .set_multicast_loop_v4(true)
        .map_err(error("enable multicast loop on"))?;
    socket
        .set_multicast_if_v4(&config.interface)
        .map_err(error("set the interface of"))?;
    socket
        .set_multicast_ttl_v4(config.ttl)
        .map_err(error("set the TTL of"))?;
    socket
        .set_nonblocking(true)
        .map_err(error("make non-blocking"))?;
    UdpSocket::from_std(socket.into()).map_err(error("register"))
}

/// Announces on a timer and forwards valid announcements until cancelled.
async fn run(
    config: DiscoveryConfig,
    socket: UdpSocket,
    sender: mpsc::Sender<Announcement>,
    cancel: CancellationToken,
) {
    let own = Announcement {
        cluster_id: config.cluster_id.clone(),
        node_id: config.node_id,
        gossip_addr: config.gossip_addr,
    }
    .encode();
    let mut ticker = tokio::time::interval(Duration::from_millis(config.announce_interval_ms));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut buffer = [0u8; DATAGRAM_BYTES_MAX];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {
                if let Err(error) = socket.send_to(&own, SocketAddr::from(config.group)).await {
                    debug!(%error, group = %config.group, "discovery announcement not sent");
                }
            }
            received = socket.recv_from(&mut buffer) => {
                let Ok((len, source)) = received else {
                    // An ICMP error or memory pressure; pause so a broken socket cannot spin.
                    tokio::time::sleep(RECV_ERROR_PAUSE).await;
                    continue;
                };
                if let Some(announcement) = accept(&config, &buffer[..len], source) {
                    // Full means the consumer is behind; the peer announces again soon.
                    let _ = sender.try_send(announcement);
                }
            }
        }
    }
}

/// The announcement in `datagram` if it is valid, from this cluster and not from us.
fn accept(config: &DiscoveryConfig, datagram: &[u8], source: SocketAddr) -> Option<Announcement> {
    let mut announcement = match Announcement::decode(datagram) {
        Ok(announcement) => announcement,
        Err(error) => {
            debug!(%source, %error, "ignoring a datagram on the discovery group");
            return None;
        }
    };
    if announcement.cluster_id != config.cluster_id || announcement.node_id == config.node_id {
        return None;
    }
    announcement.gossip_addr = announcement.resolved_gossip_addr(source);
    Some(announcement)
}
