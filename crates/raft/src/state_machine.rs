//! [`PartitionStateMachine`]: what applying a committed entry means for a
//! partition, which is only moving the high watermark (HWM, the committed
//! end offset) to the end of the entry's batch. Fetches and consumers read
//! below the HWM, published through a `tokio::sync::watch`, so they only see
//! committed records. The data itself is the log; nothing is copied.
//!
//! Snapshots are tiny (decision 0005 §2): last applied log id, membership
//! and the HWM as [`PartitionSnapshot::next_offset`]. Installing one on a
//! replica whose log does not hold that point resets the log to start
//! right after it; the follower then catches up by ordinary AppendEntries.
//!
//! Not here yet: producer-dedup state, the `sm-state` file for fast
//! restarts, and snapshots at the retention point (this builder snapshots
//! the applied point; openraft is configured never to snapshot on its own).

use std::io;
use std::sync::Arc;

use citystream_log::{BatchHeader, Offset, Term};
use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{
    EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf,
};
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership,
};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::log_reader::SharedLog;
use crate::types::{Appended, Tc, stored_index};

/// A partition group's snapshot: the segments are the data, so this is
/// only where the committed log ends at the snapshot point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PartitionSnapshot {
    /// The HWM at the snapshot point: the offset after its last batch.
    pub next_offset: u64,
}

#[derive(Debug, Default)]
struct SmState {
    applied: Option<LogIdOf<Tc>>,
    membership: StoredMembershipOf<Tc>,
    high_watermark: u64,
    current: Option<SnapshotOf<Tc, PartitionSnapshot>>,
}

/// The state machine of one partition group. Clones share state.
#[derive(Clone)]
pub struct PartitionStateMachine {
    log: SharedLog,
    state: Arc<Mutex<SmState>>,
    high_watermark: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for PartitionStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionStateMachine")
            .field("state", &*self.state.lock())
            .finish()
    }
}

impl PartitionStateMachine {
    /// A state machine with nothing applied. The HWM starts at the log's
    /// start offset: records below it were purged, which only happens to
    /// committed ones.
    pub fn new(log: SharedLog) -> Self {
        let start = log.read().start_offset().0;
        let state = SmState {
            high_watermark: start,
            ..SmState::default()
        };
        PartitionStateMachine {
            log,
            state: Arc::new(Mutex::new(state)),
            high_watermark: Arc::new(watch::channel(start).0),
        }
    }

    /// The committed end offset: records below it are committed.
    pub fn high_watermark(&self) -> u64 {
        *self.high_watermark.borrow()
    }

    /// Follows the HWM (for long-poll fetches). It never decreases.
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<u64> {
        self.high_watermark.subscribe()
    }

    /// Where `entry` sits in the log. A data batch read back through
    /// [`crate::log_reader`] carries its stamped header; a control batch is
    /// looked up by Raft index. `None` if the log does not hold the entry,
    /// which in a running group cannot happen (committed entries are in the
    /// local log when applied) but does in openraft's storage suite, which
    /// applies entries it never appended.
    fn locate(&self, entry: &EntryOf<Tc>) -> io::Result<Option<Appended>> {
        let stored = stored_index(entry.log_id.index);
        if let EntryPayload::Normal(data) = &entry.payload
            && let Ok(header) = BatchHeader::decode(&data.bytes)
            && header.raft_index == stored
        {
            return Ok(Some(appended(&header)));
        }
        let header = self
            .log
            .read()
            .locate_raft_index(stored)
            .map_err(io::Error::other)?;
        Ok(header.map(|h| appended(&h)))
    }

    fn publish(&self, high_watermark: u64) {
        self.high_watermark.send_if_modified(|current| {
            let moved = high_watermark > *current;
            *current = (*current).max(high_watermark);
            moved
        });
    }
}

fn appended(header: &BatchHeader) -> Appended {
    Appended {
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
    }
}

impl RaftStateMachine<Tc> for PartitionStateMachine {
    type SnapshotData = PartitionSnapshot;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<Tc>>, StoredMembershipOf<Tc>), io::Error> {
        let state = self.state.lock();
        Ok((state.applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<Tc>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let located = self.locate(&entry)?;
            let high_watermark = {
                let mut state = self.state.lock();
                if let EntryPayload::Membership(membership) = &entry.payload {
                    state.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                }
                if let Some(at) = located {
                    state.high_watermark = state.high_watermark.max(at.last_offset + 1);
                }
                state.applied = Some(entry.log_id);
                state.high_watermark
            };
            // Published before the writer hears back, so an acked batch is
            // already readable.
            self.publish(high_watermark);
            if let Some(responder) = responder {
                responder.send(located.unwrap_or_default());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<Tc>,
        snapshot: PartitionSnapshot,
    ) -> Result<(), io::Error> {
        if let Some(last) = &meta.last_log_id {
            let stored = stored_index(last.index);
            let mut log = self.log.write();
            let held = log.locate_raft_index(stored).map_err(io::Error::other)?;
            let keep = held.is_some_and(|h| {
                h.term == last.leader_id.term && h.next_offset() == snapshot.next_offset
            });
            if !keep {
                tracing::info!(
                    raft_index = stored,
                    next_offset = snapshot.next_offset,
                    "snapshot replaces the log"
                );
                log.reset(
                    Offset(snapshot.next_offset),
                    Term(last.leader_id.term),
                    stored + 1,
                )
                .map_err(io::Error::other)?;
            }
        }
        {
            let mut state = self.state.lock();
            state.applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.high_watermark = snapshot.next_offset;
            state.current = Some(Snapshot {
                meta: meta.clone(),
                snapshot,
            });
        }
        self.publish(snapshot.next_offset);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<Tc, PartitionSnapshot>>, io::Error> {
        Ok(self.state.lock().current.clone())
    }
}

impl RaftSnapshotBuilder<Tc> for PartitionStateMachine {
    type SnapshotData = PartitionSnapshot;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<Tc, PartitionSnapshot>, io::Error> {
        let mut state = self.state.lock();
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_log_id: state.applied,
                last_membership: state.membership.clone(),
            },
            snapshot: PartitionSnapshot {
                next_offset: state.high_watermark,
            },
        };
        state.current = Some(snapshot.clone());
        Ok(snapshot)
    }
}
