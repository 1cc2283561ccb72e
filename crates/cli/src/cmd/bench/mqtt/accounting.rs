//! What `bench mqtt` checks about delivery, kept pure so it is tested on
//! its own: the payload every message carries (publisher, sequence number,
//! send time), one subscriber's [`Tally`] of what arrived, and
//! [`summarize`], which turns the tallies and what the publishers
//! published into delivered / lost / duplicates / out of order. No I/O,
//! no clock: the caller passes times in.
//!
//! Payload layout (little-endian), then zeros up to `--size`:
//!
//! ```text
//! publisher u32 | sequence u64 | sent, ns since the run's base u64
//! ```

use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};

/// Bytes of the stamp at the start of every payload.
pub const STAMP_BYTES: usize = 4 + 8 + 8;

/// What a payload says about its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub sequence: u64,
    /// Send time, since the run's base instant.
    pub sent: Duration,
}

/// A payload of `size_bytes` (at least [`STAMP_BYTES`]) carrying `stamp`.
pub fn payload(stamp: Stamp, size_bytes: usize) -> Bytes {
    assert!(size_bytes >= STAMP_BYTES, "--size is validated");
    let mut payload = BytesMut::with_capacity(size_bytes);
    payload.put_u32_le(stamp.publisher);
    payload.put_u64_le(stamp.sequence);
    payload.put_u64_le(u64::try_from(stamp.sent.as_nanos()).unwrap_or(u64::MAX));
    payload.resize(size_bytes, 0);
    payload.freeze()
}

/// The stamp of a payload; `None` if it is too short to hold one.
pub fn read_stamp(payload: &[u8]) -> Option<Stamp> {
    let publisher = u32::from_le_bytes(payload.get(0..4)?.try_into().ok()?);
    let sequence = u64::from_le_bytes(payload.get(4..12)?.try_into().ok()?);
    let sent_ns = u64::from_le_bytes(payload.get(12..20)?.try_into().ok()?);
    Some(Stamp {
        publisher,
        sequence,
        sent: Duration::from_nanos(sent_ns),
    })
}

/// One subscriber's view of one publisher's messages.
#[derive(Debug, Clone, Default)]
struct Stream {
    /// Bit `n` set: sequence `n` arrived.
    seen: Vec<u64>,
    unique: u64,
    duplicates: u64,
    out_of_order: u64,
    /// The highest sequence arrived so far plus one (0: none yet).
    next_in_order: u64,
}

/// How one message arrival counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    /// New, but a later sequence of its publisher arrived before it.
    OutOfOrder,
    Duplicate,
    /// Not a message of this run (an unknown publisher).
    Foreign,
}

/// What one subscriber received, per publisher.
#[derive(Debug, Clone)]
pub struct Tally {
    streams: Vec<Stream>,
    /// Messages not from this run's publishers.
    pub foreign: u64,
}

impl Tally {
    pub fn new(publishers: u32) -> Tally {
        Tally {
            streams: vec![Stream::default(); publishers as usize],
            foreign: 0,
        }
    }

    pub fn record(&mut self, publisher: u32, sequence: u64) -> Arrival {
        let Some(stream) = self.streams.get_mut(publisher as usize) else {
            self.foreign += 1;
            return Arrival::Foreign;
        };
        let (word, bit) = ((sequence / 64) as usize, 1u64 << (sequence % 64));
        if stream.seen.len() <= word {
            stream.seen.resize(word + 1, 0);
        }
        if stream.seen[word] & bit != 0 {
            stream.duplicates += 1;
            return Arrival::Duplicate;
        }
        stream.seen[word] |= bit;
        stream.unique += 1;
        if sequence < stream.next_in_order {
            stream.out_of_order += 1;
            return Arrival::OutOfOrder;
        }
        stream.next_in_order = sequence + 1;
        Arrival::InOrder
    }

    /// Distinct messages received, over all publishers.
    pub fn unique(&self) -> u64 {
        self.streams.iter().map(|stream| stream.unique).sum()
    }
}

/// The delivery figures of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounting {
    /// Distinct messages each subscriber received.
    pub delivered_per_subscriber: Vec<u64>,
    pub delivered_total: u64,
    /// Expected deliveries (each subscriber expects every published
    /// message) minus distinct deliveries, per publisher, never negative.
    pub lost: u64,
    pub duplicates: u64,
    /// Summed over subscribers, per publisher.
    pub out_of_order_per_publisher: Vec<u64>,
    pub foreign: u64,
}

impl Accounting {
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order_per_publisher.iter().sum()
    }
}

/// The figures from each subscriber's tally and the count each publisher
/// published (QoS 0: written; QoS 1: acknowledged).
pub fn summarize(tallies: &[Tally], published_per_publisher: &[u64]) -> Accounting {
    let mut accounting = Accounting {
        delivered_per_subscriber: Vec::with_capacity(tallies.len()),
        delivered_total: 0,
        lost: 0,
        duplicates: 0,
        out_of_order_per_publisher: vec![0; published_per_publisher.len()],
        foreign: 0,
    };
    for tally in tallies {
        let unique = tally.unique();
        accounting.delivered_per_subscriber.push(unique);
        accounting.delivered_total += unique;
        accounting.foreign += tally.foreign;
        for (publisher, stream) in tally.streams.iter().enumerate() {
            let expected = published_per_publisher.get(publisher).copied().unwrap_or(0);
            accounting.lost += expected.saturating_sub(stream.unique);
            accounting.duplicates += stream.duplicates;
            accounting.out_of_order_per_publisher[publisher] += stream.out_of_order;
        }
    }
    accounting
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload carries its stamp and has exactly the asked size.
    #[test]
    fn payload_round_trips_its_stamp() {
        let stamp = Stamp {
            publisher: 3,
            sequence: 1 << 40,
            sent: Duration::from_nanos(123_456_789),
        };
        let bytes = payload(stamp, 100);
        assert_eq!(bytes.len(), 100);
        assert_eq!(read_stamp(&bytes), Some(stamp));
        assert!(bytes[STAMP_BYTES..].iter().all(|&byte| byte == 0));
        assert_eq!(read_stamp(&bytes[..STAMP_BYTES - 1]), None);
    }

    /// Arrivals are told apart: in order, late, repeated, from elsewhere.
    #[test]
    fn arrivals_are_classified() {
        let mut tally = Tally::new(2);
        assert_eq!(tally.record(0, 0), Arrival::InOrder);
        assert_eq!(tally.record(0, 2), Arrival::InOrder);
        assert_eq!(tally.record(0, 1), Arrival::OutOfOrder);
        assert_eq!(tally.record(0, 2), Arrival::Duplicate);
        assert_eq!(tally.record(1, 200), Arrival::InOrder);
        assert_eq!(tally.record(7, 0), Arrival::Foreign);
        assert_eq!((tally.unique(), tally.foreign), (4, 1));
    }

    /// Loss, duplicates and disorder add up per publisher over subscribers:
    /// two publishers of 5 and 3 messages, two subscribers.
    #[test]
    fn summary_counts_loss_duplicates_and_disorder() {
        let mut complete = Tally::new(2);
        for sequence in [0, 1, 2, 4, 3] {
            complete.record(0, sequence);
        }
        for sequence in [0, 1, 2, 2] {
            complete.record(1, sequence);
        }
        let mut lossy = Tally::new(2);
        for sequence in [0, 2, 4] {
            lossy.record(0, sequence);
        }
        lossy.record(1, 1);
        lossy.record(1, 0);
        let accounting = summarize(&[complete, lossy], &[5, 3]);
        assert_eq!(
            accounting,
            Accounting {
                delivered_per_subscriber: vec![8, 5],
                delivered_total: 13,
                // lossy misses sequences 1 and 3 of publisher 0 and 2 of publisher 1.
                lost: 3,
                duplicates: 1,
                out_of_order_per_publisher: vec![1, 1],
                foreign: 0,
            }
        );
        assert_eq!(accounting.out_of_order(), 2);
    }

    /// More delivered than published (unacknowledged messages that made it)
    /// is not negative loss.
    #[test]
    fn extra_deliveries_are_not_negative_loss() {
        let mut tally = Tally::new(1);
        for sequence in 0..4 {
            tally.record(0, sequence);
        }
        assert_eq!(summarize(&[tally], &[3]).lost, 0);
    }
}
