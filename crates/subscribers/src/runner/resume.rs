//! What a role reads before it processes again after a (re)start or a
//! rebalance: its output topic's last records, to learn what it already
//! wrote (`scan_written`, into [`Written`]), and, for the stateful roles,
//! the readings just before where it resumes on a partition, fed through
//! its logic with the outputs dropped (`replay`), so windows and
//! episodes are as they were. Both read with the client's
//! [`Tail`], below the high watermark.

use citystream_client::tail::{Fold, Tail, high_watermark};
use citystream_client::{Client, ClientError, ConsumerRecord};
use citystream_protocol::OffsetSpec;

use crate::dedupe::Written;
use crate::output::{Process, source_of};
use crate::runner::input_of;

/// Reads the last `records_max` records of each partition of `topic`
/// (none if it does not exist) and notes the source of each.
pub(crate) async fn scan_written(
    client: &Client,
    topic: &str,
    records_max: u64,
) -> Result<Written, ClientError> {
    let mut scan = Scan::default();
    let partitions = client.partition_count(topic).await?.unwrap_or(0);
    for partition in 0..partitions {
        let end = high_watermark(client, topic, partition).await?;
        let start = log_start(client, topic, partition).await?;
        let from = end.saturating_sub(records_max).max(start);
        if from >= end {
            continue;
        }
        let mut tail = Tail::new(topic, partition, from, std::mem::take(&mut scan));
        tail.catch_up(client, end).await?;
        scan = std::mem::take(tail.state_mut());
    }
    if scan.unsourced > 0 {
        tracing::warn!(
            topic,
            records = scan.unsourced,
            "output records without a source header ignored"
        );
    }
    tracing::info!(topic, streams = scan.written.streams(), "outputs read back");
    Ok(scan.written)
}

#[derive(Default)]
struct Scan {
    written: Written,
    unsourced: u64,
}

impl Fold for Scan {
    fn apply(&mut self, record: &ConsumerRecord) {
        let key = record.key.as_deref().map(String::from_utf8_lossy);
        match (key, source_of(&record.headers)) {
            (Some(key), Some(source)) => self.written.note(&key, &source),
            _ => self.unsourced += 1,
        }
    }
}

/// Feeds the readings of `[until − records_max, until)` of a partition
/// (from its log start at most) to `processor`, dropping the outputs;
/// returns how many readings it replayed.
pub(crate) async fn replay(
    client: &Client,
    topic: &str,
    partition: u32,
    until: u64,
    records_max: u64,
    processor: &mut dyn Process,
) -> Result<u64, ClientError> {
    if records_max == 0 || until == 0 {
        return Ok(0);
    }
    let from = until
        .saturating_sub(records_max)
        .max(log_start(client, topic, partition).await?);
    if from >= until {
        return Ok(0);
    }
    let replay = Replay {
        processor,
        until,
        replayed: 0,
    };
    let mut tail = Tail::new(topic, partition, from, replay);
    tail.catch_up(client, until).await?;
    let replayed = tail.state().replayed;
    tracing::info!(topic, partition, from, until, replayed, "state rebuilt");
    Ok(replayed)
}

struct Replay<'a> {
    processor: &'a mut dyn Process,
    until: u64,
    replayed: u64,
}

impl Fold for Replay<'_> {
    fn apply(&mut self, record: &ConsumerRecord) {
        if record.offset >= self.until {
            return;
        }
        if let Ok(received) = input_of(record) {
            self.processor.process(&received.input());
            self.replayed += 1;
        }
    }
}

async fn log_start(client: &Client, topic: &str, partition: u32) -> Result<u64, ClientError> {
    let admin = client.admin();
    admin
        .list_offsets(topic, partition, OffsetSpec::Earliest)
        .await
}
