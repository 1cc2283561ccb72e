//! The cluster as a resource: ClusterStatus, and the broker list of
//! Metadata. In cluster mode the nodes come from gossip membership (every
//! member with its state; Metadata lists the `Alive` ones), the metadata
//! leader and term from the local metadata group (gossip's hint when it
//! knows no leader), and the partitions from the replicated metadata with
//! this node's view of each group. A standalone broker (or one that only
//! gossips) lists only itself, `Alive`, as leader and only replica of its
//! partitions, with commit index = log end (a quorum of one).

use citystream_membership::{MemberState, MemberView};
use citystream_protocol::{
    ClusterNode, ClusterPartition, ClusterStatusResponse, ListenerAddress, NodeRef, NodeState,
};

use crate::server::Shared;

/// Listener name of the native protocol in gossip.
pub(crate) const NATIVE_LISTENER: &str = "native";
/// Most partitions one ClusterStatus answer lists (keeps it well inside a frame).
const PARTITIONS_LISTED_MAX: usize = 50_000;

pub(crate) fn status(shared: &Shared) -> ClusterStatusResponse {
    let node_id = shared.broker.config().node_id;
    let (nodes, metadata_leader) = match &shared.members {
        Some(members) => {
            let members = members.borrow();
            let leader = members
                .iter()
                .find(|member| member.is_self)
                .and_then(|member| member.info.metadata_leader)
                .map(|hint| hint.node_id.0);
            (members.iter().map(cluster_node).collect(), leader)
        }
        None => (vec![standalone_node(shared)], None),
    };
    let (metadata_leader, metadata_term, partitions) = match &shared.node {
        Some(node) => {
            let leader = node.groups.metadata_leader();
            let leader = leader.and_then(|(id, _)| u32::try_from(id).ok());
            (
                leader.or(metadata_leader),
                node.groups.metadata_term(),
                replicated_partitions(node),
            )
        }
        None => (metadata_leader, 0, partitions(&shared.broker)),
    };
    ClusterStatusResponse {
        cluster_id: shared.config.cluster_id.clone(),
        node_id,
        metadata_leader,
        metadata_term,
        nodes,
        partitions,
    }
}

/// The brokers Metadata lists: every `Alive` member with a native listener,
/// or this node alone.
pub(crate) fn brokers(shared: &Shared) -> Vec<NodeRef> {
    let this_node = NodeRef {
        node_id: shared.broker.config().node_id,
        address: shared.config.advertised_address.clone(),
    };
    if let Some(node) = &shared.node {
        return registered_brokers(node, shared.members.as_ref());
    }
    let Some(members) = &shared.members else {
        return vec![this_node];
    };
    let mut brokers: Vec<NodeRef> = members
        .borrow()
        .iter()
        .filter(|member| member.state == MemberState::Alive && !member.is_self)
        .filter_map(|member| {
            Some(NodeRef {
                node_id: member.info.node_id.0,
                address: member.info.listener(NATIVE_LISTENER)?.to_string(),
            })
        })
        .chain(std::iter::once(this_node))
        .collect();
    brokers.sort_by_key(|broker| broker.node_id);
    brokers
}

/// Partitions this node leads: in cluster mode the replicas whose group it
/// leads, standalone every partition it holds.
pub(crate) fn partitions_led(shared: &Shared) -> u32 {
    if let Some(node) = &shared.node {
        let led = node.leaderships().len();
        return u32::try_from(led).unwrap_or(u32::MAX);
    }
    let broker = &shared.broker;
    let count: usize = broker
        .list_topics()
        .iter()
        .map(|topic| topic.partitions.len())
        .sum();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn cluster_node(member: &MemberView) -> ClusterNode {
    let info = &member.info;
    ClusterNode {
        node_id: info.node_id.0,
        addresses: info
            .listeners
            .iter()
            .map(|(name, address)| ListenerAddress {
                name: name.clone(),
                address: address.clone(),
            })
            .collect(),
        state: match member.state {
            MemberState::Alive => NodeState::Alive,
            MemberState::Suspect => NodeState::Suspect,
            MemberState::Dead => NodeState::Dead,
        },
        partitions_led: info.load.partitions_led,
        bytes_in_per_s: info.load.bytes_in_per_s,
        bytes_out_per_s: info.load.bytes_out_per_s,
        cpu_permille: info.load.cpu_permille,
        generation: info.generation,
    }
}

fn standalone_node(shared: &Shared) -> ClusterNode {
    let rates = shared.load.rates();
    ClusterNode {
        node_id: shared.broker.config().node_id,
        addresses: vec![ListenerAddress {
            name: NATIVE_LISTENER.to_string(),
            address: shared.config.advertised_address.clone(),
        }],
        state: NodeState::Alive,
        partitions_led: partitions_led(shared),
        bytes_in_per_s: rates.bytes_in_per_s,
        bytes_out_per_s: rates.bytes_out_per_s,
        cpu_permille: 0,
        generation: shared.started_ms,
    }
}

/// Every partition on this node, led by it alone (no replication yet).
fn partitions(broker: &citystream_broker::Broker) -> Vec<ClusterPartition> {
    let node_id = broker.config().node_id;
    let mut partitions = Vec::new();
    for topic in broker.list_topics() {
        for partition in &topic.partitions {
            if partitions.len() == PARTITIONS_LISTED_MAX {
                tracing::warn!(
                    limit = PARTITIONS_LISTED_MAX,
                    "cluster status lists only the first partitions"
                );
                return partitions;
            }
            partitions.push(ClusterPartition {
                topic: topic.name.clone(),
                partition: partition.partition,
                leader: node_id,
                replicas: vec![node_id],
                // A quorum of one: everything appended is committed.
                commit_index: partition.high_watermark,
                log_end: partition.high_watermark,
                lag: 0,
                quiet: false,
            });
        }
    }
    partitions
}

/// Every partition of the replicated metadata, as this node sees it: the
/// leader it knows of and, where it holds a replica, its committed end and
/// log end (the leader's figures when this node leads).
fn replicated_partitions(node: &crate::node::ClusterNode) -> Vec<ClusterPartition> {
    let state = node.metadata();
    let mut partitions = Vec::new();
    for (name, topic) in &state.topics {
        for (partition, assignment) in topic.partitions.iter().enumerate() {
            if partitions.len() == PARTITIONS_LISTED_MAX {
                return partitions;
            }
            let partition = partition as u32;
            let leader = node
                .partition_leader(&state, name, partition)
                .map_or(0, |hint| hint.node_id);
            let (commit_index, log_end, quiet) = node
                .groups
                .replica(topic.topic_id.partition_group(partition))
                .map_or((0, 0, false), |replica| {
                    let (_, end, hwm) = replica.extent();
                    (hwm, end, replica.liveness.is_quiet())
                });
            partitions.push(ClusterPartition {
                topic: name.clone(),
                partition,
                leader,
                replicas: assignment.replicas.clone(),
                commit_index,
                log_end,
                lag: log_end.saturating_sub(commit_index),
                quiet,
            });
        }
    }
    partitions
}

/// In cluster mode: the brokers registered in the metadata at their native
/// addresses, without those gossip reports dead.
fn registered_brokers(
    node: &crate::node::ClusterNode,
    members: Option<&tokio::sync::watch::Receiver<Vec<MemberView>>>,
) -> Vec<NodeRef> {
    let dead: Vec<u32> = members
        .map(|members| {
            members
                .borrow()
                .iter()
                .filter(|member| member.state == MemberState::Dead)
                .map(|member| member.info.node_id.0)
                .collect()
        })
        .unwrap_or_default();
    node.metadata()
        .brokers
        .iter()
        .filter(|(id, info)| {
            info.state != citystream_cluster::BrokerState::Removed && !dead.contains(id)
        })
        .map(|(id, info)| NodeRef {
            node_id: *id,
            address: info.addresses.native.clone(),
        })
        .collect()
}
