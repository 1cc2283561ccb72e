//! Running a planned pass with no lock held (decision 0017 §6): read the
//! dirty inputs and feed their batches to the planner (pass 1), then
//! rewrite each group of inputs that changes, or that merges several
//! segments, into `<first base>.log.cleaned` (pass 2, each input CRC
//! checked as it is read, the output fsynced). The inputs are opened by
//! name: closed segments are immutable, and a handle outlives a delete.
//!
//! Not done yet: a bounded read buffer (a group is read whole, so memory is
//! one group, at most `segment_bytes_max` unless one segment is larger).

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use citystream_record::{BatchIter, RecordBatch};

use super::plan::Planner;
use super::rewrite::rewrite_batches;
use super::select::{CompactionPlan, InputSegment};
use super::swap::CLEANED_SUFFIX;
use crate::segment::io_error;
use crate::storage::Storage;
use crate::{LogError, Offset};

/// A pass's written output, waiting for
/// [`crate::PartitionLog::commit_compaction`]. Dropped uncommitted, its
/// `.cleaned` files stay until the next commit or open deletes them.
#[derive(Debug)]
pub struct Cleaned {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) epoch: u64,
    /// Every input of the plan, oldest first, to re-check at commit.
    pub(super) inputs: Vec<InputSegment>,
    /// The groups rewritten, each to `<first base>.log.cleaned`.
    pub(super) rewritten: Vec<Vec<InputSegment>>,
    pub(super) horizon_offset: u64,
    pub(super) reference_ms: i64,
    pub(super) bytes_removed: u64,
    /// An input was gone when the pass read it (retention or a reset got
    /// there first): the commit does nothing.
    pub(super) input_missing: bool,
}

impl Cleaned {
    /// The horizon the pass reached.
    pub fn horizon(&self) -> Offset {
        Offset(self.horizon_offset)
    }
}

// The broker runs a pass on a blocking task.
const _: fn() = || {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<CompactionPlan>();
    assert_send_static::<Cleaned>();
};

impl CompactionPlan {
    /// Runs the pass (slow: reads the dirty inputs twice and the rewritten
    /// ones once, writes and fsyncs the output). Holds no lock on the log;
    /// the log may be appended to, purged or truncated meanwhile, and the
    /// commit then checks what is still valid.
    pub fn run(self) -> Result<Cleaned, LogError> {
        let mut cleaned = Cleaned {
            storage: Arc::clone(&self.storage),
            epoch: self.epoch,
            inputs: self.groups.concat(),
            rewritten: Vec::new(),
            horizon_offset: self.clean_end_offset,
            reference_ms: self.clean_reference_ms,
            bytes_removed: 0,
            input_missing: false,
        };
        let Some(planner) = self.map_dirty_section()? else {
            cleaned.input_missing = true;
            return Ok(cleaned);
        };
        (cleaned.horizon_offset, cleaned.reference_ms) =
            (planner.horizon_offset(), planner.reference_ms());
        for group in &self.groups {
            let group: Vec<InputSegment> = group
                .iter()
                .take_while(|input| input.base_offset.0 < planner.horizon_offset())
                .cloned()
                .collect();
            match self.rewrite_group(&group, &planner)? {
                GroupOutcome::InputMissing => {
                    cleaned.input_missing = true;
                    break;
                }
                GroupOutcome::Unchanged => {}
                GroupOutcome::Rewritten { bytes_removed } => {
                    cleaned.bytes_removed += bytes_removed;
                    cleaned.rewritten.push(group);
                }
            }
        }
        Ok(cleaned)
    }

    /// Pass 1: the planner fed every batch of the dirty section, or `None`
    /// if an input is gone.
    fn map_dirty_section(&self) -> Result<Option<Planner>, LogError> {
        let mut planner = Planner::new(
            self.clean_end_offset,
            self.clean_reference_ms,
            self.horizon_offset,
            &self.params,
        );
        let dirty = self
            .groups
            .iter()
            .flatten()
            .filter(|input| input.next_offset.0 > self.clean_end_offset);
        for input in dirty {
            let Some(batches) = read_input(&*self.storage, input)? else {
                return Ok(None);
            };
            for batch in batches
                .iter()
                .filter(|b| b.header().next_offset() > self.clean_end_offset)
            {
                planner.observe(batch);
            }
        }
        Ok(Some(planner))
    }

    /// Pass 2 for one group (trimmed to the inputs below the horizon):
    /// writes its output unless it is one unchanged segment.
    fn rewrite_group(
        &self,
        group: &[InputSegment],
        planner: &Planner,
    ) -> Result<GroupOutcome, LogError> {
        let Some(first) = group.first() else {
            return Ok(GroupOutcome::Unchanged);
        };
        let mut input = Vec::new();
        for segment in group {
            let Some(batches) = read_input(&*self.storage, segment)? else {
                return Ok(GroupOutcome::InputMissing);
            };
            input.extend(batches);
        }
        let output = rewrite_batches(&input, planner);
        if group.len() == 1 && output.iter().eq(input.iter().map(RecordBatch::bytes)) {
            return Ok(GroupOutcome::Unchanged);
        }
        let input_bytes: u64 = group.iter().map(|s| s.size_bytes).sum();
        let output_bytes = write_cleaned(&*self.storage, &first.file_name, &output)?;
        Ok(GroupOutcome::Rewritten {
            bytes_removed: input_bytes.saturating_sub(output_bytes),
        })
    }
}

/// What pass 2 did with one group.
enum GroupOutcome {
    /// An input file is gone: the log changed under the pass.
    InputMissing,
    /// One segment, byte for byte the same: nothing written.
    Unchanged,
    /// Written to `.cleaned`, this many bytes smaller than the inputs.
    Rewritten { bytes_removed: u64 },
}

/// Every batch of a closed input segment, each checked (CRC, records) and
/// dense from its base to its end; `None` if the file is gone.
fn read_input(
    storage: &dyn Storage,
    input: &InputSegment,
) -> Result<Option<Vec<RecordBatch>>, LogError> {
    let path = storage.location(&input.file_name);
    let file = match storage.open(&input.file_name, false) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(&path)(error)),
    };
    let len = usize::try_from(input.size_bytes).expect("a segment fits in memory");
    let mut buf = vec![0u8; len];
    file.read_at(0, &mut buf).map_err(io_error(&path))?;
    let corrupt = |what: String| LogError::Corrupt(format!("{}: {what}", path.display()));
    let batches = BatchIter::new(Bytes::from(buf))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| corrupt(format!("a batch fails its check: {error}")))?;
    let mut expected = input.base_offset.0;
    for batch in &batches {
        if batch.header().base_offset != expected {
            return Err(corrupt(format!("no batch at offset {expected}")));
        }
        expected = batch.header().next_offset();
    }
    if expected != input.next_offset.0 {
        return Err(corrupt(format!("the segment ends at {expected}")));
    }
    Ok(Some(batches))
}

/// Writes `batches` to `<log_name>.cleaned` and fsyncs it; returns its size.
fn write_cleaned(
    storage: &dyn Storage,
    log_name: &str,
    batches: &[Bytes],
) -> Result<u64, LogError> {
    let name = format!("{log_name}{CLEANED_SUFFIX}");
    let path = storage.location(&name);
    let mut file = storage.open(&name, true).map_err(io_error(&path))?;
    file.truncate(0).map_err(io_error(&path))?;
    for batch in batches {
        file.append(batch).map_err(io_error(&path))?;
    }
    file.sync().map_err(io_error(&path))?;
    file.len_bytes().map_err(io_error(&path))
}
