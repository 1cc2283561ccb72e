//! The checks after `bench failover`: read partition 0 from the beginning to
//! its end, then judge the probe's acknowledged records against it
//! ([`judge`], pure). Three properties, each counted:
//!
//! - **loss**: every acknowledged record is at the offset its
//!   acknowledgement named, with its value;
//! - **order**: taken in send order (the order of their sequence numbers,
//!   also across trials: a trial starts after the last one's probe
//!   stopped), acknowledged records have strictly increasing offsets;
//! - **duplicates**: no probe sequence number is in the partition twice.
//!   The probe's producer is idempotent (the default), so a batch re-sent
//!   after a lost response or a leader change must be written once.
//!
//! Any of them failing fails the bench. Unacknowledged records may or may
//! not be in the log (a failed send is not a loss) and are not judged for
//! order, but a duplicate among them still counts. It reads the partition
//! and judges; `report.rs` prints the verdict.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_client::{Client, ConsumerConfig, StartPosition};
use citystream_protocol::OffsetSpec;
use tokio::time::Instant;

use super::probe::{Acked, PROBE_VALUE_BYTES};

/// How long reading the whole partition back may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// Examples of each kind of failure named in the report, at most.
const EXAMPLES_MAX: usize = 10;
/// The sequence number [`sequence_of`] gives a value that is not a probe's.
const FOREIGN: u64 = u64::MAX;

/// Partition 0 as read back: offset -> probe sequence number.
pub type PartitionLog = BTreeMap<u64, u64>;

/// A probe record and an offset: where its acknowledgement or the log put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub sequence: u64,
    pub offset: u64,
}

/// Two acknowledged records consecutive in send order whose offsets do not rise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderViolation {
    pub earlier: Placed,
    /// Sent after `earlier`, at an offset at or below its offset.
    pub later: Placed,
}

/// A sequence number found again at a higher offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    pub sequence: u64,
    pub first_offset: u64,
    pub offset: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verification {
    pub acknowledged: usize,
    pub log_records: u64,
    /// Acknowledged records not at their offset with their value.
    pub lost: usize,
    pub lost_examples: Vec<Placed>,
    /// Consecutive (in send order) acknowledged pairs whose offsets do not rise.
    pub order_violations: usize,
    pub order_examples: Vec<OrderViolation>,
    /// Records of the log whose sequence number a lower offset already holds.
    pub duplicates: usize,
    pub duplicate_examples: Vec<Duplicate>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.order_violations == 0 && self.duplicates == 0
    }
}

/// Reads `topic` partition 0 and judges the acknowledged records against it.
pub async fn check(client: &Client, topic: &str, acked: &[Acked]) -> anyhow::Result<Verification> {
    let log = read_partition(client, topic).await?;
    let placed: Vec<Placed> = acked
        .iter()
        .map(|record| Placed {
            sequence: record.sequence,
            offset: record.offset,
        })
        .collect();
    Ok(judge(&log, &placed))
}

/// Judges loss, order and duplicates of the acknowledged records `acked`
/// (in any order; sequence numbers unique) against the partition's `log`.
pub fn judge(log: &PartitionLog, acked: &[Placed]) -> Verification {
    let lost: Vec<Placed> = acked
        .iter()
        .filter(|record| log.get(&record.offset) != Some(&record.sequence))
        .copied()
        .collect();
    let order = order_violations(acked);
    let duplicates = duplicates(log);
    Verification {
        acknowledged: acked.len(),
        log_records: log.len() as u64,
        lost: lost.len(),
        lost_examples: first_few(lost),
        order_violations: order.len(),
        order_examples: first_few(order),
        duplicates: duplicates.len(),
        duplicate_examples: first_few(duplicates),
    }
}

/// Pairs consecutive in send order whose acknowledged offsets do not rise.
fn order_violations(acked: &[Placed]) -> Vec<OrderViolation> {
    let mut in_send_order = acked.to_vec();
    in_send_order.sort_by_key(|record| record.sequence);
    in_send_order
        .windows(2)
        .filter_map(|pair| {
            let (earlier, later) = (pair[0], pair[1]);
            assert!(
                earlier.sequence != later.sequence,
                "sequence {} acknowledged twice",
                earlier.sequence
            );
            (later.offset <= earlier.offset).then_some(OrderViolation { earlier, later })
        })
        .collect()
}

/// Every probe record of `log` whose sequence number a lower offset holds.
fn duplicates(log: &PartitionLog) -> Vec<Duplicate> {
    let mut first_offsets: HashMap<u64, u64> = HashMap::with_capacity(log.len());
    let mut found = Vec::new();
    for (&offset, &sequence) in log.iter().filter(|(_, sequence)| **sequence != FOREIGN) {
        if let Some(&first_offset) = first_offsets.get(&sequence) {
            found.push(Duplicate {
                sequence,
                first_offset,
                offset,
            });
        } else {
            first_offsets.insert(sequence, offset);
        }
    }
    found
}

fn first_few<T>(all: Vec<T>) -> Vec<T> {
    all.into_iter().take(EXAMPLES_MAX).collect()
}

/// Every record of partition 0 up to its current end.
async fn read_partition(client: &Client, topic: &str) -> anyhow::Result<PartitionLog> {
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
    let mut log = PartitionLog::new();
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

/// The sequence number of a probe value; [`FOREIGN`] for any other value.
fn sequence_of(value: &[u8]) -> u64 {
    match value.get(..8).map(<[u8; 8]>::try_from) {
        Some(Ok(bytes)) if value.len() == PROBE_VALUE_BYTES => u64::from_le_bytes(bytes),
        _ => FOREIGN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::bench::failover::probe::probe_value;

    fn placed(sequence: u64, offset: u64) -> Placed {
        Placed { sequence, offset }
    }

    /// The log and acknowledgements of records sent in order and written
    /// once: sequence `100 + i` at offset `i`.
    fn in_order(count: u64) -> (PartitionLog, Vec<Placed>) {
        let acked: Vec<Placed> = (0..count).map(|i| placed(100 + i, i)).collect();
        let log = acked.iter().map(|r| (r.offset, r.sequence)).collect();
        (log, acked)
    }

    /// Records in order, each once, at their acknowledged offsets pass, in
    /// whatever order the acknowledgements arrived.
    #[test]
    fn in_order_log_passes() {
        let (log, mut acked) = in_order(6);
        acked.reverse();
        let verification = judge(&log, &acked);
        assert!(verification.passed(), "{verification:?}");
        assert_eq!(verification.acknowledged, 6);
        assert_eq!(verification.log_records, 6);
    }

    /// Two records written (and acknowledged) in each other's place are one
    /// order violation, not a loss.
    #[test]
    fn swapped_pair_is_an_order_violation() {
        let (mut log, mut acked) = in_order(6);
        acked[2].offset = 3;
        acked[3].offset = 2;
        log.insert(2, 103);
        log.insert(3, 102);
        let verification = judge(&log, &acked);
        assert_eq!(verification.order_violations, 1, "{verification:?}");
        assert_eq!(
            verification.order_examples,
            vec![OrderViolation {
                earlier: placed(102, 3),
                later: placed(103, 2),
            }]
        );
        assert_eq!((verification.lost, verification.duplicates), (0, 0));
        assert!(!verification.passed());
    }

    /// A record written again after the others (a re-sent batch) is a
    /// duplicate, even though its first copy is where the ack said.
    #[test]
    fn record_written_twice_is_a_duplicate() {
        let (mut log, acked) = in_order(6);
        log.insert(6, 103);
        let verification = judge(&log, &acked);
        assert_eq!(verification.duplicates, 1, "{verification:?}");
        assert_eq!(
            verification.duplicate_examples,
            vec![Duplicate {
                sequence: 103,
                first_offset: 3,
                offset: 6,
            }]
        );
        assert_eq!((verification.lost, verification.order_violations), (0, 0));
        assert!(!verification.passed());
    }

    /// An acknowledged record missing from its offset, or holding another
    /// record there, is lost.
    #[test]
    fn missing_or_overwritten_record_is_lost() {
        let (mut log, acked) = in_order(6);
        log.remove(&1);
        log.insert(4, FOREIGN);
        let verification = judge(&log, &acked);
        assert_eq!(verification.lost, 2, "{verification:?}");
        assert_eq!(
            verification.lost_examples,
            vec![placed(101, 1), placed(104, 4)]
        );
        assert_eq!(
            (verification.order_violations, verification.duplicates),
            (0, 0)
        );
        assert!(!verification.passed());
    }

    /// Unacknowledged records and foreign values in the log fail nothing,
    /// and foreign values are never duplicates of each other.
    #[test]
    fn unacknowledged_and_foreign_records_are_allowed() {
        let (mut log, acked) = in_order(4);
        log.insert(4, 999);
        log.insert(5, FOREIGN);
        log.insert(6, FOREIGN);
        let verification = judge(&log, &acked);
        assert!(verification.passed(), "{verification:?}");
        assert_eq!(verification.log_records, 7);
    }

    /// Only the first few failures are kept as examples; all are counted.
    #[test]
    fn examples_are_capped_counts_are_not() {
        let (log, _) = in_order(0);
        let acked: Vec<Placed> = (0..50).map(|i| placed(i, 1_000 - i)).collect();
        let verification = judge(&log, &acked);
        assert_eq!(verification.lost, 50);
        assert_eq!(verification.lost_examples.len(), EXAMPLES_MAX);
        assert_eq!(verification.order_violations, 49);
        assert_eq!(verification.order_examples.len(), EXAMPLES_MAX);
    }

    /// A probe value reads back as its sequence number; anything else is foreign.
    #[test]
    fn sequence_of_reads_probe_values_only() {
        assert_eq!(sequence_of(&probe_value(42 << 32 | 7)), 42 << 32 | 7);
        assert_eq!(sequence_of(&[1; 8]), FOREIGN);
        assert_eq!(sequence_of(&[0; 100]), FOREIGN);
    }
}
