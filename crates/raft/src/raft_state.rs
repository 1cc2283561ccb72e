//! The `raft-state` file of a partition group: the vote and the last purged
//! log id, the two things Raft must remember that the log's batches do not
//! hold. It is replaced whole with [`Storage::write_atomic`] (temp file,
//! fsync, rename; the memory backend treats it as durable at once), so it is
//! the old or the new value, never torn.
//!
//! ```text
//!  0       1       2           8            16            24           32            40        44
//!  +-------+-------+-----------+------------+-------------+------------+-------------+---------+
//!  |format |flags  |reserved=0 |vote_term   |voted_for    |purged_term |purged_index |crc32c   |
//!  |u8 = 1 |u8     |6 bytes    |u64         |u64          |u64         |u64 (openraft|u32 over |
//!  |       |       |           |            |             |            | index)      |[0, 40)  |
//!  +-------+-------+-----------+------------+-------------+------------+-------------+---------+
//! flags: bit 0 vote present, bit 1 vote committed, bit 2 last purged present
//! ```
//! Absent fields are written as zeros. All integers little-endian.

use std::io;

use citystream_log::Storage;
use citystream_record::crc32c;
use openraft::impls::leader_id_std::LeaderId;
use openraft::type_config::alias::{LogIdOf, VoteOf};
use openraft::{LogId, Vote};

use crate::types::Tc;

/// Name of the file in the group's storage.
pub const RAFT_STATE_FILE: &str = "raft-state";
const FORMAT: u8 = 1;
const LEN: usize = 44;
const CRC_AT: usize = 40;
const HAS_VOTE: u8 = 1 << 0;
const VOTE_COMMITTED: u8 = 1 << 1;
const HAS_PURGED: u8 = 1 << 2;
const KNOWN_FLAGS: u8 = HAS_VOTE | VOTE_COMMITTED | HAS_PURGED;

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftState {
    pub vote: Option<VoteOf<Tc>>,
    pub last_purged: Option<LogIdOf<Tc>>,
}

impl RaftState {
    fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0] = FORMAT;
        let mut flags = 0;
        if let Some(vote) = &self.vote {
            flags |= HAS_VOTE;
            if vote.committed {
                flags |= VOTE_COMMITTED;
            }
            out[8..16].copy_from_slice(&vote.leader_id.term.to_le_bytes());
            out[16..24].copy_from_slice(&vote.leader_id.voted_for.to_le_bytes());
        }
        if let Some(purged) = &self.last_purged {
            flags |= HAS_PURGED;
            out[24..32].copy_from_slice(&purged.leader_id.term.to_le_bytes());
            out[32..40].copy_from_slice(&purged.index.to_le_bytes());
        }
        out[1] = flags;
        let crc = crc32c(&out[..CRC_AT]);
        out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<RaftState> {
        if bytes.len() != LEN || bytes[0] != FORMAT || bytes[1] & !KNOWN_FLAGS != 0 {
            return None;
        }
        if bytes[2..8].iter().any(|&b| b != 0) {
            return None;
        }
        let crc = u32::from_le_bytes(bytes[CRC_AT..].try_into().expect("4 bytes"));
        if crc != crc32c(&bytes[..CRC_AT]) {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let flags = bytes[1];
        let vote = (flags & HAS_VOTE != 0).then(|| Vote {
            leader_id: LeaderId {
                term: u64_at(8),
                voted_for: u64_at(16),
            },
            committed: flags & VOTE_COMMITTED != 0,
        });
        let last_purged =
            (flags & HAS_PURGED != 0).then(|| LogId::new_term_index(u64_at(24), u64_at(32)));
        Some(RaftState { vote, last_purged })
    }
}

/// Reads the stored state; the default if the file was never written. A
/// damaged file is an error: guessing could let this node vote twice.
pub fn read(storage: &dyn Storage) -> io::Result<RaftState> {
    match storage.read_whole(RAFT_STATE_FILE)? {
        None => Ok(RaftState::default()),
        Some(bytes) => RaftState::decode(&bytes).ok_or_else(|| {
            let path = storage.location(RAFT_STATE_FILE);
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: bad format, length or CRC", path.display()),
            )
        }),
    }
}

/// Replaces the stored state atomically and durably.
pub fn write(storage: &dyn Storage, state: &RaftState) -> io::Result<()> {
    storage.write_atomic(RAFT_STATE_FILE, &state.encode())
}

#[cfg(test)]
mod tests {
    use citystream_log::MemoryStorage;

    use super::*;

    fn full() -> RaftState {
        RaftState {
            vote: Some(Vote {
                leader_id: LeaderId {
                    term: 5,
                    voted_for: 3,
                },
                committed: true,
            }),
            last_purged: Some(LogId::new_term_index(4, 99)),
        }
    }

    /// Empty, partial and full states round-trip through the file.
    #[test]
    fn round_trip() {
        let storage = MemoryStorage::new();
        assert_eq!(read(&storage).unwrap(), RaftState::default());
        let partial = RaftState {
            vote: Some(Vote::new(2, 1)),
            last_purged: None,
        };
        for state in [RaftState::default(), partial, full()] {
            write(&storage, &state).unwrap();
            assert_eq!(read(&storage).unwrap(), state);
        }
    }

    /// The file has exactly the documented bytes.
    #[test]
    fn exact_bytes() {
        let mut expected = vec![
            FORMAT,
            HAS_VOTE | VOTE_COMMITTED | HAS_PURGED,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        for field in [5u64, 3, 4, 99] {
            expected.extend_from_slice(&field.to_le_bytes());
        }
        expected.extend_from_slice(&crc32c(&expected).to_le_bytes());
        assert_eq!(full().encode()[..], expected[..]);
    }

    /// Any flipped byte, unknown flag or wrong length is refused.
    #[test]
    fn damage_is_refused() {
        let bytes = full().encode();
        for i in 0..LEN {
            let mut bad = bytes;
            bad[i] ^= 0x40;
            assert_eq!(RaftState::decode(&bad), None, "byte {i}");
        }
        assert_eq!(RaftState::decode(&bytes[..LEN - 1]), None);
        let storage = MemoryStorage::new();
        storage.set_file_bytes(RAFT_STATE_FILE, bytes[..10].to_vec());
        assert_eq!(
            read(&storage).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
