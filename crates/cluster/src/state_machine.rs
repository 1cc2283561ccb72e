//! [`MetadataStateMachine`]: openraft's state machine for the metadata
//! group, over citystream-raft's [`Tc`]. A normal entry is a one-record
//! batch whose value is an encoded [`MetadataCommand`]
//! ([`command_batch`]); blank and membership entries are citystream-raft's
//! control batches and change no metadata.
//!
//! Outcomes: `Tc`'s response type is [`Appended`] (batch offsets), which
//! cannot carry a [`MetadataOutcome`], and `Tc` is shared with every
//! partition group, so it is not widened for this one. Instead each
//! applied command's result is kept by log index in a bounded map
//! ([`OUTCOMES_MAX`]), filled before openraft answers the writer, and
//! [`crate::propose`] reads it with `client_write`'s log id.
//!
//! Every applied entry publishes the new state through a
//! `tokio::sync::watch` (the reconciler and routing read it). Snapshots are
//! the whole state, written to `sm-state` ([`crate::sm_state`]) so a
//! restart begins there.
//!
//! The log: every entry is one batch, so applying one moves
//! [`MetadataState::log_next_offset`] to the end of its batch, the same
//! offset on every replica. Installing a snapshot restarts the log right
//! after the snapshot's last entry (as citystream-raft's
//! `PartitionStateMachine` does, decision 0005 §2) unless the log already
//! holds that entry with the same term; otherwise the next replicated
//! batch would not continue the log's offsets and the group would stop.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use citystream_log::{BatchHeader, Offset, Storage, Term};
use citystream_raft::{Appended, BatchData, SharedLog, Tc, stored_index};
use citystream_record::{BatchBuilder, RecordBatch};
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

use crate::command::{MetadataCommand, MetadataError, MetadataOutcome};
use crate::sm_state;
use crate::state::MetadataState;

/// A running metadata group.
pub type MetadataRaft = openraft::Raft<Tc, MetadataStateMachine>;
/// What applying one command gave.
pub type ApplyResult = Result<MetadataOutcome, MetadataError>;
/// Results kept for writers to collect; older ones are dropped.
pub const OUTCOMES_MAX: usize = 1024;
/// Key of the one record of a command batch.
pub const COMMAND_KEY: &[u8] = b"meta";

/// The Raft payload of one command: a one-record batch. Timestamp 0: the
/// bytes must not depend on who builds them.
pub fn command_batch(command: &MetadataCommand) -> BatchData {
    let value = command.encode();
    let mut builder = BatchBuilder::with_capacity(value.len() + 64);
    builder
        .push(0, Some(COMMAND_KEY), &value, &[])
        .expect("a metadata command fits a batch");
    BatchData::new(builder.finish())
}

/// The command in a normal entry. An entry this version cannot read is
/// an error that stops the group: skipping it would leave this replica's
/// state different from those that can read it.
fn decode_entry(data: &BatchData) -> io::Result<MetadataCommand> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let batch = RecordBatch::from_bytes(data.bytes.clone()).map_err(|e| invalid(e.to_string()))?;
    let mut records = batch.records();
    let record = records
        .next()
        .ok_or_else(|| invalid("empty metadata batch".into()))?;
    if record.key != Some(COMMAND_KEY) || records.next().is_some() {
        return Err(invalid("a metadata batch holds one \"meta\" record".into()));
    }
    // Every command has a value; a null one is an entry this version cannot read.
    let value = record
        .value
        .ok_or_else(|| invalid("a metadata command has a value, not null".into()))?;
    MetadataCommand::decode(value).map_err(|e| invalid(e.to_string()))
}

#[derive(Debug, Default)]
struct Inner {
    applied: Option<LogIdOf<Tc>>,
    membership: StoredMembershipOf<Tc>,
    state: MetadataState,
    outcomes: BTreeMap<u64, ApplyResult>,
    current: Option<SnapshotOf<Tc, MetadataState>>,
}

/// The metadata group's state machine. Clones share state.
#[derive(Clone)]
pub struct MetadataStateMachine {
    storage: Arc<dyn Storage>,
    log: SharedLog,
    inner: Arc<Mutex<Inner>>,
    published: Arc<watch::Sender<Arc<MetadataState>>>,
}

impl std::fmt::Debug for MetadataStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStateMachine")
            .field("inner", &*self.inner.lock())
            .finish()
    }
}

impl MetadataStateMachine {
    /// Starts from the snapshot in `storage`'s `sm-state`, if any (the
    /// metadata log's storage); entries after it are applied again as
    /// openraft replays the committed log. `log` is the metadata log: a
    /// snapshot whose install stopped before the log was restarted after
    /// it (a crash) restarts it now.
    pub fn open(storage: Arc<dyn Storage>, log: SharedLog) -> io::Result<Self> {
        let mut inner = Inner::default();
        inner.state.log_next_offset = Some(log.read().start_offset().0);
        if let Some((meta, mut state)) = sm_state::read(&*storage)? {
            if state.log_next_offset.is_none() {
                // A format-1 file: the log may still say.
                state.log_next_offset = offset_after(&log, &meta)?;
            }
            align_log(&log, &meta, state.log_next_offset)?;
            inner.applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.state = state.clone();
            inner.current = Some(Snapshot {
                meta,
                snapshot: state,
            });
        }
        let published = watch::channel(Arc::new(inner.state.clone())).0;
        Ok(MetadataStateMachine {
            storage,
            log,
            inner: Arc::new(Mutex::new(inner)),
            published: Arc::new(published),
        })
    }

    /// The latest applied state.
    pub fn state(&self) -> Arc<MetadataState> {
        self.published.borrow().clone()
    }

    /// Follows the applied state; a new value after every applied entry
    /// (each moves at least [`MetadataState::log_next_offset`]).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataState>> {
        self.published.subscribe()
    }

    /// The last applied log id.
    pub fn applied(&self) -> Option<LogIdOf<Tc>> {
        self.inner.lock().applied
    }

    /// Takes the result of the command applied at openraft log `index`;
    /// `None` if it was not a command, is not applied yet, or is older than
    /// the last [`OUTCOMES_MAX`].
    pub fn take_outcome(&self, index: u64) -> Option<ApplyResult> {
        self.inner.lock().outcomes.remove(&index)
    }

    fn publish(&self, state: MetadataState) {
        self.published.send_replace(Arc::new(state));
    }

    /// The offset after `entry`'s batch. A command read back from the log
    /// carries its stamped header; anything else is looked up by Raft
    /// index. `None` if the log does not hold the entry, which in a running
    /// group cannot happen (committed entries are in the local log when
    /// applied) but does in openraft's storage suite.
    fn entry_end(&self, entry: &EntryOf<Tc>) -> io::Result<Option<u64>> {
        let stored = stored_index(entry.log_id.index);
        if let EntryPayload::Normal(data) = &entry.payload
            && let Ok(header) = BatchHeader::decode(&data.bytes)
            && header.raft_index == stored
        {
            return Ok(Some(header.next_offset()));
        }
        let header = self
            .log
            .read()
            .locate_raft_index(stored)
            .map_err(io::Error::other)?;
        Ok(header.map(|h| h.next_offset()))
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The offset after the snapshot's last entry as the local log knows it:
/// the end of that entry's batch, or the log's end if the log ends right
/// after it (purged or restarted there). `None` if neither.
fn offset_after(log: &SharedLog, meta: &SnapshotMetaOf<Tc>) -> io::Result<Option<u64>> {
    let Some(last) = &meta.last_log_id else {
        return Ok(None);
    };
    let stored = stored_index(last.index);
    let log = log.read();
    if log.last_raft_index() == stored {
        return Ok(Some(log.next_offset().0));
    }
    let header = log.locate_raft_index(stored).map_err(io::Error::other)?;
    Ok(header.map(|h| h.next_offset()))
}

/// Makes the log continue right after the snapshot's last entry, at
/// `next_offset`. The log is kept if it holds that entry with the
/// snapshot's term, or went past it and purged it (only committed entries
/// are purged); otherwise it is emptied and restarted there.
fn align_log(
    log: &SharedLog,
    meta: &SnapshotMetaOf<Tc>,
    next_offset: Option<u64>,
) -> io::Result<()> {
    let Some(last) = &meta.last_log_id else {
        return Ok(());
    };
    let stored = stored_index(last.index);
    let term = last.leader_id.term;
    let mut log = log.write();
    let held = log.locate_raft_index(stored).map_err(io::Error::other)?;
    let keep = match held {
        Some(header) => {
            header.term == term && next_offset.is_none_or(|n| n == header.next_offset())
        }
        None => log.last_raft_index() >= stored,
    };
    if keep {
        return Ok(());
    }
    let Some(next_offset) = next_offset else {
        return Err(invalid(format!(
            "metadata snapshot at index {} does not say where the log continues (format 1) \
             and this log does not hold that entry",
            last.index
        )));
    };
    tracing::info!(
        raft_index = stored,
        next_offset,
        "metadata snapshot replaces the log"
    );
    log.reset(Offset(next_offset), Term(term), stored + 1)
        .map_err(io::Error::other)
}

/// In-process test networks hand the metadata snapshot over whole.
impl citystream_raft::testing::SnapshotDelivery for MetadataStateMachine {
    async fn deliver(
        raft: &openraft::Raft<Tc, Self>,
        vote: openraft::type_config::alias::VoteOf<Tc>,
        snapshot: openraft::type_config::alias::SnapshotOf<Tc, MetadataState>,
    ) -> Result<openraft::raft::SnapshotResponse<Tc>, String> {
        raft.install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| e.to_string())
    }
}

impl RaftStateMachine<Tc> for MetadataStateMachine {
    type SnapshotData = MetadataState;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<Tc>>, StoredMembershipOf<Tc>), io::Error> {
        let inner = self.inner.lock();
        Ok((inner.applied, inner.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<Tc>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let command = match &entry.payload {
                EntryPayload::Normal(data) => Some(decode_entry(data)?),
                _ => None,
            };
            let end = self.entry_end(&entry)?;
            let state = {
                let mut inner = self.inner.lock();
                if let EntryPayload::Membership(membership) = &entry.payload {
                    inner.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                }
                inner.applied = Some(entry.log_id);
                if end.is_some() {
                    inner.state.log_next_offset = end;
                }
                if let Some(command) = command {
                    let result = inner.state.apply(&command);
                    tracing::debug!(
                        index = entry.log_id.index,
                        ?command,
                        ?result,
                        "metadata applied"
                    );
                    inner.outcomes.insert(entry.log_id.index, result);
                    while inner.outcomes.len() > OUTCOMES_MAX {
                        inner.outcomes.pop_first();
                    }
                }
                inner.state.clone()
            };
            // Published and recorded before the writer hears back.
            self.publish(state);
            if let Some(responder) = responder {
                responder.send(Appended::default());
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
        mut snapshot: MetadataState,
    ) -> Result<(), io::Error> {
        if snapshot.log_next_offset.is_none() {
            // A format-1 sender: usable only if this log knows the point.
            snapshot.log_next_offset = offset_after(&self.log, meta)?;
        }
        if meta.last_log_id.is_some() && snapshot.log_next_offset.is_none() {
            return Err(invalid(format!(
                "metadata snapshot at {:?} does not say where the log continues (format 1)",
                meta.last_log_id
            )));
        }
        // The state first: a crash before the log is restarted leaves a
        // state whose `open` restarts it.
        sm_state::write(&*self.storage, meta, &snapshot)?;
        align_log(&self.log, meta, snapshot.log_next_offset)?;
        {
            let mut inner = self.inner.lock();
            inner.applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.state = snapshot.clone();
            inner.outcomes.clear();
            inner.current = Some(Snapshot {
                meta: meta.clone(),
                snapshot: snapshot.clone(),
            });
        }
        self.publish(snapshot);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<Tc, MetadataState>>, io::Error> {
        Ok(self.inner.lock().current.clone())
    }
}

impl RaftSnapshotBuilder<Tc> for MetadataStateMachine {
    type SnapshotData = MetadataState;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<Tc, MetadataState>, io::Error> {
        let snapshot = {
            let inner = self.inner.lock();
            Snapshot {
                meta: SnapshotMeta {
                    last_log_id: inner.applied,
                    last_membership: inner.membership.clone(),
                },
                snapshot: inner.state.clone(),
            }
        };
        // Durable before openraft may purge the log behind it.
        sm_state::write(&*self.storage, &snapshot.meta, &snapshot.snapshot)?;
        self.inner.lock().current = Some(snapshot.clone());
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command survives its batch; a batch of anything else is refused.
    #[test]
    fn command_batches_round_trip() {
        let command = MetadataCommand::AllocateProducerIds { count: 9 };
        assert_eq!(decode_entry(&command_batch(&command)).unwrap(), command);
        let mut builder = BatchBuilder::new();
        builder
            .push(0, Some(b"raft"), &command.encode(), &[])
            .unwrap();
        assert!(decode_entry(&BatchData::new(builder.finish())).is_err());
        let mut builder = BatchBuilder::new();
        builder.push(0, Some(COMMAND_KEY), b"{}", &[]).unwrap();
        assert!(decode_entry(&BatchData::new(builder.finish())).is_err());
    }
}
