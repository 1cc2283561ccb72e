//! The client's publishes: topic aliases, the receive maximum, the write
//! into the log, and the answers in arrival order.
//!
//! QoS 2 is exactly once also across a node failure. Before a QoS 2
//! message is written, its intent (packet id, an id unique in the session,
//! and the partition's end at that moment) is in the session (a persistent
//! session writes it to the replicated store first); the record carries
//! the id in header `$mqtt.q2`. A resend (DUP) of an intent this
//! connection did not write, because the node that did died before it
//! could answer, is looked up in the partition from that end on: found,
//! it is answered without writing; not found, it is written now.

use std::num::NonZeroU16;
use std::sync::Arc;

use bytes::Bytes;
use citystream_client::{
    Client, ClientError, DeliveryFuture, ProducerRecord, partition_for_key, retrying,
};
use citystream_mqtt_codec::{
    Ack, AckProperties, ByteStr, Packet, Publish, QoS, ReasonCode, Version,
};
use citystream_protocol::OffsetSpec;
use futures::{FutureExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Connection, End, Io, PACKETS_PER_TURN_MAX};
use crate::message;
use crate::session::{Position, StoredInbound};

/// Header of a QoS 2 record: `<intent id> <client id>`.
pub(crate) const QOS2_HEADER: &str = "$mqtt.q2";
/// Most bytes read looking for a resent QoS 2 message's record.
const RESEND_SCAN_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// QoS 0 publishes of one burst, each with its stream topic, held until
/// the burst ends or another packet comes ([`Connection::hold`]).
pub(super) type Held = Vec<(Publish, Arc<str>)>;

impl Connection {
    /// A client's PUBLISH: resolve its topic alias, write it to the log,
    /// and queue its answer behind the earlier ones.
    pub(super) async fn publish<IO>(
        &mut self,
        framed: &mut Io<IO>,
        mut publish: Publish,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        // The rare paths' futures are boxed: this one is made for every
        // publish, and its size is that of its largest await.
        if let Err(reason) = self.resolve_alias(&mut publish) {
            Box::pin(self.disconnect(framed, reason)).await;
            return Err(End::WithWill);
        }
        let (stream_topic, _) = self.stream_topic_of(&publish.topic);
        let Some(id) = publish.packet_id else {
            let (sent, retained) = match publish.retain {
                false => (self.send_parts(&publish, &stream_topic).await, None),
                // Boxed: the retained store's first use makes this future
                // large, and every publish would carry it.
                true => Box::pin(self.send_record_of(&publish, &stream_topic, None)).await,
            };
            if let Err(error) = sent {
                tracing::debug!(client_id = %self.client_id, %error, "QoS 0 message not written");
            }
            if let Some(Err(error)) = retained {
                tracing::debug!(client_id = %self.client_id, %error, "QoS 0 retained message not kept");
            }
            return Ok(());
        };
        if self.unanswered >= usize::from(self.node.config.receive_maximum) {
            Box::pin(self.disconnect(framed, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)).await;
            return Err(End::WithWill);
        }
        self.unanswered += 1;
        let mut qos2_header = None;
        if publish.qos == QoS::ExactlyOnce {
            match Box::pin(self.qos2_intent(&publish, &stream_topic)).await {
                Ok(Intent::Written) => {
                    let rec = Packet::PubRec(ack_of(id, ReasonCode::SUCCESS));
                    self.acks.push_back(Box::pin(async move { Some(rec) }));
                    return Ok(());
                }
                Ok(Intent::Write(intent_id)) => {
                    qos2_header = Some(format!("{intent_id} {}", self.client_id));
                }
                Err(error) => {
                    let answer = publish_answer(
                        id,
                        QoS::ExactlyOnce,
                        Err(error),
                        self.version,
                        self.problem_information,
                    );
                    self.acks.push_back(Box::pin(async move { answer }));
                    return Ok(());
                }
            }
        }
        let (sent, retained) = match (publish.retain, qos2_header) {
            (false, None) => (self.send_parts(&publish, &stream_topic).await, None),
            (_, qos2_header) => {
                Box::pin(self.send_record_of(&publish, &stream_topic, qos2_header)).await
            }
        };
        self.queue_answer(id, publish.qos, sent, retained);
        Ok(())
    }

    /// The stream topic of a publish that may be written without waiting:
    /// neither retained nor QoS 2, to the stream topic of this client's
    /// last publish, under the receive maximum. `None` if it may not (its
    /// topic alias resolved, if it had one): then [`Connection::publish`]
    /// takes it.
    fn fast_stream_topic(&mut self, publish: &mut Publish) -> Option<Arc<str>> {
        if publish.retain
            || publish.qos == QoS::ExactlyOnce
            || (publish.packet_id.is_some()
                && self.unanswered >= usize::from(self.node.config.receive_maximum))
            || self.resolve_alias(publish).is_err()
        {
            return None;
        }
        match self.stream_topic_of(&publish.topic) {
            (stream_topic, true) => Some(stream_topic),
            (_, false) => None,
        }
    }

    /// Holds a QoS 0 publish that may be written without waiting, to be
    /// written with the rest of its burst ([`Connection::write_held`]):
    /// one look at the producer's batches per burst, not per message.
    /// Gives back a publish it does not hold.
    pub(super) fn hold(&mut self, mut publish: Publish) -> Option<Publish> {
        if publish.qos != QoS::AtMostOnce {
            return Some(publish);
        }
        let Some(stream_topic) = self.fast_stream_topic(&mut publish) else {
            return Some(publish);
        };
        self.held.push((publish, stream_topic));
        None
    }

    /// Writes the held QoS 0 publishes, in order: those that fit without
    /// waiting at once, the others (the producer's buffer full) through
    /// [`Connection::publish`]. Called before any other packet is handled
    /// and at the end of each burst.
    pub(super) async fn write_held<IO>(&mut self, framed: &mut Io<IO>) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut held = std::mem::take(&mut self.held);
        let taken = self.write_at_once(&held);
        let mut written = Ok(());
        for (publish, _) in held.drain(taken..) {
            written = Box::pin(self.publish(framed, publish)).await;
            if written.is_err() {
                break;
            }
        }
        held.clear();
        self.held = held;
        written
    }

    /// Queues `held` publishes while that needs no wait; how many were
    /// taken from the front.
    fn write_at_once(&self, held: &[(Publish, Arc<str>)]) -> usize {
        let made: Vec<message::MadeHeaders> = held
            .iter()
            .map(|(publish, _)| message::MadeHeaders::of(publish, self.heard_ms))
            .collect();
        let mut headers = Vec::with_capacity(held.len() * 2);
        let mut ends = Vec::with_capacity(held.len());
        for ((publish, _), made) in held.iter().zip(&made) {
            message::push_record_headers(&mut headers, publish, &self.client_id, made);
            ends.push(headers.len());
        }
        let mut start = 0;
        let parts: Vec<_> = held
            .iter()
            .zip(ends)
            .map(|((publish, stream_topic), end)| {
                let headers = &headers[start..end];
                start = end;
                message::record_parts(publish, stream_topic, headers, self.heard_ms)
            })
            .collect();
        self.node
            .ingest
            .try_send_parts_untracked_all(&parts, |_, error| {
                tracing::debug!(client_id = %self.client_id, %error, "QoS 0 message not written");
            })
    }

    /// A QoS 1 publish written without waiting (see
    /// [`Connection::fast_stream_topic`]); a QoS 0 one that could be was
    /// held ([`Connection::hold`]). False if it was not written: then
    /// [`Connection::publish`] takes it. Not async: a publisher's burst
    /// makes no future per packet.
    pub(super) fn publish_now(&mut self, publish: &mut Publish) -> bool {
        let Some(id) = publish.packet_id else {
            return false;
        };
        let Some(stream_topic) = self.fast_stream_topic(publish) else {
            return false;
        };
        let made = message::MadeHeaders::of(publish, self.heard_ms);
        let headers = message::record_headers(publish, &self.client_id, &made);
        let parts = message::record_parts(publish, &stream_topic, &headers, self.heard_ms);
        let sent = match self.node.ingest.try_send_parts(parts) {
            Ok(None) => return false,
            Ok(Some(delivery)) => Ok(delivery),
            Err(error) => Err(error),
        };
        self.unanswered += 1;
        self.queue_answer(id, publish.qos, sent, None);
        true
    }

    /// Queues a QoS 1/2 publish's answer, sent once its record (and its
    /// retained copy) is written, behind the earlier answers.
    fn queue_answer(
        &mut self,
        id: NonZeroU16,
        qos: QoS,
        sent: Result<DeliveryFuture, ClientError>,
        retained: Option<Result<DeliveryFuture, ClientError>>,
    ) {
        let (version, problem_information) = (self.version, self.problem_information);
        self.acks.push_back(Box::pin(async move {
            let mut written = match sent {
                Ok(delivery) => delivery.await.map(|_| ()),
                Err(error) => Err(error),
            };
            if let Some(kept) = retained {
                let kept = match kept {
                    Ok(delivery) => delivery.await.map(|_| ()),
                    Err(error) => Err(error),
                };
                written = written.and(kept);
            }
            publish_answer(id, qos, written, version, problem_information)
        }));
    }

    /// The stream topic of MQTT topic `name`, and whether it is known to
    /// exist: the stream topic of this client's last write is remembered,
    /// with the name it was for. The same name again costs no mapping;
    /// another name mapped to the same stream topic (a gateway publishing
    /// for many stations) costs the mapping only, no look at the node's set
    /// of created topics.
    fn stream_topic_of(&mut self, name: &ByteStr) -> (Arc<str>, bool) {
        if let Some((last, topic)) = &self.last_stream_topic
            && last == name
        {
            return (topic.clone(), true);
        }
        let mapped = self.node.config.map.stream_topic(name);
        match &mut self.last_stream_topic {
            Some((last, topic)) if **topic == *mapped => {
                *last = name.clone();
                (topic.clone(), true)
            }
            _ => (Arc::from(mapped), false),
        }
    }

    /// Writes a publish to `stream_topic` straight from the packet (most
    /// publishes: neither retained nor QoS 2), and remembers the stream
    /// topic once it exists.
    async fn send_parts(
        &mut self,
        publish: &Publish,
        stream_topic: &Arc<str>,
    ) -> Result<DeliveryFuture, ClientError> {
        let made = message::MadeHeaders::of(publish, self.heard_ms);
        let headers = message::record_headers(publish, &self.client_id, &made);
        let parts = message::record_parts(publish, stream_topic, &headers, self.heard_ms);
        let sent = self.node.ingest.send_parts(parts).await;
        self.remember_stream_topic(publish, stream_topic, &sent);
        sent
    }

    /// After a write to `stream_topic` succeeded, it exists: the next
    /// publish to the same name takes [`Connection::publish_now`].
    fn remember_stream_topic<T>(
        &mut self,
        publish: &Publish,
        stream_topic: &Arc<str>,
        sent: &Result<T, ClientError>,
    ) {
        if sent.is_ok() {
            self.last_stream_topic = Some((publish.topic.clone(), stream_topic.clone()));
        }
    }

    /// Writes a retained or QoS 2 publish as a record (with its intent's
    /// header), and a retained one's copy in the retained store first.
    async fn send_record_of(
        &mut self,
        publish: &Publish,
        stream_topic: &Arc<str>,
        qos2_header: Option<String>,
    ) -> (
        Result<DeliveryFuture, ClientError>,
        Option<Result<DeliveryFuture, ClientError>>,
    ) {
        let mut record = message::to_record(
            publish,
            stream_topic.to_string(),
            &self.client_id,
            self.heard_ms,
        );
        if let Some(value) = qos2_header {
            record
                .headers
                .push((QOS2_HEADER.to_owned(), Bytes::from(value)));
        }
        let retained = retain(&self.node, publish, &record).await;
        let sent = self.node.ingest.send(record).await;
        self.remember_stream_topic(publish, stream_topic, &sent);
        (sent, retained)
    }

    /// Whether a QoS 2 publish is written already, or the intent id to
    /// write it with (recorded in the session first).
    async fn qos2_intent(
        &mut self,
        publish: &Publish,
        stream_topic: &str,
    ) -> Result<Intent, ClientError> {
        let id = publish.packet_id.expect("QoS 2 has a packet id").get();
        if publish.dup
            && let Some(known) = self.inbound.get(&id).cloned()
        {
            if self.written_here.contains(&id)
                || retrying(INTENT_RETRY_WINDOW, ClientError::is_retriable, || {
                    find_written(&self.node.client, &self.client_id, &known)
                })
                .await?
            {
                return Ok(Intent::Written);
            }
            self.written_here.insert(id);
            return Ok(Intent::Write(known.id));
        }
        self.node.ingest.ensure_topic(stream_topic).await?;
        let partitions = self
            .node
            .client
            .partition_count(stream_topic)
            .await?
            .unwrap_or(1);
        let partition = partition_for_key(publish.topic.as_bytes(), partitions);
        let admin = self.node.client.admin();
        let end = retrying(INTENT_RETRY_WINDOW, ClientError::is_retriable, || {
            admin.list_offsets(stream_topic, partition, OffsetSpec::Latest)
        })
        .await?;
        self.inbound_counter += 1;
        let intent = StoredInbound {
            packet_id: id,
            id: self.inbound_counter,
            from: Position {
                topic: stream_topic.to_owned(),
                partition,
                offset: end,
            },
        };
        self.inbound.insert(id, intent);
        self.written_here.insert(id);
        if self.persistent() {
            self.save().await?;
        }
        Ok(Intent::Write(self.inbound_counter))
    }

    /// Sends a publish's answer (or, `None`, closes: a 3.1.1 client cannot
    /// be told a write failed, and will send it again on a new connection).
    pub(super) async fn answer<IO>(
        &mut self,
        framed: &mut Io<IO>,
        answer: Option<Packet>,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(packet) = answer else {
            return Err(End::WithWill);
        };
        match &packet {
            Packet::PubAck(_) => self.unanswered -= 1,
            Packet::PubRec(ack) if ack.reason.is_error() => {
                self.unanswered -= 1;
                self.inbound.remove(&ack.packet_id.get());
                self.written_here.remove(&ack.packet_id.get());
            }
            _ => {}
        }
        self.feed(framed, packet).await
    }

    /// `answer`, then the answers already made behind it (up to
    /// [`PACKETS_PER_TURN_MAX`]): the acks of the publishes one produce
    /// batch committed go out in one write, not one write each.
    pub(super) async fn answers<IO>(
        &mut self,
        framed: &mut Io<IO>,
        answer: Option<Packet>,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.answer(framed, answer).await?;
        for _ in 1..PACKETS_PER_TURN_MAX {
            // Ready now or not at all; the loop's own poll of `acks`
            // registers the task's waker again before it sleeps.
            let Some(Some(answer)) = self.acks.next().now_or_never() else {
                break;
            };
            self.answer(framed, answer).await?;
        }
        Ok(())
    }

    /// PUBREL: the QoS 2 message is released; PUBCOMP.
    pub(super) async fn release<IO>(&mut self, framed: &mut Io<IO>, ack: Ack) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let id = ack.packet_id.get();
        self.written_here.remove(&id);
        let reason = if self.inbound.remove(&id).is_some() {
            self.unanswered = self.unanswered.saturating_sub(1);
            self.dirty = true;
            ReasonCode::SUCCESS
        } else if self.version == Version::V5 {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        } else {
            // 3.1.1 has no reason codes: PUBCOMP all the same.
            ReasonCode::SUCCESS
        };
        self.feed(framed, Packet::PubComp(ack_of(ack.packet_id, reason)))
            .await
    }

    /// The client's PUBREC of a QoS 2 message we sent: PUBREL.
    pub(super) async fn publish_received<IO>(
        &mut self,
        framed: &mut Io<IO>,
        ack: Ack,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if self
            .outbound
            .received(ack.packet_id.get(), ack.reason.is_error())
        {
            self.dirty = true;
            let release = Packet::PubRel(ack_of(ack.packet_id, ReasonCode::SUCCESS));
            return self.feed(framed, release).await;
        }
        Ok(())
    }

    /// The topic of a publish that uses a topic alias [MQTT-3.3.2-12].
    /// On error the publish is left as it was.
    fn resolve_alias(&mut self, publish: &mut Publish) -> Result<(), ReasonCode> {
        let Some(alias) = publish.properties.topic_alias else {
            return Ok(());
        };
        if alias.get() > self.node.config.topic_alias_maximum {
            return Err(ReasonCode::TOPIC_ALIAS_INVALID);
        }
        if publish.topic.is_empty() {
            match self.aliases.get(&alias.get()) {
                Some(topic) => publish.topic = topic.clone(),
                None => return Err(ReasonCode::PROTOCOL_ERROR),
            }
        } else {
            self.aliases.insert(alias.get(), publish.topic.clone());
        }
        publish.properties.topic_alias = None;
        Ok(())
    }
}

/// Looks for the record of an intent another connection made, from the
/// partition's end at that time to its end now.
async fn find_written(
    client: &Client,
    client_id: &str,
    intent: &StoredInbound,
) -> Result<bool, ClientError> {
    let wanted = format!("{} {}", intent.id, client_id);
    let (topic, partition) = (&intent.from.topic, intent.from.partition);
    let (mut offset, mut scanned) = (intent.from.offset, 0u64);
    loop {
        let read = client
            .read_partition(topic, partition, offset, 1 << 20, 0)
            .await?;
        let found = read.records.iter().any(|record| {
            record
                .headers
                .iter()
                .any(|(name, value)| &**name == QOS2_HEADER && value.as_ref() == wanted.as_bytes())
        });
        if found {
            return Ok(true);
        }
        scanned += read
            .records
            .iter()
            .map(|r| r.value.len() as u64 + 64)
            .sum::<u64>();
        if read.next_offset >= read.high_watermark
            || read.next_offset == offset
            || scanned > RESEND_SCAN_BYTES_MAX
        {
            return Ok(false);
        }
        offset = read.next_offset;
    }
}

enum Intent {
    /// Already in the log: answer, write nothing.
    Written,
    /// Write it with this intent id.
    Write(u64),
}

/// The PUBACK or PUBREC of a written (or not) publish; `None` closes a
/// 3.1.1 connection whose write failed.
fn publish_answer(
    id: NonZeroU16,
    qos: QoS,
    written: Result<(), ClientError>,
    version: Version,
    problem_information: bool,
) -> Option<Packet> {
    let reason = match &written {
        Ok(()) => ReasonCode::SUCCESS,
        Err(_) if version == Version::V3_1_1 => return None,
        Err(_) => ReasonCode::UNSPECIFIED_ERROR,
    };
    let mut ack = ack_of(id, reason);
    if let (Err(error), true) = (&written, problem_information) {
        ack.properties.reason_string = Some(ByteStr::from(error.to_string()));
    }
    Some(match qos {
        QoS::ExactlyOnce => Packet::PubRec(ack),
        _ => Packet::PubAck(ack),
    })
}

pub(super) fn ack_of(packet_id: NonZeroU16, reason: ReasonCode) -> Ack {
    Ack {
        packet_id,
        reason,
        properties: AckProperties::default(),
    }
}

/// A retained PUBLISH also becomes (or, with an empty payload, ends) its
/// topic name's retained message (`crate::retained`): written beside its
/// record, answered once both are.
async fn retain(
    node: &crate::Node,
    publish: &Publish,
    record: &ProducerRecord,
) -> Option<Result<DeliveryFuture, ClientError>> {
    if !publish.retain {
        return None;
    }
    let retained = match node.retained.record_for(&node.ingest, record).await {
        Ok(retained) => retained,
        Err(error) => return Some(Err(error)),
    };
    Some(node.ingest.send(retained).await)
}

/// How long a QoS 2 intent's reads are tried again while they fail in a
/// retriable way (a partition leader changing), rather than refusing the
/// publish with PUBREC 0x80.
const INTENT_RETRY_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);
