//! The producing side of a benchmark: one task per producer, each with its
//! own `Client` (its own connection) and `Producer`. Without a rate it sends
//! as fast as the producer accepts; with one it sends at fixed intervals
//! (see [`send_paced`]). Every value starts with the send time, for
//! end-to-end latency.
//!
//! As fast as possible, only every [`UNPACED_SAMPLE_EVERY`]th record's
//! acknowledgement is timed (as Kafka's `ProducerPerformance` samples):
//! tracking millions of delivery futures would cost the load generator more
//! CPU than the broker. A batch holds thousands of records, so each batch
//! still has sampled records and a failed batch is still seen. With
//! `--rate` every record is timed.

use std::time::Duration;

use anyhow::Context as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use citystream_client::{ClientError, DeliveryFuture, Producer, ProducerRecord};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::report::{new_histogram, record_latency};

/// Bytes at the start of each value holding the send time.
pub const STAMP_BYTES: usize = 8;

/// Deliveries handed to the acknowledgement collector and not yet taken.
const ACK_QUEUE_MAX: usize = 65_536;

/// Without `--rate`, one record in this many has its ack latency recorded.
pub const UNPACED_SAMPLE_EVERY: u64 = 64;

/// What one producer task sends.
#[derive(Debug, Clone)]
pub struct ProducerPlan {
    pub topic: String,
    pub count: u64,
    pub size_bytes: usize,
    /// Time between two sends with `--rate`; `None`: as fast as possible.
    pub interval: Option<Duration>,
    /// Zero point of the stamps in values (shared with consumers).
    pub base: Instant,
}

/// Sends the plan's records and returns the send-to-ack latencies.
pub async fn run_producer(
    plan: ProducerPlan,
    producer: Producer,
) -> anyhow::Result<Histogram<u64>> {
    let (acks, acks_received) = mpsc::channel(ACK_QUEUE_MAX);
    let collector = tokio::spawn(collect_acks(acks_received));
    match plan.interval {
        Some(interval) => {
            let (plan, producer) = (plan.clone(), producer.clone());
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                send_paced(&plan, interval, &producer, &acks, &runtime)
            })
            .await
            .context("the paced sender panicked")??;
        }
        None => send_unpaced(&plan, &producer, acks).await?,
    }
    producer.flush().await.context("flushing the producer")?;
    let latencies = collector
        .await
        .context("the acknowledgement collector panicked")?
        .context("a record was not acknowledged")?;
    producer.close().await.context("closing the producer")?;
    Ok(latencies)
}

/// As fast as the producer accepts; times one record in
/// [`UNPACED_SAMPLE_EVERY`].
async fn send_unpaced(
    plan: &ProducerPlan,
    producer: &Producer,
    acks: AckSender,
) -> anyhow::Result<()> {
    for index in 0..plan.count {
        let scheduled = Instant::now();
        let delivery = send_one(plan, producer, scheduled).await?;
        if index % UNPACED_SAMPLE_EVERY == 0 && acks.send((scheduled, delivery)).await.is_err() {
            break; // the collector stopped on an error, reported by the caller
        }
    }
    Ok(())
}

/// At fixed intervals, on a thread of its own: it sleeps with the OS timer
/// (tens of microseconds of error), not tokio's 1 ms ticks — at 10,000
/// records/s two sends are 100 µs apart, and 1 ms ticks would send them in
/// bursts whose waiting counts as latency. Every record is timed from its
/// *scheduled* time, so a stall delays the measured records instead of
/// hiding them (no coordinated omission).
fn send_paced(
    plan: &ProducerPlan,
    interval: Duration,
    producer: &Producer,
    acks: &AckSender,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for index in 0..plan.count {
        let scheduled = started + interval.mul_f64(index as f64);
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now);
        }
        let delivery = runtime.block_on(send_one(plan, producer, scheduled))?;
        if acks.blocking_send((scheduled, delivery)).is_err() {
            break;
        }
    }
    Ok(())
}

type AckSender = mpsc::Sender<(Instant, DeliveryFuture)>;

async fn send_one(
    plan: &ProducerPlan,
    producer: &Producer,
    scheduled: Instant,
) -> anyhow::Result<DeliveryFuture> {
    let value = payload(plan.size_bytes, scheduled.duration_since(plan.base));
    producer
        .send(ProducerRecord::new(plan.topic.clone(), value))
        .await
        .context("sending a record")
}

/// Awaits deliveries as they arrive, so each latency is taken when its
/// acknowledgement lands, not when the sender gets round to looking.
async fn collect_acks(
    mut deliveries: mpsc::Receiver<(Instant, DeliveryFuture)>,
) -> Result<Histogram<u64>, ClientError> {
    let mut latencies = new_histogram();
    let mut pending = FuturesUnordered::new();
    let mut receiving = true;
    while receiving || !pending.is_empty() {
        tokio::select! {
            received = deliveries.recv(), if receiving => match received {
                Some((scheduled, delivery)) => pending.push(async move {
                    delivery.await.map(|_| scheduled.elapsed())
                }),
                None => receiving = false,
            },
            Some(latency) = pending.next(), if !pending.is_empty() => {
                record_latency(&mut latencies, latency?);
            }
            else => break,
        }
    }
    Ok(latencies)
}

/// A value of `size_bytes`: the send time since `base` in nanoseconds
/// (little-endian u64, cut short if the value is smaller), then zeros.
pub fn payload(size_bytes: usize, since_base: Duration) -> Bytes {
    let nanos = u64::try_from(since_base.as_nanos()).unwrap_or(u64::MAX);
    let mut value = BytesMut::with_capacity(size_bytes.max(STAMP_BYTES));
    value.put_u64_le(nanos);
    value.resize(size_bytes.max(STAMP_BYTES), 0);
    value.truncate(size_bytes);
    value.freeze()
}

/// The send time stamped into a benchmark value, if it has one.
pub fn read_stamp(value: &[u8]) -> Option<Duration> {
    let stamp: [u8; STAMP_BYTES] = value.get(..STAMP_BYTES)?.try_into().ok()?;
    Some(Duration::from_nanos(u64::from_le_bytes(stamp)))
}

/// Splits `total` over `parts` as evenly as possible (the first get more).
pub fn split_count(total: u64, parts: u32) -> Vec<u64> {
    assert!(parts > 0, "split over at least one part");
    let parts = u64::from(parts);
    (0..parts)
        .map(|index| total / parts + u64::from(index < total % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload carries its stamp and has exactly the asked size.
    #[test]
    fn payload_round_trips_its_stamp() {
        let value = payload(100, Duration::from_nanos(123_456_789));
        assert_eq!(value.len(), 100);
        assert_eq!(read_stamp(&value), Some(Duration::from_nanos(123_456_789)));
        assert!(value[STAMP_BYTES..].iter().all(|&b| b == 0));
        let short = payload(4, Duration::from_nanos(1));
        assert_eq!(short.len(), 4);
        assert_eq!(read_stamp(&short), None);
    }

    /// Counts split evenly and add up to the total.
    #[test]
    fn split_count_is_even_and_complete() {
        assert_eq!(split_count(10, 3), vec![4, 3, 3]);
        assert_eq!(split_count(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(split_count(9, 1), vec![9]);
    }
}
