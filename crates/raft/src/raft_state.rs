//! The `raft-state` file of a partition group: what Raft must remember that
//! the log's batches do not hold, namely the vote, the last purged log id
//! and the committed log id. The file is a header followed by committed
//! records:
//!
//! * The **header** holds all three. It is only ever replaced whole, with
//!   [`Storage::write_atomic`] (temp file, fsync, rename; the memory
//!   backend treats it as durable at once), so it is the old or the new
//!   header, never torn. Saving a vote or a purge rewrites it and carries
//!   the committed id along.
//! * Each later advance of the committed id is one **record** appended
//!   without fsync ([`RaftStateFile::save_committed`]). openraft saves the
//!   committed id once per commit round, on the produce path, so an
//!   advance costs one 20-byte `write`, never an fsync. An advance to a
//!   value at or below the stored one writes nothing. After
//!   [`COMMITTED_RECORDS_MAX`] records the next advance rewrites the header
//!   instead (one fsync'd rewrite per that many advances), which bounds the
//!   file at 20,540 bytes.
//!
//! What survives a crash:
//!
//! * **`kill -9`** (the process dies, the machine does not): everything.
//!   A record is in the page cache once `write` returned, and openraft
//!   applies an entry (so acknowledges it or lets a read see it) only after
//!   `save_committed` for it returned. A restarted node therefore re-applies
//!   exactly up to the last committed id it saved.
//! * **Power loss**: the vote and the last purged id (fsynced); the
//!   committed id as of the last header rewrite, at most
//!   [`COMMITTED_RECORDS_MAX`] advances behind, plus whichever records the
//!   OS had written back. A torn or zeroed record fails its CRC and is
//!   skipped; the next advance then rewrites the file.
//!
//! Why a stale committed id is safe: it is still an id that was committed,
//! so a restarted node re-applies less at start-up and learns the rest from
//! the leader, which is what every restart did before the id was stored. In
//! particular a leader that openraft restores in its own term may answer a
//! linearizable read from behind until its state machine catches up, so a
//! reader that must be safe against power loss still waits for
//! `Raft::wait_for_recovery`. A committed id *beyond* what the log holds
//! (its tail cut on open, unsynced entries lost under `FsyncPolicy::Never`)
//! is never handed to openraft: [`crate::PartitionRaftStorage`] checks the
//! id against the log when it opens.
//!
//! ```text
//! header, format 2 (60 bytes):
//!  0       1       2           8          16          24           32            40             48              56       60
//!  +-------+-------+-----------+----------+-----------+------------+-------------+--------------+---------------+--------+
//!  |format |flags  |reserved=0 |vote_term |voted_for  |purged_term |purged_index |committed_term|committed_index|crc32c  |
//!  |u8 = 2 |u8     |6 bytes    |u64       |u64        |u64         |u64          |u64           |u64            |u32 over|
//!  |       |       |           |          |           |            |             |              |               |[0, 56) |
//!  +-------+-------+-----------+----------+-----------+------------+-------------+--------------+---------------+--------+
//! flags: bit 0 vote present, bit 1 vote committed, bit 2 last purged
//! present, bit 3 committed present
//!
//! committed record (20 bytes each, from byte 60 on):
//!  0               8                16        20
//!  +---------------+----------------+---------+
//!  |committed_term |committed_index |crc32c   |
//!  |u64            |u64             |u32 over |
//!  |               |                |[0, 16)  |
//!  +---------------+----------------+---------+
//! ```
//! Indexes are openraft's. Absent fields are written as zeros. All integers
//! little-endian. The committed id is the highest of the header's and the
//! records' (it only ever grows). Format 1, written before the committed id
//! was stored, is the first 40 bytes of the header with `format = 1` and
//! no bit 3, then its crc32c over `[0, 40)` (44 bytes, no records). It
//! still opens, with no committed id; the first advance rewrites it as
//! format 2.

use std::io;
use std::sync::Arc;

use citystream_log::{Storage, StorageFile};
use citystream_record::crc32c;
use openraft::impls::leader_id_std::LeaderId;
use openraft::type_config::alias::{LogIdOf, VoteOf};
use openraft::{LogId, Vote};

use crate::types::Tc;

/// Name of the file in the group's storage.
pub const RAFT_STATE_FILE: &str = "raft-state";
/// Committed records appended after one header before the next advance
/// rewrites the header (with an fsync) instead.
pub const COMMITTED_RECORDS_MAX: usize = 1024;

const FORMAT_1: u8 = 1;
const FORMAT_1_LEN: usize = 44;
const FORMAT: u8 = 2;
const HEADER_LEN: usize = 60;
const RECORD_LEN: usize = 20;
const RECORD_CRC_AT: usize = 16;
const HAS_VOTE: u8 = 1 << 0;
const VOTE_COMMITTED: u8 = 1 << 1;
const HAS_PURGED: u8 = 1 << 2;
const HAS_COMMITTED: u8 = 1 << 3;
const FORMAT_1_FLAGS: u8 = HAS_VOTE | VOTE_COMMITTED | HAS_PURGED;
const KNOWN_FLAGS: u8 = FORMAT_1_FLAGS | HAS_COMMITTED;

/// What the file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftState {
    pub vote: Option<VoteOf<Tc>>,
    pub last_purged: Option<LogIdOf<Tc>>,
    /// The last committed log id saved (see the module doc for how stale
    /// it may be after a power loss).
    pub committed: Option<LogIdOf<Tc>>,
}

impl RaftState {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
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
            out[24..40].copy_from_slice(&encode_log_id(purged));
        }
        if let Some(committed) = &self.committed {
            flags |= HAS_COMMITTED;
            out[40..56].copy_from_slice(&encode_log_id(committed));
        }
        out[1] = flags;
        let crc = crc32c(&out[..HEADER_LEN - 4]);
        out[HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a whole header of either format; `None` if anything is off.
    fn decode(bytes: &[u8]) -> Option<RaftState> {
        let (len, known_flags) = match *bytes.first()? {
            FORMAT_1 => (FORMAT_1_LEN, FORMAT_1_FLAGS),
            FORMAT => (HEADER_LEN, KNOWN_FLAGS),
            _ => return None,
        };
        if bytes.len() != len || bytes[1] & !known_flags != 0 {
            return None;
        }
        if bytes[2..8].iter().any(|&b| b != 0) {
            return None;
        }
        let crc_at = len - 4;
        let crc = u32::from_le_bytes(bytes[crc_at..].try_into().expect("4 bytes"));
        if crc != crc32c(&bytes[..crc_at]) {
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
        let last_purged = (flags & HAS_PURGED != 0).then(|| decode_log_id(&bytes[24..40]));
        let committed = (flags & HAS_COMMITTED != 0).then(|| decode_log_id(&bytes[40..56]));
        Some(RaftState {
            vote,
            last_purged,
            committed,
        })
    }
}

/// Term then index, 16 bytes.
fn encode_log_id(id: &LogIdOf<Tc>) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&id.leader_id.term.to_le_bytes());
    out[8..].copy_from_slice(&id.index.to_le_bytes());
    out
}

fn decode_log_id(bytes: &[u8]) -> LogIdOf<Tc> {
    let term = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let index = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    LogId::new_term_index(term, index)
}

fn encode_record(committed: &LogIdOf<Tc>) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[..RECORD_CRC_AT].copy_from_slice(&encode_log_id(committed));
    let crc = crc32c(&out[..RECORD_CRC_AT]);
    out[RECORD_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_record(bytes: &[u8]) -> Option<LogIdOf<Tc>> {
    let crc = u32::from_le_bytes(bytes[RECORD_CRC_AT..].try_into().expect("4 bytes"));
    (crc == crc32c(&bytes[..RECORD_CRC_AT])).then(|| decode_log_id(bytes))
}

/// A file as read: its state, how many records follow the header, and
/// whether records may be appended to it as it is.
struct Parsed {
    state: RaftState,
    records: usize,
    appendable: bool,
}

/// Parses a whole file; `None` if its header is damaged. Damaged records
/// are skipped (the committed id falls back to the best intact one) and
/// make the file not appendable: a record after a partial one would be
/// misaligned.
fn parse(bytes: &[u8]) -> Option<Parsed> {
    if bytes.first() == Some(&FORMAT_1) {
        let state = RaftState::decode(bytes)?;
        return Some(Parsed {
            state,
            records: 0,
            appendable: false,
        });
    }
    let mut state = RaftState::decode(bytes.get(..HEADER_LEN)?)?;
    let records = bytes[HEADER_LEN..].chunks_exact(RECORD_LEN);
    let mut appendable = records.remainder().is_empty();
    let count = records.len();
    for record in records {
        match decode_record(record) {
            Some(id) => state.committed = state.committed.max(Some(id)),
            None => appendable = false,
        }
    }
    Some(Parsed {
        state,
        records: count,
        appendable,
    })
}

/// The `raft-state` file of one group: its current state, and the file
/// open for appending committed records.
pub(crate) struct RaftStateFile {
    storage: Arc<dyn Storage>,
    state: RaftState,
    /// The current file, to append records to; `None` when the next
    /// advance must rewrite the header instead (no file yet, a format 1
    /// file, a damaged record, a failed append).
    records_file: Option<Box<dyn StorageFile>>,
    /// Records after the header in the current file.
    records: usize,
}

impl RaftStateFile {
    /// The group's storage the file lives in (the `snapshot` file's too).
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

impl std::fmt::Debug for RaftStateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftStateFile")
            .field("state", &self.state)
            .field("records", &self.records)
            .finish()
    }
}

impl RaftStateFile {
    /// Reads the file from `storage`; the default state if it was never
    /// written. A damaged header is an error: guessing could let this node
    /// vote twice.
    pub(crate) fn open(storage: Arc<dyn Storage>) -> io::Result<RaftStateFile> {
        let Some(bytes) = storage.read_whole(RAFT_STATE_FILE)? else {
            return Ok(RaftStateFile {
                storage,
                state: RaftState::default(),
                records_file: None,
                records: 0,
            });
        };
        let parsed = parse(&bytes).ok_or_else(|| {
            let path = storage.location(RAFT_STATE_FILE);
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: bad format, length or CRC", path.display()),
            )
        })?;
        let records_file = match parsed.appendable {
            true => Some(storage.open(RAFT_STATE_FILE, false)?),
            false => None,
        };
        Ok(RaftStateFile {
            storage,
            state: parsed.state,
            records_file,
            records: parsed.records,
        })
    }

    pub(crate) fn state(&self) -> &RaftState {
        &self.state
    }

    /// Replaces the whole file with `state`, atomically and durably.
    pub(crate) fn replace(&mut self, state: RaftState) -> io::Result<()> {
        self.records_file = None;
        self.storage
            .write_atomic(RAFT_STATE_FILE, &state.encode())?;
        self.state = state;
        self.records = 0;
        // The rename left any earlier handle on the replaced file.
        self.records_file = Some(self.storage.open(RAFT_STATE_FILE, false)?);
        Ok(())
    }

    /// Stores `committed` if it is past the stored id: one record appended
    /// without fsync, or a header rewrite when the file takes no more
    /// records.
    pub(crate) fn save_committed(&mut self, committed: LogIdOf<Tc>) -> io::Result<()> {
        if Some(committed) <= self.state.committed {
            return Ok(());
        }
        let state = RaftState {
            committed: Some(committed),
            ..self.state
        };
        let Some(file) = self
            .records_file
            .as_mut()
            .filter(|_| self.records < COMMITTED_RECORDS_MAX)
        else {
            return self.replace(state);
        };
        if let Err(e) = file.append(&encode_record(&committed)) {
            // Part of the record may be written: rewrite next time.
            self.records_file = None;
            return Err(e);
        }
        self.records += 1;
        self.state = state;
        Ok(())
    }
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
            committed: Some(LogId::new_term_index(5, 120)),
        }
    }

    fn id(term: u64, index: u64) -> LogIdOf<Tc> {
        LogId::new_term_index(term, index)
    }

    fn open(storage: &MemoryStorage) -> io::Result<RaftStateFile> {
        RaftStateFile::open(Arc::new(storage.clone()))
    }

    fn file_len(storage: &MemoryStorage) -> usize {
        storage.file_bytes(RAFT_STATE_FILE).map_or(0, |b| b.len())
    }

    /// Empty, partial and full states round-trip through the file.
    #[test]
    fn round_trip() {
        let storage = MemoryStorage::new();
        assert_eq!(*open(&storage).unwrap().state(), RaftState::default());
        let partial = RaftState {
            vote: Some(Vote::new(2, 1)),
            ..RaftState::default()
        };
        for state in [RaftState::default(), partial, full()] {
            open(&storage).unwrap().replace(state).unwrap();
            assert_eq!(*open(&storage).unwrap().state(), state);
        }
    }

    /// The header and a record have exactly the documented bytes.
    #[test]
    fn exact_bytes() {
        let flags = HAS_VOTE | VOTE_COMMITTED | HAS_PURGED | HAS_COMMITTED;
        let mut expected = vec![FORMAT, flags, 0, 0, 0, 0, 0, 0];
        for field in [5u64, 3, 4, 99, 5, 120] {
            expected.extend_from_slice(&field.to_le_bytes());
        }
        expected.extend_from_slice(&crc32c(&expected).to_le_bytes());
        assert_eq!(full().encode()[..], expected[..]);

        let mut record = Vec::new();
        record.extend_from_slice(&7u64.to_le_bytes());
        record.extend_from_slice(&300u64.to_le_bytes());
        record.extend_from_slice(&crc32c(&record).to_le_bytes());
        assert_eq!(encode_record(&id(7, 300))[..], record[..]);
    }

    /// A format 1 file (before the committed id was stored) opens with no
    /// committed id, and the first advance rewrites it as format 2.
    #[test]
    fn format_1_opens_and_is_upgraded() {
        let mut v1 = vec![FORMAT_1, HAS_VOTE | HAS_PURGED, 0, 0, 0, 0, 0, 0];
        for field in [5u64, 3, 4, 99] {
            v1.extend_from_slice(&field.to_le_bytes());
        }
        v1.extend_from_slice(&crc32c(&v1).to_le_bytes());
        let storage = MemoryStorage::new();
        storage.set_file_bytes(RAFT_STATE_FILE, v1);
        let mut file = open(&storage).unwrap();
        let expected = RaftState {
            vote: Some(Vote::new(5, 3)),
            last_purged: Some(id(4, 99)),
            committed: None,
        };
        assert_eq!(*file.state(), expected);

        file.save_committed(id(5, 100)).unwrap();
        assert_eq!(file_len(&storage), HEADER_LEN, "rewritten, not appended");
        let reopened = open(&storage).unwrap();
        assert_eq!(reopened.state().committed, Some(id(5, 100)));
        assert_eq!(reopened.state().vote, expected.vote);
    }

    /// Any flipped header byte, unknown flag or wrong header length is
    /// refused, in either format.
    #[test]
    fn damaged_header_is_refused() {
        let bytes = full().encode();
        for i in 0..HEADER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x40;
            assert!(parse(&bad).is_none(), "byte {i}");
        }
        let mut unknown_flag = bytes;
        unknown_flag[1] |= 1 << 4;
        assert!(parse(&unknown_flag).is_none());
        for len in [0, 10, HEADER_LEN - 1, FORMAT_1_LEN] {
            assert!(parse(&bytes[..len]).is_none(), "length {len}");
        }
        let mut v1 = bytes[..FORMAT_1_LEN].to_vec();
        v1[0] = FORMAT_1;
        v1.push(0);
        assert!(parse(&v1).is_none(), "format 1 with a trailing byte");

        let storage = MemoryStorage::new();
        storage.set_file_bytes(RAFT_STATE_FILE, &bytes[..10]);
        assert_eq!(
            open(&storage).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    /// Advances are appended as records and the highest one is read back;
    /// an advance to a value already stored writes nothing.
    #[test]
    fn advances_append_records() {
        let storage = MemoryStorage::new();
        let mut file = open(&storage).unwrap();
        file.replace(full()).unwrap();
        file.save_committed(id(5, 121)).unwrap();
        file.save_committed(id(6, 130)).unwrap();
        assert_eq!(file_len(&storage), HEADER_LEN + 2 * RECORD_LEN);
        file.save_committed(id(6, 130)).unwrap();
        file.save_committed(id(5, 125)).unwrap();
        assert_eq!(file_len(&storage), HEADER_LEN + 2 * RECORD_LEN);

        let mut reopened = open(&storage).unwrap();
        assert_eq!(reopened.state().committed, Some(id(6, 130)));
        assert_eq!(reopened.state().vote, full().vote);
        reopened.save_committed(id(6, 131)).unwrap();
        assert_eq!(file_len(&storage), HEADER_LEN + 3 * RECORD_LEN);
        let vote = Vote::new(7, 1);
        let state = RaftState {
            vote: Some(vote),
            ..*reopened.state()
        };
        reopened.replace(state).unwrap();
        assert_eq!(file_len(&storage), HEADER_LEN, "records folded in");
        assert_eq!(open(&storage).unwrap().state().committed, Some(id(6, 131)));
    }

    /// A flipped byte in any record, or a partial record at the end, only
    /// loses that record: the committed id falls back to the best intact
    /// one, and the next advance rewrites the file clean.
    #[test]
    fn damaged_records_are_skipped() {
        let storage = MemoryStorage::new();
        let mut file = open(&storage).unwrap();
        file.replace(full()).unwrap();
        for index in 121..=123 {
            file.save_committed(id(5, index)).unwrap();
        }
        let bytes = storage.file_bytes(RAFT_STATE_FILE).unwrap();
        for i in HEADER_LEN..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            let parsed = parse(&bad).expect("the header is intact");
            let record = (i - HEADER_LEN) / RECORD_LEN;
            let expected = if record == 2 { 122 } else { 123 };
            assert_eq!(parsed.state.committed, Some(id(5, expected)), "byte {i}");
            assert!(!parsed.appendable, "byte {i}");
        }
        let torn = &bytes[..bytes.len() - 7];
        storage.set_file_bytes(RAFT_STATE_FILE, torn);
        let mut file = open(&storage).unwrap();
        assert_eq!(file.state().committed, Some(id(5, 122)));
        file.save_committed(id(5, 124)).unwrap();
        assert_eq!(file_len(&storage), HEADER_LEN, "rewritten, not appended");
        assert_eq!(open(&storage).unwrap().state().committed, Some(id(5, 124)));
    }

    /// The file stays bounded: after `COMMITTED_RECORDS_MAX` records the
    /// next advance rewrites the header.
    #[test]
    fn records_are_bounded() {
        let storage = MemoryStorage::new();
        let mut file = open(&storage).unwrap();
        // The first advance writes the header, the next ones fill the
        // records, one more rewrites the header, the last is a record.
        let advances = COMMITTED_RECORDS_MAX as u64 + 3;
        for index in 0..advances {
            file.save_committed(id(1, index)).unwrap();
            assert!(file_len(&storage) <= HEADER_LEN + COMMITTED_RECORDS_MAX * RECORD_LEN);
        }
        assert_eq!(file_len(&storage), HEADER_LEN + RECORD_LEN);
        assert_eq!(
            open(&storage).unwrap().state().committed,
            Some(id(1, advances - 1))
        );
    }

    /// A process crash keeps every record (they are in the page cache); a
    /// power loss keeps the header: the vote, the purged id and the
    /// committed id of the last rewrite.
    #[test]
    fn kill_keeps_records_power_loss_keeps_the_header() {
        let storage = MemoryStorage::new();
        let mut file = open(&storage).unwrap();
        file.replace(full()).unwrap();
        file.save_committed(id(5, 130)).unwrap();
        drop(file);
        assert_eq!(open(&storage).unwrap().state().committed, Some(id(5, 130)));
        storage.crash();
        assert_eq!(*open(&storage).unwrap().state(), full());
    }
}
