//! A compacted partition's snapshot carries its prefix (decision 0017 §5).
//! Compaction rewrites a replica's log below its Raft purge point, and a
//! purge of a compacted log keeps the data there (`log_storage`), so a
//! follower whose log does not reach a snapshot point cannot be given the
//! point alone, as a delete topic's follower is: it would lose every key
//! whose newest record is below it. So the leader sends the records below
//! the point first, in [`PrefixChunk`]s read from its **live** log
//! ([`PrefixReader`]), and the snapshot itself last. The follower stages
//! the chunks beside its log ([`PartitionStateMachine::stage_chunk`]) and
//! swaps them in when it installs the snapshot.
//!
//! The live log below the point is the committed log compacted at some
//! horizon at or below it, and offsets never move, so a compaction pass
//! on the leader between two chunks is harmless: the follower ends up with
//! a valid compaction of the same records, which its own passes converge
//! from (decision 0017 §2). A chunk starts at a batch boundary of the log
//! as it was read before; a later pass may have merged removed batches
//! across it into one gap batch, and then the chunk starts with the part
//! of that gap from the boundary on ([`gap_from`]). If retention moved the
//! log's start past where the transfer was, it starts over (`first`).
//!
//! Transports call [`PrefixReader::next_chunk`] until it returns `None`,
//! deliver each chunk with [`deliver_chunk`] on the receiving side, then
//! have the receiver [`prepare_install`] before handing openraft the
//! snapshot.

use std::io;

use bytes::{Bytes, BytesMut};
use citystream_log::{BatchHeader, Offset};
use citystream_record::{attributes, gap_batch};
use openraft::raft::SnapshotResponse;
use openraft::type_config::alias::{LogIdOf, SnapshotOf, VoteOf};

use crate::log_reader::SharedLog;
use crate::state_machine::{PartitionSnapshot, PartitionStateMachine};
use crate::types::{PartitionRaft, Tc};

/// Bytes of batches per chunk (a chunk holds at least one whole batch).
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// One piece of a snapshot's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixChunk {
    /// The sender's vote; a transfer's chunks all carry it.
    pub vote: VoteOf<Tc>,
    /// The last log id of the snapshot the prefix belongs to.
    pub snapshot: LogIdOf<Tc>,
    /// The first chunk of a transfer: the receiver drops what it staged
    /// before and starts at `from_offset`.
    pub first: bool,
    /// The offset the chunk's first batch starts at.
    pub from_offset: u64,
    /// In a first chunk, the term and Raft index of the entry just below
    /// `from_offset` on the sender (its log's floor; `(0, 0)` from the
    /// log's beginning): the restored log's floor.
    pub floor: (u64, u64),
    /// Whole batches, consecutive by span, ending at or below the
    /// snapshot's `next_offset`. Empty only in a first chunk of an empty
    /// prefix.
    pub batches: Bytes,
}

/// Why a receiver refused a chunk or an install; the sender starts the
/// transfer over later.
#[derive(Debug, thiserror::Error)]
pub enum PrefixRefused {
    #[error("{0}")]
    Refused(String),
    #[error("the receiving Raft group stopped")]
    Stopped,
}

/// Reads a snapshot's prefix from the leader's live log, chunk by chunk.
pub struct PrefixReader {
    log: SharedLog,
    vote: VoteOf<Tc>,
    snapshot: LogIdOf<Tc>,
    end: u64,
    /// Where the next chunk starts; `None` before the first.
    next: Option<u64>,
    /// The floor below the transfer's first chunk.
    floor: (u64, u64),
    done: bool,
}

impl PrefixReader {
    /// The reader of `snapshot`'s prefix, sent under `vote`; `None` if the
    /// snapshot carries no prefix (or was built without its log).
    pub fn new(vote: VoteOf<Tc>, snapshot: &SnapshotOf<Tc, PartitionSnapshot>) -> Option<Self> {
        let data = &snapshot.snapshot;
        if !data.carries_prefix {
            return None;
        }
        Some(PrefixReader {
            log: data.source.clone()?,
            vote,
            snapshot: snapshot.meta.last_log_id?,
            end: data.next_offset,
            next: None,
            floor: (0, 0),
            done: false,
        })
    }

    /// The next chunk, or `None` once the prefix is all read. A transfer
    /// has at least one chunk, so the receiver always learns where the
    /// prefix starts.
    pub fn next_chunk(&mut self) -> io::Result<Option<PrefixChunk>> {
        if self.done {
            return Ok(None);
        }
        let log = self.log.read();
        let start = log.start_offset().0;
        let (first, from) = match self.next {
            Some(at) if at >= start => (false, at),
            _ => (true, start),
        };
        if first {
            let (term, index) = log.floor();
            self.floor = (term.0, index);
        }
        if from >= self.end {
            self.done = true;
            return Ok(first.then(|| self.chunk(true, from.min(self.end), Bytes::new())));
        }
        let read = log
            .read(Offset(from), CHUNK_BYTES)
            .map_err(io::Error::other)?;
        drop(log);
        let (batches, next) = cut_chunk(read.bytes, from, self.end)?;
        self.next = Some(next);
        self.done = next >= self.end;
        Ok(Some(self.chunk(first, from, batches)))
    }

    fn chunk(&self, first: bool, from_offset: u64, batches: Bytes) -> PrefixChunk {
        PrefixChunk {
            vote: self.vote,
            snapshot: self.snapshot,
            first,
            from_offset,
            floor: self.floor,
            batches,
        }
    }
}

/// The batches of a read from `from` that end at or below `end`, with a
/// gap batch starting before `from` cut to start there; and where the
/// next chunk starts.
fn cut_chunk(mut bytes: Bytes, from: u64, end: u64) -> io::Result<(Bytes, u64)> {
    let mut out = BytesMut::with_capacity(bytes.len());
    let mut next = from;
    while !bytes.is_empty() && next < end {
        let header = BatchHeader::decode(&bytes).map_err(io::Error::other)?;
        let batch = bytes.split_to(header.batch_len as usize);
        if header.next_offset() > end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the batch at offset {} crosses the snapshot point {end}",
                    header.base_offset
                ),
            ));
        }
        if header.next_offset() <= next {
            continue;
        }
        if header.base_offset < next {
            out.extend_from_slice(&gap_from(&header, next)?);
        } else {
            out.extend_from_slice(&batch);
        }
        next = header.next_offset();
    }
    Ok((out.freeze(), next))
}

/// The part of gap batch `gap` from offset `from` on: a gap batch of its
/// own with the same Raft id and largest HLC. Only a gap can start before
/// a boundary an earlier read saw: compacted batches keep their original
/// base offsets and spans.
pub(crate) fn gap_from(gap: &BatchHeader, from: u64) -> io::Result<Bytes> {
    if !gap.is_gap() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the batch at offset {} starts before {from} and is not a gap",
                gap.base_offset
            ),
        ));
    }
    let span = u32::try_from(gap.next_offset() - from).expect("part of a gap's span");
    let covered = BatchHeader {
        base_offset: from,
        attributes: attributes::COMPACTED | attributes::GAP,
        record_count: 0,
        compacted_span: span,
        base_hlc: gap.last_hlc().wrapping_sub(u64::from(span - 1)),
        ..*gap
    };
    Ok(gap_batch(&[covered]))
}

/// Stages `chunk` on the local replica `raft` (the receiving side of a
/// transport).
pub async fn deliver_chunk(raft: &PartitionRaft, chunk: PrefixChunk) -> Result<(), PrefixRefused> {
    raft.with_state_machine(move |sm: &mut PartitionStateMachine| {
        let staged = sm.stage_chunk(&chunk);
        Box::pin(async move { staged })
    })
    .await
    .map_err(|_| PrefixRefused::Stopped)?
    .map_err(|e| PrefixRefused::Refused(e.to_string()))
}

/// Checks, before `snapshot` is handed to openraft on the local replica
/// `raft`, that its prefix is staged whole (or not needed), and keeps it
/// from being replaced until the install. An install without this check
/// could find no prefix, which openraft would take as a storage failure.
pub async fn prepare_install(
    raft: &PartitionRaft,
    vote: VoteOf<Tc>,
    snapshot: &SnapshotOf<Tc, PartitionSnapshot>,
) -> Result<(), PrefixRefused> {
    if !snapshot.snapshot.carries_prefix {
        return Ok(());
    }
    let meta = snapshot.meta.clone();
    let next_offset = snapshot.snapshot.next_offset;
    raft.with_state_machine(move |sm: &mut PartitionStateMachine| {
        let sealed = sm.seal_staged(vote, &meta, next_offset);
        Box::pin(async move { sealed })
    })
    .await
    .map_err(|_| PrefixRefused::Stopped)?
    .map_err(|e| PrefixRefused::Refused(e.to_string()))
}

/// Hands `snapshot` with its prefix, if it carries one, straight to the
/// replica `target`: the transfer of an in-process network (tests, the
/// simulation), which has no wire.
pub async fn transfer_in_process(
    target: &PartitionRaft,
    vote: VoteOf<Tc>,
    snapshot: SnapshotOf<Tc, PartitionSnapshot>,
) -> Result<SnapshotResponse<Tc>, String> {
    if let Some(mut prefix) = PrefixReader::new(vote, &snapshot) {
        while let Some(chunk) = prefix.next_chunk().map_err(|e| e.to_string())? {
            deliver_chunk(target, chunk)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    install_after_prefix(target, vote, snapshot).await
}

/// Installs `snapshot` on the replica `target` once its prefix, if it
/// carries one, was delivered: seals the staged prefix, then installs. The
/// last step of an in-process transfer.
pub async fn install_after_prefix(
    target: &PartitionRaft,
    vote: VoteOf<Tc>,
    snapshot: SnapshotOf<Tc, PartitionSnapshot>,
) -> Result<SnapshotResponse<Tc>, String> {
    prepare_install(target, vote, &snapshot)
        .await
        .map_err(|e| e.to_string())?;
    target
        .install_full_snapshot(vote, snapshot)
        .await
        .map_err(|e| e.to_string())
}
