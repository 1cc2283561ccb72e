//! Reading Raft entries back from the partition log: for replication to
//! followers, and for the state-machine worker, which applies committed
//! entries as read through this reader.
//!
//! A data batch becomes `Normal(BatchData)` without copying: its bytes are
//! a slice of the log's read buffer, header included (offset, term and
//! Raft index as the log stamped them). A control batch is decoded back to
//! `Blank` or `Membership`. The log checks every batch's CRC on read.
//!
//! This module does not write; [`crate::log_storage`] does. There is no tail
//! cache yet (decision 0005 §1 proposes one): every read goes to the log.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;
use citystream_log::{BatchHeader, Offset, PartitionLog};
use citystream_record::BATCH_HEADER_LEN;
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{Entry, EntryPayload, LogId, OptionalSend, RaftLogReader};
use parking_lot::{Mutex, RwLock};

use crate::control::{self, ControlEntry};
use crate::raft_state::RaftStateFile;
use crate::types::{BatchData, Tc, raft_index, stored_index};

/// The partition log, shared between Raft and the broker's fetch path.
pub type SharedLog = Arc<RwLock<PartitionLog>>;

/// Bytes asked of the log per read while walking a range.
const READ_CHUNK_BYTES: usize = 1024 * 1024;
/// [`RaftLogReader::limited_get_log_entries`] stops once it holds this many
/// bytes (at least one entry is returned), so one AppendEntries stays small.
pub const LIMITED_READ_BYTES: usize = 1024 * 1024;

/// Reads entries and the vote; cheap to clone, shares the storage's state.
#[derive(Clone)]
pub struct PartitionLogReader {
    pub(crate) log: SharedLog,
    pub(crate) state: Arc<Mutex<RaftStateFile>>,
}

impl RaftLogReader<Tc> for PartitionLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<Tc>>, io::Error> {
        let (start, end) = index_bounds(&range);
        read_entries(&self.log.read(), start, end, usize::MAX)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<Tc>>, io::Error> {
        Ok(self.state.lock().state().vote)
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<EntryOf<Tc>>, io::Error> {
        read_entries(&self.log.read(), start, end, LIMITED_READ_BYTES)
    }
}

/// `[start, end)` in openraft indexes.
fn index_bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i.saturating_add(1),
        Bound::Excluded(&i) => i,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

/// The entries with openraft indexes in `[start, end)` that the log still
/// serves, in order, stopping early once `bytes_max` is reached (after at
/// least one entry). Entries below the log's start are skipped, as purged.
pub(crate) fn read_entries(
    log: &PartitionLog,
    start: u64,
    end: u64,
    bytes_max: usize,
) -> io::Result<Vec<EntryOf<Tc>>> {
    let Some(last) = raft_index(log.last_raft_index()) else {
        return Ok(Vec::new());
    };
    let end = end.min(last.saturating_add(1));
    if start >= end {
        return Ok(Vec::new());
    }
    let Some(mut offset) = first_offset(log, start)? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    let mut bytes_total = 0usize;
    // Ends: each round moves `offset` past at least one batch, towards the
    // log end; the log returns at least one whole batch per read.
    while offset < log.next_offset().0 {
        let read = log
            .read(Offset(offset), READ_CHUNK_BYTES)
            .map_err(io::Error::other)?;
        if read.bytes.is_empty() {
            break;
        }
        for batch in split_batches(read.bytes) {
            let (header, bytes) = batch?;
            offset = header.next_offset();
            let index = index_of(&header)?;
            if index < start {
                continue;
            }
            if index >= end {
                return Ok(entries);
            }
            if header.is_compacted() {
                // Compaction only rewrites at or below the purge point,
                // which openraft never reads (decision 0017 §5).
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the entry at Raft index {index} was rewritten by compaction; \
                         it is below the purge point and cannot be replicated"
                    ),
                ));
            }
            bytes_total = bytes_total.saturating_add(bytes.len());
            entries.push(entry_from_batch(&header, bytes)?);
            if bytes_total >= bytes_max {
                return Ok(entries);
            }
        }
    }
    Ok(entries)
}

/// Where to start reading for openraft index `start`: its batch, or the
/// log's start if that batch is purged; `None` if it is past the end.
fn first_offset(log: &PartitionLog, start: u64) -> io::Result<Option<u64>> {
    let stored = stored_index(start);
    match log.locate_raft_index(stored).map_err(io::Error::other)? {
        Some(header) => Ok(Some(header.base_offset)),
        None if stored <= log.last_raft_index() => Ok(Some(log.start_offset().0)),
        None => Ok(None),
    }
}

/// Splits whole batches (as the log returns them, CRC already checked)
/// without copying.
fn split_batches(mut bytes: Bytes) -> impl Iterator<Item = io::Result<(BatchHeader, Bytes)>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let header = match BatchHeader::decode(&bytes) {
            Ok(header) => header,
            Err(e) => {
                bytes.clear();
                return Some(Err(invalid_data(format!("bad batch from the log: {e}"))));
            }
        };
        let len = header.batch_len as usize;
        if len < BATCH_HEADER_LEN || len > bytes.len() {
            bytes.clear();
            return Some(Err(invalid_data("the log returned a partial batch".into())));
        }
        Some(Ok((header, bytes.split_to(len))))
    })
}

/// The openraft log id a stored batch carries.
pub(crate) fn log_id_of(header: &BatchHeader) -> io::Result<LogIdOf<Tc>> {
    Ok(LogId::new_term_index(header.term, index_of(header)?))
}

fn index_of(header: &BatchHeader) -> io::Result<u64> {
    raft_index(header.raft_index).ok_or_else(|| {
        invalid_data(format!(
            "batch at offset {} has no Raft index",
            header.base_offset
        ))
    })
}

/// The Raft entry a stored batch holds.
pub(crate) fn entry_from_batch(header: &BatchHeader, bytes: Bytes) -> io::Result<EntryOf<Tc>> {
    let log_id = log_id_of(header)?;
    let payload = if header.is_control() {
        match control::decode(bytes).map_err(|e| invalid_data(e.to_string()))? {
            ControlEntry::Blank => EntryPayload::Blank,
            ControlEntry::Membership(membership) => EntryPayload::Membership(membership),
        }
    } else {
        EntryPayload::Normal(BatchData::new(bytes))
    };
    Ok(Entry { log_id, payload })
}

pub(crate) fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Range bounds of every shape map to a half-open index range.
    #[test]
    fn bounds() {
        assert_eq!(index_bounds(&(3..7)), (3, 7));
        assert_eq!(index_bounds(&(3..=7)), (3, 8));
        assert_eq!(index_bounds(&(..)), (0, u64::MAX));
        assert_eq!(index_bounds(&(5..)), (5, u64::MAX));
        let excluded = (Bound::Excluded(2), Bound::Unbounded);
        assert_eq!(index_bounds(&excluded), (3, u64::MAX));
    }
}
