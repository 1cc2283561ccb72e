//! [`Consumer`]: reads assigned partitions and hands out their records.
//! The assignment comes from a group join (`group.rs`), from the caller
//! (`partitions`), or is every partition of `topics`. Starting positions
//! are the group's committed offsets, else `start`. Each `poll` runs group
//! upkeep (re-join when the heartbeat says so, auto-commit when due) and
//! fetch rounds (`fetcher.rs`) until records arrive or the timeout passes.
//! Positions and record parsing live in `positions.rs`.
//!
//! An out-of-range position is reset to the latest offset when `start` is
//! `Latest`, else to the earliest.

mod fetcher;
mod group;
pub(crate) mod positions;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_protocol::{ErrorCode, OffsetSpec, TopicPartition};
use tokio::time::Instant;

use crate::admin::list_offsets;
use crate::{ApiError, Client, ClientError};
use fetcher::{FetchLimits, fetch_round};
use group::{JoinSpec, Membership};
pub(crate) use group::{commit, committed_offsets};
use positions::Positions;

/// Pause after a fetch round that failed (connection trouble) or had no
/// partitions to read, so `poll` does not spin.
const IDLE_BACKOFF_MS: u64 = 100;

/// Where a consumer starts on a partition with no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    Offset(u64),
    Timestamp(i64),
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub topics: Vec<String>,
    /// `Some`: join this consumer group (partitions assigned by the broker).
    pub group: Option<String>,
    /// Manual assignment (`group` may still be set to commit offsets).
    pub partitions: Option<Vec<(String, u32)>>,
    pub start: StartPosition,
    pub auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub heartbeat_interval_ms: u64,
    pub fetch_max_bytes: u32,
    /// Longest a fetch waits at the broker for `fetch_min_bytes`.
    pub fetch_max_wait_ms: u32,
    /// A fetch is answered once this many bytes are ready (or at
    /// `fetch_max_wait_ms`); Kafka's `fetch.min.bytes`. Above 1 it trades
    /// up to `fetch_max_wait_ms` of latency at low rates for far fewer
    /// fetch round trips (default 1: answer at the first record).
    pub fetch_min_bytes: u32,
}

impl ConsumerConfig {
    pub fn new(topic: impl Into<String>) -> ConsumerConfig {
        ConsumerConfig {
            topics: vec![topic.into()],
            group: None,
            partitions: None,
            start: StartPosition::Latest,
            auto_commit: true,
            auto_commit_interval_ms: 1_000,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            heartbeat_interval_ms: 1_000,
            fetch_max_bytes: 4 * 1024 * 1024,
            fetch_max_wait_ms: 500,
            fetch_min_bytes: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Shared by the records of a fetch.
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    /// Hybrid logical clock the broker gave the record when it appended it:
    /// upper 48 bits milliseconds since the Unix epoch, lower 16 a counter
    /// (see `citystream_record::hlc`). Grows with the offset along a
    /// partition and follows the broker's append order across partitions.
    pub hlc: u64,
    pub key: Option<Bytes>,
    /// Empty for a tombstone (see `tombstone`).
    pub value: Bytes,
    /// In order; names may repeat. The records of one fetched batch share
    /// their header names (one allocation per distinct name, not per header).
    pub headers: Vec<(Arc<str>, Bytes)>,
    /// The record has a null value: it deletes `key` from a compacted
    /// topic. An empty value is not a tombstone.
    pub tombstone: bool,
}

impl ConsumerRecord {
    /// Physical part of [`ConsumerRecord::hlc`]: milliseconds since the
    /// Unix epoch at which the broker stamped the record (or a little after,
    /// if it stamped more than 65,536 records in that millisecond).
    pub fn hlc_ms(&self) -> i64 {
        citystream_record::hlc_physical_ms(self.hlc)
    }
}

/// Reads records; see the module doc. Not `Clone`: it owns its positions.
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    positions: Positions,
    /// Set while this consumer is a member of `config.group`.
    membership: Option<Membership>,
    /// Fetched records not handed out yet (`stream` yields one at a time).
    buffered: VecDeque<ConsumerRecord>,
    last_commit: Instant,
}

/// Builds a consumer: resolves its assignment and starting positions.
pub(crate) async fn start(client: Client, config: ConsumerConfig) -> Result<Consumer, ClientError> {
    if config.topics.is_empty() && config.partitions.is_none() {
        return Err(ClientError::InvalidArgument(
            "a consumer needs topics or partitions".to_string(),
        ));
    }
    let mut consumer = Consumer {
        client,
        config,
        positions: Positions::default(),
        membership: None,
        buffered: VecDeque::new(),
        last_commit: Instant::now(),
    };
    let assignment = consumer.initial_assignment().await?;
    consumer.assign(assignment).await?;
    Ok(consumer)
}

impl Consumer {
    /// Returns the next records (possibly none if `timeout` passes first).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.buffered.is_empty() {
            self.fetch_into_buffer(timeout).await?;
        }
        let records = Vec::from(std::mem::take(&mut self.buffered));
        self.positions.mark_consumed(&records);
        Ok(records)
    }

    /// Records as a stream (polls internally).
    pub fn stream(
        &mut self,
    ) -> impl futures::Stream<Item = Result<ConsumerRecord, ClientError>> + '_ {
        let wait = Duration::from_millis(u64::from(self.config.fetch_max_wait_ms));
        futures::stream::unfold(self, move |consumer| async move {
            loop {
                if let Some(record) = consumer.buffered.pop_front() {
                    consumer.positions.mark_one_consumed(&record);
                    return Some((Ok(record), consumer));
                }
                if let Err(error) = consumer.fetch_into_buffer(wait).await {
                    return Some((Err(error), consumer));
                }
            }
        })
    }

    /// Commits the position after every record returned so far.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let Some(group) = self.config.group.clone() else {
            return Err(ClientError::InvalidArgument(
                "commit needs a consumer group (ConsumerConfig::group)".to_string(),
            ));
        };
        self.last_commit = Instant::now();
        let offsets = self.positions.consumed();
        let result = group::commit(&self.client, &group, self.membership.as_ref(), offsets).await;
        if let (Err(error), Some(membership)) = (&result, &self.membership)
            && error.code().is_some_and(group::needs_rejoin)
        {
            membership.request_rejoin(error.code().expect("checked"));
        }
        result
    }

    /// Partitions currently assigned.
    pub fn assignment(&self) -> Vec<(String, u32)> {
        let assignment = self.positions.assignment();
        assignment
            .into_iter()
            .map(|tp| (tp.topic, tp.partition))
            .collect()
    }

    /// True when every assigned partition has been read up to its high
    /// watermark as of the last fetch (the CLI's "end of the log").
    pub fn at_end(&self) -> bool {
        self.buffered.is_empty() && self.positions.at_end()
    }

    /// Moves the position of an assigned partition.
    pub fn seek(&mut self, topic: &str, partition: u32, offset: u64) -> Result<(), ClientError> {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        self.positions.seek(&tp, offset)?;
        self.buffered
            .retain(|r| !(&*r.topic == topic && r.partition == partition));
        Ok(())
    }

    /// Commits (if auto-commit) and leaves the group.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let committed = match (&self.config.group, self.config.auto_commit) {
            (Some(_), true) => self.commit().await,
            _ => Ok(()),
        };
        if let (Some(group), Some(membership)) = (&self.config.group, self.membership.take()) {
            group::leave(&self.client, group, membership).await?;
        }
        committed
    }

    // ---- internals -------------------------------------------------------

    /// Runs group upkeep and fetch rounds until records are buffered or
    /// `timeout` passes.
    async fn fetch_into_buffer(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.group_upkeep().await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let limits = FetchLimits {
                max_wait_ms: (remaining.as_millis() as u32).min(self.config.fetch_max_wait_ms),
                max_bytes: self.config.fetch_max_bytes,
                min_bytes: self.config.fetch_min_bytes,
            };
            let round = fetch_round(&self.client, &mut self.positions, &limits).await?;
            for tp in round.out_of_range {
                self.reset_position(tp).await?;
            }
            if !round.records.is_empty() {
                self.buffered.extend(round.records);
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            if !round.answered {
                let idle = Duration::from_millis(IDLE_BACKOFF_MS).min(deadline - now);
                tokio::time::sleep(idle).await;
            }
        }
    }

    /// Re-joins when the group asked for it; auto-commits when due.
    async fn group_upkeep(&mut self) -> Result<(), ClientError> {
        if let Some(reason) = self.membership.as_ref().and_then(Membership::rejoin_reason) {
            self.rejoin(reason).await?;
        }
        let interval = Duration::from_millis(self.config.auto_commit_interval_ms);
        if self.config.auto_commit
            && self.config.group.is_some()
            && self.last_commit.elapsed() >= interval
            && let Err(error) = self.commit().await
        {
            tracing::debug!(%error, "auto-commit failed");
        }
        Ok(())
    }

    /// Commits what it can (a stale generation's commit may be refused),
    /// joins again and restarts from the new assignment's positions.
    async fn rejoin(&mut self, reason: ErrorCode) -> Result<(), ClientError> {
        if self.config.auto_commit
            && let Err(error) = self.commit().await
        {
            tracing::debug!(%error, "commit before re-join failed");
        }
        let old = self.membership.take().expect("re-join needs a membership");
        let member_id = match reason {
            ErrorCode::UNKNOWN_MEMBER => String::new(),
            _ => old.member_id.clone(),
        };
        drop(old);
        let (membership, assignment) =
            group::join(&self.client, &self.join_spec(), member_id).await?;
        self.membership = Some(membership);
        self.buffered.clear();
        self.assign(assignment).await
    }

    async fn initial_assignment(&mut self) -> Result<Vec<TopicPartition>, ClientError> {
        if let Some(partitions) = &self.config.partitions {
            return Ok(partitions
                .iter()
                .map(|(topic, partition)| TopicPartition {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect());
        }
        if self.config.group.is_some() {
            let (membership, assignment) =
                group::join(&self.client, &self.join_spec(), String::new()).await?;
            self.membership = Some(membership);
            return Ok(assignment);
        }
        let mut assignment = Vec::new();
        for topic in &self.config.topics {
            let count = self.client.partition_count(topic).await?.ok_or_else(|| {
                ClientError::Api(ApiError::new(
                    ErrorCode::UNKNOWN_TOPIC,
                    format!("unknown topic {topic:?}"),
                ))
            })?;
            assignment.extend((0..count).map(|partition| TopicPartition {
                topic: topic.clone(),
                partition,
            }));
        }
        Ok(assignment)
    }

    /// Takes `assignment`, starting each partition at the group's committed
    /// offset, else at `start`.
    async fn assign(&mut self, assignment: Vec<TopicPartition>) -> Result<(), ClientError> {
        let topics: Vec<&str> = assignment.iter().map(|tp| tp.topic.as_str()).collect();
        if !topics.is_empty() {
            self.client.refresh_metadata(&topics).await?;
        }
        let committed = match &self.config.group {
            Some(group) => {
                group::committed_offsets(&self.client, group, assignment.clone()).await?
            }
            None => Vec::new(),
        };
        let mut starts = Vec::with_capacity(assignment.len());
        let mut unresolved = Vec::new();
        for tp in assignment {
            match committed
                .iter()
                .find(|(c, _)| *c == tp)
                .and_then(|(_, o)| *o)
            {
                Some(offset) => starts.push((tp, offset)),
                None => unresolved.push(tp),
            }
        }
        starts.extend(self.start_offsets(unresolved, self.config.start).await?);
        tracing::debug!(partitions = starts.len(), "assigned");
        self.positions.assign(starts);
        Ok(())
    }

    /// Where each partition starts under `start`.
    async fn start_offsets(
        &self,
        partitions: Vec<TopicPartition>,
        start: StartPosition,
    ) -> Result<Vec<(TopicPartition, u64)>, ClientError> {
        let spec = match start {
            StartPosition::Offset(offset) => {
                return Ok(partitions.into_iter().map(|tp| (tp, offset)).collect());
            }
            StartPosition::Earliest => OffsetSpec::Earliest,
            StartPosition::Latest => OffsetSpec::Latest,
            StartPosition::Timestamp(timestamp_ms) => OffsetSpec::Timestamp(timestamp_ms),
        };
        let pairs = partitions
            .into_iter()
            .map(|tp| (tp.topic, tp.partition))
            .collect();
        let offsets = list_offsets(&self.client, pairs, spec).await?;
        Ok(offsets
            .into_iter()
            .map(|(topic, partition, offset)| (TopicPartition { topic, partition }, offset))
            .collect())
    }

    /// Moves an out-of-range position to the latest offset (start `Latest`)
    /// or the earliest (otherwise).
    async fn reset_position(&mut self, tp: TopicPartition) -> Result<(), ClientError> {
        let policy = match self.config.start {
            StartPosition::Latest => StartPosition::Latest,
            _ => StartPosition::Earliest,
        };
        for (tp, offset) in self.start_offsets(vec![tp], policy).await? {
            tracing::info!(topic = %tp.topic, partition = tp.partition, offset, "position reset");
            self.positions.seek(&tp, offset)?;
        }
        Ok(())
    }

    fn join_spec(&self) -> JoinSpec {
        JoinSpec {
            group: self.config.group.clone().expect("joining needs a group"),
            client_id: self.client.config().client_id.clone(),
            topics: self.config.topics.clone(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.rebalance_timeout_ms,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
        }
    }
}
