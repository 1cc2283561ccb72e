//! What the connection does with each packet from the broker: hands
//! messages to the channel and acknowledges them once handed (PUBACK, or
//! PUBREC then PUBCOMP on PUBREL, a re-sent QoS 2 message being handed
//! only once), resolves our publishes and subscribes from their acks, and
//! ends the connection on DISCONNECT or a broken rule. Queuing bytes and
//! the loop are `mod.rs`.

use std::num::NonZeroU16;

use citystream_mqtt_codec::{
    Ack, AckProperties, Packet, Publish, QoS, ReasonCode, SubAck, Version,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::codec::Decoder as _;

use super::{Connection, Request};
use crate::error::{CloseReason, MqttClientError};

impl Connection {
    /// Handles every complete packet read, stopping early when a message
    /// does not fit in the channel (the rest stays buffered).
    pub(super) fn process_incoming(&mut self) -> Result<(), CloseReason> {
        while self.undelivered.is_none() {
            let decoded = self.codec.decode(&mut self.incoming);
            let Some(packet) = decoded.map_err(CloseReason::Decode)? else {
                return Ok(());
            };
            self.handle(packet)?;
        }
        Ok(())
    }

    fn handle(&mut self, packet: Packet) -> Result<(), CloseReason> {
        match packet {
            Packet::Publish(publish) => self.received(publish),
            Packet::PubAck(ack) => self.completed(ack, QoS::AtLeastOnce),
            Packet::PubRec(ack) => self.publish_received(ack),
            Packet::PubComp(ack) => self.completed(ack, QoS::ExactlyOnce),
            Packet::PubRel(ack) => {
                self.released(ack.packet_id);
                Ok(())
            }
            Packet::SubAck(suback) => self.subscribed(suback),
            Packet::PingResp => {
                self.ping_sent_at = None;
                Ok(())
            }
            Packet::Disconnect(disconnect) => Err(CloseReason::Disconnected {
                reason: disconnect.reason,
            }),
            _ => Err(violation(
                "a packet a broker never sends a connected client",
            )),
        }
    }

    /// A message from the broker: into the channel, or held until it fits.
    fn received(&mut self, publish: Publish) -> Result<(), CloseReason> {
        let (qos, packet_id) = (publish.qos, publish.packet_id);
        if qos == QoS::ExactlyOnce {
            let packet_id = packet_id.ok_or(violation("QoS 2 without a packet id"))?;
            if self.awaiting_release.contains(&packet_id) {
                // A re-send of a message handed over already.
                self.queue_control(Packet::PubRec(Ack::success(packet_id)));
                return Ok(());
            }
        }
        match self.deliveries.try_send(publish) {
            Ok(()) => self.delivered(qos, packet_id),
            Err(TrySendError::Full(publish)) => self.undelivered = Some(publish),
            // Nobody reads any more: acknowledge, so the broker moves on.
            Err(TrySendError::Closed(_)) => self.delivered(qos, packet_id),
        }
        Ok(())
    }

    /// The message is in the channel: acknowledge it.
    pub(super) fn delivered(&mut self, qos: QoS, packet_id: Option<NonZeroU16>) {
        match (qos, packet_id) {
            (QoS::AtLeastOnce, Some(packet_id)) => {
                self.queue_control(Packet::PubAck(Ack::success(packet_id)));
            }
            (QoS::ExactlyOnce, Some(packet_id)) => {
                self.awaiting_release.insert(packet_id);
                self.queue_control(Packet::PubRec(Ack::success(packet_id)));
            }
            _ => {}
        }
    }

    /// PUBREL of a QoS 2 message to us: forget its id, answer PUBCOMP
    /// (5.0: 0x92 if the id was unknown; 3.1.1 cannot say so).
    fn released(&mut self, packet_id: NonZeroU16) {
        let known = self.awaiting_release.remove(&packet_id);
        let reason = if known || self.version == Version::V3_1_1 {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        self.queue_control(Packet::PubComp(Ack {
            packet_id,
            reason,
            properties: AckProperties::default(),
        }));
    }

    /// PUBACK of a QoS 1 publish or PUBCOMP of a released QoS 2 one: the
    /// publish is done, its id and window place freed.
    fn completed(&mut self, ack: Ack, expected: QoS) -> Result<(), CloseReason> {
        let matches = match self.requests.get_mut(ack.packet_id) {
            Some(Request::Publish {
                publish, released, ..
            }) => publish.qos == expected && (expected == QoS::AtLeastOnce || *released),
            _ => false,
        };
        if !matches {
            return Err(violation("PUBACK or PUBCOMP of no such publish"));
        }
        if let Some(Request::Publish { reply, permit, .. }) = self.requests.release(ack.packet_id) {
            drop(permit);
            let _ = reply.send(outcome(ack.reason));
        }
        Ok(())
    }

    /// PUBREC of a QoS 2 publish: send PUBREL (again, if PUBREC came again),
    /// or end the publish on an error reason.
    fn publish_received(&mut self, ack: Ack) -> Result<(), CloseReason> {
        let Some(Request::Publish {
            publish, released, ..
        }) = self.requests.get_mut(ack.packet_id)
        else {
            return Err(violation("PUBREC of no such QoS 2 publish"));
        };
        if publish.qos != QoS::ExactlyOnce {
            return Err(violation("PUBREC of no such QoS 2 publish"));
        }
        if ack.reason.is_error() {
            let request = self.requests.release(ack.packet_id).expect("found above");
            request.fail(MqttClientError::PublishRefused { reason: ack.reason });
            return Ok(());
        }
        *released = true;
        self.queue_control(Packet::PubRel(Ack::success(ack.packet_id)));
        Ok(())
    }

    fn subscribed(&mut self, suback: SubAck) -> Result<(), CloseReason> {
        if !matches!(
            self.requests.get_mut(suback.packet_id),
            Some(Request::Subscribe { .. })
        ) {
            return Err(violation("SUBACK of no such subscribe"));
        }
        if let Some(Request::Subscribe { reply, .. }) = self.requests.release(suback.packet_id) {
            let _ = reply.send(Ok(suback.reasons));
        }
        Ok(())
    }
}

/// A publish's result from its final acknowledgement's reason code.
fn outcome(reason: ReasonCode) -> Result<ReasonCode, MqttClientError> {
    if reason.is_error() {
        Err(MqttClientError::PublishRefused { reason })
    } else {
        Ok(reason)
    }
}

fn violation(what: &'static str) -> CloseReason {
    CloseReason::ProtocolViolation { what }
}
