//! [`propose`]: the leader-side write of one metadata command, returning
//! what applying it gave. Not-leader errors carry the leader's id and peer
//! address so the caller can forward (0005 §3: requests reach any node and
//! go to the metadata leader).

use citystream_raft::Tc;
use openraft::error::{ClientWriteError, RaftError};

use crate::command::MetadataCommand;
use crate::state_machine::{ApplyResult, MetadataRaft, MetadataStateMachine, command_batch};

/// Why a command was not committed (or its result is lost).
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("not the metadata leader (leader: {leader_id:?} at {leader_peer:?})")]
    NotLeader {
        leader_id: Option<u64>,
        leader_peer: Option<String>,
    },
    #[error("metadata write failed: {0}")]
    Raft(String),
    #[error("the outcome of the command at index {index} is no longer kept")]
    OutcomeLost { index: u64 },
}

impl From<RaftError<Tc, ClientWriteError<Tc>>> for ProposeError {
    fn from(e: RaftError<Tc, ClientWriteError<Tc>>) -> Self {
        match e.forward_to_leader() {
            Some(forward) => ProposeError::NotLeader {
                leader_id: forward.leader_id,
                leader_peer: forward.leader_node.as_ref().map(|n| n.peer.clone()),
            },
            None => ProposeError::Raft(e.to_string()),
        }
    }
}

/// Commits `command` through `raft` (which must lead) and returns the
/// result of applying it: `Ok(Err(_))` is a committed command that the
/// state refused (nothing changed). `sm` is the state machine `raft` runs.
pub async fn propose(
    raft: &MetadataRaft,
    sm: &MetadataStateMachine,
    command: &MetadataCommand,
) -> Result<ApplyResult, ProposeError> {
    let response = raft.client_write(command_batch(command)).await?;
    let index = response.log_id.index;
    sm.take_outcome(index)
        .ok_or(ProposeError::OutcomeLost { index })
}
