//! [`run_publishers`]: the I/O shell around the city model. It creates the
//! four city topics, then takes readings from the [`Simulation`] in time
//! order and sends each when the pace says it is due, through one
//! idempotent producer, until it is stopped; then it flushes.
//!
//! Throughput: sends never wait for acknowledgements (the `Outbox` keeps a
//! bounded window of them), and when several readings are due at once
//! (at `--rate 50000`, about 50 per millisecond) they go back to back,
//! yielding to the runtime every [`SENDS_PER_YIELD`] sends.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use citystream_client::{Client, ProducerRecord};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::city::{CITY_TOPICS, CityConfig};
use crate::error::SimError;
use crate::model::Simulation;
use crate::outbox::{Outbox, Via, ensure_topics};
use crate::pace::{Pace, Pacer};
use crate::reading::{PRIORITY_HEADER, Reading};
use crate::stats::SimStats;

/// Simulated time between two readings of one station.
pub const CADENCE_MS_DEFAULT: i64 = 10_000;
/// Records sent and not yet acknowledged, at most, by default.
pub const PENDING_MAX_DEFAULT: usize = 10_000;
/// Back-to-back sends between two yields to the runtime (so a stop, and
/// other tasks on this worker, are not starved while catching up).
pub const SENDS_PER_YIELD: u64 = 256;
/// How long to wait after the producer refused a record.
pub(crate) const SEND_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What to simulate and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub city: CityConfig,
    /// Simulated time of the first readings, ms since the Unix epoch.
    pub start_ms: i64,
    /// Simulated ms between two readings of one station.
    pub cadence_ms: i64,
    /// `Speed(x)`: x simulated seconds per real second; `Rate(n)`: n
    /// readings per second in total, simulated time advancing with them.
    pub pace: Pace,
    /// Readings sent and not yet acknowledged, at most.
    pub pending_max: usize,
    /// Over the native protocol or MQTT.
    pub via: Via,
}

impl SimConfig {
    /// `city` in real time from now: a reading per station every 10
    /// simulated seconds, at speed 1.
    pub fn new(city: CityConfig) -> SimConfig {
        SimConfig {
            city,
            start_ms: now_ms(),
            cadence_ms: CADENCE_MS_DEFAULT,
            pace: Pace::Speed(1.0),
            pending_max: PENDING_MAX_DEFAULT,
            via: Via::Native,
        }
    }

    /// Checks every setting; the message names the one that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.city.validate()?;
        self.pace.validate()?;
        if self.cadence_ms <= 0 {
            return Err(format!(
                "the cadence must be above 0 ms, not {}",
                self.cadence_ms
            ));
        }
        if self.pending_max == 0 {
            return Err("at least one record must be allowed in flight".to_owned());
        }
        Ok(())
    }
}

/// Publishes the city's readings until `stop` is cancelled, then flushes
/// and returns. Failed deliveries are counted in `stats`, not returned.
pub async fn run_publishers(
    client: Client,
    config: SimConfig,
    stats: Arc<SimStats>,
    stop: CancellationToken,
) -> Result<(), SimError> {
    config.validate().map_err(SimError::InvalidConfig)?;
    ensure_topics(&client, &CITY_TOPICS).await?;
    let mut outbox = Outbox::start_via(&client, &config.via, stats, config.pending_max).await?;
    let mut simulation = Simulation::new(&config.city, config.start_ms, config.cadence_ms);
    let pacer = Pacer::start(config.pace, config.start_ms);
    tracing::info!(stations = simulation.stations().count(), pace = ?config.pace, "publishing the city");
    let mut index: u64 = 0;
    while wait_until(
        pacer.due(index, simulation.next_ts_ms()),
        &stop,
        &mut outbox,
    )
    .await
    {
        let reading = simulation.next_reading();
        // Sending waits while the window is full, which over MQTT includes
        // while the client reconnects: a stop must not wait for that.
        let sent = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            sent = outbox.send(reading_record(&reading), reading.is_alarm()) => sent,
        };
        if sent.is_err() {
            pause(SEND_RETRY_BACKOFF, &stop).await;
        }
        index += 1;
        if index.is_multiple_of(SENDS_PER_YIELD) {
            tokio::task::yield_now().await;
        }
    }
    outbox.close().await;
    Ok(())
}

/// Waits until `due`, counting acknowledgements meanwhile; false once
/// `stop` is cancelled.
pub(crate) async fn wait_until(
    due: Instant,
    stop: &CancellationToken,
    outbox: &mut Outbox,
) -> bool {
    while Instant::now() < due {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep_until(due) => break,
            _ = outbox.settle_next() => {}
        }
    }
    !stop.is_cancelled()
}

/// Sleeps for `duration` unless stopped first.
pub(crate) async fn pause(duration: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

/// The record of a reading: keyed, on its kind's topic, with its priority.
/// Its timestamp is left to the producer (the wall clock): `ts_ms` in the
/// value is simulated time, which may run ahead of the broker's retention.
pub fn reading_record(reading: &Reading) -> ProducerRecord {
    let priority = Bytes::from_static(reading.priority().as_str().as_bytes());
    ProducerRecord {
        topic: reading.topic().to_owned(),
        partition: None,
        key: Some(Bytes::from(reading.key())),
        value: Bytes::from(reading.to_json()),
        headers: vec![(PRIORITY_HEADER.to_owned(), priority)],
        timestamp_ms: None,
        tombstone: false,
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}
