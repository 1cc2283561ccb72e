//! [`PartitionStateMachine`]: what applying a committed entry means for a
//! partition, which is only moving the high watermark (HWM, the committed
//! end offset) to the end of the entry's batch. Fetches and consumers read
//! below the HWM, published through a `tokio::sync::watch`, so they only see
//! committed records. The data itself is the log; nothing is copied.
//!
//! Snapshots are tiny (decision 0005 §2): a log id, the membership at it
//! and the offset after it ([`PartitionSnapshot::next_offset`]). They are
//! taken **at the retention point**, not at the applied end: retention
//! ([`crate::retention`]) names the last batch it wants to delete with
//! [`PartitionStateMachine::prepare_snapshot`], the snapshot is built
//! there, and only then may the log before it be purged. A follower that
//! needs purged entries is sent the snapshot; installing it on a replica
//! whose log does not reach that point resets the log to start right after
//! it, and the follower catches up by ordinary AppendEntries, ending with
//! exactly the leader's retained records. The current snapshot is kept in
//! the `snapshot` file ([`crate::snapshot_file`]), so a restarted replica
//! knows where its purged log ended. Applied membership entries are kept
//! from the snapshot's on, so a snapshot behind the applied end carries the
//! membership of its own point.
//!
//! Not here yet: producer-dedup state (the leader rebuilds it from its
//! log) and an `sm-state` file for faster restarts.

use std::io;
use std::sync::Arc;

use citystream_log::{BatchHeader, Offset, PartitionLog, Storage, Term};
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
use crate::snapshot_file::{self, StoredSnapshot};
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
    /// Applied memberships, oldest first, starting with the last one at or
    /// before the current snapshot's point.
    memberships: Vec<StoredMembershipOf<Tc>>,
    high_watermark: u64,
    current: Option<StoredSnapshot>,
    /// Where the next snapshot goes, set by retention.
    target: Option<Target>,
}

/// A snapshot point retention asked for.
#[derive(Debug, Clone)]
struct Target {
    last: LogIdOf<Tc>,
    membership: StoredMembershipOf<Tc>,
    next_offset: u64,
}

/// The state machine of one partition group. Clones share state.
#[derive(Clone)]
pub struct PartitionStateMachine {
    log: SharedLog,
    /// Where the `snapshot` file lives (the group's storage).
    storage: Arc<dyn Storage>,
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
    /// A state machine with nothing applied, over `log`, keeping its
    /// snapshot in `storage` (the group's storage; the stored snapshot is
    /// read here and installed by openraft when the group starts). The HWM
    /// starts at the log's start offset: records below it were purged,
    /// which only happens to committed ones.
    pub fn open(log: SharedLog, storage: Arc<dyn Storage>) -> io::Result<Self> {
        let start = log.read().start_offset().0;
        let state = SmState {
            high_watermark: start,
            current: snapshot_file::read(&*storage)?,
            ..SmState::default()
        };
        Ok(PartitionStateMachine {
            log,
            storage,
            state: Arc::new(Mutex::new(state)),
            high_watermark: Arc::new(watch::channel(start).0),
        })
    }

    /// The log this state machine reads.
    pub fn log(&self) -> &SharedLog {
        &self.log
    }

    /// The last log id the current snapshot covers.
    pub fn snapshot_point(&self) -> Option<LogIdOf<Tc>> {
        self.state
            .lock()
            .current
            .as_ref()
            .and_then(|s| s.meta.last_log_id)
    }

    /// Makes the next snapshot cover the log up to and including `last`, a
    /// batch the log holds. False (and nothing changes) if `last` is not
    /// applied yet or is not after the current snapshot.
    pub fn prepare_snapshot(&self, last: &BatchHeader) -> io::Result<bool> {
        let id = crate::log_reader::log_id_of(last)?;
        let mut state = self.state.lock();
        let current = state.current.as_ref().and_then(|s| s.meta.last_log_id);
        if Some(id) > state.applied || Some(id) <= current {
            return Ok(false);
        }
        let Some(membership) = state
            .memberships
            .iter()
            .rev()
            .find(|m| m.log_id().is_some_and(|at| at <= id))
            .cloned()
        else {
            return Ok(false);
        };
        state.target = Some(Target {
            last: id,
            membership,
            next_offset: last.next_offset(),
        });
        Ok(true)
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
                    let applied = state.membership.clone();
                    state.memberships.push(applied);
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

    /// Snapshots are taken where retention asks ([`Self::prepare_snapshot`]);
    /// openraft's own requests are declined unless forced (at start-up,
    /// when logs were purged and no snapshot was kept).
    async fn try_create_snapshot_builder(&mut self, force: bool) -> Option<Self::SnapshotBuilder> {
        (force || self.state.lock().target.is_some()).then(|| self.clone())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<Tc>,
        snapshot: PartitionSnapshot,
    ) -> Result<(), io::Error> {
        if let Some(last) = &meta.last_log_id {
            let mut log = self.log.write();
            if !reaches(&log, last, snapshot.next_offset)? {
                tracing::info!(
                    raft_index = stored_index(last.index),
                    next_offset = snapshot.next_offset,
                    "snapshot replaces the log"
                );
                log.reset(
                    Offset(snapshot.next_offset),
                    Term(last.leader_id.term),
                    stored_index(last.index) + 1,
                )
                .map_err(io::Error::other)?;
            }
        }
        let installed = Snapshot {
            meta: meta.clone(),
            snapshot,
        };
        // At start-up openraft reinstalls the stored snapshot: already on
        // disk, so no write (and fsync) per replica.
        let stored = self
            .state
            .lock()
            .current
            .as_ref()
            .is_some_and(|c| c.meta == *meta && c.snapshot == snapshot);
        if !stored {
            snapshot_file::write(&*self.storage, &installed)?;
        }
        {
            let mut state = self.state.lock();
            state.applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.memberships = vec![meta.last_membership.clone()];
            state.high_watermark = snapshot.next_offset;
            state.current = Some(installed);
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
        let snapshot = {
            let mut state = self.state.lock();
            let (last_log_id, last_membership, next_offset) = match state.target.take() {
                Some(target) => (Some(target.last), target.membership, target.next_offset),
                None => (
                    state.applied,
                    state.membership.clone(),
                    state.high_watermark,
                ),
            };
            Snapshot {
                meta: SnapshotMeta {
                    last_log_id,
                    last_membership,
                },
                snapshot: PartitionSnapshot { next_offset },
            }
        };
        snapshot_file::write(&*self.storage, &snapshot)?;
        let mut state = self.state.lock();
        let at = snapshot.meta.last_log_id;
        // Memberships before the one in force at the snapshot are no
        // longer needed for any later snapshot.
        let older = state
            .memberships
            .iter()
            .rposition(|m| m.log_id().is_some_and(|id| Some(id) <= at))
            .unwrap_or(0);
        state.memberships.drain(..older);
        state.current = Some(snapshot.clone());
        Ok(snapshot)
    }
}

/// Whether `log` already holds everything up to `last` with the same
/// term and offsets, so installing a snapshot there keeps the log: it holds
/// the batch `last` itself, or it was purged exactly after it.
fn reaches(log: &PartitionLog, last: &LogIdOf<Tc>, next_offset: u64) -> io::Result<bool> {
    let stored = stored_index(last.index);
    let term = last.leader_id.term;
    if log.floor() == (Term(term), stored) && log.start_offset().0 == next_offset {
        return Ok(true);
    }
    let held = log.locate_raft_index(stored).map_err(io::Error::other)?;
    Ok(held.is_some_and(|h| h.term == term && h.next_offset() == next_offset))
}
