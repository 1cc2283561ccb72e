//! Wire layouts of the cluster apis: ClusterStatus and the pieces of its
//! response, and RemoveNode and Rebalance with the reassignments answering
//! both. Each body is its fields in the listed order (see
//! `docs/protocol.md`); `NodeState` is a u8 tag.

use crate::wire::{Decode, DecodeError, Encode, Reader, Writer, wire_struct};
use crate::{
    ClusterNode, ClusterPartition, ClusterStatusRequest, ClusterStatusResponse, ListenerAddress,
    NodeState, Reassignment, ReassignmentsResponse, RebalanceRequest, RemoveNodeRequest,
};

wire_struct!(ClusterStatusRequest {});
wire_struct!(ClusterStatusResponse {
    cluster_id,
    node_id,
    metadata_leader,
    metadata_term,
    nodes,
    partitions,
});
wire_struct!(ClusterNode {
    node_id,
    addresses,
    state,
    partitions_led,
    bytes_in_per_s,
    bytes_out_per_s,
    cpu_permille,
    generation,
});
wire_struct!(ListenerAddress { name, address });
wire_struct!(ClusterPartition {
    topic,
    partition,
    leader,
    replicas,
    commit_index,
    log_end,
    lag,
    quiet,
});

wire_struct!(RemoveNodeRequest { node_id });
wire_struct!(RebalanceRequest { dry_run });
wire_struct!(ReassignmentsResponse {
    status,
    reassignments,
});
wire_struct!(Reassignment {
    topic,
    partition,
    from,
    to,
});

impl Encode for NodeState {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(*self as u8);
    }
}

impl Decode for NodeState {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(NodeState::Alive),
            1 => Ok(NodeState::Suspect),
            2 => Ok(NodeState::Dead),
            tag => Err(DecodeError::bad_tag(tag)),
        }
    }
}
