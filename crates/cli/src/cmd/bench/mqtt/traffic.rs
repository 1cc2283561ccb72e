//! The load of `bench mqtt`: one task per publisher and per subscriber,
//! each on its own MQTT connection, and the [`Window`] that keeps
//! publishers a bounded number of messages ahead of the slowest
//! subscriber (the lossless-rate rule). Counting what arrived is
//! `accounting.rs`; deciding when the run ends is `mqtt.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use citystream_mqtt_client::{Messages, MqttClient, MqttClientError, PublishFuture, QoS};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::accounting::{Arrival, Stamp, Tally, payload, read_stamp};
use crate::cmd::bench::report::{new_histogram, record_latency};

/// Publishes awaiting their acknowledgement in a publisher's collector.
const ACK_QUEUE_MAX: usize = 65_536;
/// Messages a subscriber takes from its client at once.
const RECEIVE_BATCH_MAX: usize = 512;
/// QoS 0 messages a publisher hands its client at once
/// ([`MqttClient::publish_all`]): the generator's own cost per message
/// is then mostly encoding, not a channel send and a reply each.
const PUBLISH_BATCH_MAX: u64 = 16;

/// Publishers wait while `published − min(delivered per subscriber)` is
/// `limit` or more. If no subscriber makes progress for `stall` the
/// outstanding messages are written off (counted in `stalls`; they show
/// up as lost if they never arrive), so a broker that drops messages
/// slows the run instead of stopping it.
pub struct Window {
    /// 0: publishers never wait.
    limit: u64,
    stall: Duration,
    published: AtomicU64,
    delivered: Vec<AtomicU64>,
    written_off: AtomicU64,
    stalls: AtomicU64,
    progress: Notify,
}

impl Window {
    pub fn new(limit: u64, subscribers: u32, stall: Duration) -> Arc<Window> {
        Arc::new(Window {
            limit,
            stall,
            published: AtomicU64::new(0),
            delivered: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
            written_off: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            progress: Notify::new(),
        })
    }

    fn min_delivered(&self) -> u64 {
        let delivered = self.delivered.iter();
        delivered
            .map(|count| count.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    fn ahead(&self) -> u64 {
        let behind = self.min_delivered() + self.written_off.load(Ordering::Acquire);
        self.published
            .load(Ordering::Acquire)
            .saturating_sub(behind)
    }

    /// Waits until a publisher may send one more message.
    async fn wait_for_room(&self) {
        // Room now (most sends): no waiter registered with `progress`.
        if self.limit == 0 || self.delivered.is_empty() || self.ahead() < self.limit {
            return;
        }
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.ahead() < self.limit {
                return;
            }
            let before = self.min_delivered();
            let timed_out = tokio::time::timeout(self.stall, notified).await.is_err();
            if timed_out && self.min_delivered() == before && self.ahead() >= self.limit {
                self.stalls.fetch_add(1, Ordering::Relaxed);
                self.written_off.fetch_add(self.ahead(), Ordering::AcqRel);
            }
        }
    }

    /// Waits until a publisher may send more: how many, from 1 to
    /// `wanted`. Publishers that look at once may each take the same room,
    /// so they can be ahead by up to `publishers × wanted` more than the
    /// limit.
    async fn room_for(&self, wanted: u64) -> u64 {
        self.wait_for_room().await;
        if self.limit == 0 || self.delivered.is_empty() {
            return wanted;
        }
        self.limit.saturating_sub(self.ahead()).clamp(1, wanted)
    }

    /// Subscriber `index` has now received `unique` distinct messages.
    fn delivered(&self, index: usize, unique: u64) {
        self.delivered[index].store(unique, Ordering::Release);
        self.progress.notify_waiters();
    }

    pub fn delivered_counts(&self) -> Vec<u64> {
        let delivered = self.delivered.iter();
        delivered
            .map(|count| count.load(Ordering::Acquire))
            .collect()
    }

    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }
}

/// What one publisher sends.
#[derive(Debug, Clone)]
pub struct PublisherPlan {
    pub index: u32,
    pub topic: String,
    pub qos: QoS,
    pub size_bytes: usize,
    /// Stop after this many messages…
    pub messages: Option<u64>,
    /// …or at this instant.
    pub deadline: Option<Instant>,
    /// Zero point of the send times in payloads.
    pub base: Instant,
}

impl PublisherPlan {
    fn wants_more(&self, sent: u64) -> bool {
        self.messages.is_none_or(|messages| sent < messages)
            && self
                .deadline
                .is_none_or(|deadline| Instant::now() < deadline)
    }
}

/// What one publisher did; its client stays open until the run ends.
pub struct PublisherOutcome {
    pub client: MqttClient,
    pub figures: PublisherFigures,
}

pub struct PublisherFigures {
    /// Handed to the client.
    pub sent: u64,
    /// QoS 0: written; QoS 1/2: acknowledged with success.
    pub published: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    /// Publish -> PUBACK/PUBCOMP (QoS 1/2 only).
    pub ack_latency: Histogram<u64>,
}

impl PublisherFigures {
    fn new() -> PublisherFigures {
        PublisherFigures {
            sent: 0,
            published: 0,
            failed: 0,
            last_error: None,
            ack_latency: new_histogram(),
        }
    }

    fn count(&mut self, acked: Result<Duration, MqttClientError>) {
        match acked {
            Ok(latency) => {
                self.published += 1;
                record_latency(&mut self.ack_latency, latency);
            }
            Err(error) => {
                self.failed += 1;
                self.last_error = Some(error.to_string());
            }
        }
    }
}

/// Sends the plan's messages, paced by `window`.
pub async fn run_publisher(
    client: MqttClient,
    plan: PublisherPlan,
    window: Arc<Window>,
) -> PublisherOutcome {
    let (acks, acks_received) = mpsc::channel(ACK_QUEUE_MAX);
    let collector = tokio::spawn(collect_acks(acks_received));
    let (mut sent, mut last_error, mut last_written) = (0, None, None);
    while plan.qos == QoS::AtMostOnce && plan.wants_more(sent) {
        let wanted = plan
            .messages
            .map_or(PUBLISH_BATCH_MAX, |messages| messages - sent)
            .min(PUBLISH_BATCH_MAX);
        let count = window.room_for(wanted).await;
        let since_base = Instant::now().duration_since(plan.base);
        let payloads = (sent..sent + count).map(|sequence| {
            let stamp = Stamp {
                publisher: plan.index,
                sequence,
                sent: since_base,
            };
            payload(stamp, plan.size_bytes)
        });
        match client.publish_all(&plan.topic, payloads).await {
            Ok(outcome) => last_written = Some(outcome),
            Err(error) => {
                last_error = Some(error.to_string());
                break;
            }
        }
        sent += count;
        window.published.fetch_add(count, Ordering::AcqRel);
    }
    while plan.qos != QoS::AtMostOnce && plan.wants_more(sent) {
        window.wait_for_room().await;
        let sent_at = Instant::now();
        let stamp = Stamp {
            publisher: plan.index,
            sequence: sent,
            sent: sent_at.duration_since(plan.base),
        };
        let message = payload(stamp, plan.size_bytes);
        match client.publish(&plan.topic, message, plan.qos).await {
            Ok(outcome) => {
                if acks.send((sent_at, outcome)).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                last_error = Some(error.to_string());
                break;
            }
        }
        sent += 1;
        window.published.fetch_add(1, Ordering::AcqRel);
    }
    drop(acks);
    let mut figures = collector.await.expect("the ack collector does not panic");
    figures.sent = sent;
    figures.last_error = figures.last_error.or(last_error);
    if plan.qos == QoS::AtMostOnce {
        // Written in order: once the last is written, all are.
        figures.published = match last_written {
            Some(last) => last.await.map_or(0, |_| sent),
            None => 0,
        };
    }
    PublisherOutcome { client, figures }
}

/// Awaits acknowledgements as they arrive, so each latency is taken when
/// its ack lands.
async fn collect_acks(mut outcomes: mpsc::Receiver<(Instant, PublishFuture)>) -> PublisherFigures {
    let mut figures = PublisherFigures::new();
    let mut pending = FuturesUnordered::new();
    let mut receiving = true;
    while receiving || !pending.is_empty() {
        tokio::select! {
            received = outcomes.recv(), if receiving => match received {
                Some((sent_at, outcome)) => pending.push(async move {
                    outcome.await.map(|_| sent_at.elapsed())
                }),
                None => receiving = false,
            },
            Some(acked) = pending.next(), if !pending.is_empty() => figures.count(acked),
        }
    }
    figures
}

/// What one subscriber reads: messages of topics under `prefix`.
pub struct SubscriberPlan {
    pub index: usize,
    pub publishers: u32,
    pub prefix: String,
    pub base: Instant,
}

/// What one subscriber received; its client stays open until the run ends.
pub struct SubscriberOutcome {
    pub client: MqttClient,
    pub tally: Tally,
    /// Publish -> delivered, of first arrivals.
    pub latency: Histogram<u64>,
    pub last_delivery_at: Option<Instant>,
}

/// Reads and tallies messages until `stop` or the connection ends.
pub async fn run_subscriber(
    client: MqttClient,
    mut messages: Messages,
    plan: SubscriberPlan,
    window: Arc<Window>,
    stop: CancellationToken,
) -> SubscriberOutcome {
    let mut tally = Tally::new(plan.publishers);
    let mut latency = new_histogram();
    let mut last_delivery_at = None;
    let mut batch = Vec::with_capacity(RECEIVE_BATCH_MAX);
    loop {
        let received = tokio::select! {
            received = messages.recv_many(&mut batch, RECEIVE_BATCH_MAX) => received,
            () = stop.cancelled() => break,
        };
        if received == 0 {
            break; // the connection ended; the client knows why
        }
        let now = Instant::now();
        for message in batch.drain(..) {
            let stamp = read_stamp(&message.payload);
            let Some(stamp) = stamp.filter(|_| message.topic.starts_with(&plan.prefix)) else {
                tally.foreign += 1;
                continue;
            };
            let arrival = tally.record(stamp.publisher, stamp.sequence);
            if matches!(arrival, Arrival::InOrder | Arrival::OutOfOrder) {
                let since_base = now.duration_since(plan.base);
                record_latency(&mut latency, since_base.saturating_sub(stamp.sent));
            }
        }
        last_delivery_at = Some(now);
        window.delivered(plan.index, tally.unique());
    }
    SubscriberOutcome {
        client,
        tally,
        latency,
        last_delivery_at,
    }
}
