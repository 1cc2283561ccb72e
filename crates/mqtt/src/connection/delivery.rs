//! Subscriptions and delivery: SUBSCRIBE/UNSUBSCRIBE, the stream topics
//! a session follows, matching followed records, and sending matches
//! within the in-flight window.

use std::collections::HashSet;
use std::sync::Arc;

use citystream_client::live::{Followed, Span, Start};
use citystream_client::{Client, ClientError, ConsumerRecord};
use citystream_mqtt_codec::{
    AckProperties, ByteStr, Packet, Publish, PublishProperties, QoS, ReasonCode, RetainHandling,
    Role, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, Version,
    encode_packet_within, parse_shared, topic_matches,
};
use futures::FutureExt as _;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{At, Connection, End, Io, Pending, SharedMember, now_ms};
use crate::Rendered;
use crate::message::{self, Stored};
use crate::session::KeptRecord;
use crate::shared::{self, SharedBatch};
use crate::subscriptions::{Subscription, Subscriptions};

/// Messages waiting to be sent that make a connection a busy writer.
const BUSY_PENDING: usize = 64;
/// Most tail spans matched in one turn of a connection's loop.
const SPANS_PER_TURN_MAX: usize = 64;
/// How many bytes a busy writer's write buffer takes before it is written
/// out within a turn (tokio-util's default is 8 KiB).
const BUSY_WRITE_BUFFER_BYTES: usize = 64 * 1024;

impl Connection {
    pub(super) async fn subscribe<IO>(
        &mut self,
        framed: &mut Io<IO>,
        subscribe: Subscribe,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        for (filter, options) in subscribe.filters {
            let reason = self
                .add_subscription(filter.as_str(), options, subscribe.subscription_identifier)
                .await;
            reasons.push(reason);
        }
        self.save_if_persistent().await?;
        let suback = SubAck {
            packet_id: subscribe.packet_id,
            properties: AckProperties::default(),
            reasons,
        };
        self.feed(framed, Packet::SubAck(suback)).await
    }

    /// One filter of a SUBSCRIBE: checked, then its stream topics followed
    /// from their ends (so every message published after the SUBACK is
    /// delivered); the granted QoS or the refusal.
    async fn add_subscription(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> ReasonCode {
        let config = &self.node.config;
        let denied = config
            .deny_filters
            .iter()
            .any(|denied| denied == filter || topic_matches(denied, filter));
        if denied {
            return ReasonCode::UNSPECIFIED_ERROR;
        }
        let known = self.subscriptions.iter().any(|s| s.filter == filter)
            || self.shared.contains_key(filter);
        if !known && self.subscriptions.len() + self.shared.len() >= config.subscriptions_max {
            return ReasonCode::QUOTA_EXCEEDED;
        }
        let subscription = Subscription {
            filter: filter.to_owned(),
            options,
            identifier,
        };
        if filter.starts_with("$share/") {
            return self.add_shared(subscription).await;
        }
        if let Err(error) = self.follow_filter(filter).await {
            tracing::warn!(client_id = %self.client_id, filter, %error, "cannot follow the stream topics of a subscription");
            return ReasonCode::UNSPECIFIED_ERROR;
        }
        let send_retained = match subscription.options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => !known,
            RetainHandling::DoNotSend => false,
        };
        if send_retained && let Err(error) = self.queue_retained(&subscription).await {
            tracing::warn!(client_id = %self.client_id, filter, %error, "cannot read the retained messages of a subscription");
            return ReasonCode::UNSPECIFIED_ERROR;
        }
        let granted = subscription.options.qos;
        self.subscriptions.insert(subscription);
        self.dirty = true;
        ReasonCode(granted as u8)
    }

    /// Queues the retained messages `subscription` matches, with RETAIN
    /// set, at the lower of their QoS and the granted one, behind the
    /// SUBACK [MQTT-3.3.1-6, -3.3.1-9]. A shared subscription gets none
    /// (5.0 §4.8.2).
    async fn queue_retained(&mut self, subscription: &Subscription) -> Result<(), ClientError> {
        let retained = self
            .node
            .retained
            .matching(&self.node.ingest, &subscription.filter)
            .await?;
        let now = now_ms();
        for record in retained {
            let Some(stored) = message::stored(&record) else {
                continue;
            };
            let qos = stored.qos.min(subscription.options.qos);
            let Some(mut publish) = message::to_publish(&record, &stored, qos, true, now) else {
                continue; // expired
            };
            match self.version {
                Version::V5 => {
                    publish.properties.subscription_identifiers =
                        subscription.identifier.into_iter().collect();
                }
                Version::V3_1_1 => publish.properties = PublishProperties::default(),
            }
            // Only a persistent session's snapshot keeps it.
            let kept = match publish.qos {
                QoS::AtLeastOnce | QoS::ExactlyOnce if self.persistent() => KeptRecord::of(&record),
                _ => None,
            };
            self.pending.push_back(Pending {
                publish,
                at: At::of(record.topic.clone(), &record),
                kept,
                ticket: None,
            });
        }
        Ok(())
    }

    /// A shared subscription: this session joins the share's consumer
    /// group over the filter's stream topics (`crate::shared`).
    pub(super) async fn add_shared(&mut self, subscription: Subscription) -> ReasonCode {
        let full = subscription.filter.clone();
        let Ok(Some(shared)) = parse_shared(&full) else {
            return ReasonCode::TOPIC_FILTER_INVALID;
        };
        let Some(group) = shared::group_name(shared.group, shared.filter) else {
            return ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR;
        };
        let inner = shared.filter.to_owned();
        let topics = match share_topics(&self.node, &inner).await {
            Ok(topics) => topics,
            Err(error) => {
                tracing::warn!(client_id = %self.client_id, filter = %full, %error, "cannot read the topics of a shared subscription");
                return ReasonCode::UNSPECIFIED_ERROR;
            }
        };
        if let Some(previous) = self.shared.remove(&full) {
            previous.stop.cancel();
        }
        let stop = self.node.shutdown.child_token();
        let client = self.node.client.clone();
        let sender = self
            .shared_channel
            .get_or_insert_with(|| tokio::sync::mpsc::channel(1))
            .0
            .clone();
        shared::spawn_member(
            client,
            group,
            topics,
            Arc::from(full.as_str()),
            sender,
            stop.clone(),
        );
        let granted = subscription.options.qos;
        let mut matching = Subscriptions::default();
        matching.insert(Subscription {
            filter: inner,
            ..subscription
        });
        self.shared.insert(full, SharedMember { matching, stop });
        self.dirty = true;
        ReasonCode(granted as u8)
    }

    /// Follows every stream topic that can hold names matching `filter`
    /// (from its end), creating those a rule or the first level names.
    pub(super) async fn follow_filter(&mut self, filter: &str) -> Result<(), ClientError> {
        for topic in topics_for(&self.node, filter).await? {
            self.follow_topic(&topic, Start::Latest).await?;
        }
        Ok(())
    }

    pub(super) async fn follow_topic(
        &mut self,
        topic: &str,
        start: Start,
    ) -> Result<(), ClientError> {
        if self.followed_topics.contains(topic) {
            return Ok(());
        }
        self.node.ingest.ensure_topic(topic).await?;
        let partitions = self.node.client.partition_count(topic).await?.unwrap_or(0);
        for partition in 0..partitions {
            self.follower.follow(topic, partition, start).await?;
        }
        self.followed_topics.insert(topic.to_owned());
        Ok(())
    }

    /// Follows stream topics made since a wildcard-first subscription was
    /// taken, from their start (all they hold is newer than it).
    pub(super) async fn refresh_topics(&mut self) {
        let filters: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| starts_with_wildcard(&s.filter))
            .map(|s| s.filter.clone())
            .collect();
        if filters.is_empty() {
            return;
        }
        let Ok(existing) = existing_topics(&self.node.client).await else {
            return;
        };
        for filter in filters {
            for topic in self.node.config.map.stream_topics_for(&filter, &existing) {
                if let Err(error) = self.follow_topic(&topic, Start::Earliest).await {
                    tracing::debug!(%topic, %error, "cannot follow a new stream topic yet");
                }
            }
        }
    }

    pub(super) async fn unsubscribe<IO>(
        &mut self,
        framed: &mut Io<IO>,
        unsubscribe: Unsubscribe,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let reasons = unsubscribe
            .filters
            .iter()
            .map(|filter| {
                let shared = self.shared.remove(filter.as_str());
                if let Some(member) = &shared {
                    member.stop.cancel();
                }
                match self.subscriptions.remove(filter) || shared.is_some() {
                    true => ReasonCode::SUCCESS,
                    false => ReasonCode::NO_SUBSCRIPTION_EXISTED,
                }
            })
            .collect();
        self.unfollow_unneeded();
        self.dirty = true;
        self.save_if_persistent().await?;
        let unsuback = UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: AckProperties::default(),
            reasons,
        };
        self.feed(framed, Packet::UnsubAck(unsuback)).await
    }

    /// Stops reading stream topics no remaining subscription needs.
    fn unfollow_unneeded(&mut self) {
        let followed: Vec<String> = self.followed_topics.iter().cloned().collect();
        let needed: HashSet<String> = self
            .subscriptions
            .iter()
            .flat_map(|s| self.node.config.map.stream_topics_for(&s.filter, &followed))
            .collect();
        let unneeded: Vec<(Arc<str>, u32)> = self
            .follower
            .positions()
            .keys()
            .filter(|(topic, _)| !needed.contains(&**topic))
            .cloned()
            .collect();
        for (topic, partition) in unneeded {
            self.follower.unfollow(&topic, partition);
            self.followed_topics.remove(&*topic);
        }
    }

    /// Queues what the subscriptions match among followed records. A tail
    /// batch carries each record's MQTT view, made once for every
    /// subscriber of the node ([`crate::Rendered`]); records read from the
    /// log by this session are viewed here.
    pub(super) fn matched<IO>(&mut self, framed: &mut Io<IO>, followed: Followed<Rendered>) {
        let Followed::Records { span, .. } = followed else {
            return;
        };
        let now = now_ms();
        match &span {
            Span::Shared(batch, first) => {
                // One tail batch reads one partition: one topic name.
                if let Some(head) = batch.records.get(*first) {
                    let topic = head.topic.clone();
                    let viewed = batch.records[*first..]
                        .iter()
                        .zip(&batch.rendered[*first..]);
                    for (record, stored) in viewed {
                        self.queue_delivery(framed, &topic, record, stored.as_ref(), now);
                    }
                }
            }
            Span::Read(records) => {
                for record in records {
                    let topic = record.topic.clone();
                    let stored = message::stored(record);
                    self.queue_delivery(framed, &topic, record, stored.as_ref(), now);
                }
            }
        }
        self.dirty = true;
    }

    /// After a span was matched, the spans already waiting behind it (up
    /// to [`SPANS_PER_TURN_MAX`]), while nothing waits for the window and
    /// the write buffer is under [`BUSY_WRITE_BUFFER_BYTES`]: several tail
    /// batches then cost one turn of the loop and one write, not one each.
    pub(super) fn matched_ready<IO>(&mut self, framed: &mut Io<IO>) {
        for _ in 1..SPANS_PER_TURN_MAX {
            if !self.pending.is_empty() || framed.write_buffer().len() >= BUSY_WRITE_BUFFER_BYTES {
                return;
            }
            // Ready now or not at all (`next` is cancel-safe); the loop's
            // own poll registers the waker.
            match self.follower.next().now_or_never() {
                Some(Some(followed)) => self.matched(framed, followed),
                _ => return,
            }
        }
    }

    /// Queues the delivery of a matched record; a QoS 0 one with nothing
    /// queued before it is written at once.
    fn queue_delivery<IO>(
        &mut self,
        framed: &mut Io<IO>,
        topic: &Arc<str>,
        record: &ConsumerRecord,
        stored: Option<&Stored>,
        now: i64,
    ) {
        let Some(stored) = stored else {
            return;
        };
        let Some(publish) = self.delivery_for(&self.subscriptions, record, stored, now) else {
            return;
        };
        if publish.qos == QoS::AtMostOnce && self.pending.is_empty() {
            self.write_now(framed, publish);
            return;
        }
        self.pending.push_back(Pending {
            publish,
            at: At::of(topic.clone(), record),
            kept: None,
            ticket: None,
        });
    }

    /// Encodes a QoS 0 delivery straight into the connection's write
    /// buffer, which the loop writes out before it reads more records: it
    /// needs no window, so it does not go through the queue of
    /// [`Connection::drain`] (as [`Connection::drain`] does, one the client
    /// would refuse as too large is dropped [MQTT-3.1.2-25]).
    fn write_now<IO>(&mut self, framed: &mut Io<IO>, mut publish: Publish) {
        if self.too_large(&publish) {
            tracing::debug!(client_id = %self.client_id, topic = %publish.topic, "message larger than the client accepts; not sent");
            return;
        }
        self.alias(&mut publish);
        let peer = *framed.codec().peer_limits();
        let packet = Packet::Publish(publish);
        let out = framed.write_buffer_mut();
        if let Err(error) = encode_packet_within(self.version, Role::Server, &packet, &peer, out) {
            tracing::debug!(client_id = %self.client_id, %error, "a message that cannot be encoded is not sent");
        }
    }

    /// Queues what a shared subscription matches in a batch of its group
    /// member; the member commits once they are all delivered.
    pub(super) fn matched_shared(&mut self, batch: SharedBatch) {
        let now = now_ms();
        if let Some(member) = self.shared.get(&*batch.filter) {
            for record in &batch.records {
                let Some(stored) = message::stored(record) else {
                    continue;
                };
                if let Some(publish) = self.delivery_for(&member.matching, record, &stored, now) {
                    batch.ticket.add();
                    let at = At::of(record.topic.clone(), record);
                    let ticket = Some(batch.ticket.clone());
                    self.pending.push_back(Pending {
                        publish,
                        at,
                        kept: None,
                        ticket,
                    });
                }
            }
        }
        batch.seal();
    }

    /// The PUBLISH that delivers `record`, if a subscription matches it.
    pub(super) fn delivery(&self, record: &ConsumerRecord, now_ms: i64) -> Option<Publish> {
        let stored = message::stored(record)?;
        self.delivery_for(&self.subscriptions, record, &stored, now_ms)
    }

    fn delivery_for(
        &self,
        subscriptions: &Subscriptions,
        record: &ConsumerRecord,
        stored: &Stored,
        now_ms: i64,
    ) -> Option<Publish> {
        let found = subscriptions.matching(stored, self.client_id.as_bytes())?;
        let retain = found.retain_as_published && stored.retain;
        let mut publish = message::to_publish(record, stored, found.qos, retain, now_ms)?;
        match self.version {
            Version::V5 => publish.properties.subscription_identifiers = found.identifiers,
            Version::V3_1_1 => publish.properties = PublishProperties::default(),
        }
        Some(publish)
    }

    /// Sends queued messages while the window has room; one the client
    /// would refuse as too large is dropped [MQTT-3.1.2-25]. A persistent
    /// session records the QoS 2 messages it is about to send first, so
    /// a resend after a node failure uses their packet ids.
    pub(super) async fn drain<IO>(&mut self, framed: &mut Io<IO>) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if !self.busy_writes && self.pending.len() >= BUSY_PENDING {
            // Many messages to send: one write per turn, not one per 8 KiB.
            framed.set_backpressure_boundary(BUSY_WRITE_BUFFER_BYTES);
            self.busy_writes = true;
        }
        let mut batch = Vec::with_capacity(self.pending.len());
        let mut qos2 = false;
        while let Some(front) = self.pending.front() {
            if front.publish.qos != QoS::AtMostOnce && !self.outbound.has_room() {
                break;
            }
            let Pending {
                mut publish,
                at,
                kept,
                ticket,
            } = self.pending.pop_front().expect("just seen");
            if self.too_large(&publish) {
                tracing::debug!(client_id = %self.client_id, topic = %publish.topic, "message larger than the client accepts; not sent");
                if let Some(ticket) = ticket {
                    ticket.complete();
                }
                continue;
            }
            if publish.qos == QoS::AtMostOnce {
                if let Some(ticket) = ticket {
                    ticket.complete();
                }
            } else {
                qos2 |= publish.qos == QoS::ExactlyOnce;
                // A queued retained message leaves the snapshot's queue.
                self.dirty |= kept.is_some();
                self.outbound
                    .start(&mut publish, at.position(), kept, ticket);
            }
            batch.push(publish);
        }
        if qos2 {
            self.save_if_persistent().await?;
        }
        for mut publish in batch {
            self.alias(&mut publish);
            self.feed(framed, Packet::Publish(publish)).await?;
        }
        Ok(())
    }

    /// Sends a topic name the client has an alias for as the alias alone,
    /// and gives new names an alias while there are some left (5.0).
    fn alias(&mut self, publish: &mut Publish) {
        if self.outbound_alias_maximum == 0 {
            return;
        }
        if let Some(alias) = self.outbound_aliases.get(&publish.topic) {
            publish.properties.topic_alias = std::num::NonZeroU16::new(*alias);
            publish.topic = ByteStr::default();
            return;
        }
        let next = self.outbound_aliases.len() as u16 + 1;
        if next <= self.outbound_alias_maximum {
            self.outbound_aliases.insert(publish.topic.clone(), next);
            publish.properties.topic_alias = std::num::NonZeroU16::new(next);
        }
    }

    fn too_large(&self, publish: &Publish) -> bool {
        let Some(max) = self.client_max_packet_bytes else {
            return false;
        };
        // Sized as sent: with a packet id at QoS 1/2 (its value does not
        // change the size).
        let mut sized = publish.clone();
        if sized.qos != QoS::AtMostOnce {
            sized.packet_id = std::num::NonZeroU16::new(1);
        }
        match Packet::Publish(sized).encoded_len(self.version) {
            Ok(len) => len > max as usize,
            Err(error) => {
                tracing::debug!(client_id = %self.client_id, %error, "a message that cannot be encoded is not sent");
                true
            }
        }
    }
}

/// The stream topics a shared subscription's filter reads, created if
/// missing.
async fn share_topics(node: &crate::Node, filter: &str) -> Result<Vec<String>, ClientError> {
    let topics = topics_for(node, filter).await?;
    for topic in &topics {
        node.ingest.ensure_topic(topic).await?;
    }
    Ok(topics)
}

/// The stream topics that can hold names matching `filter` (listing the
/// existing ones only for a filter that starts with a wildcard).
async fn topics_for(node: &crate::Node, filter: &str) -> Result<Vec<String>, ClientError> {
    let existing = if starts_with_wildcard(filter) {
        existing_topics(&node.client).await?
    } else {
        Vec::new()
    };
    Ok(node.config.map.stream_topics_for(filter, &existing))
}

async fn existing_topics(client: &Client) -> Result<Vec<String>, ClientError> {
    let topics = client.admin().list_topics().await?;
    Ok(topics.into_iter().map(|topic| topic.name).collect())
}

fn starts_with_wildcard(filter: &str) -> bool {
    filter.starts_with('+') || filter.starts_with('#')
}
