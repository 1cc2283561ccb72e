//! Cluster mode of `citystream broker`: parsing and checking `--peers`,
//! and starting gossip membership (plus multicast discovery with
//! `--discover`) for the server to run. Cluster mode is any of `--peers`,
//! `--join`, `--discover`; without them nothing here starts.
//!
//! Gossip runs over UDP on `--gossip-port`, by default the same port number
//! as the native TCP listener (TCP and UDP ports are separate namespaces).
//! By that convention a peer's gossip address is its native address, which
//! is what `--peers` and `--join` give: a node with another `--gossip-port`
//! is still found, since it contacts its seeds first and they learn its
//! real gossip address from it.
//!
//! Gossip tells the server who is alive, where, and how loaded; the Raft
//! groups (`citystream_server::ClusterConfig`) decide everything else. A
//! node with `--peers` is a static member of the metadata group; one with
//! only `--join` or `--discover` asks a running node (the `--join` one, or
//! any gossip member) to add it.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use anyhow::Context as _;
use citystream_membership::discovery::DiscoveryConfig;
use citystream_membership::{Discovery, Membership, MembershipConfig, NodeId, NodeInfo};
use citystream_server::{ClusterConfig, NodeIdentity, ServeOptions, Timing};

use crate::output::UsageError;

/// Most nodes `--peers` may list.
pub const PEERS_MAX: usize = 256;
/// Listener name of the native protocol in gossip.
const NATIVE_LISTENER: &str = "native";

/// One `ID=HOST:PORT` entry of `--peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node_id: u32,
    /// The peer's native listener address (also its gossip address).
    pub address: String,
}

/// The validated cluster flags.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Every node of a static cluster, this one included; empty if not given.
    pub peers: Vec<Peer>,
    pub join: Option<String>,
    pub discover: bool,
    pub gossip_port: Option<u16>,
    /// Raft heartbeat and election timeouts of every group.
    pub timing: Timing,
    /// The cap on a compacted partition's log sent to a replica.
    pub snapshot_transfer_bytes_per_sec: Option<u64>,
}

impl ClusterSettings {
    pub fn is_cluster_mode(&self) -> bool {
        !self.peers.is_empty() || self.join.is_some() || self.discover
    }
}

/// Parses `1=HOST:PORT,2=HOST:PORT` and checks it: well-formed entries,
/// unique ids, and this node listed at exactly `own_address`.
pub fn parse_peers(text: &str, node_id: u32, own_address: &str) -> Result<Vec<Peer>, UsageError> {
    let mut peers = Vec::new();
    for entry in text.split(',').map(str::trim) {
        peers.push(parse_peer(entry)?);
    }
    if peers.len() > PEERS_MAX {
        return usage(format!("--peers lists more than {PEERS_MAX} nodes"));
    }
    let mut ids = BTreeSet::new();
    if let Some(twice) = peers.iter().find(|peer| !ids.insert(peer.node_id)) {
        return usage(format!("--peers lists node {} twice", twice.node_id));
    }
    match peers.iter().find(|peer| peer.node_id == node_id) {
        None => usage(format!(
            "--peers does not list this node ({node_id}); list every node, this one included"
        )),
        Some(own) if own.address != own_address => usage(format!(
            "--peers lists this node ({node_id}) at {}, but it listens on {own_address}; \
             they must be the same (set --advertised-address or --listen)",
            own.address
        )),
        Some(_) => Ok(peers),
    }
}

fn parse_peer(entry: &str) -> Result<Peer, UsageError> {
    let bad = || {
        usage(format!(
            "--peers entry {entry:?} is not ID=HOST:PORT (e.g. 1=10.0.0.1:9400)"
        ))
    };
    let Some((id, address)) = entry.split_once('=') else {
        return bad();
    };
    let Ok(node_id) = id.trim().parse::<u32>() else {
        return bad();
    };
    let address = address.trim();
    if !super::is_host_port(address) {
        return bad();
    }
    Ok(Peer {
        node_id,
        address: address.to_string(),
    })
}

/// Starts gossip (and discovery) for the server, or nothing standalone.
/// `other_listeners` (name, address), e.g. `http`, are announced too.
/// `bound` is the native listener's address; `advertised` the address
/// clients are told.
pub async fn start(
    settings: &ClusterSettings,
    identity: &NodeIdentity,
    bound: SocketAddr,
    advertised: &str,
    other_listeners: &[(&str, String)],
) -> anyhow::Result<ServeOptions> {
    if !settings.is_cluster_mode() {
        return Ok(ServeOptions::default());
    }
    let node_id = NodeId(identity.node_id);
    let gossip_port = settings.gossip_port.unwrap_or(bound.port());
    let mut config = MembershipConfig::new(
        node_id,
        identity.cluster_id.clone(),
        SocketAddr::new(bound.ip(), gossip_port),
    );
    let mut advertise = resolve(advertised)
        .await
        .with_context(|| format!("cannot resolve this node's address {advertised}"))?;
    advertise.set_port(gossip_port);
    config.gossip_advertise = Some(advertise);
    config.seeds = seeds(settings, identity.node_id).await?;
    let mut info = NodeInfo::new(node_id, identity.cluster_id.clone())
        .with_listener(NATIVE_LISTENER, advertised);
    for (name, address) in other_listeners {
        info = info.with_listener(name, address);
    }
    let membership = Membership::start(config, info)
        .await
        .context("cannot start gossip membership")?;
    let discovery = if settings.discover {
        let config = DiscoveryConfig::new(
            identity.cluster_id.clone(),
            node_id,
            membership.local_gossip_addr(),
        );
        Some(Discovery::start(config).context("cannot start multicast discovery (--discover)")?)
    } else {
        None
    };
    // With --peers the node is a static member of the metadata group; with
    // only --join or --discover it asks to be added to a running one.
    let cluster = Some(ClusterConfig {
        node_id: identity.node_id,
        peers: settings
            .peers
            .iter()
            .map(|peer| (peer.node_id, peer.address.clone()))
            .collect(),
        join: settings.join.clone(),
        advertised_address: advertised.to_owned(),
        gossip_address: advertise.to_string(),
        cluster_id: identity.cluster_id.clone(),
        timing: settings.timing,
        snapshot_transfer_bytes_per_sec: settings.snapshot_transfer_bytes_per_sec,
    });
    Ok(ServeOptions {
        membership: Some(membership),
        discovery,
        cluster,
        local: None,
    })
}

/// Gossip seeds: every other peer, and the `--join` node, at their native
/// address (gossip port = native port by convention). An unresolvable peer
/// is skipped with a warning (it may not be up yet); `--join` must resolve.
async fn seeds(settings: &ClusterSettings, node_id: u32) -> anyhow::Result<Vec<SocketAddr>> {
    let mut seeds = Vec::new();
    for peer in settings.peers.iter().filter(|peer| peer.node_id != node_id) {
        match resolve(&peer.address).await {
            Ok(address) => seeds.push(address),
            Err(error) => tracing::warn!(peer = peer.node_id, address = %peer.address, %error,
                "cannot resolve a peer; it will be found when it contacts this node"),
        }
    }
    if let Some(join) = &settings.join {
        let address = resolve(join)
            .await
            .with_context(|| format!("cannot resolve --join {join}"))?;
        seeds.push(address);
    }
    Ok(seeds)
}

/// The first address `HOST:PORT` resolves to.
async fn resolve(address: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(address)
        .await?
        .next()
        .with_context(|| format!("{address} resolves to no address"))
}

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEERS: &str = "1=127.0.0.1:9401, 2=127.0.0.1:9402,3=10.0.0.3:9403";

    /// A well-formed list that names this node at its own address is accepted.
    #[test]
    fn peers_parse() {
        let peers = parse_peers(PEERS, 2, "127.0.0.1:9402").unwrap();
        let ids: Vec<u32> = peers.iter().map(|peer| peer.node_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(peers[2].address, "10.0.0.3:9403");
    }

    /// Malformed entries, duplicate ids, a missing self or a self at another
    /// address are refused with the reason.
    #[test]
    fn bad_peers_are_refused() {
        let cases = [
            ("1=127.0.0.1:9401,2", "\"2\" is not ID=HOST:PORT"),
            ("x=127.0.0.1:9401", "is not ID=HOST:PORT"),
            ("1=127.0.0.1", "is not ID=HOST:PORT"),
            ("1=127.0.0.1:9401,1=127.0.0.1:9402", "lists node 1 twice"),
            ("2=127.0.0.1:9402", "does not list this node (1)"),
            (
                "1=127.0.0.1:9999",
                "at 127.0.0.1:9999, but it listens on 127.0.0.1:9401",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_peers(text, 1, "127.0.0.1:9401").unwrap_err();
            assert!(error.0.contains(expected), "{text}: {}", error.0);
        }
    }

    /// Any of --peers, --join, --discover means cluster mode; none, standalone.
    #[test]
    fn cluster_mode_is_any_cluster_flag() {
        assert!(!ClusterSettings::default().is_cluster_mode());
        let join = ClusterSettings {
            join: Some("h:1".to_string()),
            ..ClusterSettings::default()
        };
        assert!(join.is_cluster_mode());
        let discover = ClusterSettings {
            discover: true,
            ..ClusterSettings::default()
        };
        assert!(discover.is_cluster_mode());
    }
}
