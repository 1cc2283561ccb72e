//! Control batches: how Raft entries that carry no records (blank entries a
//! new leader writes, membership changes) are stored in the partition log.
//! Each is a batch with the `CONTROL` attribute holding exactly one record,
//! so it takes one offset: the gap consumers skip. The encoding is a pure
//! function of the entry, so every replica writes byte-identical batches.
//!
//! The record has key `b"raft"`, timestamp 0 (replicas have no common clock
//! to use, and the bytes must not depend on who writes them), no headers,
//! and this value (little-endian):
//!
//! ```text
//!  0        1           2
//!  +--------+-----------+------------------------------------------+
//!  |kind u8 |config_cnt |configs ...              | nodes ...      |
//!  |0=blank |u8 (1 or 2 | per config:             | node_count u16 |
//!  |1=member|in joint)  |  voter_count u16,       | per node:      |
//!  |        |           |  voter_count × id u64   |  id u64,       |
//!  |        |           |                         |  addr_len u16, |
//!  |        |           |                         |  addr (UTF-8)  |
//!  +--------+-----------+------------------------------------------+
//! ```
//! A blank entry's value is the kind byte alone. Membership fields follow
//! the kind byte only for kind 1.
//!
//! This module does not append or read the log; it only converts.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use citystream_record::{BatchBuilder, RecordBatch, attributes};
use openraft::Membership;

use crate::types::PeerAddr;

/// Key of the one record of a control batch.
pub const CONTROL_KEY: &[u8] = b"raft";
const KIND_BLANK: u8 = 0;
const KIND_MEMBERSHIP: u8 = 1;
/// Joint consensus has at most two configs; more is corrupt input.
const CONFIGS_MAX: usize = 2;

/// A partition's membership: voter configs and node addresses.
pub type PartitionMembership = Membership<u64, PeerAddr>;

/// What a control batch holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlEntry {
    Blank,
    Membership(PartitionMembership),
}

/// Why bytes are not a control batch this version can read.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control batch is invalid: {0}")]
    Batch(#[from] citystream_record::BatchError),
    #[error("control batch must hold exactly one record with key \"raft\"")]
    NotRaft,
    #[error("unknown control record kind {0}")]
    UnknownKind(u8),
    #[error("control record value is truncated")]
    Truncated,
    #[error("control record value has {0} trailing bytes")]
    Trailing(usize),
    #[error("membership in a control record is invalid: {0}")]
    Membership(String),
}

/// Encodes a control entry as one unstamped batch (offset, term and Raft
/// index 0; the log assigns them on append).
pub fn encode(entry: &ControlEntry) -> Vec<u8> {
    let mut value = Vec::new();
    match entry {
        ControlEntry::Blank => value.push(KIND_BLANK),
        ControlEntry::Membership(membership) => {
            value.push(KIND_MEMBERSHIP);
            encode_membership(membership, &mut value);
        }
    }
    let mut builder = BatchBuilder::with_capacity(value.len() + 32);
    builder.set_attributes(attributes::CONTROL);
    builder
        .push(0, Some(CONTROL_KEY), &value, &[])
        .expect("a control record fits any batch");
    builder.finish_vec()
}

/// Appends a membership in the layout shared by control batches and the
/// peer protocol (`crates/peer`), so both read and write it in one place.
pub fn encode_membership(membership: &PartitionMembership, out: &mut Vec<u8>) {
    let configs = membership.get_joint_config();
    assert!(
        (1..=CONFIGS_MAX).contains(&configs.len()),
        "membership has 1 or 2 configs"
    );
    out.push(configs.len() as u8);
    for config in configs {
        let count = u16::try_from(config.len()).expect("fewer than 65536 voters");
        out.extend_from_slice(&count.to_le_bytes());
        for id in config {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    let nodes: Vec<_> = membership.nodes().collect();
    let count = u16::try_from(nodes.len()).expect("fewer than 65536 nodes");
    out.extend_from_slice(&count.to_le_bytes());
    for (id, node) in nodes {
        out.extend_from_slice(&id.to_le_bytes());
        let addr = node.peer.as_bytes();
        let len = u16::try_from(addr.len()).expect("a peer address is shorter than 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(addr);
    }
}

/// Decodes a stored control batch (CRC and framing checked again).
pub fn decode(batch: Bytes) -> Result<ControlEntry, ControlError> {
    let batch = RecordBatch::from_bytes(batch)?;
    if !batch.header().is_control() || batch.header().record_count != 1 {
        return Err(ControlError::NotRaft);
    }
    let record = batch.records().next().ok_or(ControlError::NotRaft)?;
    if record.key != Some(CONTROL_KEY) {
        return Err(ControlError::NotRaft);
    }
    // A control record always has a value; a null one is not ours.
    decode_value(record.value.ok_or(ControlError::NotRaft)?)
}

fn decode_value(value: &[u8]) -> Result<ControlEntry, ControlError> {
    let mut input = Input(value);
    let entry = match input.u8()? {
        KIND_BLANK => ControlEntry::Blank,
        KIND_MEMBERSHIP => ControlEntry::Membership(decode_membership(&mut input)?),
        kind => return Err(ControlError::UnknownKind(kind)),
    };
    match input.0.len() {
        0 => Ok(entry),
        trailing => Err(ControlError::Trailing(trailing)),
    }
}

/// Decodes a membership from the front of `bytes` (the layout of
/// [`encode_membership`]); returns it and how many bytes it took.
pub fn decode_membership_prefix(
    bytes: &[u8],
) -> Result<(PartitionMembership, usize), ControlError> {
    let mut input = Input(bytes);
    let membership = decode_membership(&mut input)?;
    Ok((membership, bytes.len() - input.0.len()))
}

fn decode_membership(input: &mut Input<'_>) -> Result<PartitionMembership, ControlError> {
    let config_count = usize::from(input.u8()?);
    if !(1..=CONFIGS_MAX).contains(&config_count) {
        return Err(ControlError::Membership(format!("{config_count} configs")));
    }
    let mut configs = Vec::with_capacity(config_count);
    for _ in 0..config_count {
        let voters = input.u16()?;
        let config: BTreeSet<u64> = (0..voters).map(|_| input.u64()).collect::<Result<_, _>>()?;
        configs.push(config);
    }
    let node_count = input.u16()?;
    let mut nodes = BTreeMap::new();
    for _ in 0..node_count {
        let id = input.u64()?;
        let len = usize::from(input.u16()?);
        let addr = std::str::from_utf8(input.take(len)?)
            .map_err(|_| ControlError::Membership("address is not UTF-8".into()))?;
        nodes.insert(
            id,
            PeerAddr {
                peer: addr.to_owned(),
            },
        );
    }
    Membership::new(configs, nodes).map_err(|e| ControlError::Membership(e.to_string()))
}

/// A cursor over a control value; every read checks the length first.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], ControlError> {
        if self.0.len() < len {
            return Err(ControlError::Truncated);
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ControlError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ControlError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes(bytes.try_into().expect("2 bytes")))
    }

    fn u64(&mut self) -> Result<u64, ControlError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership() -> PartitionMembership {
        let configs = vec![BTreeSet::from([1, 2]), BTreeSet::from([2, 3])];
        let nodes = BTreeMap::from([
            (1, PeerAddr { peer: "a:1".into() }),
            (2, PeerAddr { peer: "b:2".into() }),
            (3, PeerAddr { peer: "c:3".into() }),
            (
                4,
                PeerAddr {
                    peer: String::new(),
                },
            ),
        ]);
        Membership::new(configs, nodes).unwrap()
    }

    fn value_of(batch: Vec<u8>) -> Vec<u8> {
        let batch = RecordBatch::from_bytes(Bytes::from(batch)).unwrap();
        let record = batch.records().next().unwrap();
        record.value.expect("control records have a value").to_vec()
    }

    /// Blank and joint-membership entries survive encode and decode, as
    /// one-record control batches keyed "raft".
    #[test]
    fn round_trip() {
        for entry in [ControlEntry::Blank, ControlEntry::Membership(membership())] {
            let batch = encode(&entry);
            let header = citystream_record::BatchHeader::decode(&batch).unwrap();
            assert!(header.is_control());
            assert_eq!(header.record_count, 1);
            assert_eq!(decode(Bytes::from(batch)).unwrap(), entry);
        }
    }

    /// The value has exactly the documented bytes.
    #[test]
    fn exact_bytes() {
        assert_eq!(value_of(encode(&ControlEntry::Blank)), [0]);
        let configs = vec![BTreeSet::from([7])];
        let nodes = BTreeMap::from([(7, PeerAddr { peer: "x".into() })]);
        let single = Membership::new(configs, nodes).unwrap();
        let mut expected = vec![1, 1, 1, 0];
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.extend_from_slice(&1u16.to_le_bytes());
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.extend_from_slice(&1u16.to_le_bytes());
        expected.push(b'x');
        assert_eq!(
            value_of(encode(&ControlEntry::Membership(single))),
            expected
        );
    }

    /// Every truncation of a membership value is refused, as are trailing
    /// bytes and unknown kinds.
    #[test]
    fn truncated_and_bad_values_are_refused() {
        let value = value_of(encode(&ControlEntry::Membership(membership())));
        for len in 0..value.len() {
            assert!(decode_value(&value[..len]).is_err(), "len {len}");
        }
        let mut long = value.clone();
        long.push(0);
        assert!(matches!(
            decode_value(&long),
            Err(ControlError::Trailing(1))
        ));
        assert!(matches!(
            decode_value(&[9]),
            Err(ControlError::UnknownKind(9))
        ));
    }

    /// A data batch is not mistaken for a control batch.
    #[test]
    fn data_batch_is_not_control() {
        let mut builder = BatchBuilder::new();
        builder.push(5, Some(CONTROL_KEY), &[0], &[]).unwrap();
        assert!(matches!(
            decode(builder.finish()),
            Err(ControlError::NotRaft)
        ));
    }
}
