//! Walking the batches of one segment file in order: header by header (to
//! locate an offset or a timestamp) or with every batch checked (recovery).
//!
//! Reads go through a [`ChunkReader`] so that a walk over small batches costs
//! one read per chunk, not one per header. This module knows the batch
//! header and the storage file, nothing about indexes or the log.

use std::io;
use std::ops::ControlFlow;

use citystream_record::{BATCH_HEADER_LEN, BatchError, BatchHeader};

use crate::storage::StorageFile;

/// Bytes read at a time when walking headers only.
pub(crate) const HEADER_SCAN_CHUNK_BYTES: usize = 4096;
/// Bytes read at a time when checking every batch (recovery).
pub(crate) const VERIFY_SCAN_CHUNK_BYTES: usize = 1 << 20;

/// Serves byte ranges of a file from a buffer refilled one chunk at a time.
pub(crate) struct ChunkReader<'a> {
    file: &'a dyn StorageFile,
    end: u64,
    chunk_bytes: usize,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> ChunkReader<'a> {
    /// Reads `file` up to `end` (bytes past it are never returned).
    pub fn new(file: &'a dyn StorageFile, end: u64, chunk_bytes: usize) -> Self {
        ChunkReader {
            file,
            end,
            chunk_bytes,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// The `len` bytes at `position`, or `None` if they run past the end.
    pub fn bytes_at(&mut self, position: u64, len: usize) -> io::Result<Option<&[u8]>> {
        let Some(stop) = position.checked_add(len as u64).filter(|s| *s <= self.end) else {
            return Ok(None);
        };
        let buf_end = self.buf_start + self.buf.len() as u64;
        if position < self.buf_start || stop > buf_end {
            let want = (len.max(self.chunk_bytes) as u64).min(self.end - position);
            self.buf.resize(want as usize, 0);
            self.file.read_at(position, &mut self.buf)?;
            self.buf_start = position;
        }
        let at = (position - self.buf_start) as usize;
        Ok(Some(&self.buf[at..at + len]))
    }
}

/// Why a header walk could not go on.
#[derive(Debug)]
pub(crate) enum WalkError {
    Io(io::Error),
    /// The bytes at `position` are not a batch header.
    BadHeader {
        position: u64,
        error: BatchError,
    },
    /// The batch at `position` runs past the end of the segment.
    PastEnd {
        position: u64,
    },
}

impl From<io::Error> for WalkError {
    fn from(error: io::Error) -> Self {
        WalkError::Io(error)
    }
}

/// Visits `(position, header)` of every batch in `[from, end)` until `visit`
/// breaks. Does not check CRCs (the bytes were checked when written or
/// recovered). Each step advances by at least one header, so it ends.
pub(crate) fn walk_headers(
    file: &dyn StorageFile,
    from: u64,
    end: u64,
    mut visit: impl FnMut(u64, &BatchHeader) -> ControlFlow<()>,
) -> Result<(), WalkError> {
    let mut reader = ChunkReader::new(file, end, HEADER_SCAN_CHUNK_BYTES);
    let mut position = from;
    while position < end {
        let bytes = reader
            .bytes_at(position, BATCH_HEADER_LEN)?
            .ok_or(WalkError::PastEnd { position })?;
        let header =
            BatchHeader::decode(bytes).map_err(|error| WalkError::BadHeader { position, error })?;
        let next = position + u64::from(header.batch_len);
        if next > end {
            return Err(WalkError::PastEnd { position });
        }
        if visit(position, &header).is_break() {
            return Ok(());
        }
        position = next;
    }
    Ok(())
}

/// What a checked scan must find: the next batch's base offset, its Raft
/// index (`None`: any but 0, for the first batch of a log whose
/// predecessor is unknown) and the lowest term it may carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub base_offset: u64,
    pub raft_index: Option<u64>,
    pub term_min: u64,
}

impl Expected {
    /// What must follow the good batch `header`.
    pub fn after(header: &BatchHeader) -> Expected {
        Expected {
            base_offset: header.next_offset(),
            // A wrapped 0 is never a valid index, so nothing follows u64::MAX.
            raft_index: Some(header.raft_index.wrapping_add(1)),
            term_min: header.term,
        }
    }
}

/// Where a checked scan stopped, and why if before `end`.
#[derive(Debug)]
pub(crate) struct CheckedScan {
    pub end_position: u64,
    pub stop_reason: Option<String>,
}

/// Walks `[from, end)` checking every batch: header, length, CRC, non-empty,
/// dense offsets, dense Raft indexes and non-decreasing terms. Stops at the
/// first bad batch; `visit` sees only good ones.
pub(crate) fn scan_checked(
    file: &dyn StorageFile,
    from: u64,
    end: u64,
    mut expected: Expected,
    mut visit: impl FnMut(u64, &BatchHeader),
) -> io::Result<CheckedScan> {
    let mut reader = ChunkReader::new(file, end, VERIFY_SCAN_CHUNK_BYTES);
    let mut position = from;
    while position < end {
        match check_batch_at(&mut reader, position, expected)? {
            Ok(header) => {
                visit(position, &header);
                expected = Expected::after(&header);
                position += u64::from(header.batch_len);
            }
            Err(reason) => {
                return Ok(CheckedScan {
                    end_position: position,
                    stop_reason: Some(format!("at byte {position}: {reason}")),
                });
            }
        }
    }
    Ok(CheckedScan {
        end_position: position,
        stop_reason: None,
    })
}

/// The header of the batch at `position` if the whole batch is sound.
fn check_batch_at(
    reader: &mut ChunkReader<'_>,
    position: u64,
    expected: Expected,
) -> io::Result<Result<BatchHeader, String>> {
    let Some(head) = reader.bytes_at(position, BATCH_HEADER_LEN)? else {
        return Ok(Err("partial batch header".to_owned()));
    };
    let header = match BatchHeader::decode(head) {
        Ok(header) => header,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let Some(batch) = reader.bytes_at(position, header.batch_len as usize)? else {
        return Ok(Err(format!("partial batch of {} bytes", header.batch_len)));
    };
    if let Err(error) = header.verify_crc(batch) {
        return Ok(Err(error.to_string()));
    }
    Ok(match out_of_sequence(&header, expected) {
        Some(reason) => Err(reason),
        None => Ok(header),
    })
}

/// Whether `header`'s Raft index may follow the index `previous`:
/// the next index, or any larger one for a compaction `GAP` batch, which
/// stands for every entry after the previous batch up to its own
/// (decision 0017 §3).
pub(crate) fn raft_index_follows(header: &BatchHeader, previous: u64) -> bool {
    let next = previous.wrapping_add(1);
    header.raft_index == next || (header.is_gap() && next != 0 && header.raft_index > next)
}

/// Why a sound batch cannot follow the previous one, if it cannot.
fn out_of_sequence(header: &BatchHeader, expected: Expected) -> Option<String> {
    let raft_index_follows = match expected.raft_index {
        Some(raft_index) => raft_index_follows(header, raft_index.wrapping_sub(1)),
        None => header.raft_index != 0,
    };
    if header.record_count == 0 && !header.is_gap() {
        Some("empty batch".to_owned())
    } else if header.base_offset != expected.base_offset {
        Some(format!(
            "base offset {} where {} was expected",
            header.base_offset, expected.base_offset
        ))
    } else if !raft_index_follows {
        let wanted = expected
            .raft_index
            .map_or("any but 0".to_owned(), |i| i.to_string());
        Some(format!(
            "Raft index {} where {wanted} was expected",
            header.raft_index
        ))
    } else if header.term < expected.term_min {
        Some(format!(
            "term {} below the previous batch's {}",
            header.term, expected.term_min
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use citystream_record::{NO_PRODUCER, NO_SEQUENCE, attributes};

    use super::*;

    fn header(raft_index: u64, record_count: u32, attributes: u16, span: u32) -> BatchHeader {
        BatchHeader {
            base_offset: 10,
            term: 1,
            raft_index,
            base_hlc: 0,
            batch_len: BATCH_HEADER_LEN as u32,
            attributes,
            crc: 0,
            record_count,
            base_timestamp_ms: 0,
            max_timestamp_ms: 0,
            producer_id: NO_PRODUCER,
            base_sequence: NO_SEQUENCE,
            compacted_span: span,
        }
    }

    /// Only a compaction GAP batch may skip Raft indexes (never go back) or
    /// hold no records; any other batch must carry the next index and a
    /// record.
    #[test]
    fn only_a_gap_skips_raft_indexes_or_holds_no_records() {
        let expected = Expected {
            base_offset: 10,
            raft_index: Some(5),
            term_min: 1,
        };
        let gap = attributes::COMPACTED | attributes::GAP;
        assert_eq!(out_of_sequence(&header(5, 1, 0, 0), expected), None);
        assert_eq!(out_of_sequence(&header(5, 0, gap, 3), expected), None);
        assert_eq!(out_of_sequence(&header(9, 0, gap, 3), expected), None);
        assert!(out_of_sequence(&header(4, 0, gap, 3), expected).is_some());
        assert!(out_of_sequence(&header(6, 1, 0, 0), expected).is_some());
        assert!(out_of_sequence(&header(5, 0, 0, 0), expected).is_some());
    }
}
