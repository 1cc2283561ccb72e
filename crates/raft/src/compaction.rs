//! Compaction of a replicated partition (decision 0017 §5, §6). Each
//! replica, leader or follower, on its own schedule:
//!
//! 1. asks its log for the compaction point `P`: the last batch of the
//!    closed segments older than the topic's compaction lag, if enough of
//!    them is not compacted yet (`PartitionLog::compaction_point`);
//! 2. has the state machine snapshot at `P` and asks openraft to purge up
//!    to it, as retention does. A compacted log's purge keeps the data
//!    (`log_storage`), and the snapshot carries it to a follower that
//!    needs it ([`crate::snapshot_prefix`]);
//! 3. once openraft has purged up to `P` (a leader waits while a follower
//!    still replicates below it), compacts below `P`: the plan under the
//!    log's read lock, the rewrite on a blocking thread with no lock, the
//!    swap under the write lock.
//!
//! So every rewritten batch is at or below the purge point, which
//! openraft never reads, and replicas compacting at different points
//! still converge: compaction is a function of the committed records
//! below a horizon (decision 0017 §2).

use citystream_log::{CompactionParams, CompactionPlan, CompactionSummary, LogError, Offset};
use openraft::async_runtime::WatchReceiver;

use crate::log_reader::log_id_of;
use crate::retention::{RetentionError, snapshot_at};
use crate::state_machine::PartitionStateMachine;
use crate::types::PartitionRaft;

/// Why a compaction pass did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error(transparent)]
    Snapshot(#[from] RetentionError),
    #[error("compacting the log failed: {0}")]
    Log(#[from] LogError),
    #[error("the compaction task failed: {0}")]
    Task(String),
}

/// One compaction step of a replica at `now_ms`. Returns what a pass did,
/// or `None` when there was nothing to do yet (nothing old enough, the
/// point not applied here, or openraft not purged up to it yet). The
/// rewrite runs on tokio's blocking pool.
pub async fn apply_compaction(
    raft: &PartitionRaft,
    sm: &PartitionStateMachine,
    params: &CompactionParams,
    lag_ms: u64,
    now_ms: i64,
) -> Result<Option<CompactionSummary>, CompactionError> {
    let Some(plan) = plan_compaction(raft, sm, params, lag_ms, now_ms).await? else {
        return Ok(None);
    };
    let cleaned = tokio::task::spawn_blocking(move || plan.run())
        .await
        .map_err(|e| CompactionError::Task(e.to_string()))??;
    Ok(Some(sm.log().write().commit_compaction(cleaned)?))
}

/// Steps 1 and 2 of a compaction step, and the plan of step 3: the pass
/// to run below the compaction point once openraft has purged there. The
/// caller runs it (`CompactionPlan::run`, slow, no lock held) where it
/// likes, then commits it with `PartitionLog::commit_compaction`; the
/// simulation runs it inline, to stay deterministic.
pub async fn plan_compaction(
    raft: &PartitionRaft,
    sm: &PartitionStateMachine,
    params: &CompactionParams,
    lag_ms: u64,
    now_ms: i64,
) -> Result<Option<CompactionPlan>, CompactionError> {
    let cutoff_ms = now_ms.saturating_sub(i64::try_from(lag_ms).unwrap_or(i64::MAX));
    let point = sm
        .log()
        .read()
        .compaction_point(cutoff_ms, params.dirty_ratio_min_percent);
    let Some(point) = point else {
        return Ok(None);
    };
    let id = log_id_of(&point).map_err(RetentionError::from)?;
    if !snapshot_at(raft, sm, &point).await? {
        return Ok(None);
    }
    if raft.metrics().borrow_watched().purged < Some(id) {
        raft.trigger()
            .purge_log(id.index)
            .await
            .map_err(|_| RetentionError::Stopped)?;
        return Ok(None);
    }
    let horizon = Offset(point.next_offset());
    Ok(sm.log().read().plan_compaction(horizon, params))
}
