//! The I/O shell around a role's logic: one consumer in the role's group
//! reading its input topics from the committed offsets (from the start
//! when there are none), the role's [`Process`] on each reading, the
//! outputs through the [`Sink`], then, at most every
//! `commit_interval_ms`, the flush and the commit. One cycle:
//!
//! 1. poll readings (at most `fetch_bytes_max` of them);
//! 2. on a new assignment (the start, or a rebalance): a fresh
//!    [`Session`]: read back what the output topic holds (`resume.rs`);
//! 3. per reading: on the first of a partition, replay the readings
//!    before it (stateful roles, outputs dropped); process it; write each
//!    output the dedupe ([`Written`]) does not know as written;
//!
//! and when `commit_interval_ms` has passed since the last commit:
//! 4. flush the sink (every output acknowledged, or fsynced);
//! 5. commit the consumed offsets.
//!
//! A crash anywhere leaves committed offsets at or before the outputs
//! written, never after: the readings after the commit are processed
//! again and their outputs already written are skipped. Readings a
//! rebalance hands back again within one session are skipped outright.

mod resume;
mod sink;
mod topics;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use citystream_client::{
    Client, ClientError, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, StartPosition,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::SubscriberConfig;
use crate::dedupe::Written;
use crate::error::SubscriberError;
use crate::output::{Input, Output, Process};
use crate::reading::{Reading, ReadingError, Source};
use crate::role::Role;
use crate::stats::SubscriberStats;
use sink::Sink;

/// Pause after a poll failed with a retriable error.
const POLL_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait to leave the group when stopping.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every step of a role's run reads.
struct Shell<'a> {
    role: Role,
    client: &'a Client,
    config: &'a SubscriberConfig,
    stats: &'a SubscriberStats,
}

pub(crate) async fn run(
    role: Role,
    client: Client,
    config: SubscriberConfig,
    stats: &SubscriberStats,
    stop: CancellationToken,
) -> Result<(), SubscriberError> {
    let span = tracing::info_span!("subscriber", role = role.name(), group = role.group());
    let shell = Shell {
        role,
        client: &client,
        config: &config,
        stats,
    };
    let subscribe = async {
        topics::ensure_topics(&client, role).await?;
        let sink = Sink::open(role, &client, &config)?;
        let consumer = client.consumer(consumer_config(role, &config)).await?;
        Ok::<_, SubscriberError>((sink, consumer))
    };
    let (mut sink, mut consumer) = tokio::select! {
        biased;
        () = stop.cancelled() => return Ok(()),
        subscribed = subscribe.instrument(span.clone()) => subscribed?,
    };
    let result = serve(&shell, &mut consumer, &mut sink, &stop)
        .instrument(span.clone())
        .await;
    // Leave the group, so a restart is assigned at once.
    match tokio::time::timeout(CLOSE_TIMEOUT, consumer.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(parent: &span, %error, "leaving the group failed"),
        Err(_) => tracing::warn!(parent: &span, "leaving the group timed out"),
    }
    result
}

/// Cycles until `stop`. Stopping mid-cycle is safe: what was written and
/// not committed is found by the next start.
async fn serve(
    shell: &Shell<'_>,
    consumer: &mut Consumer,
    sink: &mut Sink,
    stop: &CancellationToken,
) -> Result<(), SubscriberError> {
    let mut session = tokio::select! {
        biased;
        () = stop.cancelled() => return Ok(()),
        session = Session::start(shell, consumer.assignment()) => session?,
    };
    tracing::info!(partitions = session.assignment.len(), "subscribed");
    let interval = Duration::from_millis(shell.config.commit_interval_ms);
    let mut committed_at = tokio::time::Instant::now();
    let mut uncommitted = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            consumed = cycle(shell, consumer, &mut session, sink) => uncommitted |= consumed?,
        }
        if uncommitted && committed_at.elapsed() >= interval {
            sink.flush().await?;
            commit(shell, consumer).await?;
            committed_at = tokio::time::Instant::now();
            uncommitted = false;
        }
    }
    // A clean stop leaves nothing unflushed or uncommitted.
    if uncommitted {
        sink.flush().await?;
        commit(shell, consumer).await?;
    }
    Ok(())
}

fn consumer_config(role: Role, config: &SubscriberConfig) -> ConsumerConfig {
    ConsumerConfig {
        topics: role
            .inputs()
            .iter()
            .map(|topic| topic.to_string())
            .collect(),
        group: Some(role.group().to_owned()),
        start: StartPosition::Earliest,
        auto_commit: false,
        fetch_max_bytes: config.fetch_bytes_max,
        fetch_min_bytes: config.fetch_bytes_min,
        fetch_max_wait_ms: config.fetch_wait_ms,
        ..ConsumerConfig::new(role.inputs()[0])
    }
}

/// One poll and its outputs; `true` if it consumed readings (then a flush
/// and a commit are due, at most every `commit_interval_ms`).
async fn cycle(
    shell: &Shell<'_>,
    consumer: &mut Consumer,
    session: &mut Session,
    sink: &mut Sink,
) -> Result<bool, SubscriberError> {
    let timeout = Duration::from_millis(shell.config.poll_timeout_ms);
    let records = match consumer.poll(timeout).await {
        Ok(records) => records,
        Err(error) if error.is_retriable() => {
            tracing::warn!(%error, "poll failed; retrying");
            tokio::time::sleep(POLL_RETRY_BACKOFF).await;
            return Ok(false);
        }
        Err(error) => return Err(error.into()),
    };
    let assignment = consumer.assignment();
    if assignment != session.assignment {
        tracing::info!(partitions = assignment.len(), "assignment changed");
        *session = Session::start(shell, assignment).await?;
    }
    if records.is_empty() {
        return Ok(false);
    }
    for record in &records {
        session.handle(shell, record, sink).await?;
    }
    Ok(true)
}

/// Commits what was consumed. A refused commit (a rebalance, a leader
/// change) is left to the next cycle: outputs are safe either way.
async fn commit(shell: &Shell<'_>, consumer: &mut Consumer) -> Result<(), SubscriberError> {
    match consumer.commit().await {
        Ok(()) => {
            SubscriberStats::add(&shell.stats.commits, 1);
            Ok(())
        }
        Err(error) if error.is_retriable() || error.code().is_some_and(is_group_churn) => {
            tracing::warn!(%error, "commit refused; the next cycle commits again");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

fn is_group_churn(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::REBALANCE_IN_PROGRESS
            | ErrorCode::ILLEGAL_GENERATION
            | ErrorCode::UNKNOWN_MEMBER
    )
}

/// The role's logic and what it knows, for one assignment.
struct Session {
    assignment: Vec<(String, u32)>,
    processor: Box<dyn Process>,
    written: Written,
    /// Per input partition: the offset after the last reading processed.
    next_offsets: HashMap<(Arc<str>, u32), u64>,
}

impl Session {
    /// Fresh logic; what the output topic holds, read back.
    async fn start(
        shell: &Shell<'_>,
        assignment: Vec<(String, u32)>,
    ) -> Result<Session, SubscriberError> {
        let written = match shell.role.output() {
            Some(topic) => {
                resume::scan_written(shell.client, topic, shell.config.scan_records).await?
            }
            None => Written::default(),
        };
        Ok(Session {
            assignment,
            processor: crate::processor(shell.role, shell.config),
            written,
            next_offsets: HashMap::new(),
        })
    }

    async fn handle(
        &mut self,
        shell: &Shell<'_>,
        record: &ConsumerRecord,
        sink: &mut Sink,
    ) -> Result<(), SubscriberError> {
        let partition = (record.topic.clone(), record.partition);
        match self.next_offsets.get(&partition) {
            Some(next) if record.offset < *next => return Ok(()),
            Some(_) => {}
            None => self.rebuild(shell, record).await?,
        }
        self.next_offsets.insert(partition, record.offset + 1);
        let received = match input_of(record) {
            Ok(received) => received,
            Err(error) => {
                SubscriberStats::add(&shell.stats.malformed, 1);
                let (topic, partition, offset) = (&*record.topic, record.partition, record.offset);
                tracing::warn!(topic, partition, offset, %error, "skipped");
                return Ok(());
            }
        };
        SubscriberStats::add(&shell.stats.readings, 1);
        let outputs = self.processor.process(&received.input());
        self.write(shell, outputs, sink).await
    }

    /// Before a partition's first reading: replays the readings before it.
    async fn rebuild(
        &mut self,
        shell: &Shell<'_>,
        record: &ConsumerRecord,
    ) -> Result<(), ClientError> {
        if !shell.role.keeps_state() {
            return Ok(());
        }
        let replayed = resume::replay(
            shell.client,
            &record.topic,
            record.partition,
            record.offset,
            shell.config.replay_records,
            self.processor.as_mut(),
        )
        .await?;
        SubscriberStats::add(&shell.stats.replayed, replayed);
        Ok(())
    }

    /// Writes the outputs of one reading that are not written yet.
    async fn write(
        &mut self,
        shell: &Shell<'_>,
        outputs: Vec<Output>,
        sink: &mut Sink,
    ) -> Result<(), SubscriberError> {
        let mut per_stream: HashMap<String, u32> = HashMap::new();
        for output in outputs {
            let count = per_stream
                .entry(output.stream_key().to_owned())
                .or_default();
            let index = *count;
            *count += 1;
            sink.prepare(&output, &mut self.written).await?;
            if self
                .written
                .admit(output.stream_key(), output.source(), index)
            {
                sink.write(output).await?;
                shell.stats.output_written(shell.role);
            } else {
                SubscriberStats::add(&shell.stats.duplicates_skipped, 1);
            }
        }
        Ok(())
    }
}

/// A consumer record read as a reading, with what an [`Input`] borrows.
pub(crate) struct Received<'r> {
    reading: Reading,
    key: Cow<'r, str>,
    record: &'r ConsumerRecord,
    source: Source,
}

impl Received<'_> {
    pub(crate) fn input(&self) -> Input<'_> {
        Input {
            reading: &self.reading,
            key: &self.key,
            value: &self.record.value,
            headers: &self.record.headers,
            source: &self.source,
        }
    }
}

pub(crate) fn input_of(record: &ConsumerRecord) -> Result<Received<'_>, ReadingError> {
    let reading = Reading::parse(&record.value)?;
    let key = match record.key.as_deref().map(std::str::from_utf8) {
        Some(Ok(key)) => Cow::Borrowed(key),
        _ => Cow::Owned(reading.key()),
    };
    let source = Source {
        topic: record.topic.to_string(),
        partition: record.partition,
        offset: record.offset,
    };
    Ok(Received {
        reading,
        key,
        record,
        source,
    })
}
