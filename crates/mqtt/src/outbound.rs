//! Messages sent to a client at QoS 1 or 2 and not yet acknowledged: their
//! packet ids and the in-flight window. Pure.
//!
//! The window is the lower of the client's Receive Maximum and our
//! `inflight_max` [MQTT-3.3.4-9]: while it is full nothing more at QoS > 0
//! is sent, and delivery waits (the log holds what waits).
//!
//! A message in flight is known by its record's position, except a
//! retained message, whose record compaction may remove once its name has
//! a newer one: its content is kept too (in session snapshots as well), up
//! to [`KEPT_BYTES_MAX`] for the whole window.

use std::collections::BTreeMap;
use std::num::NonZeroU16;

use citystream_mqtt_codec::{Publish, QoS};

use std::sync::Arc;

use crate::session::{KeptRecord, Position, StoredInflight};

/// Most bytes of retained messages' content kept for the messages in
/// flight: a session record must stay well under the broker's record size
/// limit (1 MiB). Beyond it a retained message is known by its position
/// only, and is not sent again if compaction removed its record.
pub const KEPT_BYTES_MAX: usize = 256 * 1024;
use crate::shared::Ticket;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Sent,
    /// PUBREC came and PUBREL went; waiting for PUBCOMP.
    Released,
}

#[derive(Debug)]
struct Inflight {
    qos: QoS,
    stage: Stage,
    /// The message's record (kept in session snapshots).
    at: Position,
    /// A retained message's content.
    kept: Option<KeptRecord>,
    /// The shared-subscription batch it belongs to, told when it ends.
    ticket: Option<Arc<Ticket>>,
}

#[derive(Debug)]
pub struct Outbound {
    inflight: BTreeMap<u16, Inflight>,
    next_id: u16,
    window: usize,
    /// Bytes of the `kept` contents in flight.
    kept_bytes: usize,
}

impl Outbound {
    pub fn new(window: usize) -> Outbound {
        Outbound {
            inflight: BTreeMap::new(),
            next_id: 1,
            window: window.max(1),
            kept_bytes: 0,
        }
    }

    /// Whether another QoS 1/2 message may be sent now.
    pub fn has_room(&self) -> bool {
        self.inflight.len() < self.window
    }

    /// Gives `publish` (QoS 1 or 2), the record at `at` (for a retained
    /// message, `kept` is its content), a free packet id and tracks it.
    pub fn start(
        &mut self,
        publish: &mut Publish,
        at: Position,
        kept: Option<KeptRecord>,
        ticket: Option<Arc<Ticket>>,
    ) {
        assert!(publish.qos != QoS::AtMostOnce, "QoS 0 is not tracked");
        assert!(self.has_room(), "the window is full");
        let id = loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&id) {
                break id;
            }
        };
        let stage = Stage::Sent;
        let kept = self.keep(kept);
        self.inflight.insert(
            id,
            Inflight {
                qos: publish.qos,
                stage,
                at,
                kept,
                ticket,
            },
        );
        publish.packet_id = NonZeroU16::new(id);
    }

    /// `kept`, if the window's kept contents have room for it.
    fn keep(&mut self, kept: Option<KeptRecord>) -> Option<KeptRecord> {
        let kept = kept.filter(|k| self.kept_bytes + k.size_bytes() <= KEPT_BYTES_MAX)?;
        self.kept_bytes += kept.size_bytes();
        Some(kept)
    }

    /// Tracks a message of a resumed session under its original id.
    pub fn restore(&mut self, stored: &StoredInflight) {
        let qos = QoS::from_u8(stored.qos).unwrap_or(QoS::AtLeastOnce);
        let stage = if stored.released {
            Stage::Released
        } else {
            Stage::Sent
        };
        let at = stored.at.clone();
        let kept = self.keep(stored.kept.clone());
        let ticket = None;
        let inflight = Inflight {
            qos,
            stage,
            at,
            kept,
            ticket,
        };
        self.inflight.insert(stored.packet_id, inflight);
    }

    /// What is in flight, as a session snapshot keeps it.
    pub fn stored(&self) -> Vec<StoredInflight> {
        self.inflight
            .iter()
            .map(|(id, inflight)| StoredInflight {
                packet_id: *id,
                qos: inflight.qos as u8,
                released: inflight.stage == Stage::Released,
                at: inflight.at.clone(),
                kept: inflight.kept.clone(),
            })
            .collect()
    }

    /// PUBACK: true if it ended a QoS 1 message.
    pub fn acked(&mut self, id: u16) -> bool {
        self.finish(id, QoS::AtLeastOnce, Stage::Sent)
    }

    /// PUBREC: true if PUBREL is to be sent (a QoS 2 message was received;
    /// with an error reason it ends instead [MQTT-4.3.3-4]).
    pub fn received(&mut self, id: u16, error: bool) -> bool {
        let Some(inflight) = self.inflight.get_mut(&id) else {
            return false;
        };
        match (inflight.qos, inflight.stage) {
            (QoS::ExactlyOnce, Stage::Sent) if error => {
                self.end(id);
                false
            }
            (QoS::ExactlyOnce, Stage::Sent) => {
                inflight.stage = Stage::Released;
                true
            }
            // A PUBREC repeated after PUBREL: answer it again.
            (QoS::ExactlyOnce, Stage::Released) => true,
            _ => false,
        }
    }

    /// PUBCOMP: true if it ended a QoS 2 message.
    pub fn completed(&mut self, id: u16) -> bool {
        self.finish(id, QoS::ExactlyOnce, Stage::Released)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inflight.len()
    }

    fn finish(&mut self, id: u16, qos: QoS, stage: Stage) -> bool {
        if self
            .inflight
            .get(&id)
            .is_some_and(|inflight| (inflight.qos, inflight.stage) == (qos, stage))
        {
            self.end(id);
            true
        } else {
            false
        }
    }

    fn end(&mut self, id: u16) {
        let Some(ended) = self.inflight.remove(&id) else {
            return;
        };
        if let Some(kept) = &ended.kept {
            self.kept_bytes -= kept.size_bytes();
        }
        if let Some(ticket) = ended.ticket {
            ticket.complete();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use citystream_mqtt_codec::{ByteStr, PublishProperties};

    fn at(offset: u64) -> Position {
        Position {
            topic: "t".to_owned(),
            partition: 0,
            offset,
        }
    }

    fn publish(qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: ByteStr::from("t"),
            packet_id: None,
            properties: PublishProperties::default(),
            payload: Bytes::new(),
        }
    }

    /// The window fills, acknowledgements free it, and ids are not reused
    /// while in flight.
    #[test]
    fn the_window_bounds_what_is_in_flight() {
        let mut outbound = Outbound::new(2);
        let (mut a, mut b) = (publish(QoS::AtLeastOnce), publish(QoS::ExactlyOnce));
        outbound.start(&mut a, at(1), None, None);
        outbound.start(&mut b, at(2), None, None);
        assert!(!outbound.has_room());
        assert_ne!(a.packet_id, b.packet_id);
        let (a_id, b_id) = (a.packet_id.unwrap().get(), b.packet_id.unwrap().get());
        assert!(!outbound.completed(a_id), "QoS 1 ends with PUBACK");
        assert!(outbound.acked(a_id));
        assert!(outbound.has_room());
        assert!(!outbound.acked(b_id), "QoS 2 ends with PUBCOMP");
        assert!(outbound.received(b_id, false));
        assert!(
            outbound.received(b_id, false),
            "a repeated PUBREC is answered again"
        );
        let stored = outbound.stored();
        assert_eq!(stored.len(), 1);
        assert!(stored[0].released && stored[0].at == at(2));
        let mut resumed = Outbound::new(2);
        resumed.restore(&stored[0]);
        assert!(
            resumed.completed(b_id),
            "a restored message ends as it would have"
        );
        assert!(outbound.completed(b_id));
        assert_eq!(outbound.len(), 0);
    }

    fn kept(bytes: usize) -> KeptRecord {
        KeptRecord {
            key: "t".to_owned(),
            value: "v".repeat(bytes),
            headers: Vec::new(),
            timestamp_ms: 0,
        }
    }

    /// Retained contents are kept up to `KEPT_BYTES_MAX` for the whole
    /// window, stored with the snapshot, and their room comes back when
    /// they end.
    #[test]
    fn kept_contents_are_bounded_and_freed() {
        let half = KEPT_BYTES_MAX / 2 - 1; // plus its one-byte key: half the bound
        let mut outbound = Outbound::new(10);
        let mut ids = Vec::new();
        for offset in 0..3 {
            let mut message = publish(QoS::AtLeastOnce);
            outbound.start(&mut message, at(offset), Some(kept(half)), None);
            ids.push(message.packet_id.unwrap().get());
        }
        let stored = outbound.stored();
        let with_content: Vec<bool> = stored.iter().map(|s| s.kept.is_some()).collect();
        assert_eq!(
            with_content,
            [true, true, false],
            "the third is over the bound"
        );
        assert_eq!(stored[0].kept, Some(kept(half)));

        assert!(outbound.acked(ids[0]));
        let mut message = publish(QoS::AtLeastOnce);
        outbound.start(&mut message, at(3), Some(kept(half)), None);
        assert!(
            outbound.stored().last().unwrap().kept.is_some(),
            "room came back"
        );

        let mut resumed = Outbound::new(10);
        for stored in &outbound.stored() {
            resumed.restore(stored);
        }
        assert_eq!(resumed.stored(), outbound.stored());
    }

    /// Packet ids wrap from 65535 to 1, skipping ids still in flight.
    #[test]
    fn ids_wrap_and_skip_those_in_use() {
        let mut outbound = Outbound::new(10);
        let mut first = publish(QoS::AtLeastOnce);
        outbound.start(&mut first, at(1), None, None);
        outbound.next_id = u16::MAX;
        let (mut x, mut y) = (publish(QoS::AtLeastOnce), publish(QoS::AtLeastOnce));
        outbound.start(&mut x, at(2), None, None);
        outbound.start(&mut y, at(3), None, None);
        assert_eq!(x.packet_id.unwrap().get(), u16::MAX);
        assert_eq!(y.packet_id.unwrap().get(), 2, "1 is still in flight");
    }
}
