//! The durability check after `bench failover`: read partition 0 from the
//! beginning to its end and confirm that every acknowledged record is at the
//! offset its acknowledgement named, with its value. Unacknowledged records
//! may or may not be there (a failed send is not a loss), and a retried
//! batch may appear twice (the probe is not idempotent); both are counted,
//! neither fails the check.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_client::{Client, ConsumerConfig, StartPosition};
use citystream_protocol::OffsetSpec;
use tokio::time::Instant;

use super::probe::{Acked, PROBE_VALUE_BYTES};

/// How long reading the whole partition back may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// Acknowledged-but-missing records named in the report, at most.
const MISSING_LISTED_MAX: usize = 10;

#[derive(Debug)]
pub struct LossCheck {
    pub acknowledged: usize,
    /// Acknowledged records not at their offset with their value.
    pub lost: usize,
    /// The first few lost ones: `(offset, sequence)`.
    pub lost_examples: Vec<(u64, u64)>,
    pub log_records: u64,
}

/// Reads `topic` partition 0 and looks up every acknowledged record.
pub async fn check(client: &Client, topic: &str, acked: &[Acked]) -> anyhow::Result<LossCheck> {
    let log = read_partition(client, topic).await?;
    let missing: Vec<(u64, u64)> = acked
        .iter()
        .filter(|record| log.get(&record.offset) != Some(&record.sequence))
        .map(|record| (record.offset, record.sequence))
        .collect();
    Ok(LossCheck {
        acknowledged: acked.len(),
        lost: missing.len(),
        lost_examples: missing.into_iter().take(MISSING_LISTED_MAX).collect(),
        log_records: log.len() as u64,
    })
}

/// Every record of partition 0 up to its current end: offset -> sequence.
async fn read_partition(client: &Client, topic: &str) -> anyhow::Result<HashMap<u64, u64>> {
    let end = client
        .admin()
        .list_offsets(topic, 0, OffsetSpec::Latest)
        .await
        .context("finding the end of the partition")?;
    let mut config = ConsumerConfig::new(topic);
    config.partitions = Some(vec![(topic.to_string(), 0)]);
    config.start = StartPosition::Earliest;
    config.auto_commit = false;
    let mut consumer = client
        .consumer(config)
        .await
        .context("opening a consumer")?;
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut log = HashMap::new();
    let mut next_offset = 0;
    while next_offset < end {
        if Instant::now() > deadline {
            bail!("read only up to offset {next_offset} of {end} within {READ_TIMEOUT:?}");
        }
        for record in consumer.poll(POLL_TIMEOUT).await? {
            next_offset = next_offset.max(record.offset + 1);
            log.insert(record.offset, sequence_of(&record.value));
        }
    }
    consumer.close().await.context("closing the consumer")?;
    Ok(log)
}

/// The sequence number of a probe value; `u64::MAX` for a foreign value.
fn sequence_of(value: &[u8]) -> u64 {
    match value.get(..8).map(<[u8; 8]>::try_from) {
        Some(Ok(bytes)) if value.len() == PROBE_VALUE_BYTES => u64::from_le_bytes(bytes),
        _ => u64::MAX,
    }
}
