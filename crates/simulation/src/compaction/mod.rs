//! The checker's side of log compaction (decision 0017 §2, §10 item 7),
//! for the seeds whose group runs a compacted log ([`CompactedSeeds`]):
//! which committed records compaction at a horizon removes
//! ([`Removable`]), whether a batch a replica serves is a valid
//! compaction of the committed batch the model holds
//! ([`check_compacted`]), an upper bound of the horizon each replica's log
//! may be compacted to ([`Horizons`]), and the record views the final heal
//! compares.
//!
//! The model is the definition of §2 applied to the committed batches as
//! the checker first saw them (before any pass could touch them), not the
//! log's own code: a `COMPACTED` batch must be `compact_batch` of its
//! original with exactly the survivors it serves, a `GAP` batch must cover
//! whole original batches, and every record a replica lost must be
//! removable in the model at that replica's horizon. So a lost record
//! passes only if a later record of its key below the horizon really is in
//! the committed log, or it is a tombstone whose retention really ran out
//! in log time.
//!
//! The simulation's side, the compaction step and the checks of the
//! restated invariants on the nodes, is `steps.rs`; moving prefixes is
//! [`crate::net`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use citystream_log::{BatchHeader, CompactionParams};
use citystream_record::{RecordBatch, compact_batch, hlc_physical_ms};
use parking_lot::Mutex;

mod steps;

/// Keys of the compacted workload (`key-0` … `key-7`).
pub const KEYS: u32 = 8;
/// Per cent of the compacted workload's records that are tombstones.
pub const TOMBSTONE_PERCENT: u32 = 10;
/// How long a tombstone outlives what it deletes, in log time (HLCs follow
/// the simulated clock). A seed's 32 steps span one to a few simulated
/// seconds, so the tombstones of its early steps expire before its end and
/// the later ones do not: both sides of the rule are exercised.
pub const TOMBSTONE_RETENTION_MS: u64 = 200;
/// Key-map slots of a pass: far more than the workload's keys, so a pass
/// reaches the compaction point.
const KEY_MAP_ENTRIES: usize = 256;
/// Key-map slots of a pass in half of the compacted seeds: room for two
/// to six of the workload's batches (one to three records each), so a
/// pass stops where the map fills, below the compaction point, and the
/// next goes on from there.
const KEY_MAP_ENTRIES_BOUNDED: usize = 6;

/// Whether `seed`'s passes have the bounded key map (every other
/// compacted seed).
pub(crate) fn key_map_bounded(seed: u64) -> bool {
    (seed / 3) % 2 == 1
}

/// The settings of every pass in a compacted seed.
pub(crate) fn params(seed: u64) -> CompactionParams {
    let entries = match key_map_bounded(seed) {
        true => KEY_MAP_ENTRIES_BOUNDED,
        false => KEY_MAP_ENTRIES,
    };
    CompactionParams {
        tombstone_retention_ms: TOMBSTONE_RETENTION_MS,
        key_map_bytes_max: CompactionParams::key_map_bytes_for(entries),
        dirty_ratio_min_percent: 0,
    }
}

/// Which seeds run their group on a compacted log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactedSeeds {
    None,
    /// Seeds divisible by 3.
    EveryThird,
    All,
}

impl CompactedSeeds {
    /// The value of `CITYSTREAM_SIM_COMPACTED` that selects this.
    pub fn name(self) -> &'static str {
        match self {
            CompactedSeeds::None => "none",
            CompactedSeeds::EveryThird => "every-third",
            CompactedSeeds::All => "all",
        }
    }

    /// The inverse of [`CompactedSeeds::name`].
    pub fn parse(name: &str) -> Option<CompactedSeeds> {
        [
            CompactedSeeds::None,
            CompactedSeeds::EveryThird,
            CompactedSeeds::All,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }

    pub fn applies(self, seed: u64) -> bool {
        match self {
            CompactedSeeds::None => false,
            CompactedSeeds::EveryThird => seed.is_multiple_of(3),
            CompactedSeeds::All => true,
        }
    }
}

/// Per node, an upper bound of the horizon below which its log may be
/// compacted: the largest horizon a pass reached on it, raised to the
/// sender's bound whenever it stages a chunk of a snapshot prefix (the
/// chunk is the sender's live log, compacted as far as the sender's).
/// Shared with the network, which moves the prefixes. It survives crashes:
/// a bound stays valid if a power loss undid a pass.
#[derive(Clone, Default)]
pub struct Horizons(Arc<Mutex<BTreeMap<u64, u64>>>);

impl Horizons {
    pub fn of(&self, node: u64) -> u64 {
        self.0.lock().get(&node).copied().unwrap_or(0)
    }

    pub fn raise(&self, node: u64, horizon: u64) {
        let mut horizons = self.0.lock();
        let bound = horizons.entry(node).or_default();
        *bound = (*bound).max(horizon);
    }

    /// `to` stages data read from `from`'s log.
    pub fn inherit(&self, to: u64, from: u64) {
        let from_bound = self.of(from);
        self.raise(to, from_bound);
    }
}

/// The offsets of the committed records that compaction at `horizon`
/// removes (decision 0017 §2): below the horizon, a record with a later
/// record of its key (both in data batches), a tombstone whose HLC plus
/// the retention is at or below the log time `ref(H)` (the largest
/// physical ms of a batch's `last_hlc()` below `H`), and every control
/// record.
pub(crate) struct Removable {
    pub horizon: u64,
    offsets: BTreeSet<u64>,
}

impl Removable {
    /// `horizon` must be a batch boundary of the committed batches seen.
    pub fn at(committed: &BTreeMap<u64, Bytes>, horizon: u64) -> Result<Removable, String> {
        let below: Vec<RecordBatch> = committed
            .range(..horizon)
            .map(|(_, bytes)| RecordBatch::from_bytes(bytes.clone()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("a committed batch of the model is invalid: {e}"))?;
        let end = below.last().map_or(0, |b| b.header().next_offset());
        if end != horizon {
            return Err(format!(
                "compaction horizon {horizon} is not a boundary of the committed batches seen (they end at {end} below it)"
            ));
        }
        let reference_ms = below
            .iter()
            .map(|b| hlc_physical_ms(b.header().last_hlc()))
            .max();
        let retention_ms = TOMBSTONE_RETENTION_MS as i64;
        let expired =
            |hlc: u64| reference_ms.is_some_and(|r| hlc_physical_ms(hlc) + retention_ms <= r);
        let mut newer_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut offsets = BTreeSet::new();
        for batch in below.iter().rev() {
            let control = batch.header().is_control();
            let records: Vec<_> = batch.records().collect();
            for record in records.iter().rev() {
                let superseded = !control
                    && record
                        .key
                        .is_some_and(|key| !newer_keys.insert(key.to_vec()));
                let expired_tombstone = record.value.is_none() && expired(record.hlc);
                if control || superseded || expired_tombstone {
                    offsets.insert(record.offset);
                }
            }
        }
        Ok(Removable { horizon, offsets })
    }

    pub fn contains(&self, offset: u64) -> bool {
        self.offsets.contains(&offset)
    }
}

/// Checks a `COMPACTED` or `GAP` batch a replica serves against the
/// committed originals: it lies below the replica's horizon bound; a
/// compacted batch is exactly `compact_batch` of its original keeping the
/// records it serves (same header but count, length, span word and CRC;
/// survivors byte for byte at their offsets), and every record it lost is
/// removable; a gap covers whole original batches whose every record is
/// removable, with the last one's term and Raft index and a largest HLC
/// and timestamp between the covered batches' and the log's below it.
pub(crate) fn check_compacted(
    committed: &BTreeMap<u64, Bytes>,
    removable: &Removable,
    served: &Bytes,
) -> Result<(), String> {
    let batch = RecordBatch::from_bytes(served.clone())
        .map_err(|e| format!("a compacted batch is invalid: {e}"))?;
    let header = *batch.header();
    if header.next_offset() > removable.horizon {
        return Err(format!(
            "the compacted batch [{}, {}) reaches past the horizon {} the node may have compacted to",
            header.base_offset,
            header.next_offset(),
            removable.horizon
        ));
    }
    if header.is_gap() {
        check_gap(committed, removable, &header)
    } else {
        check_survivors(committed, removable, &batch)
    }
}

fn original(committed: &BTreeMap<u64, Bytes>, offset: u64) -> Result<RecordBatch, String> {
    let bytes = committed.get(&offset).ok_or_else(|| {
        format!("offset {offset} is not the base of a committed batch the model saw")
    })?;
    RecordBatch::from_bytes(bytes.clone()).map_err(|e| format!("model batch {offset}: {e}"))
}

fn check_survivors(
    committed: &BTreeMap<u64, Bytes>,
    removable: &Removable,
    batch: &RecordBatch,
) -> Result<(), String> {
    let base = batch.header().base_offset;
    let original = original(committed, base)?;
    let served: BTreeSet<u64> = batch.records().map(|r| r.offset).collect();
    if let Some(lost) = original
        .records()
        .find(|r| !served.contains(&r.offset) && !removable.contains(r.offset))
    {
        return Err(format!(
            "record at offset {} (key {:?}) is gone from the compacted batch at {base}, but below the horizon {} it is neither superseded by a later record of its key nor an expired tombstone",
            lost.offset,
            lost.key.map(String::from_utf8_lossy),
            removable.horizon
        ));
    }
    let keep: Vec<bool> = original
        .records()
        .map(|r| served.contains(&r.offset))
        .collect();
    match compact_batch(&original, &keep) {
        Some(expected) if expected == batch.bytes() => Ok(()),
        _ => Err(format!(
            "the compacted batch at {base} is not its committed batch minus the records it lost (header, survivors and offsets must be kept byte for byte)"
        )),
    }
}

fn check_gap(
    committed: &BTreeMap<u64, Bytes>,
    removable: &Removable,
    gap: &BatchHeader,
) -> Result<(), String> {
    let mut covered = Vec::new();
    let mut at = gap.base_offset;
    while at < gap.next_offset() {
        let batch = original(committed, at)
            .map_err(|e| format!("the gap [{}, {}): {e}", gap.base_offset, gap.next_offset()))?;
        if let Some(kept) = batch.records().find(|r| !removable.contains(r.offset)) {
            return Err(format!(
                "the gap [{}, {}) covers the record at offset {} (key {:?}), which below the horizon {} is neither superseded nor an expired tombstone",
                gap.base_offset,
                gap.next_offset(),
                kept.offset,
                kept.key.map(String::from_utf8_lossy),
                removable.horizon
            ));
        }
        at = batch.header().next_offset();
        covered.push(*batch.header());
    }
    let last = covered.last().expect("a gap covers at least one offset");
    if at != gap.next_offset() || (gap.term, gap.raft_index) != (last.term, last.raft_index) {
        return Err(format!(
            "the gap [{}, {}) (term {}, index {}) does not end with the batch it covers last, [{}, {at}) (term {}, index {})",
            gap.base_offset,
            gap.next_offset(),
            gap.term,
            gap.raft_index,
            last.base_offset,
            last.term,
            last.raft_index
        ));
    }
    let below = || {
        committed
            .range(..gap.next_offset())
            .map(|(_, b)| header_of(b))
    };
    let hlc_range = covered.iter().map(BatchHeader::last_hlc).max().unwrap_or(0)
        ..=below().map(|h| h.last_hlc()).max().unwrap_or(0);
    let timestamp_range = covered
        .iter()
        .map(|h| h.max_timestamp_ms)
        .max()
        .unwrap_or(0)
        ..=below().map(|h| h.max_timestamp_ms).max().unwrap_or(0);
    if !hlc_range.contains(&gap.last_hlc()) || !timestamp_range.contains(&gap.max_timestamp_ms) {
        return Err(format!(
            "the gap [{}, {}) claims largest HLC {} and timestamp {}: the log time it keeps must be at least the covered batches' and at most the log's below it ({hlc_range:?}, {timestamp_range:?})",
            gap.base_offset,
            gap.next_offset(),
            gap.last_hlc(),
            gap.max_timestamp_ms
        ));
    }
    Ok(())
}

fn header_of(bytes: &Bytes) -> BatchHeader {
    BatchHeader::decode(bytes).expect("the model holds valid batches")
}

/// A record as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordView {
    pub offset: u64,
    /// In a control batch (Raft's, not data).
    pub control: bool,
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
    pub hlc: u64,
}

/// The records of `batches`, in order.
pub(crate) fn record_view<'a>(
    batches: impl IntoIterator<Item = &'a Bytes>,
) -> Result<Vec<RecordView>, String> {
    let mut view = Vec::new();
    for bytes in batches {
        let batch = RecordBatch::from_bytes(bytes.clone()).map_err(|e| e.to_string())?;
        let control = batch.header().is_control();
        view.extend(batch.records().map(|r| RecordView {
            offset: r.offset,
            control,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            timestamp_ms: r.timestamp_ms,
            hlc: r.hlc,
        }));
    }
    Ok(view)
}

/// `view` without the records compaction at `removable.horizon` removes:
/// the model's `C_H` applied to a view, which gives the same result for
/// any view that is `C_H'` of the committed log with `H' <= H` (§2).
pub(crate) fn compacted_view(view: &[RecordView], removable: &Removable) -> Vec<RecordView> {
    view.iter()
        .filter(|r| !removable.contains(r.offset))
        .cloned()
        .collect()
}

/// A key that more than one data record below `horizon` holds, and how
/// many do: after a pass at `horizon` there must be none.
pub(crate) fn repeated_key_below(view: &[RecordView], horizon: u64) -> Option<(String, usize)> {
    let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
    for record in view.iter().filter(|r| r.offset < horizon) {
        let key = record.key.as_deref().unwrap_or_default();
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .find(|(_, count)| *count > 1)
        .map(|(key, count)| (String::from_utf8_lossy(key).into_owned(), count))
}

/// Key → (offset, value; `None` a tombstone) of each key's newest data
/// record.
pub(crate) type NewestPerKey = BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)>;

pub(crate) fn newest_per_key(view: &[RecordView]) -> NewestPerKey {
    view.iter()
        .filter(|r| !r.control)
        .filter_map(|r| Some((r.key.clone()?, (r.offset, r.value.clone()))))
        .collect()
}
