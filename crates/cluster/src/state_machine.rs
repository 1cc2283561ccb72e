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

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use citystream_log::Storage;
use citystream_raft::{Appended, BatchData, Tc};
use citystream_record::{BatchBuilder, RecordBatch};
use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
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
    MetadataCommand::decode(record.value).map_err(|e| invalid(e.to_string()))
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
    /// openraft replays the committed log.
    pub fn open(storage: Arc<dyn Storage>) -> io::Result<Self> {
        let mut inner = Inner::default();
        if let Some((meta, state)) = sm_state::read(&*storage)? {
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
            inner: Arc::new(Mutex::new(inner)),
            published: Arc::new(published),
        })
    }

    /// The latest applied state.
    pub fn state(&self) -> Arc<MetadataState> {
        self.published.borrow().clone()
    }

    /// Follows the applied state; a new value after every applied entry
    /// that changed it.
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
            let changed = {
                let mut inner = self.inner.lock();
                if let EntryPayload::Membership(membership) = &entry.payload {
                    inner.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                }
                inner.applied = Some(entry.log_id);
                command.map(|command| {
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
                    inner.state.clone()
                })
            };
            // Published and recorded before the writer hears back.
            if let Some(state) = changed {
                self.publish(state);
            }
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
        snapshot: MetadataState,
    ) -> Result<(), io::Error> {
        sm_state::write(&*self.storage, meta, &snapshot)?;
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
