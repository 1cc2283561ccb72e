//! Retention of a replicated partition (decision 0005 §2). A Raft log may
//! only lose entries that a snapshot covers, so a replica does not delete
//! segments the way a standalone log does (`PartitionLog::apply_retention`).
//! Each replica, leader or follower, on its own schedule:
//!
//! 1. asks its log for the retention point `P`, the last batch of the
//!    segments retention would delete (`PartitionLog::retention_point`);
//! 2. has the state machine snapshot at `P` (only once `P` is applied,
//!    which means committed);
//! 3. asks openraft to purge up to `P`. A follower purges at once; a leader
//!    waits while a replication stream still reads below `P`. The purge
//!    deletes the segments (`PartitionRaftStorage::purge`).
//!
//! Replicas roll segments at their own byte counts and times, so their
//! points differ a little; each deletes only whole segments of its own. A
//! follower that was away for longer than the leader's retention is sent the
//! leader's snapshot and then everything after it.

use std::time::Duration;

use citystream_log::{BatchHeader, Offset};
use openraft::async_runtime::WatchReceiver;
use openraft::type_config::alias::LogIdOf;

use crate::log_reader::log_id_of;
use crate::state_machine::PartitionStateMachine;
use crate::types::{PartitionRaft, Tc};

/// How long a snapshot may take to be built (a few bytes written).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);

/// Why retention did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("reading the log or writing the snapshot failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the snapshot at Raft index {0} was not built in time")]
    SnapshotTimedOut(u64),
    #[error("the Raft group stopped")]
    Stopped,
}

/// Applies the log's retention settings at `now_ms` through a snapshot.
/// Returns the log id openraft was asked to purge up to, or `None` when
/// there is nothing to delete yet (nothing expired, or the point is not
/// applied on this replica yet).
pub async fn apply_retention(
    raft: &PartitionRaft,
    sm: &PartitionStateMachine,
    now_ms: i64,
) -> Result<Option<LogIdOf<Tc>>, RetentionError> {
    let Some(point) = sm.log().read().retention_point(now_ms) else {
        return Ok(None);
    };
    let id = log_id_of(&point)?;
    if !snapshot_at(raft, sm, &point).await? {
        return Ok(None);
    }
    if raft.metrics().borrow_watched().purged >= Some(id) {
        // A compacted log's purge keeps its data (decision 0017 §5), so a
        // `compact,delete` topic deletes its expired segments here, once
        // openraft no longer needs them.
        let mut log = sm.log().write();
        if log.config().compacted && log.start_offset().0 < point.next_offset() {
            log.purge_before(Offset(point.next_offset()))
                .map_err(std::io::Error::other)?;
            return Ok(Some(id));
        }
        return Ok(None);
    }
    raft.trigger()
        .purge_log(id.index)
        .await
        .map_err(|_| RetentionError::Stopped)?;
    Ok(Some(id))
}

/// Makes sure the current snapshot covers `point`, a batch of the log:
/// builds one there if it does not yet. False if the point is not applied
/// on this replica yet.
pub(crate) async fn snapshot_at(
    raft: &PartitionRaft,
    sm: &PartitionStateMachine,
    point: &BatchHeader,
) -> Result<bool, RetentionError> {
    let id = log_id_of(point)?;
    if sm.snapshot_point() >= Some(id) {
        return Ok(true);
    }
    if !sm.prepare_snapshot(point)? {
        return Ok(false);
    }
    raft.trigger()
        .snapshot()
        .await
        .map_err(|_| RetentionError::Stopped)?;
    let built = raft
        .wait(Some(SNAPSHOT_WAIT))
        .metrics(|m| m.snapshot >= Some(id), "snapshot at the chosen point")
        .await;
    if built.is_err() {
        return Err(RetentionError::SnapshotTimedOut(id.index));
    }
    Ok(true)
}
