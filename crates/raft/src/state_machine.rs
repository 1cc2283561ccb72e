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
    EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf,
};
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership,
};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::log_reader::SharedLog;
use crate::snapshot_file::{self, StoredSnapshot};
use crate::snapshot_prefix::PrefixChunk;
use crate::types::{Appended, Tc, stored_index};

/// A partition group's snapshot: the segments are the data, so this is
/// only where the committed log ends at the snapshot point, and, for a
/// compacted topic, that the log below it travels with the snapshot.
#[derive(Clone, Default)]
pub struct PartitionSnapshot {
    /// The HWM at the snapshot point: the offset after its last batch.
    pub next_offset: u64,
    /// The log below `next_offset` is kept, not purged, and a follower
    /// that does not reach the point is sent it before the snapshot
    /// (a compacted topic, decision 0017 §5; [`crate::snapshot_prefix`]).
    pub carries_prefix: bool,
    /// On the sending side, the live log the prefix is read from. Neither
    /// stored nor sent, and ignored by `==`.
    pub source: Option<SharedLog>,
}

impl PartialEq for PartitionSnapshot {
    fn eq(&self, other: &PartitionSnapshot) -> bool {
        (self.next_offset, self.carries_prefix) == (other.next_offset, other.carries_prefix)
    }
}

impl Eq for PartitionSnapshot {}

impl std::fmt::Debug for PartitionSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionSnapshot")
            .field("next_offset", &self.next_offset)
            .field("carries_prefix", &self.carries_prefix)
            .finish()
    }
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
    /// The snapshot prefix being received (decision 0017 §5).
    staging: Option<Staging>,
}

/// A snapshot prefix being received: staged beside the log from `start`
/// to `end` ([`crate::snapshot_prefix`]).
#[derive(Debug, Clone)]
struct Staging {
    vote: VoteOf<Tc>,
    snapshot: LogIdOf<Tc>,
    start: u64,
    end: u64,
    /// The sender's floor below `start`: the restored log's.
    floor: (u64, u64),
    /// Checked whole before its install: only a newer vote replaces it.
    sealed: bool,
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
        let current = snapshot_file::read(&*storage)?;
        finish_or_discard_restore(&mut log.write(), current.as_ref())?;
        let start = log.read().start_offset().0;
        let state = SmState {
            high_watermark: start,
            current,
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

    /// Stages one chunk of a snapshot's prefix beside the log. An error
    /// refuses it (the sender starts the transfer over); a chunk already
    /// staged is accepted again without writing.
    pub fn stage_chunk(&self, chunk: &PrefixChunk) -> io::Result<()> {
        let mut state = self.state.lock();
        let same_transfer = |s: &Staging| s.vote == chunk.vote && s.snapshot == chunk.snapshot;
        if chunk.first {
            if let Some(staging) = &state.staging
                && staging.sealed
                && chunk.vote <= staging.vote
            {
                return Err(refused(format!(
                    "the prefix of snapshot {} is being installed",
                    staging.snapshot
                )));
            }
            self.log
                .write()
                .discard_staged()
                .map_err(io::Error::other)?;
            state.staging = Some(Staging {
                vote: chunk.vote,
                snapshot: chunk.snapshot,
                start: chunk.from_offset,
                end: chunk.from_offset,
                floor: chunk.floor,
                sealed: false,
            });
        }
        let Some(staging) = state.staging.as_mut().filter(|s| same_transfer(s)) else {
            return Err(refused(format!(
                "no transfer of snapshot {} under this vote is staged here",
                chunk.snapshot
            )));
        };
        if staging.sealed {
            return Err(refused("the staged prefix is being installed".into()));
        }
        if chunk.batches.is_empty() {
            return Ok(());
        }
        if chunk.from_offset < staging.end {
            return Ok(()); // a duplicate of a chunk already staged
        }
        let mut log = self.log.write();
        log.stage_prefix(chunk.first, Offset(chunk.from_offset), &chunk.batches)
            .map_err(|e| refused(e.to_string()))?;
        staging.end = log.staged_end().map_or(staging.end, |end| end.0);
        Ok(())
    }

    /// Checks that the prefix of the snapshot `meta` (ending at
    /// `next_offset`) is staged whole under `vote`, unless the log already
    /// reaches the point, and seals it until it is installed.
    pub fn seal_staged(
        &self,
        vote: VoteOf<Tc>,
        meta: &SnapshotMetaOf<Tc>,
        next_offset: u64,
    ) -> io::Result<()> {
        let Some(last) = &meta.last_log_id else {
            return Ok(());
        };
        let log = self.log.read();
        if reaches(&log, last, next_offset)? {
            return Ok(());
        }
        // The staged prefix must end with the snapshot's own entry (a gap
        // batch ending there carries its id too).
        let staged_last = log.staged_last_batch();
        let ends_at_point = staged_last.is_none_or(|h| {
            h.term == last.leader_id.term && h.raft_index == stored_index(last.index)
        });
        drop(log);
        let mut state = self.state.lock();
        match state.staging.as_mut() {
            Some(staging)
                if staging.vote == vote
                    && staging.snapshot == *last
                    && staging.end == next_offset
                    && ends_at_point =>
            {
                staging.sealed = true;
                Ok(())
            }
            staging => Err(refused(format!(
                "the prefix of snapshot {last} is not staged whole (staged: {:?}, needed up to offset {next_offset})",
                staging.map(|s| (s.snapshot, s.start, s.end)),
            ))),
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
        let next_offset = snapshot.next_offset;
        let installed = Snapshot {
            meta: meta.clone(),
            snapshot: PartitionSnapshot {
                source: None,
                ..snapshot
            },
        };
        // At start-up openraft reinstalls the stored snapshot: already on
        // disk, so no write (and fsync) per replica.
        let stored = self
            .state
            .lock()
            .current
            .as_ref()
            .is_some_and(|c| c.meta == *meta && c.snapshot == installed.snapshot);
        let staging = self.state.lock().staging.take();
        let mut written = stored;
        if let Some(last) = &meta.last_log_id {
            let mut log = self.log.write();
            if reaches(&log, last, next_offset)? {
                if staging.is_some() {
                    log.discard_staged().map_err(io::Error::other)?;
                }
            } else if installed.snapshot.carries_prefix {
                let staged = staging
                    .filter(|s| s.snapshot == *last && s.end == next_offset)
                    .ok_or_else(|| {
                        io::Error::other(format!(
                            "installing snapshot {last}: its prefix, up to offset {next_offset}, is not staged"
                        ))
                    })?;
                if staged.start < staged.end {
                    tracing::info!(
                        raft_index = stored_index(last.index),
                        start_offset = staged.start,
                        next_offset,
                        "snapshot with its prefix replaces the log"
                    );
                    // The snapshot file is the commit point: once it is
                    // written, a restart completes the swap (`Self::open`).
                    if !written {
                        snapshot_file::write(&*self.storage, &installed)?;
                        written = true;
                    }
                    let (floor_term, floor_index) = staged.floor;
                    log.finish_restore(Term(floor_term), floor_index)
                        .map_err(io::Error::other)?;
                } else {
                    reset_to(&mut log, last, next_offset)?;
                }
            } else {
                if staging.is_some() {
                    log.discard_staged().map_err(io::Error::other)?;
                }
                reset_to(&mut log, last, next_offset)?;
            }
        }
        if !written {
            snapshot_file::write(&*self.storage, &installed)?;
        }
        {
            let mut state = self.state.lock();
            state.applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.memberships = vec![meta.last_membership.clone()];
            state.high_watermark = next_offset;
            state.current = Some(installed);
        }
        self.publish(next_offset);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<Tc, PartitionSnapshot>>, io::Error> {
        let mut current = self.state.lock().current.clone();
        if let Some(snapshot) = current.as_mut()
            && snapshot.snapshot.carries_prefix
        {
            snapshot.snapshot.source = Some(Arc::clone(&self.log));
        }
        Ok(current)
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
                snapshot: PartitionSnapshot {
                    next_offset,
                    carries_prefix: self.log.read().config().compacted,
                    source: None,
                },
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
        let mut snapshot = snapshot;
        if snapshot.snapshot.carries_prefix {
            snapshot.snapshot.source = Some(Arc::clone(&self.log));
        }
        Ok(snapshot)
    }
}

/// At open: a stored snapshot with a prefix the log does not reach was
/// committed (its file written) before the staged prefix was swapped in,
/// so the swap is finished now. Staged files of any other transfer are
/// dropped.
fn finish_or_discard_restore(
    log: &mut PartitionLog,
    current: Option<&StoredSnapshot>,
) -> io::Result<()> {
    let Some(staged_end) = log.staged_end() else {
        return Ok(());
    };
    if let Some(snapshot) = current
        && snapshot.snapshot.carries_prefix
        && let Some(last) = &snapshot.meta.last_log_id
        && !reaches(log, last, snapshot.snapshot.next_offset)?
        && staged_end.0 == snapshot.snapshot.next_offset
    {
        tracing::info!(
            raft_index = stored_index(last.index),
            "finishing the swap of a snapshot's prefix"
        );
        // The sender's floor was not kept; it only matters for an empty
        // log, and this one is not: the entry below the first staged
        // batch is its predecessor in Raft, of an unknown older term.
        let (floor_term, floor_index) = match log.staged_first_batch() {
            Some(first) if !first.is_gap() => (0, first.raft_index.saturating_sub(1)),
            _ => (0, 0),
        };
        return log
            .finish_restore(Term(floor_term), floor_index)
            .map_err(io::Error::other);
    }
    log.discard_staged().map_err(io::Error::other)
}

/// Restarts `log` empty right after the snapshot point `last`.
fn reset_to(log: &mut PartitionLog, last: &LogIdOf<Tc>, next_offset: u64) -> io::Result<()> {
    tracing::info!(
        raft_index = stored_index(last.index),
        next_offset,
        "snapshot replaces the log"
    );
    log.reset(
        Offset(next_offset),
        Term(last.leader_id.term),
        stored_index(last.index) + 1,
    )
    .map_err(io::Error::other)
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
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
