//! [`Replica`]: this node's copy of one replicated partition, the Raft group
//! over its partition log (decision 0005 §1, §5).
//!
//! The leader is the partition's sequencer. A produce takes the sequencer
//! lock only to check the idempotent sequence, stamp HLCs and submit the
//! batch to Raft (fenced to the current term with `with_leader`), so
//! proposals from many connections pipeline; the wait for the ack happens
//! after the lock is released ([`PendingAppend`]). The producer dedup state
//! is rebuilt from the local log whenever this node starts a new term as
//! leader: a Raft leader's log holds every committed entry, and entries of
//! earlier terms in it will be committed by this leader.
//!
//! Reads are served by the leader only, once it has applied an entry of
//! its own term, and only below the high watermark (the committed end)
//! that the state machine publishes; an offset between the watermark and
//! the log end reads nothing and may long-poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use citystream_broker::producer_state::{OFFSET_PENDING, ProducerStates, SequenceCheck};
use citystream_broker::{
    BrokerError, FetchOutcome, LeaderHint, OffsetQuery, ProduceOutcome, read_committed,
    rebuild_producer_states,
};
use citystream_protocol::Acks;
use citystream_raft::{
    Appended, BatchData, PartitionRaft, PartitionRaftStorage, PartitionStateMachine,
    RetentionError, SharedLog,
};
use citystream_record::{HybridClock, NO_PRODUCER, RecordBatch, set_base_hlc};
use futures::future::BoxFuture;
use openraft::Instant as _;
use openraft::async_runtime::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::impls::ProgressResponder;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::liveness::Liveness;

/// Identifies a replica: topic name and id, partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplicaId {
    pub topic: String,
    pub topic_id: u64,
    pub partition: u32,
}

struct Sequencer {
    /// The term the producer state was rebuilt for; `None` before any.
    term: Option<u64>,
    producers: ProducerStates,
}

/// This node's replica of one partition.
pub(crate) struct Replica {
    pub id: ReplicaId,
    /// The Raft group id (`TopicId::partition_group`).
    pub group: u64,
    pub raft: PartitionRaft,
    storage: PartitionRaftStorage,
    sm: PartitionStateMachine,
    sequencer: tokio::sync::Mutex<Sequencer>,
    clock: Arc<Mutex<HybridClock>>,
    /// A membership change of this group is being driven from this node.
    changing: AtomicBool,
    /// Since the metadata stopped placing this replica here.
    unplaced: Since,
    /// The leader lease (the longest election timeout): a leader not
    /// acknowledged by a quorum for longer has lost its followers.
    lease: Duration,
    /// Contact with the leader, idleness, quiet acknowledgements.
    pub liveness: Liveness,
    /// Since when the preferred leader could take over (at the leader).
    preferred_ready: Since,
}

/// The rest of a produce after its batch was submitted: resolves when the
/// batch is acknowledged as `acks` asks.
pub(crate) type PendingAppend = BoxFuture<'static, Result<ProduceOutcome, BrokerError>>;

impl Replica {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ReplicaId,
        group: u64,
        raft: PartitionRaft,
        storage: PartitionRaftStorage,
        sm: PartitionStateMachine,
        clock: Arc<Mutex<HybridClock>>,
        lease: Duration,
        liveness: Liveness,
    ) -> Replica {
        Replica {
            id,
            group,
            raft,
            storage,
            sm,
            sequencer: tokio::sync::Mutex::new(Sequencer {
                term: None,
                producers: ProducerStates::new(),
            }),
            clock,
            changing: AtomicBool::new(false),
            unplaced: Since::default(),
            lease,
            liveness,
            preferred_ready: Since::default(),
        }
    }

    /// Claims the right to drive a membership change; false if one runs.
    pub fn begin_membership_change(&self) -> bool {
        !self.changing.swap(true, Ordering::AcqRel)
    }

    pub fn end_membership_change(&self) {
        self.changing.store(false, Ordering::Release);
    }

    pub fn membership_changing(&self) -> bool {
        self.changing.load(Ordering::Acquire)
    }

    /// Notes that the metadata no longer places this replica here.
    pub fn mark_unplaced(&self) {
        self.unplaced.set(true);
    }

    /// Deletes what the topic's retention expires at `now_ms`, through a
    /// snapshot (`citystream_raft::apply_retention`).
    pub async fn apply_retention(
        &self,
        now_ms: i64,
    ) -> Result<Option<openraft::type_config::alias::LogIdOf<citystream_raft::Tc>>, RetentionError>
    {
        citystream_raft::apply_retention(&self.raft, &self.sm, now_ms).await
    }

    /// One compaction step of a compacted topic's replica at `now_ms`
    /// (`citystream_raft::apply_compaction`): rolls a quiet active segment
    /// past the topic's `segment_roll_ms`, then snapshots, purges (keeping
    /// the data) and compacts below the point older than the topic's lag,
    /// raised to `lag_floor_ms`. `None` for other topics and when there
    /// was nothing to do yet.
    pub async fn apply_compaction(
        &self,
        now_ms: i64,
        key_map_bytes_max: usize,
        dirty_ratio_min_percent: u8,
        lag_floor_ms: u64,
    ) -> Result<Option<citystream_log::CompactionSummary>, citystream_raft::CompactionError> {
        let (params, lag_ms) = {
            let log = self.sm.log().read();
            let config = log.config();
            if !config.compacted {
                return Ok(None);
            }
            let params = citystream_log::CompactionParams {
                tombstone_retention_ms: config.tombstone_retention_ms,
                key_map_bytes_max,
                dirty_ratio_min_percent,
            };
            (params, config.compaction_lag_ms.max(lag_floor_ms))
        };
        self.sm.log().write().roll_if_older(now_ms)?;
        citystream_raft::apply_compaction(&self.raft, &self.sm, &params, lag_ms, now_ms).await
    }

    /// Notes whether the preferred leader is ready to take over.
    pub fn set_preferred_ready(&self, ready: bool) {
        self.preferred_ready.set(ready);
    }

    /// How long the preferred leader has been ready (zero if it is not).
    pub fn preferred_ready_for(&self) -> Duration {
        self.preferred_ready.elapsed()
    }

    /// Sends a heartbeat round and waits (at most the lease) until `node`
    /// answers it.
    pub async fn answers_heartbeat(&self, node: u64) -> bool {
        let heard = |m: &openraft::RaftMetrics<citystream_raft::Tc>| {
            m.heartbeat
                .as_ref()
                .and_then(|h| h.get(&node).copied().flatten())
                .map(|at| *at)
        };
        let before = heard(&self.raft.metrics().borrow_watched());
        let _ = self.raft.trigger().heartbeat().await;
        self.raft
            .wait(Some(self.lease))
            .metrics(|m| heard(m) > before, "the node answers a heartbeat")
            .await
            .is_ok()
    }

    /// How long the replica has been unplaced (zero if it is placed).
    pub fn unplaced_for(&self) -> Duration {
        self.unplaced.elapsed()
    }

    pub fn log(&self) -> &SharedLog {
        self.storage.log()
    }

    pub fn high_watermark(&self) -> u64 {
        self.sm.high_watermark()
    }

    pub fn watch(&self) -> watch::Receiver<u64> {
        self.sm.subscribe_high_watermark()
    }

    /// The leader's term if this node leads, else why not (with the
    /// leader's id and address when known: the peer address is the native
    /// one, both share a port).
    pub fn leader_term(&self) -> Result<u64, BrokerError> {
        match self.raft.as_leader() {
            Ok(leader) if self.lost_quorum(leader.last_quorum_acked()) => {
                Err(BrokerError::NotLeader {
                    topic: self.id.topic.clone(),
                    partition: self.id.partition,
                    leader: None,
                })
            }
            Ok(leader) => Ok(leader.term()),
            Err(forward) => Err(BrokerError::NotLeader {
                topic: self.id.topic.clone(),
                partition: self.id.partition,
                leader: forward
                    .leader_id
                    .zip(forward.leader_node)
                    .map(|(id, node)| LeaderHint {
                        node_id: u32::try_from(id).unwrap_or(u32::MAX),
                        address: node.peer,
                    }),
            }),
        }
    }

    /// Whether this leader has not heard from a quorum for longer than its
    /// lease (Raft heartbeat answers, or for a quiet group the beat round a
    /// quorum acknowledged): cut off from its followers, it cannot commit
    /// and a new leader may already serve, so it stops claiming the
    /// partition (clients go elsewhere instead of waiting on it).
    fn lost_quorum(&self, last_quorum_acked: Option<openraft::TokioInstant>) -> bool {
        let Some(acked) = last_quorum_acked else {
            return false;
        };
        let voters = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            metrics.membership_config.membership().voter_ids().count()
        };
        let since = match self.liveness.quiet_acked_ago() {
            Some(quiet) => quiet.min(acked.elapsed()),
            None => acked.elapsed(),
        };
        voters > 1 && since > self.lease
    }

    /// Makes sure openraft will take a write: it refuses one ("lease
    /// expired", as ForwardToLeader with no leader) at a leader that no
    /// quorum acknowledged within the longest election timeout, and a quiet
    /// group sends no heartbeats. So the first write after a quiet spell
    /// first sends one heartbeat round and waits for a quorum's answer (one
    /// round trip); a busy group's lease is fresh and costs nothing.
    pub async fn renew_lease(&self) -> Result<(), BrokerError> {
        let acked = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            metrics.last_quorum_acked.as_deref().copied()
        };
        if acked.is_some_and(|at| at.elapsed() < self.lease / 2) {
            return Ok(());
        }
        let _ = self.raft.trigger().heartbeat().await;
        let renewed = self
            .raft
            .wait(Some(self.lease))
            .metrics(
                |m| m.last_quorum_acked.as_deref().copied() > acked,
                "leader lease renewed",
            )
            .await;
        renewed.map(|_| ()).map_err(|_| {
            BrokerError::Unavailable(format!(
                "{}/{}: no quorum of replicas answered the leader within {} ms",
                self.id.topic,
                self.id.partition,
                self.lease.as_millis()
            ))
        })
    }

    /// Checks and submits a validated batch; the returned future waits for
    /// its acknowledgement, bounded by `timeout`. `Acks::None` resolves as
    /// soon as the batch is submitted.
    pub async fn propose(
        self: &Arc<Self>,
        batch: RecordBatch,
        acks: Acks,
        now_ms: i64,
        timeout: Duration,
    ) -> Result<PendingAppend, BrokerError> {
        self.liveness.touch_write();
        let term = self.leader_term()?;
        self.renew_lease().await?;
        let header = *batch.header();
        let mut bytes = batch
            .into_bytes()
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let mut sequencer = self.sequencer.lock().await;
        if sequencer.term != Some(term) {
            let producers = rebuild_producer_states(&self.log().read(), now_ms)?;
            *sequencer = Sequencer {
                term: Some(term),
                producers,
            };
        }
        let idempotent = header.producer_id != NO_PRODUCER;
        if idempotent {
            let check = sequencer.producers.check(
                header.producer_id,
                header.base_sequence,
                header.record_count,
            );
            match check {
                Ok(SequenceCheck::Append) => {}
                Ok(SequenceCheck::Duplicate { base_offset }) => {
                    drop(sequencer);
                    return Ok(self.duplicate(base_offset, header.record_count, acks, timeout));
                }
                Err(refusal) => {
                    return Err(BrokerError::sequence_refused(
                        refusal,
                        header.producer_id,
                        &self.id.topic,
                        self.id.partition,
                        header.base_sequence,
                    ));
                }
            }
        }
        let base_hlc = self.clock.lock().stamp(now_ms, header.record_count);
        set_base_hlc(&mut bytes, base_hlc);
        let mut data = BatchData::new(bytes.freeze());
        let ack = match acks {
            Acks::None => Ack::None,
            Acks::Leader => {
                let (token, rx) = self
                    .storage
                    .leader_acks()
                    .register()
                    .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
                data.token = token;
                Ack::Leader(token, rx)
            }
            Acks::Quorum => Ack::Quorum,
        };
        // Every proposal carries a responder: its completion (commit, or
        // the entry dropped by a leadership change) settles the producer
        // state below, whatever the client asked to wait for.
        let (responder, committed_rx) = ProgressResponder::complete_only();
        let write = self.raft.write(data).with_leader(term).responder(responder);
        if let Err(fatal) = write.await {
            if let Ack::Leader(token, _) = ack {
                self.storage.leader_acks().cancel(token);
            }
            return Err(BrokerError::Unavailable(format!(
                "partition {}/{} stopped: {fatal}",
                self.id.topic, self.id.partition
            )));
        }
        if idempotent {
            let (id, seq, count) = (
                header.producer_id,
                header.base_sequence,
                header.record_count,
            );
            sequencer
                .producers
                .record(id, seq, count, OFFSET_PENDING, now_ms);
        }
        drop(sequencer);
        let (settled_tx, settled_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(Arc::clone(self).settle(header, term, committed_rx, settled_tx));
        let replica = Arc::clone(self);
        Ok(Box::pin(async move {
            let appended = match ack {
                Ack::None => return Ok(replica.outcome(OFFSET_PENDING)),
                Ack::Leader(token, rx) => match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(appended)) => appended,
                    Ok(Err(_)) => return Err(replica.lost_leadership()),
                    Err(_) => {
                        replica.storage.leader_acks().cancel(token);
                        return Err(replica.timed_out(timeout));
                    }
                },
                Ack::Quorum => match replica.while_leading(settled_rx, timeout).await? {
                    Ok(settled) => settled?,
                    Err(_) => return Err(replica.lost_leadership()),
                },
            };
            Ok(replica.outcome(appended.base_offset))
        }))
    }

    /// Waits for a proposal's fate and settles the producer state: a
    /// committed batch gets its offset; a dropped one (leadership moved)
    /// makes the next proposal rebuild the state from the log, so a retry
    /// of it is appended rather than told forever that it is in flight.
    /// Hands the outcome to the produce waiting for a quorum, if any.
    async fn settle(
        self: Arc<Self>,
        header: citystream_record::BatchHeader,
        term: u64,
        committed: CommittedRx,
        settled: tokio::sync::oneshot::Sender<Result<Appended, BrokerError>>,
    ) {
        let outcome = match committed.await {
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(ClientWriteError::ForwardToLeader(_))) | Err(_) => Err(self.lost_leadership()),
            Ok(Err(error)) => Err(BrokerError::Unavailable(error.to_string())),
        };
        if header.producer_id != NO_PRODUCER {
            let mut sequencer = self.sequencer.lock().await;
            match &outcome {
                Ok(appended) => sequencer.producers.set_base_offset(
                    header.producer_id,
                    header.base_sequence,
                    appended.base_offset,
                ),
                Err(_) if sequencer.term == Some(term) => sequencer.term = None,
                Err(_) => {}
            }
        }
        let _ = settled.send(outcome);
    }

    /// The answer to a retry of a batch already proposed: once the original
    /// is as acknowledged as `acks` asks, its offset. A retry of a batch
    /// whose offset is not known yet is told to come back.
    fn duplicate(
        self: &Arc<Self>,
        base_offset: u64,
        record_count: u32,
        acks: Acks,
        timeout: Duration,
    ) -> PendingAppend {
        let replica = Arc::clone(self);
        Box::pin(async move {
            if base_offset == OFFSET_PENDING {
                return Err(BrokerError::Unavailable(
                    "the first copy of this batch is still being replicated; retry".to_owned(),
                ));
            }
            if acks == Acks::Quorum {
                let end = base_offset + u64::from(record_count);
                let mut watermark = replica.watch();
                let committed = watermark.wait_for(|hwm| *hwm >= end);
                if replica.while_leading(committed, timeout).await?.is_err() {
                    return Err(replica.lost_leadership());
                }
            }
            let mut outcome = replica.outcome(base_offset);
            outcome.duplicate = true;
            Ok(outcome)
        })
    }

    fn outcome(&self, base_offset: u64) -> ProduceOutcome {
        ProduceOutcome {
            base_offset: if base_offset == OFFSET_PENDING {
                0
            } else {
                base_offset
            },
            log_start_offset: self.log().read().start_offset().0,
            duplicate: false,
        }
    }

    /// Awaits `wait` for at most `timeout`, giving up early with
    /// `NOT_LEADER` once this node no longer leads or has lost its quorum
    /// (a leader cut off from its followers cannot commit, and learns it
    /// was replaced only when the cut heals: the client should try the new
    /// leader now, not at its request timeout). The batch's fate is then
    /// unknown; an idempotent retry is safe.
    async fn while_leading<F: std::future::Future>(
        &self,
        wait: F,
        timeout: Duration,
    ) -> Result<F::Output, BrokerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let check_every = (self.lease / 4).max(Duration::from_millis(10));
        tokio::pin!(wait);
        loop {
            let next_check = (tokio::time::Instant::now() + check_every).min(deadline);
            tokio::select! {
                output = &mut wait => return Ok(output),
                _ = tokio::time::sleep_until(next_check) => {}
            }
            self.leader_term()?;
            if tokio::time::Instant::now() >= deadline {
                return Err(self.timed_out(timeout));
            }
        }
    }

    /// The batch's fate is unknown: leadership moved while it was in
    /// flight. An idempotent retry at the new leader is safe.
    fn lost_leadership(&self) -> BrokerError {
        match self.leader_term() {
            Err(not_leader) => not_leader,
            Ok(_) => BrokerError::Unavailable(format!(
                "leadership of {}/{} changed while the batch was in flight; retry",
                self.id.topic, self.id.partition
            )),
        }
    }

    fn timed_out(&self, timeout: Duration) -> BrokerError {
        BrokerError::Unavailable(format!(
            "{}/{}: no acknowledgement within {} ms (is a quorum of replicas up?)",
            self.id.topic,
            self.id.partition,
            timeout.as_millis()
        ))
    }

    /// The leader's term, for a read: as [`Self::leader_term`], and only
    /// once this leader has applied an entry of its own term. A new leader
    /// learns how far earlier terms were committed only by committing in
    /// its own (Raft §5.4.2), so until then its high watermark may lag
    /// what the previous leader acknowledged (seen: a restarted node that
    /// took leadership answered `Latest` with 152 while 253 were
    /// committed). The window is one replication round; the refusal is
    /// retriable.
    fn read_term(&self) -> Result<u64, BrokerError> {
        let term = self.leader_term()?;
        let applied_in_term = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            metrics
                .last_applied
                .as_ref()
                .is_some_and(|id| id.committed_leader_id().term == term)
        };
        if !applied_in_term {
            return Err(BrokerError::Unavailable(format!(
                "{}/{}: the new leader has not committed in its term yet; retry",
                self.id.topic, self.id.partition
            )));
        }
        Ok(term)
    }

    /// Whole committed batches from `offset` (leader only).
    pub fn fetch(&self, offset: u64, max_bytes: u32) -> Result<FetchOutcome, BrokerError> {
        self.read_term()?;
        let high_watermark = self.high_watermark();
        read_committed(&self.log().read(), offset, max_bytes, high_watermark)
    }

    /// Offset lookups (leader only), never past the high watermark.
    pub fn list_offset(&self, query: OffsetQuery) -> Result<u64, BrokerError> {
        self.read_term()?;
        let high_watermark = self.high_watermark();
        let log = self.log().read();
        let start = log.start_offset().0;
        Ok(match query {
            OffsetQuery::Earliest => start,
            OffsetQuery::Latest => high_watermark.max(start),
            OffsetQuery::Timestamp(timestamp_ms) => log
                .offset_for_timestamp(timestamp_ms)?
                .map_or(high_watermark, |o| o.0.clamp(start, high_watermark)),
        })
    }

    /// `(log start, log end, high watermark)` of the local copy.
    pub fn extent(&self) -> (u64, u64, u64) {
        let log = self.log().read();
        (
            log.start_offset().0,
            log.next_offset().0,
            self.high_watermark(),
        )
    }
}

enum Ack {
    None,
    Leader(u64, tokio::sync::oneshot::Receiver<Appended>),
    Quorum,
}

/// Where openraft reports a proposal's fate.
type CommittedRx = openraft::type_config::alias::OneshotReceiverOf<
    citystream_raft::Tc,
    openraft::raft::ClientWriteResult<citystream_raft::Tc>,
>;

/// Since when a condition has held, if it holds.
#[derive(Debug, Default)]
struct Since(Mutex<Option<Instant>>);

impl Since {
    /// Starts the clock when `holds` becomes true; stops it when false.
    fn set(&self, holds: bool) {
        let mut since = self.0.lock();
        if holds {
            since.get_or_insert_with(Instant::now);
        } else {
            *since = None;
        }
    }

    /// How long the condition has held (zero if it does not).
    fn elapsed(&self) -> Duration {
        self.0.lock().map_or(Duration::ZERO, |at| at.elapsed())
    }
}
