//! What a compacted seed does beyond the others (decision 0017 §10 item
//! 7): its step "compaction on node n", the final compaction of every
//! node, and the restated invariants 2–4 and the new 6 as checks on the
//! simulation's nodes (see the crate docs, "Invariants"). The model they
//! check against is the parent module's; the rest of the run is the crate
//! root's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_log::BatchHeader;
use citystream_raft::{CompactionError, RetentionError};
use rand::Rng as _;
use tokio::time::Instant;

use super::Removable;
use crate::{FinalLogs, Sabotage, Sim, check_ack, compaction, read_covering, read_range};

impl Sim {
    /// A fetch of acked `offset` (below the HWM) from `node` of a
    /// compacted seed: the batch covering it holds the ack or is a valid
    /// compaction of it.
    pub(crate) fn fetch_compacted(&mut self, node: u64, offset: u64) -> Result<(), String> {
        let running = self.nodes[&node].running.as_ref().expect("up");
        let (header, batch) = read_covering(&running.log.read(), offset)
            .map_err(|e| format!("fetch of acked offset {offset} from node {node}: {e}"))?;
        if !self.holds_ack(node, offset, &header, &batch)? {
            let ack = &self.model.acked[&offset];
            check_ack(offset, ack, &batch).map_err(|e| format!("fetch from node {node}: {e}"))?;
        }
        let ack = &self.model.acked[&offset];
        let form = if header.is_compacted() {
            " (compacted)"
        } else {
            ""
        };
        self.event(format!(
            "fetch {offset} from {node}: {} ok{form}",
            ack.label
        ));
        Ok(())
    }

    /// Compaction on a random running node (a compacted seed's step in
    /// place of retention).
    pub(crate) async fn compaction(&mut self) -> Result<(), String> {
        match self.pick(&self.up_nodes()) {
            Some(id) => self.compaction_on(id, true).await,
            None => Ok(()),
        }
    }

    /// One step of compaction on node `id`
    /// (`citystream_raft::apply_compaction` with the rewrite inline, lag 0, "now" past every
    /// record): a snapshot and a purge at its compaction point, or, once
    /// openraft purged there, a pass below it. As for retention, the
    /// node's committed log is checked first, so the model holds every
    /// batch the pass may rewrite in its original form. After a pass at
    /// `H`, no key has two records below `H` on the node. With
    /// `may_crash`, a crash may cut the pass short.
    pub(crate) async fn compaction_on(&mut self, id: u64, may_crash: bool) -> Result<(), String> {
        self.learn_committed(id)?;
        let running = self.nodes[&id].running.as_ref().expect("up");
        let (raft, sm) = (running.raft.clone(), running.sm.clone());
        let mut params = compaction::params(self.seed);
        if id == 1 && self.config.sabotage == Some(Sabotage::TombstonesExpireAtOnce) {
            params.tombstone_retention_ms = 0;
        }
        // A crash may cut a pass short (one in two, while another node is
        // up): after its plan, or after its run wrote the `.cleaned`
        // outputs, never committed.
        let crash = may_crash && self.up_nodes().len() > 1;
        let stop = match self.compaction_draw.random_range(0..4u32) {
            0 if crash => Stop::AfterPlan,
            1 if crash => Stop::AfterRun,
            _ => Stop::Commit,
        };
        let summary = match compact_inline(&raft, &sm, &params, stop).await {
            Ok(Some(Pass::Committed(summary))) => summary,
            Ok(Some(Pass::Interrupted)) => return self.crash_during_compaction(id, stop).await,
            Ok(None) => {
                self.event(format!(
                    "compaction on {id}: snapshot or purge, no pass yet"
                ));
                return Ok(());
            }
            Err(
                e @ CompactionError::Snapshot(
                    RetentionError::Stopped | RetentionError::SnapshotTimedOut(_),
                ),
            ) => {
                self.event(format!("compaction on {id}: {e}"));
                return Ok(());
            }
            Err(e) => return Err(format!("compaction on node {id} failed: {e}")),
        };
        // No await since the pass committed: nothing read the log since.
        let horizon = summary.horizon.0;
        self.horizons.raise(id, horizon);
        if summary.abandoned {
            self.event(format!(
                "compaction on {id}: pass abandoned, the log changed"
            ));
            return Ok(());
        }
        if summary.segments_rewritten > 0 {
            self.compaction_passes += 1;
        }
        self.event(format!(
            "compaction on {id}: pass to offset {horizon}, {} segments rewritten, {} bytes removed",
            summary.segments_rewritten, summary.bytes_removed
        ));
        let below = read_range(&sm.log().read(), 0, horizon)
            .map_err(|e| format!("node {id} log unreadable after compaction: {e}"))?;
        one_record_per_key(id, &below, horizon)
    }

    /// Node `id` crashes in the middle of a pass (`stop`), as a process
    /// kill or a power loss would find it; half of the kills restart at
    /// once, as after any crash. Its reopened log must not hold what the
    /// pass would have written: the checks at its start and every later
    /// one hold it to the horizon of its last committed pass.
    async fn crash_during_compaction(&mut self, id: u64, stop: Stop) -> Result<(), String> {
        self.interrupted_passes += 1;
        let staged = self.staged_outputs(id);
        let kind = self.crash_node(id).await?;
        let when = match stop {
            Stop::AfterPlan => "after its plan".to_owned(),
            _ => format!("after its run wrote {staged} output segments"),
        };
        self.event(format!(
            "compaction on {id}: crashed {when}, before the commit"
        ));
        if kind == crate::crash::CrashKind::Kill && self.crash_draw.restart_at_once() {
            self.start_node(id).await?;
            let left = self.staged_outputs(id);
            if left > 0 {
                return Err(format!(
                    "node {id} kept {left} uncommitted compaction outputs after reopening its log"
                ));
            }
        }
        Ok(())
    }

    /// The `.cleaned` files (a pass's uncommitted output) in node `id`'s
    /// storage.
    fn staged_outputs(&self, id: u64) -> usize {
        let names = citystream_log::Storage::list(&self.nodes[&id].storage).unwrap_or_default();
        names
            .iter()
            .filter(|name| name.ends_with(".cleaned"))
            .count()
    }

    /// What compaction at `horizon` removes from the committed log.
    pub(crate) fn removable_at(&mut self, horizon: u64) -> Result<Arc<Removable>, String> {
        if let Some(removable) = self.model.removable.get(&horizon) {
            return Ok(removable.clone());
        }
        let removable = Arc::new(Removable::at(&self.model.committed, horizon)?);
        self.model.removable.insert(horizon, removable.clone());
        Ok(removable)
    }

    /// Invariant 2 for a compacted batch node `id` serves (or its storage
    /// kept): a valid compaction of committed batches the model holds, at
    /// most at the node's horizon bound.
    pub(crate) fn check_compacted_on(&mut self, id: u64, bytes: &Bytes) -> Result<(), String> {
        let removable = self.removable_at(self.horizons.of(id))?;
        compaction::check_compacted(&self.model.committed, &removable, bytes)
    }

    /// Whether the batch `header`/`bytes` of node `id`, which covers the
    /// acked `offset`, holds the ack: byte for byte or, in a compacted
    /// seed, as a valid compaction of it (every record it lost superseded
    /// by a later committed record of its key or an expired tombstone;
    /// invariant 3). A compacted batch that is no valid compaction fails.
    pub(crate) fn holds_ack(
        &mut self,
        id: u64,
        offset: u64,
        header: &BatchHeader,
        bytes: &Bytes,
    ) -> Result<bool, String> {
        let ack = &self.model.acked[&offset];
        if !header.is_compacted() {
            return Ok(header.base_offset == offset && check_ack(offset, ack, bytes).is_ok());
        }
        let label = ack.label.clone();
        self.check_compacted_on(id, bytes).map_err(|e| {
            format!(
                "acknowledged write {label} at offset {offset} is not readable on node {id}, and not by a valid compaction: {e}"
            )
        })?;
        Ok(true)
    }

    /// Compaction steps on every node, round after round, until no node
    /// has anything left to compact: each ends compacted up to its last
    /// closed segment (replicas roll segments at their own byte counts, so
    /// these horizons may differ).
    pub(crate) async fn compact_everywhere(&mut self, deadline: Instant) -> Result<(), String> {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        loop {
            let pending: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| {
                    let running = self.nodes[id].running.as_ref().expect("all up");
                    running.log.read().compaction_point(i64::MAX, 0).is_some()
                })
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nodes {pending:?} still had segments to compact 60 s after healing"
                ));
            }
            for id in pending {
                self.compaction_on(id, false).await?;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Invariant 4 of a compacted seed, once every node compacted as far
    /// as it can: below its clean point no node holds two records of a
    /// key; every node's records, compacted by the model at the highest
    /// horizon bound of any node, equal the model's committed records so
    /// compacted (so the replicas agree record by record, offsets
    /// included); and each node's newest record per key is the model's,
    /// but for a newest tombstone whose retention ran out there.
    pub(crate) fn compacted_replicas_agree(&mut self, logs: &FinalLogs) -> Result<(), String> {
        if let Some((&id, log)) = logs.iter().find(|(_, l)| l.start > 0) {
            return Err(format!("node {id}'s compacted log starts at {}", log.start));
        }
        let top = logs
            .keys()
            .map(|&id| self.horizons.of(id))
            .max()
            .unwrap_or(0);
        let removable = self.removable_at(top)?;
        let model_view = compaction::record_view(self.model.committed.values())?;
        let expected = compaction::compacted_view(&model_view, &removable);
        let model_newest = compaction::newest_per_key(&model_view);
        for (&id, log) in logs {
            one_record_per_key(id, &log.batches, log.clean_end)?;
            let view = compaction::record_view(log.batches.iter().map(|(_, b)| b))?;
            let compacted = compaction::compacted_view(&view, &removable);
            if let Some(at) = (0..expected.len().max(compacted.len()))
                .find(|&i| expected.get(i) != compacted.get(i))
            {
                return Err(format!(
                    "replicas differ after healing and compacting: node {id}'s records compacted to offset {top} differ from the committed log's at position {at}: {:?} instead of {:?}",
                    compacted.get(at),
                    expected.get(at)
                ));
            }
            let own = self.removable_at(self.horizons.of(id))?;
            newest_agree(id, &compaction::newest_per_key(&view), &model_newest, &own)?;
        }
        self.expired_tombstones = model_newest
            .values()
            .filter(|(offset, value)| value.is_none() && removable.contains(*offset))
            .count();
        self.event(format!(
            "compacted replicas agree: {} records of {} keys after compaction to {top} ({} deleted keys gone)",
            expected.len(),
            model_newest.len(),
            self.expired_tombstones
        ));
        Ok(())
    }
}

/// Node `id`'s newest record per key is the model's, except that a key
/// whose newest committed record is a tombstone removable at the node's
/// horizon bound may be gone.
fn newest_agree(
    id: u64,
    served: &compaction::NewestPerKey,
    model: &compaction::NewestPerKey,
    removable: &Removable,
) -> Result<(), String> {
    let keys: BTreeSet<&Vec<u8>> = served.keys().chain(model.keys()).collect();
    for key in keys {
        let (on_node, committed) = (served.get(key), model.get(key));
        let expired = matches!(committed, Some((offset, None)) if on_node.is_none() && removable.contains(*offset));
        if on_node != committed && !expired {
            return Err(format!(
                "after compaction node {id}'s newest record of key {:?} is {on_node:?}, the committed log's {committed:?}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    Ok(())
}

/// After a pass at `horizon` on node `id`: no key has two records below
/// it ("compaction keeps the newest record per key on every replica").
fn one_record_per_key(
    id: u64,
    batches: &[(BatchHeader, Bytes)],
    horizon: u64,
) -> Result<(), String> {
    let view = compaction::record_view(batches.iter().map(|(_, b)| b))?;
    match compaction::repeated_key_below(&view, horizon) {
        Some((key, count)) => Err(format!(
            "node {id} holds {count} records of key {key:?} below offset {horizon}, which it compacted to"
        )),
        None => Ok(()),
    }
}

/// How far a compaction step goes before the node crashes, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The whole pass: plan, run, commit.
    Commit,
    AfterPlan,
    AfterRun,
}

/// A pass that ran.
enum Pass {
    Committed(citystream_log::CompactionSummary),
    /// Stopped where [`Stop`] said, its plan or output dropped.
    Interrupted,
}

/// `citystream_raft::apply_compaction` with the rewrite run inline rather
/// than on tokio's blocking pool, whose threads would make runs of one
/// seed differ, and cut short at `stop`.
async fn compact_inline(
    raft: &citystream_raft::PartitionRaft,
    sm: &citystream_raft::PartitionStateMachine,
    params: &citystream_log::CompactionParams,
    stop: Stop,
) -> Result<Option<Pass>, CompactionError> {
    let plan = citystream_raft::plan_compaction(raft, sm, params, 0, i64::MAX).await?;
    let Some(plan) = plan else {
        return Ok(None);
    };
    if stop == Stop::AfterPlan {
        return Ok(Some(Pass::Interrupted));
    }
    let cleaned = plan.run()?;
    if stop == Stop::AfterRun {
        return Ok(Some(Pass::Interrupted));
    }
    let summary = sm.log().write().commit_compaction(cleaned)?;
    Ok(Some(Pass::Committed(summary)))
}
