//! The session in the replicated store: taking it at CONNECT (with a
//! generation above every earlier claim), snapshots while connected, the
//! resume of a present session (subscriptions, positions, the QoS 2
//! intents, and the unacknowledged messages re-sent with DUP under their
//! packet ids [MQTT-4.4.0-1]), and the last snapshot or the end of the
//! session when the connection closes.
//!
//! Every connection takes a session, clean ones too: the claim is what
//! tells a node holding the client id elsewhere that it was taken over.

use citystream_client::ClientError;
use citystream_client::live::Start;
use citystream_mqtt_codec::{Packet, QoS, RetainHandling, SubscriptionOptions};
use std::num::NonZeroU16;
use tokio::io::{AsyncRead, AsyncWrite};

use super::inbound::ack_of;
use super::{At, Connection, End, Io, Pending, now_ms};
use crate::Node;
use crate::connect::Accepted;
use crate::outbound::KEPT_BYTES_MAX;
use crate::session::{
    Generation, OwnerNode, Position, QueuedRetained, SessionRecord, StoredInflight,
    StoredSubscription,
};
use crate::subscriptions::Subscription;

/// A session taken at CONNECT.
pub(super) struct Taken {
    pub generation: Generation,
    /// This node's run, named in the claim while connected.
    pub owner_node: Option<OwnerNode>,
    /// The session that continues, if one was present.
    pub record: Option<SessionRecord>,
}

impl Taken {
    pub fn present(&self) -> bool {
        self.record.is_some()
    }
}

/// Takes `accepted.client_id`'s session: the stored one unless the client
/// asked for a clean start or it expired, and claims it with a generation
/// above every earlier one. The claim supersedes a will with a delay that
/// the session held: a resumed session cancels it, a clean start publishes
/// it.
pub(super) async fn take(node: &Node, accepted: &Accepted) -> Result<Taken, ClientError> {
    let client_id = &accepted.client_id;
    let known = node.store.load(&node.ingest, client_id).await?;
    let holds_delayed_will = known
        .as_ref()
        .and_then(|known| known.record.as_ref())
        .is_some_and(|record| record.will_with_delay().is_some());
    let counter = known.as_ref().map_or(0, |known| known.generation.counter) + 1;
    let generation = Generation {
        counter,
        owner: node.instance.clone(),
    };
    let now = now_ms();
    let stored = known
        .and_then(|known| known.record)
        .filter(|record| !record.expired(now));
    let record = if accepted.clean_start { None } else { stored };
    let mut claim = record.clone().unwrap_or_else(|| SessionRecord {
        generation: generation.clone(),
        connected: true,
        expiry_secs: 0,
        updated_ms: now,
        subscriptions: Vec::new(),
        positions: Vec::new(),
        inflight: Vec::new(),
        inbound: Vec::new(),
        inbound_counter: 0,
        owner_node: None,
        will: None,
        will_at_ms: None,
        written_ms: None,
        queued_retained: Vec::new(),
    });
    let owner_node = node.owner_node().await;
    claim.generation = generation.clone();
    claim.connected = true;
    claim.expiry_secs = accepted.session_expiry_secs;
    claim.updated_ms = now;
    claim.owner_node = owner_node;
    claim.will = accepted.will.as_ref().map(crate::will::to_stored);
    claim.will_at_ms = None;
    node.store
        .write(&node.ingest, client_id, &generation, Some(&claim))
        .await?;
    if accepted.clean_start && holds_delayed_will {
        publish_superseded_will(node, client_id, &generation).await;
    }
    Ok(Taken {
        generation,
        owner_node,
        record,
    })
}

/// A clean start ends the session it replaces [MQTT-3.1.2-4], and a will
/// waiting in it (or that its connection's end would start) is due at the
/// session's end [MQTT-3.1.3-9]: published here, before CONNACK, so it
/// comes before what the new connection publishes, if `generation`'s claim
/// came before the will fired (the sessions topic's order decides).
async fn publish_superseded_will(node: &Node, client_id: &str, generation: &Generation) {
    let known = match node.store.load(&node.ingest, client_id).await {
        Ok(known) => known,
        Err(error) => {
            tracing::warn!(client_id, %error, "cannot read the MQTT session back; the will of the session it ended is not published");
            return;
        }
    };
    let superseded = known.and_then(|known| {
        let superseded = known.superseded_wills.into_iter();
        superseded
            .rev()
            .find(|superseded| superseded.by == *generation)
    });
    if let Some(will) = superseded.and_then(|superseded| crate::will::from_stored(&superseded.will))
    {
        tracing::debug!(
            client_id,
            "a clean start ended the session: its will is published"
        );
        crate::will::send(node, client_id, will).await;
    }
}

impl Connection {
    /// Continues a present session: its subscriptions and positions, its
    /// QoS 2 intents, and what it had in flight, re-sent.
    pub(super) async fn resume<IO>(
        &mut self,
        framed: &mut Io<IO>,
        record: Option<SessionRecord>,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(record) = record else {
            return Ok(());
        };
        for stored in &record.subscriptions {
            let subscription = restored_subscription(stored);
            if subscription.filter.starts_with("$share/") {
                self.add_shared(subscription).await;
            } else {
                self.subscriptions.insert(subscription);
            }
        }
        let follow = self.follow_positions(&record.positions).await;
        if let Err(error) = follow {
            tracing::warn!(client_id = %self.client_id, %error, "cannot resume the session's positions");
            return Err(End::WithWill);
        }
        self.inbound = record
            .inbound
            .iter()
            .map(|i| (i.packet_id, i.clone()))
            .collect();
        self.inbound_counter = record.inbound_counter;
        self.unanswered = self.inbound.len();
        for inflight in &record.inflight {
            self.outbound.restore(inflight);
            self.resend(framed, inflight).await?;
        }
        self.queue_kept_retained(&record.queued_retained);
        Ok(())
    }

    /// Queues again the retained messages a SUBSCRIBE had queued and the
    /// window had not let out, with RETAIN, behind what is in flight.
    fn queue_kept_retained(&mut self, queued: &[QueuedRetained]) {
        let now = now_ms();
        for queued in queued {
            let Some(record) = queued.kept.record(&queued.at) else {
                continue;
            };
            let Some(mut publish) = self.delivery(&record, now) else {
                continue; // expired, or no longer subscribed
            };
            publish.retain = true;
            publish.qos = QoS::from_u8(queued.qos).unwrap_or(QoS::AtLeastOnce);
            self.pending.push_back(Pending {
                publish,
                at: At::from(&queued.at),
                kept: Some(queued.kept.clone()),
                ticket: None,
            });
        }
    }

    /// Follows the stored positions, then every subscription's topics not
    /// among them (from their ends).
    async fn follow_positions(&mut self, positions: &[Position]) -> Result<(), ClientError> {
        for position in positions {
            let start = Start::Offset(position.offset);
            self.follower
                .follow(&position.topic, position.partition, start)
                .await?;
            self.followed_topics.insert(position.topic.clone());
        }
        let filters: Vec<String> = self
            .subscriptions
            .iter()
            .map(|s| s.filter.clone())
            .collect();
        for filter in filters {
            self.follow_filter(&filter).await?;
        }
        Ok(())
    }

    /// Sends an unacknowledged message again: PUBREL if its PUBREC came,
    /// else the PUBLISH with DUP and its packet id (read from the log).
    async fn resend<IO>(
        &mut self,
        framed: &mut Io<IO>,
        inflight: &StoredInflight,
    ) -> Result<(), End>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(packet_id) = NonZeroU16::new(inflight.packet_id) else {
            return Ok(());
        };
        if inflight.released {
            return self
                .feed(
                    framed,
                    Packet::PubRel(ack_of(
                        packet_id,
                        citystream_mqtt_codec::ReasonCode::SUCCESS,
                    )),
                )
                .await;
        }
        let at = &inflight.at;
        let record = match &inflight.kept {
            Some(kept) => kept.record(at),
            None => {
                let read = self
                    .node
                    .client
                    .read_partition(&at.topic, at.partition, at.offset, 64 * 1024, 0)
                    .await;
                read.ok()
                    .and_then(|read| read.records.into_iter().find(|r| r.offset == at.offset))
            }
        };
        let publish = record.and_then(|record| self.delivery(&record, now_ms()));
        let Some(mut publish) = publish else {
            // Gone (retention) or no longer matched: it ends here.
            self.outbound.acked(inflight.packet_id);
            self.outbound.completed(inflight.packet_id);
            return Ok(());
        };
        // Sent as a retained message the first time [MQTT-3.3.1-8].
        publish.retain |= inflight.kept.is_some();
        publish.dup = true;
        publish.qos = QoS::from_u8(inflight.qos).unwrap_or(QoS::AtLeastOnce);
        publish.packet_id = Some(packet_id);
        self.feed(framed, Packet::Publish(publish)).await
    }

    /// The session as a record: positions held back to the first matched
    /// message not sent yet, so none is skipped on a resume.
    fn snapshot(&self, connected: bool) -> SessionRecord {
        let positions = self
            .follower
            .positions()
            .iter()
            .map(|((topic, partition), next)| {
                let pending = self
                    .pending
                    .iter()
                    .filter(|p| {
                        p.ticket.is_none() && p.at.partition == *partition && p.at.topic == *topic
                    })
                    .map(|p| p.at.offset)
                    .min();
                Position {
                    topic: topic.to_string(),
                    partition: *partition,
                    offset: pending.map_or(*next, |offset| offset.min(*next)),
                }
            })
            .collect();
        SessionRecord {
            generation: self.generation.clone(),
            connected,
            expiry_secs: self.expiry_secs,
            updated_ms: now_ms(),
            subscriptions: self
                .subscriptions
                .iter()
                .map(stored_subscription)
                .chain(
                    self.shared
                        .iter()
                        .map(|(filter, member)| StoredSubscription {
                            filter: filter.clone(),
                            ..stored_subscription(member.subscription())
                        }),
                )
                .collect(),
            positions,
            inflight: self.outbound.stored(),
            inbound: self.inbound.values().cloned().collect(),
            inbound_counter: self.inbound_counter,
            owner_node: self.owner_node.filter(|_| connected),
            will: self.stored_will.clone().filter(|_| connected),
            will_at_ms: None,
            written_ms: None,
            queued_retained: self.queued_retained(),
        }
    }

    /// The retained messages queued and not sent yet, as a snapshot keeps
    /// them: their content, up to [`KEPT_BYTES_MAX`] in all (the rest
    /// would come again with a new SUBSCRIBE).
    fn queued_retained(&self) -> Vec<QueuedRetained> {
        let mut bytes = 0;
        self.pending
            .iter()
            .filter_map(|pending| {
                let kept = pending.kept.as_ref()?;
                bytes += kept.size_bytes();
                (bytes <= KEPT_BYTES_MAX).then(|| QueuedRetained {
                    qos: pending.publish.qos as u8,
                    at: pending.at.position(),
                    kept: kept.clone(),
                })
            })
            .collect()
    }

    /// Writes a snapshot of a persistent session (and waits for a quorum).
    pub(super) async fn save(&mut self) -> Result<(), ClientError> {
        let record = self.snapshot(true);
        self.dirty = false;
        let written = self
            .node
            .store
            .write(
                &self.node.ingest,
                &self.client_id,
                &self.generation,
                Some(&record),
            )
            .await;
        if written.is_err() {
            self.dirty = true;
        }
        written
    }

    /// [`Connection::save`] where a persistent session must be written
    /// before what follows; a failure closes the connection (the client
    /// comes back and the session resumes from its last snapshot).
    pub(super) async fn save_if_persistent(&mut self) -> Result<(), End> {
        if !self.persistent() {
            return Ok(());
        }
        self.save().await.map_err(|error| {
            tracing::warn!(client_id = %self.client_id, %error, "cannot write the MQTT session; closing");
            End::WithWill
        })
    }

    /// The periodic snapshot of positions and acknowledgements.
    pub(super) async fn save_if_dirty(&mut self) -> Result<(), End> {
        if self.persistent()
            && self.dirty
            && let Err(error) = self.save().await
        {
            tracing::debug!(client_id = %self.client_id, %error, "MQTT session snapshot failed; retrying later");
        }
        Ok(())
    }

    /// Ends the connection's hold on the session: a last snapshot of a
    /// persistent session (with the will, if it waits out its delay until
    /// `will_at_ms`, and this node as the one that waits), or the end of a
    /// clean one; nothing if another connection took it over.
    pub(super) async fn finish(&mut self, end: End, will_at_ms: Option<i64>) {
        for member in self.shared.values() {
            member.stop.cancel();
        }
        if end == End::TakenOver {
            return;
        }
        let record = (self.persistent()).then(|| {
            let mut record = self.snapshot(false);
            if will_at_ms.is_some() {
                record.will = self.stored_will.clone();
                record.will_at_ms = will_at_ms;
                record.owner_node = self.owner_node;
            }
            record
        });
        let written = self
            .node
            .store
            .write(
                &self.node.ingest,
                &self.client_id,
                &self.generation,
                record.as_ref(),
            )
            .await;
        if let Err(error) = written {
            tracing::warn!(client_id = %self.client_id, %error, "cannot write the MQTT session at disconnect");
        }
    }
}

fn stored_subscription(subscription: &Subscription) -> StoredSubscription {
    let options = &subscription.options;
    StoredSubscription {
        filter: subscription.filter.clone(),
        qos: options.qos as u8,
        no_local: options.no_local,
        retain_as_published: options.retain_as_published,
        retain_handling: options.retain_handling as u8,
        identifier: subscription.identifier,
    }
}

fn restored_subscription(stored: &StoredSubscription) -> Subscription {
    let retain_handling = match stored.retain_handling {
        1 => RetainHandling::SendAtSubscribeIfNew,
        2 => RetainHandling::DoNotSend,
        _ => RetainHandling::SendAtSubscribe,
    };
    Subscription {
        filter: stored.filter.clone(),
        options: SubscriptionOptions {
            qos: QoS::from_u8(stored.qos).unwrap_or(QoS::AtMostOnce),
            no_local: stored.no_local,
            retain_as_published: stored.retain_as_published,
            retain_handling,
        },
        identifier: stored.identifier,
    }
}
