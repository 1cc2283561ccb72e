//! The cluster side of the shell, in cluster mode only: one task that
//! publishes this node's load into gossip every [`LOAD_PUBLISH_MS`], feeds
//! multicast discovery (when on) into membership, and on shutdown stops
//! discovery and then gossip. The membership itself is started by the
//! caller (it binds the gossip socket), as the TCP listener is.
//!
//! Gossip carries hints only. Nothing here decides leadership or
//! placement; until partition replication exists, each node leads its own
//! partitions (see `handlers/cluster.rs`).

use std::sync::Arc;
use std::time::Duration;

use citystream_membership::{Discovery, Membership, discovery::feed_membership};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::handlers::cluster::partitions_led;
use crate::server::Shared;

/// Period of load publication into gossip.
pub const LOAD_PUBLISH_MS: u64 = 1_000;

/// Starts the cluster task; it ends, with gossip stopped, once `stop` is cancelled.
pub(crate) fn start(
    membership: Membership,
    discovery: Option<Discovery>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut discovery = discovery;
        run(&membership, discovery.as_mut(), &shared, &stop).await;
        if let Some(discovery) = discovery {
            discovery.shutdown().await;
        }
        if let Err(error) = membership.shutdown().await {
            tracing::warn!(%error, "gossip did not stop cleanly");
        }
    })
}

/// Publishes load every period and feeds discovery until `stop`.
async fn run(
    membership: &Membership,
    discovery: Option<&mut Discovery>,
    shared: &Shared,
    stop: &CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(LOAD_PUBLISH_MS));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let feed = discover(discovery, membership);
    tokio::pin!(feed);
    let mut feeding = true;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = &mut feed, if feeding => {
                tracing::warn!("multicast discovery stopped; gossip goes on with known peers");
                feeding = false;
            }
            _ = ticker.tick() => publish_load(membership, shared).await,
        }
    }
}

/// Hands discovered peers to gossip; never ends without discovery.
async fn discover(discovery: Option<&mut Discovery>, membership: &Membership) {
    match discovery {
        Some(discovery) => feed_membership(discovery, membership).await,
        None => std::future::pending().await,
    }
}

async fn publish_load(membership: &Membership, shared: &Shared) {
    let rates = shared.load.rates();
    let partitions_led = partitions_led(shared);
    let leaderships = shared
        .node
        .as_ref()
        .map(|node| node.leaderships())
        .unwrap_or_default();
    let metadata_leader = shared
        .node
        .as_ref()
        .and_then(|node| node.metadata_leader_hint());
    let published = membership
        .update_local(|info| {
            info.leaderships = leaderships;
            if metadata_leader.is_some() {
                info.metadata_leader = metadata_leader;
            }
            info.load.partitions_led = partitions_led;
            info.load.bytes_in_per_s = rates.bytes_in_per_s;
            info.load.bytes_out_per_s = rates.bytes_out_per_s;
        })
        .await;
    if let Err(error) = published {
        tracing::warn!(%error, "could not publish load into gossip");
    }
}
