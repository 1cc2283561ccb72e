//! The probe producer of `bench failover`: one `Producer` (idempotent, the
//! default; acks=quorum, linger 0) sending small records to partition 0 at
//! a fixed rate, each value a unique sequence number, and noting for every
//! record when it was sent and when (and at which offset) it was
//! acknowledged. It does not kill or restart anything; `mod.rs` does, and
//! reads the acknowledgements.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use citystream_client::{Acks, Client, ClientError, Producer, ProducerConfig, ProducerRecord};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bytes of each probe value: the sequence number (u64 little-endian), then zeros.
pub const PROBE_VALUE_BYTES: usize = 16;
/// Pause before the first retry, doubling up to
/// [`ProbeSettings::retry_backoff_max_ms`]: the failover time includes up
/// to one of these. Retries go on for the producer's default delivery
/// timeout (120 s), which outlasts an election by far, so records sent
/// during a failover are acknowledged late, not dropped.
const RETRY_BACKOFF_MS: u64 = 10;
/// Deliveries awaited at once; beyond it the probe stops sending until some land.
const PENDING_MAX: usize = 100_000;
/// How long a stopped probe waits for its outstanding acknowledgements.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How the probe sends.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    pub rate_per_s: u64,
    /// Cap of the producer's retry backoff (it starts at 10 ms and doubles).
    pub retry_backoff_max_ms: u64,
}

/// One acknowledged record.
#[derive(Debug, Clone, Copy)]
pub struct Acked {
    pub sequence: u64,
    pub offset: u64,
    pub sent_at: Instant,
    pub acked_at: Instant,
}

/// What the probe saw, shared with the trial loop while it runs.
#[derive(Debug, Default)]
pub struct ProbeLog {
    pub acked: Vec<Acked>,
    /// Records whose delivery failed for good (not acknowledged: no loss).
    pub failed: u64,
    pub last_error: Option<String>,
}

pub struct Probe {
    log: Arc<Mutex<ProbeLog>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Probe {
    /// Starts sending to `topic` partition 0, sequence numbers from `first_sequence`.
    pub fn start(
        client: &Client,
        topic: &str,
        settings: ProbeSettings,
        first_sequence: u64,
    ) -> Result<Probe, ClientError> {
        assert!(settings.rate_per_s > 0, "the probe needs a rate");
        let producer = client.producer(ProducerConfig {
            acks: Acks::Quorum,
            linger_ms: 0,
            retry_backoff_ms: RETRY_BACKOFF_MS.min(settings.retry_backoff_max_ms),
            retry_backoff_max_ms: settings.retry_backoff_max_ms,
            ..ProducerConfig::default()
        })?;
        let log = Arc::new(Mutex::new(ProbeLog::default()));
        let stop = CancellationToken::new();
        let sending = Sending {
            producer,
            topic: topic.to_string(),
            interval: Duration::from_secs_f64(1.0 / settings.rate_per_s as f64),
            next_sequence: first_sequence,
            log: log.clone(),
        };
        let task = tokio::spawn(sending.run(stop.clone()));
        Ok(Probe { log, stop, task })
    }

    /// The first acknowledgement of a record sent at or after `since`.
    pub fn first_ack_sent_since(&self, since: Instant) -> Option<Acked> {
        let log = lock(&self.log);
        log.acked
            .iter()
            .filter(|acked| acked.sent_at >= since)
            .min_by_key(|acked| acked.acked_at)
            .copied()
    }

    pub fn acked_count(&self) -> usize {
        lock(&self.log).acked.len()
    }

    /// Stops sending, waits (bounded) for outstanding deliveries, and
    /// returns everything the probe saw.
    pub async fn stop(self) -> ProbeLog {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the probe task failed");
        }
        std::mem::take(&mut *lock(&self.log))
    }
}

struct Sending {
    producer: Producer,
    topic: String,
    interval: Duration,
    next_sequence: u64,
    log: Arc<Mutex<ProbeLog>>,
}

type Delivery = (u64, Instant, Result<u64, ClientError>);

impl Sending {
    async fn run(mut self, stop: CancellationToken) {
        let mut pending = FuturesUnordered::new();
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick(), if pending.len() < PENDING_MAX => {
                    match self.send_next().await {
                        Ok(delivery) => pending.push(delivery),
                        Err(error) => self.note_failure(&error),
                    }
                }
                Some(delivery) = pending.next() => self.note(delivery),
            }
        }
        let draining = async {
            while let Some(delivery) = pending.next().await {
                self.note(delivery);
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, draining).await.is_err() {
            tracing::warn!("probe deliveries still outstanding after {DRAIN_TIMEOUT:?}");
        }
        let _ = self.producer.close().await;
    }

    /// Hands the next record to the producer; the future resolves on its ack.
    async fn send_next(&mut self) -> Result<impl Future<Output = Delivery> + use<>, ClientError> {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let mut record = ProducerRecord::new(self.topic.clone(), probe_value(sequence));
        record.partition = Some(0);
        let sent_at = Instant::now();
        let delivery = self.producer.send(record).await?;
        Ok(async move {
            let result = delivery.await.map(|metadata| metadata.offset);
            (sequence, sent_at, result)
        })
    }

    fn note(&self, (sequence, sent_at, result): Delivery) {
        match result {
            Ok(offset) => lock(&self.log).acked.push(Acked {
                sequence,
                offset,
                sent_at,
                acked_at: Instant::now(),
            }),
            Err(error) => self.note_failure(&error),
        }
    }

    fn note_failure(&self, error: &ClientError) {
        let mut log = lock(&self.log);
        log.failed += 1;
        log.last_error = Some(error.to_string());
    }
}

fn lock(log: &Mutex<ProbeLog>) -> MutexGuard<'_, ProbeLog> {
    // A panic while holding the lock only interrupts a push; the log stays usable.
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The value of record `sequence`: the number, little-endian, then zeros.
pub fn probe_value(sequence: u64) -> Bytes {
    let mut value = BytesMut::with_capacity(PROBE_VALUE_BYTES);
    value.put_u64_le(sequence);
    value.resize(PROBE_VALUE_BYTES, 0);
    value.freeze()
}
