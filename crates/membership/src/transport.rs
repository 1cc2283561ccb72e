//! chitchat's UDP transport with one filter: gossip from another cluster is answered
//! with chitchat's `BadCluster` and logged once per peer address, instead of once per
//! datagram (chitchat's own check would warn on every gossip round).
//!
//! This module wraps chitchat's `UdpTransport` (chitchat 0.13 keeps its wire
//! encoding private, so a transport outside it can only wrap one of its own); the
//! gossip protocol and its state live in chitchat.

use std::collections::HashSet;
use std::net::SocketAddr;

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpTransport};
use chitchat::{ChitchatEnvelope, ChitchatMessage};
use tracing::warn;

/// Peer addresses remembered for "warn once"; past this, warnings repeat.
pub const WARNED_PEERS_MAX: usize = 1_024;

/// chitchat's UDP transport, filtering out other clusters' gossip.
pub struct ClusterFilterTransport {
    cluster_id: String,
}

impl ClusterFilterTransport {
    pub fn new(cluster_id: String) -> ClusterFilterTransport {
        ClusterFilterTransport { cluster_id }
    }
}

#[async_trait]
impl Transport for ClusterFilterTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let inner = UdpTransport.open(listen_addr).await?;
        Ok(Box::new(GossipSocket {
            inner,
            cluster_id: self.cluster_id.clone(),
            warned: HashSet::new(),
        }))
    }
}

struct GossipSocket {
    inner: Box<dyn Socket>,
    cluster_id: String,
    warned: HashSet<SocketAddr>,
}

#[async_trait]
impl Socket for GossipSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        self.inner.send(to, envelope).await
    }

    /// Cancel-safe as the inner `recv` is; a cancelled `BadCluster` reply is only lost.
    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            let outcome = self.inner.recv().await?;
            if !self.is_foreign(outcome.from_addr, &outcome.envelope).await {
                return Ok(outcome);
            }
        }
    }
}

impl GossipSocket {
    /// True if the datagram comes from another cluster; answers it and warns once.
    async fn is_foreign(&mut self, from: SocketAddr, envelope: &ChitchatEnvelope) -> bool {
        match &envelope.message {
            ChitchatMessage::Syn { cluster_id, .. } if *cluster_id != self.cluster_id => {
                if self.first_warning(from) {
                    warn!(peer = %from, their_cluster = %cluster_id, our_cluster = %self.cluster_id,
                        "ignoring gossip from a node of another cluster");
                }
                let reply = ChitchatEnvelope {
                    version: envelope.version,
                    message: ChitchatMessage::BadCluster,
                };
                let _ = self.inner.send(from, reply).await;
                true
            }
            ChitchatMessage::BadCluster => {
                if self.first_warning(from) {
                    warn!(peer = %from, our_cluster = %self.cluster_id,
                        "a seed or peer belongs to another cluster and refused our gossip");
                }
                true
            }
            _ => false,
        }
    }

    /// True the first time a peer is warned about (within `WARNED_PEERS_MAX` peers).
    fn first_warning(&mut self, peer: SocketAddr) -> bool {
        if self.warned.contains(&peer) {
            return false;
        }
        if self.warned.len() >= WARNED_PEERS_MAX {
            self.warned.clear();
        }
        self.warned.insert(peer)
    }
}
