//! The node's cleanup task: every `retention_check_interval_ms`, each
//! replica this node holds deletes what its topic's retention expires,
//! through a snapshot at the retention point (`citystream_raft::retention`,
//! decision 0005 §2), and a compacted topic's replica compacts below its
//! purge point (`citystream_raft::apply_compaction`, decision 0017 §5).
//! Leader and followers run it alike, one replica at a time (the rewrite
//! runs on a blocking thread); a follower that was away past the leader's
//! retention or compaction is sent the leader's snapshot, with the
//! compacted prefix for a compacted topic.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::{ClusterNode, Replica};
use crate::clock::now_ms;

impl ClusterNode {
    pub(super) async fn retention(self: Arc<Self>) {
        let period = Duration::from_millis(self.broker.config().retention_check_interval_ms.max(1));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let replicas: Vec<Arc<Replica>> =
                self.groups.replicas.read().values().cloned().collect();
            let now = now_ms();
            let config = self.broker.config();
            let key_map_bytes =
                usize::try_from(config.compaction_buffer_bytes).unwrap_or(usize::MAX);
            let lag_floor_ms = config.compaction_lag_floor_ms;
            let dirty_ratio = config.compaction_dirty_ratio_min_percent;
            for replica in replicas {
                match replica
                    .apply_compaction(now, key_map_bytes, dirty_ratio, lag_floor_ms)
                    .await
                {
                    Ok(Some(summary)) => tracing::debug!(
                        topic = %replica.id.topic,
                        partition = replica.id.partition,
                        horizon = summary.horizon.0,
                        rewritten = summary.segments_rewritten,
                        bytes_removed = summary.bytes_removed,
                        "compaction pass"
                    ),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(
                        topic = %replica.id.topic,
                        partition = replica.id.partition,
                        %error,
                        "compaction failed"
                    ),
                }
                match replica.apply_retention(now).await {
                    Ok(Some(upto)) => tracing::debug!(
                        topic = %replica.id.topic,
                        partition = replica.id.partition,
                        %upto,
                        "retention purges the log"
                    ),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(
                        topic = %replica.id.topic,
                        partition = replica.id.partition,
                        %error,
                        "retention failed"
                    ),
                }
            }
        }
    }
}
