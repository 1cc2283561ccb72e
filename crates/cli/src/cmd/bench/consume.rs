//! The consuming side of a benchmark: one task per consumer, each with its
//! own `Client` and a manual assignment of some partitions (no group, so no
//! rebalance pauses in the numbers). All consumers stop together once the
//! shared count reaches the target; an idle limit bounds the wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_client::{Client, Consumer, ConsumerConfig, StartPosition};
use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::produce::read_stamp;
use super::report::{new_histogram, record_latency};

/// How long one poll waits before the shared count is checked again.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// A consumer that sees no record for this long gives up.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Records consumed by all consumers of a run, against the target.
#[derive(Debug)]
pub struct SharedCount {
    consumed: AtomicU64,
    target: u64,
    /// When the target was reached (other consumers may still be mid-poll).
    reached_at: OnceLock<Instant>,
}

impl SharedCount {
    pub fn new(target: u64) -> Arc<SharedCount> {
        Arc::new(SharedCount {
            consumed: AtomicU64::new(0),
            target,
            reached_at: OnceLock::new(),
        })
    }

    fn done(&self) -> bool {
        self.consumed.load(Ordering::Relaxed) >= self.target
    }

    /// When the consumers together reached the target, if they did.
    pub fn reached_at(&self) -> Option<Instant> {
        self.reached_at.get().copied()
    }
}

/// What one consumer read.
#[derive(Debug)]
pub struct ConsumerTotals {
    pub records: u64,
    pub bytes: u64,
    /// Produce-stamp to consume latencies (when measured).
    pub latency: Histogram<u64>,
}

/// Creates a consumer of `partitions` positioned at `start_offsets[i]`
/// (or the beginning when `None`).
pub async fn open_consumer(
    client: &Client,
    topic: &str,
    partitions: &[u32],
    start_offsets: Option<&[u64]>,
) -> anyhow::Result<Consumer> {
    let mut config = ConsumerConfig::new(topic);
    config.partitions = Some(partitions.iter().map(|&p| (topic.to_string(), p)).collect());
    config.start = StartPosition::Earliest;
    config.auto_commit = false;
    config.fetch_max_wait_ms = 100;
    let mut consumer = client
        .consumer(config)
        .await
        .context("creating a consumer")?;
    if let Some(offsets) = start_offsets {
        for (&partition, &offset) in partitions.iter().zip(offsets) {
            consumer
                .seek(topic, partition, offset)
                .with_context(|| format!("seeking partition {partition} to {offset}"))?;
        }
    }
    Ok(consumer)
}

/// Reads until the shared count reaches its target; measures end-to-end
/// latency from the stamp in each value when `base` is given.
pub async fn run_consumer(
    mut consumer: Consumer,
    count: Arc<SharedCount>,
    base: Option<Instant>,
) -> anyhow::Result<ConsumerTotals> {
    let mut totals = ConsumerTotals {
        records: 0,
        bytes: 0,
        latency: new_histogram(),
    };
    let mut last_record_at = Instant::now();
    while !count.done() {
        let records = consumer.poll(POLL_TIMEOUT).await.context("polling")?;
        if records.is_empty() {
            if last_record_at.elapsed() > IDLE_TIMEOUT {
                bail!(
                    "no record for {} s after {} records (of {} wanted by all consumers)",
                    IDLE_TIMEOUT.as_secs(),
                    count.consumed.load(Ordering::Relaxed),
                    count.target
                );
            }
            continue;
        }
        let now = Instant::now();
        last_record_at = now;
        // Only records up to the shared target count, so every run measures
        // exactly --count records however the last fetch was cut.
        let before = count
            .consumed
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let wanted = count
            .target
            .saturating_sub(before)
            .min(records.len() as u64);
        for record in &records[..wanted as usize] {
            totals.bytes += record.value.len() as u64;
            if let (Some(base), Some(stamp)) = (base, read_stamp(&record.value)) {
                record_latency(
                    &mut totals.latency,
                    now.saturating_duration_since(base + stamp),
                );
            }
        }
        totals.records += wanted;
        if before + (records.len() as u64) >= count.target {
            let _ = count.reached_at.set(now);
        }
    }
    consumer.close().await.context("closing the consumer")?;
    Ok(totals)
}

/// Deals partitions to consumers round-robin; consumers left without a
/// partition are dropped.
pub fn assign_partitions(partitions: u32, consumers: u32) -> Vec<Vec<u32>> {
    let consumers = consumers.min(partitions).max(1) as usize;
    let mut assignment = vec![Vec::new(); consumers];
    for partition in 0..partitions {
        assignment[partition as usize % consumers].push(partition);
    }
    assignment.retain(|partitions| !partitions.is_empty());
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every partition is assigned exactly once, spread round-robin.
    #[test]
    fn partitions_are_dealt_round_robin() {
        assert_eq!(assign_partitions(5, 2), vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(assign_partitions(2, 4), vec![vec![0], vec![1]]);
        assert_eq!(assign_partitions(3, 1), vec![vec![0, 1, 2]]);
    }
}
