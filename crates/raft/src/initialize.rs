//! [`initialize_members`]: the one way a group is initialized. Every replica
//! of a new group initializes it with the same member set (0005 §3; openraft
//! documents that as safe). A replica that already has a log — a restart,
//! or the first elected replica reached it first — is refused with
//! `NotAllowed`, which is success here: its membership is the same.

use std::collections::BTreeMap;

use openraft::Raft;
use openraft::error::{InitializeError, RaftError};
use openraft::storage::RaftStateMachine;

use crate::{PeerAddr, Tc};

/// Initializes `raft` with `members`; already initialized is not an error.
pub async fn initialize_members<SM: RaftStateMachine<Tc>>(
    raft: &Raft<Tc, SM>,
    members: BTreeMap<u64, PeerAddr>,
) -> Result<(), RaftError<Tc, InitializeError<Tc>>> {
    match raft.initialize(members).await {
        Err(e) if matches!(e.api_error(), Some(InitializeError::NotAllowed(_))) => Ok(()),
        other => other,
    }
}
