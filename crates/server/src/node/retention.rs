//! The node's retention task: every `retention_check_interval_ms`, each
//! replica this node holds deletes what its topic's retention expires,
//! through a snapshot at the retention point (`citystream_raft::retention`,
//! decision 0005 §2). Leader and followers run it alike; a follower that
//! was away past the leader's retention is sent the leader's snapshot.

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
            for replica in replicas {
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
