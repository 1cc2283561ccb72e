//! The `snapshot` file of a partition group: the group's current snapshot,
//! which is only a point in the log (decision 0005 §2). It must outlive a
//! restart: once the log before the point is purged, openraft cannot
//! rebuild the state machine from the log, and a follower that needs the
//! purged entries is sent this snapshot. Replaced whole with
//! [`Storage::write_atomic`], like `raft-state`.
//!
//! ```text
//!  0       1       2           8            16           24            32
//!  +-------+-------+-----------+------------+------------+-------------+
//!  |format |flags  |reserved=0 |last_term   |last_index  |next_offset  |
//!  |u8 = 1 |u8     |6 bytes    |u64         |u64 (openraft index)      |
//!  +-------+-------+-----------+------------+------------+-------------+
//!  32               40                48
//!  +----------------+-----------------+-------------------+----------+
//!  |membership_term |membership_index |membership (layout |crc32c u32|
//!  |u64             |u64              | of control.rs)    |over all  |
//!  +----------------+-----------------+-------------------+ before   +
//! flags: bit 0 last log id present, bit 1 membership present (its log id
//! and bytes are absent otherwise), bit 2 the snapshot carries its prefix
//! (a compacted topic, decision 0017 §5: the log below `next_offset` was
//! restored with it and is kept, not purged; older binaries refuse the
//! bit)
//! ```
//! Absent fixed fields are zeros. All integers little-endian.

use std::io;

use citystream_log::Storage;
use citystream_record::crc32c;
use openraft::type_config::alias::SnapshotOf;
use openraft::{LogId, Snapshot, SnapshotMeta, StoredMembership};

use crate::control::{decode_membership_prefix, encode_membership};
use crate::state_machine::PartitionSnapshot;
use crate::types::Tc;

/// Name of the file in the group's storage.
pub const SNAPSHOT_FILE: &str = "snapshot";
const FORMAT: u8 = 1;
const FIXED_LEN: usize = 48;
const HAS_LAST: u8 = 1 << 0;
const HAS_MEMBERSHIP: u8 = 1 << 1;
const CARRIES_PREFIX: u8 = 1 << 2;
const KNOWN_FLAGS: u8 = HAS_LAST | HAS_MEMBERSHIP | CARRIES_PREFIX;

/// A partition group's snapshot as openraft handles it.
pub type StoredSnapshot = SnapshotOf<Tc, PartitionSnapshot>;

fn encode(snapshot: &StoredSnapshot) -> Vec<u8> {
    let mut out = vec![0u8; FIXED_LEN];
    out[0] = FORMAT;
    let mut flags = 0;
    let meta = &snapshot.meta;
    if let Some(last) = &meta.last_log_id {
        flags |= HAS_LAST;
        out[8..16].copy_from_slice(&last.leader_id.term.to_le_bytes());
        out[16..24].copy_from_slice(&last.index.to_le_bytes());
    }
    out[24..32].copy_from_slice(&snapshot.snapshot.next_offset.to_le_bytes());
    if snapshot.snapshot.carries_prefix {
        flags |= CARRIES_PREFIX;
    }
    if let Some(at) = meta.last_membership.log_id() {
        flags |= HAS_MEMBERSHIP;
        out[32..40].copy_from_slice(&at.leader_id.term.to_le_bytes());
        out[40..48].copy_from_slice(&at.index.to_le_bytes());
        encode_membership(meta.last_membership.membership(), &mut out);
    }
    out[1] = flags;
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<StoredSnapshot> {
    let body_len = bytes.len().checked_sub(4)?;
    if body_len < FIXED_LEN || bytes[0] != FORMAT || bytes[1] & !KNOWN_FLAGS != 0 {
        return None;
    }
    let (body, crc) = bytes.split_at(body_len);
    if u32::from_le_bytes(crc.try_into().ok()?) != crc32c(body) || body[2..8] != [0; 6] {
        return None;
    }
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let flags = body[1];
    let last_log_id = (flags & HAS_LAST != 0).then(|| LogId::new_term_index(u64_at(8), u64_at(16)));
    let last_membership = if flags & HAS_MEMBERSHIP != 0 {
        let (membership, used) = decode_membership_prefix(&body[FIXED_LEN..]).ok()?;
        if FIXED_LEN + used != body.len() {
            return None;
        }
        let at = LogId::new_term_index(u64_at(32), u64_at(40));
        StoredMembership::new(Some(at), membership)
    } else {
        if body.len() != FIXED_LEN {
            return None;
        }
        StoredMembership::default()
    };
    Some(Snapshot {
        meta: SnapshotMeta {
            last_log_id,
            last_membership,
        },
        snapshot: PartitionSnapshot {
            next_offset: u64_at(24),
            carries_prefix: flags & CARRIES_PREFIX != 0,
            source: None,
        },
    })
}

/// The stored snapshot; `None` if none was ever written. A damaged file is
/// an error: without it the purged prefix cannot be accounted for.
pub fn read(storage: &dyn Storage) -> io::Result<Option<StoredSnapshot>> {
    match storage.read_whole(SNAPSHOT_FILE)? {
        None => Ok(None),
        Some(bytes) => decode(&bytes).map(Some).ok_or_else(|| {
            let path = storage.location(SNAPSHOT_FILE);
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: bad format, length or CRC", path.display()),
            )
        }),
    }
}

/// Replaces the stored snapshot atomically and durably.
pub fn write(storage: &dyn Storage, snapshot: &StoredSnapshot) -> io::Result<()> {
    storage.write_atomic(SNAPSHOT_FILE, &encode(snapshot))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use citystream_log::MemoryStorage;
    use openraft::Membership;
    use openraft::type_config::alias::SnapshotMetaOf;

    use super::*;
    use crate::types::PeerAddr;

    fn snapshot() -> StoredSnapshot {
        let nodes: BTreeMap<u64, PeerAddr> = (1..=3)
            .map(|id| {
                let peer = format!("10.0.0.{id}:9400");
                (id, PeerAddr { peer })
            })
            .collect();
        let voters = vec![BTreeSet::from([1, 2, 3])];
        let membership = Membership::new(voters, nodes).unwrap();
        Snapshot {
            meta: SnapshotMeta {
                last_log_id: Some(LogId::new_term_index(4, 1234)),
                last_membership: StoredMembership::new(
                    Some(LogId::new_term_index(1, 0)),
                    membership,
                ),
            },
            snapshot: PartitionSnapshot {
                next_offset: 98_765,
                carries_prefix: true,
                source: None,
            },
        }
    }

    /// Snapshots compared by what they hold (openraft's type has no `==`).
    fn parts(snapshot: Option<StoredSnapshot>) -> Option<(SnapshotMetaOf<Tc>, PartitionSnapshot)> {
        snapshot.map(|s| (s.meta, s.snapshot))
    }

    #[test]
    fn round_trips_through_storage() {
        let storage = MemoryStorage::new();
        assert!(read(&storage).unwrap().is_none());
        let written = snapshot();
        write(&storage, &written).unwrap();
        assert_eq!(parts(read(&storage).unwrap()), parts(Some(written)));
        let empty = Snapshot {
            meta: SnapshotMeta::default(),
            snapshot: PartitionSnapshot::default(),
        };
        write(&storage, &empty).unwrap();
        assert_eq!(parts(read(&storage).unwrap()), parts(Some(empty)));
    }

    /// Every flipped byte and every truncation is refused, never misread.
    #[test]
    fn damage_is_an_error() {
        let bytes = encode(&snapshot());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            assert!(decode(&damaged).is_none(), "byte {at} flipped");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_none(), "cut to {len} bytes");
        }
        let storage = MemoryStorage::new();
        storage.write_atomic(SNAPSHOT_FILE, &bytes[..10]).unwrap();
        let error = read(&storage).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
