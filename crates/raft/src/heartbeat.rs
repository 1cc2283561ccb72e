//! The broker's heartbeat ticker (0005 §4): openraft's per-group heartbeat
//! is off (`Config::enable_heartbeat = false`); one task per broker asks
//! every group this node leads to send a heartbeat, so hundreds of groups
//! cost one timer.

use std::time::Duration;

use openraft::Raft;
use openraft::storage::RaftStateMachine;

use crate::Tc;

/// Triggers a heartbeat every `interval` in each group of `rafts` that this
/// node leads. Runs until its task is aborted; a group that has shut down
/// only fails its own trigger.
pub async fn heartbeat_ticker<SM: RaftStateMachine<Tc>>(
    rafts: Vec<Raft<Tc, SM>>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for raft in rafts.iter().filter(|raft| raft.is_leader()) {
            let _ = raft.trigger().heartbeat().await;
        }
    }
}
