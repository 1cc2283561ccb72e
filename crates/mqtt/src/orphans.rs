//! Sessions orphaned by a node that died or restarted: their connections,
//! or the wills waiting out their delay there, are gone with no one left
//! to publish the wills. Every node sweeps the sessions topic every few
//! seconds for sessions owned by a node (connected ones, and disconnected
//! ones whose will waits) that cluster status reports dead, or running
//! under another start time, and adopts each: it writes the session as
//! disconnected under a higher generation, reads it back to learn whether
//! its claim won (several nodes may sweep at once; the generation fence
//! picks one), and the winner publishes the will: at once, or, with a
//! delay, waiting in the record as its own until the same deadline
//! (`will`), so a client that comes back meanwhile still cancels it.
//!
//! A node that cluster status does not list yet is not judged.
//!
//! The same sweep keeps the compacted sessions topic tidy
//! ([`SessionStore::tidy`](crate::store::SessionStore::tidy)): expired
//! sessions are ended, and the keys of superseded generations tombstoned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_client::ClientError;
use citystream_protocol::NodeState;

use crate::Node;
use crate::connection::now_ms;
use crate::session::{Generation, Known, OwnerNode, SessionRecord};

/// How often a node looks for orphaned sessions.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3);

/// Sweeps until shutdown.
pub(crate) async fn sweep(node: Arc<Node>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = node.shutdown.cancelled() => return,
        }
        if let Err(error) = sweep_once(&node).await {
            tracing::debug!(%error, "MQTT orphaned-session sweep failed; retrying");
        }
    }
}

async fn sweep_once(node: &Arc<Node>) -> Result<(), ClientError> {
    let status = node.client.admin().cluster_status().await?;
    let running: HashMap<u32, Option<u64>> = status
        .nodes
        .iter()
        .map(|n| {
            (
                n.node_id,
                (n.state != NodeState::Dead).then_some(n.generation),
            )
        })
        .collect();
    let orphaned = |owner: &OwnerNode| match running.get(&owner.node_id) {
        None => false,
        Some(None) => true,
        Some(Some(generation)) => *generation != owner.generation,
    };
    let survey = node.store.survey(&node.ingest, now_ms()).await?;
    for (client_id, known) in survey.owned {
        let owner = known.record.as_ref().and_then(|record| record.owner_node);
        if owner.is_some_and(|owner| orphaned(&owner)) {
            adopt(node, &client_id, known).await?;
        }
    }
    node.store.tidy(&node.ingest, survey.untidy).await
}

/// Ends an orphaned session's connection in the store and, if this node's
/// claim won, publishes its will or waits for it.
async fn adopt(node: &Arc<Node>, client_id: &str, known: Known) -> Result<(), ClientError> {
    let Some(record) = known.record else {
        return Ok(());
    };
    let generation = Generation {
        counter: known.generation.counter + 1,
        owner: format!("orphans:{}", node.instance),
    };
    let now = now_ms();
    let will = record.will.as_ref().and_then(crate::will::from_stored);
    let will_at_ms = match (&will, record.connected) {
        (Some(will), true) => {
            let delay_secs = crate::will::delay_secs(will, record.expiry_secs);
            (delay_secs > 0).then(|| now.saturating_add(i64::from(delay_secs) * 1000))
        }
        // A will that waited on the dead node keeps its deadline.
        (Some(_), false) => record.will_at_ms,
        (None, _) => None,
    };
    let waits = will_at_ms.is_some();
    let disconnected = SessionRecord {
        generation: generation.clone(),
        connected: false,
        updated_ms: record.disconnected_at(now),
        owner_node: node.owner_node().await.filter(|_| waits),
        will: record.will.clone().filter(|_| waits),
        will_at_ms,
        ..record.clone()
    };
    let kept = (disconnected.expiry_secs > 0).then_some(&disconnected);
    node.store
        .write(&node.ingest, client_id, &generation, kept)
        .await?;
    let current = node.store.load(&node.ingest, client_id).await?;
    if current.map(|known| known.generation) != Some(generation.clone()) {
        return Ok(()); // another node adopted it, or the client came back
    }
    tracing::info!(client_id, owner = ?record.owner_node, "adopted an MQTT session whose node is gone");
    match (will, will_at_ms) {
        (Some(will), Some(deadline_ms)) => {
            crate::will::publish_at(node, client_id, will, generation, deadline_ms);
        }
        (Some(will), None) => crate::will::publish_now(node, client_id, will),
        (None, _) => {}
    }
    Ok(())
}
