//! [`PartitionRaftStorage`]: openraft's `RaftLogStorage` over the partition
//! log (decision 0005 §1). One Raft entry is one record batch; the log
//! assigns offsets inside [`RaftLogStorage::append`], so every replica
//! derives the same ones from the same entries. Blank and membership entries
//! are stored as control batches ([`crate::control`]). The vote, the last
//! purged log id and the committed log id live in the `raft-state` file
//! ([`crate::raft_state`], which says what of it survives `kill -9` and
//! power loss).
//!
//! Durability, as implemented now: `append` writes the batches, then (unless
//! the log's policy is `Never`) fsyncs the log before it reports the
//! `IOFlushed` callback, so openraft counts an entry toward a quorum only
//! once it is on disk. The fsync runs outside the log's lock
//! (`begin_sync`/`run`/`finish_sync`), so fetches go on meanwhile; one
//! `append` call (which openraft batches) costs one fsync. With `Always` the
//! log has already synced each batch and the extra sync finds nothing to do.
//! With `Interval` and the node's group commit
//! ([`PartitionRaftStorage::with_group_commit`], decision 0020) the
//! callback is completed once the batch is written, and the log is noted
//! for the node's next interval fsync ([`crate::UnsyncedLogs`]); without
//! it, `Interval` syncs each append like `Always`.
//! With `Never` the callback is completed at once: a lie that survives
//! `kill -9` but not power loss (0005 §9 item 5).
//!
//! A batch proposed with an `acks=leader` token is answered right after
//! that sync ([`crate::LeaderAcks`]).
//!
//! The committed log id (`save_committed`, once per commit round) is
//! appended to `raft-state` without fsync, so a restarted node re-applies
//! what it had applied before and a leader that openraft restores in its
//! own term does not answer a linearizable read from behind. It is never
//! handed back beyond what the log holds: [`PartitionRaftStorage::open`]
//! lowers it to the log's last entry if the log's tail was cut below it
//! (what is left is a prefix of the log it was committed in), and drops it
//! if the log holds another entry at its index or it is at or below the
//! last purged id (the snapshot restores that state). openraft never
//! truncates committed entries (asserted in `truncate_after`), and a
//! snapshot install does not save it: the stored id stays below the
//! snapshot until the next commit, and is dropped on open once the purge
//! of the snapshot's entries is recorded.
//!
//! This module does not read entries back ([`crate::log_reader`]) or move
//! the high watermark ([`crate::state_machine`]).

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use citystream_log::{AppendInfo, BatchHeader, FsyncPolicy, Offset, PartitionLog, Storage, Term};
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{EntryPayload, LogState, OptionalSend};
use parking_lot::Mutex;

use crate::control::{self, ControlEntry};
use crate::leader_acks::LeaderAcks;
use crate::log_reader::{PartitionLogReader, SharedLog, invalid_data, log_id_of};
use crate::raft_state::{RaftState, RaftStateFile};
use crate::types::{Appended, Tc, stored_index};
use crate::unsynced::UnsyncedLogs;

/// The Raft log of one partition. Clones share the log and the state.
#[derive(Clone)]
pub struct PartitionRaftStorage {
    log: SharedLog,
    /// The `raft-state` file: in the log's own directory, or a sibling.
    state: Arc<Mutex<RaftStateFile>>,
    leader_acks: LeaderAcks,
    /// The node's group commit, under `FsyncPolicy::Interval`.
    group_commit: Option<Arc<UnsyncedLogs>>,
}

impl std::fmt::Debug for PartitionRaftStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionRaftStorage")
            .field("log", &*self.log.read())
            .field("state", &*self.state.lock())
            .finish()
    }
}

impl PartitionRaftStorage {
    /// Wraps an opened log and reads the stored vote, last purged id and
    /// committed id from `state_storage` (typically the storage the log
    /// was opened on). A committed id the log no longer backs is lowered
    /// or dropped, durably, before anything can read it
    /// (`held_committed`).
    pub fn open(log: SharedLog, state_storage: Arc<dyn Storage>) -> io::Result<Self> {
        let mut state = RaftStateFile::open(state_storage)?;
        let stored = *state.state();
        let held = held_committed(&log.read(), &stored)?;
        if held != stored.committed {
            tracing::info!(
                stored = ?stored.committed,
                held = ?held,
                "the stored committed log id is not backed by the log; lowered"
            );
            state.replace(RaftState {
                committed: held,
                ..stored
            })?;
        }
        Ok(PartitionRaftStorage {
            log,
            state: Arc::new(Mutex::new(state)),
            leader_acks: LeaderAcks::default(),
            group_commit: None,
        })
    }

    /// The `acks=leader` waiters this storage answers (0005 §5).
    pub fn leader_acks(&self) -> &LeaderAcks {
        &self.leader_acks
    }

    /// The shared partition log.
    pub fn log(&self) -> &SharedLog {
        &self.log
    }

    fn reader(&self) -> PartitionLogReader {
        PartitionLogReader {
            log: self.log.clone(),
            state: self.state.clone(),
        }
    }

    /// Makes every append so far durable, without holding the log's lock
    /// during the fsync. A no-op under `FsyncPolicy::Never`.
    fn sync_log(&self) -> io::Result<()> {
        crate::unsynced::sync(&self.log)
    }

    /// Leaves the fsync of appends to the node's group commit under
    /// `FsyncPolicy::Interval` (decision 0020): `append` reports them
    /// flushed once written, and notes the log in `unsynced`.
    pub fn with_group_commit(mut self, unsynced: Arc<UnsyncedLogs>) -> Self {
        self.group_commit = Some(unsynced);
        self
    }

    /// After an append: fsyncs now, or notes the log for the group commit.
    fn flush_appended(&self) -> io::Result<()> {
        let interval = matches!(self.log.read().config().fsync, FsyncPolicy::Interval { .. });
        match &self.group_commit {
            Some(unsynced) if interval => {
                unsynced.mark(&self.log);
                Ok(())
            }
            _ => self.sync_log(),
        }
    }

    /// Replaces the stored state with `change` of it, durably.
    fn save_state(&self, change: impl FnOnce(RaftState) -> RaftState) -> io::Result<()> {
        let mut state = self.state.lock();
        let changed = change(*state.state());
        state.replace(changed)
    }
}

impl RaftLogStorage<Tc> for PartitionRaftStorage {
    type LogReader = PartitionLogReader;

    async fn get_log_state(&mut self) -> Result<LogState<Tc>, io::Error> {
        let log = self.log.read();
        let (last_purged, storage) = {
            let state = self.state.lock();
            (state.state().last_purged, Arc::clone(state.storage()))
        };
        let last_purged = if log.config().compacted {
            last_purged
                .max(compacted_through(&log)?)
                .max(snapshot_point(&*storage)?)
        } else {
            last_purged
        };
        let last_batch = match log.last_batch() {
            Some(header) => Some(log_id_of(&header)?),
            None => None,
        };
        Ok(LogState {
            last_log_id: last_batch.max(last_purged),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &VoteOf<Tc>) -> Result<(), io::Error> {
        // No append made before the vote may become durable after it
        // (openraft docs/protocol/io_ordering.md).
        self.sync_log()?;
        self.save_state(|state| RaftState {
            vote: Some(*vote),
            ..state
        })
    }

    /// One appended record per advance, no fsync (see `raft_state`).
    async fn save_committed(&mut self, committed: Option<LogIdOf<Tc>>) -> Result<(), io::Error> {
        match committed {
            Some(committed) => self.state.lock().save_committed(committed),
            None => Ok(()),
        }
    }

    /// Already checked against the log in [`PartitionRaftStorage::open`].
    async fn read_committed(&mut self) -> Result<Option<LogIdOf<Tc>>, io::Error> {
        Ok(self.state.lock().state().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Tc>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<Tc>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut acks = Vec::new();
        {
            let mut log = self.log.write();
            for entry in entries {
                let token = match &entry.payload {
                    EntryPayload::Normal(data) => data.token,
                    _ => 0,
                };
                let info = append_entry(&mut log, entry)?;
                acks.push((token, info));
            }
        }
        let synced = self.flush_appended();
        if synced.is_ok() {
            for (token, info) in acks {
                let appended = Appended {
                    base_offset: info.base_offset.0,
                    last_offset: info.last_offset.0,
                };
                self.leader_acks.fire(token, appended);
            }
        }
        callback.io_completed(synced);
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogIdOf<Tc>>) -> Result<(), io::Error> {
        let committed = self.state.lock().state().committed;
        assert!(
            committed.is_none_or(|c| last.is_some_and(|l| c.index <= l.index)),
            "truncating after {last:?} would remove the committed entry {committed:?}"
        );
        let mut log = self.log.write();
        let (cut, floor_term) = match last {
            Some(id) => (stored_index(id.index) + 1, id.leader_id.term),
            None => (1, 0),
        };
        if cut > log.last_raft_index() {
            return Ok(());
        }
        let Some(first_cut) = log.locate_raft_index(cut).map_err(io::Error::other)? else {
            return Err(invalid_data(format!(
                "cannot truncate from Raft index {cut}: the log no longer serves it"
            )));
        };
        tracing::info!(
            from_raft_index = cut,
            offset = first_cut.base_offset,
            "truncating the Raft log"
        );
        let result = match first_cut.base_offset.checked_sub(1) {
            Some(keep) => log.truncate_after(Offset(keep)),
            None => log.reset(Offset(0), Term(floor_term), cut),
        };
        result.map_err(io::Error::other)
    }

    async fn purge(&mut self, upto: LogIdOf<Tc>) -> Result<(), io::Error> {
        // Recorded first: a crash before the segments go leaves them
        // unreachable, never a purged id that still looks present.
        self.save_state(|state| RaftState {
            last_purged: Some(upto),
            ..state
        })?;
        let mut log = self.log.write();
        let stored = stored_index(upto.index);
        if stored > log.last_raft_index() {
            // Purged past the end (a snapshot covers more than this log
            // holds): restart the log after it, keeping offsets dense.
            let next_offset = log.next_offset();
            return log
                .reset(next_offset, Term(upto.leader_id.term), stored + 1)
                .map_err(io::Error::other);
        }
        if log.config().compacted {
            // A compacted log keeps its data below the purge point:
            // compaction rewrites it there, and a snapshot carries it
            // (decision 0017 §5). Retention moves its start, if at all.
            return Ok(());
        }
        match log.locate_raft_index(stored).map_err(io::Error::other)? {
            Some(header) => log
                .purge_before(Offset(header.next_offset()))
                .map_err(io::Error::other),
            None => Ok(()), // already below the start
        }
    }
}

/// The log id of the last batch below the log's clean point: compaction
/// rewrote the log up to there, which it only does at or below the purge
/// point, and a restored snapshot prefix ends there too. Reported as
/// purged even if `raft-state` was not updated before a crash, so openraft
/// never reads a rewritten entry (decision 0017 §5).
fn compacted_through(log: &PartitionLog) -> io::Result<Option<LogIdOf<Tc>>> {
    let clean_end = log.clean_end().0;
    if clean_end <= log.start_offset().0 {
        return Ok(None);
    }
    let held = log
        .read_batch_headers(Offset(clean_end - 1), 1)
        .map_err(io::Error::other)?;
    match held.first() {
        Some(header) => Ok(Some(log_id_of(header)?)),
        None => Ok(None),
    }
}

/// The last log id of the stored snapshot. A compacted log keeps its data
/// below it, and a restored snapshot prefix may hold rewritten batches up
/// to it, so it counts as purged even before openraft's purge after the
/// install is recorded.
fn snapshot_point(storage: &dyn Storage) -> io::Result<Option<LogIdOf<Tc>>> {
    Ok(crate::snapshot_file::read(storage)?.and_then(|s| s.meta.last_log_id))
}

/// The stored committed id, if the log still backs it. If the log's tail
/// was cut below it (a torn tail cut on open, unsynced entries lost to a
/// power loss), what is left is a prefix of the log it was committed in,
/// so the last entry left is committed too. `None` if the log holds
/// another entry at its index, or at or below the last purged id (the
/// snapshot restores that state; openraft could not re-apply it anyway).
fn held_committed(log: &PartitionLog, state: &RaftState) -> io::Result<Option<LogIdOf<Tc>>> {
    let Some(committed) = state.committed else {
        return Ok(None);
    };
    let stored = stored_index(committed.index);
    let held = if stored > log.last_raft_index() {
        match log.last_batch() {
            Some(header) => Some(log_id_of(&header)?)
                .filter(|last| last.leader_id.term <= committed.leader_id.term),
            None => None,
        }
    } else {
        log.locate_raft_index(stored)
            .map_err(io::Error::other)?
            .filter(|header| header.term == committed.leader_id.term)
            .map(|_| committed)
    };
    Ok(held.filter(|id| Some(*id) > state.last_purged))
}

/// Appends one entry as one batch; returns where it landed.
fn append_entry(log: &mut PartitionLog, entry: EntryOf<Tc>) -> io::Result<AppendInfo> {
    let stored = stored_index(entry.log_id.index);
    let term = entry.log_id.leader_id.term;
    skip_to(log, stored, term)?;
    let mut batch = match entry.payload {
        EntryPayload::Normal(data) => writable(data.bytes),
        EntryPayload::Blank => writable(control::encode(&ControlEntry::Blank).into()),
        EntryPayload::Membership(membership) => {
            writable(control::encode(&ControlEntry::Membership(membership)).into())
        }
    };
    check_leader_stamp(log, &batch, stored, term)?;
    let info = log
        .append(&mut batch, Term(term))
        .map_err(io::Error::other)?;
    assert_eq!(
        info.raft_index, stored,
        "the log assigned another Raft index"
    );
    Ok(info)
}

/// The batch bytes, without a copy when nobody else holds them.
fn writable(bytes: Bytes) -> BytesMut {
    bytes
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]))
}

/// Checks that `stored` is the next Raft index of the log. openraft appends
/// consecutive entries; the one exception is a log that serves no batch
/// (fresh, or emptied by a purge or snapshot), which restarts at the entry.
fn skip_to(log: &mut PartitionLog, stored: u64, term: u64) -> io::Result<()> {
    let expected = log.last_raft_index() + 1;
    if stored == expected {
        return Ok(());
    }
    if stored > expected && log.last_batch().is_none() {
        let next_offset = log.next_offset();
        return log
            .reset(next_offset, Term(term), stored)
            .map_err(io::Error::other);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "Raft index {stored} does not follow the log's last index {}",
            expected - 1
        ),
    ))
}

/// A batch replicated from the leader already carries the offset, term and
/// index the leader's log assigned; they must be what this log assigns too,
/// or the replicas' offsets have diverged. Checked before anything is
/// written. A fresh producer batch (index 0) is not checked.
fn check_leader_stamp(log: &PartitionLog, batch: &[u8], stored: u64, term: u64) -> io::Result<()> {
    let header = BatchHeader::decode(batch).map_err(|e| invalid_data(e.to_string()))?;
    if header.raft_index == 0 {
        return Ok(());
    }
    let next_offset = log.next_offset().0;
    if header.raft_index != stored || header.term != term || header.base_offset != next_offset {
        return Err(invalid_data(format!(
            "replicated batch says (offset {}, term {}, index {}) but this log is at (offset {next_offset}, term {term}, index {stored})",
            header.base_offset, header.term, header.raft_index
        )));
    }
    Ok(())
}
