//! Property tests: random sequences of appends, truncations, purges,
//! resets, syncs, reopens and (in memory) crashes, checked after every step
//! against a model that is just a vector of batches.

mod common;

use citystream_log::{BatchHeader, FsyncPolicy, LogConfig, LogError, Offset, PartitionLog, Term};
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append {
        count: u32,
        seed: u64,
        term_bump: u64,
    },
    Truncate {
        back: u64,
    },
    Purge {
        forward: u64,
    },
    Reset {
        gap: u64,
    },
    Sync,
    Reopen,
    /// Drop the log and lose unsynced bytes (memory backend only).
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u32..6, 0u64..100, prop_oneof![4 => Just(0u64), 1 => Just(1u64)])
            .prop_map(|(count, seed, term_bump)| Op::Append { count, seed, term_bump }),
        2 => (0u64..15).prop_map(|back| Op::Truncate { back }),
        1 => (0u64..20).prop_map(|forward| Op::Purge { forward }),
        1 => (0u64..5).prop_map(|gap| Op::Reset { gap }),
        2 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

/// What the log should hold: batches (bytes as stored), the start offset,
/// the log end, and how many batches a crash keeps.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<Vec<u8>>,
    start_offset: u64,
    next_offset: u64,
    /// Term of the record before the start (set by purge and reset).
    floor_term: u64,
    /// Raft index of the batch before the start (set by purge, reset and
    /// a truncation of the batch straddling the start).
    floor_raft_index: u64,
    durable_count: usize,
}

impl Model {
    /// Keeps the first `keep` batches; the log ends where the first removed
    /// one started.
    fn cut(&mut self, keep: usize) {
        if let Some(first_removed) = self.batches.get(keep) {
            let removed = header(first_removed);
            self.next_offset = removed.base_offset;
            if removed.base_offset < self.start_offset {
                // It straddled the start: the next append reuses its index.
                self.floor_raft_index = removed.raft_index - 1;
            }
        }
        self.batches.truncate(keep);
        self.durable_count = self.durable_count.min(keep);
        self.start_offset = self.start_offset.min(self.next_offset);
    }

    /// The last batch's term while the log serves records, else the floor.
    fn last_term(&self) -> u64 {
        match self.batches.last() {
            Some(last) if self.next_offset > self.start_offset => header(last).term,
            _ => self.floor_term,
        }
    }

    /// The last batch's Raft index while the log serves records, else the
    /// floor.
    fn last_raft_index(&self) -> u64 {
        match self.batches.last() {
            Some(last) if self.next_offset > self.start_offset => header(last).raft_index,
            _ => self.floor_raft_index,
        }
    }

    /// Header of the batch holding `offset`.
    fn header_at(&self, offset: u64) -> BatchHeader {
        let batch = self
            .batches
            .iter()
            .find(|b| header(b).next_offset() > offset);
        header(batch.expect("offset is in the model"))
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 700,
        index_interval_bytes: 150,
        fsync: FsyncPolicy::Interval { interval_ms: 5 },
        retention_ms: None,
        retention_bytes: None,
        segment_roll_ms: None,
        compacted: false,
        compaction_lag_ms: 0,
        tombstone_retention_ms: 86_400_000,
    }
}

fn apply(fixture: &Fixture, log: &mut Option<PartitionLog>, model: &mut Model, op: &Op) {
    let current = log.as_mut().expect("open log");
    match *op {
        Op::Append {
            count,
            seed,
            term_bump,
        } => {
            let term = model.last_term() + term_bump;
            model.batches.push(append(current, seed, count, 0, term));
            model.next_offset += u64::from(count);
        }
        Op::Truncate { back } => truncate(current, model, back),
        Op::Purge { forward } => {
            let offset = (model.start_offset + forward).min(model.next_offset);
            current.purge_before(Offset(offset)).expect("purge");
            if offset > model.start_offset {
                // A purge that moves the start syncs first.
                model.durable_count = model.batches.len();
                let floor = model.header_at(offset - 1);
                (model.floor_term, model.floor_raft_index) = (floor.term, floor.raft_index);
                model.start_offset = offset;
            }
        }
        Op::Reset { gap } => {
            let next_offset = model.next_offset + gap;
            let term = model.last_term() + 1;
            let next_raft_index = model.last_raft_index() + 1 + gap;
            current
                .reset(Offset(next_offset), Term(term), next_raft_index)
                .expect("reset");
            model.batches.clear();
            model.floor_term = term;
            model.floor_raft_index = next_raft_index - 1;
            (model.start_offset, model.next_offset, model.durable_count) =
                (next_offset, next_offset, 0);
        }
        Op::Sync => {
            current.sync().expect("sync");
            model.durable_count = model.batches.len();
        }
        Op::Reopen => {
            *log = None;
            *log = Some(fixture.open(config()));
        }
        Op::Crash => {
            let Some(memory) = &fixture.memory else {
                return;
            };
            *log = None;
            memory.crash();
            model.cut(model.durable_count);
            *log = Some(fixture.open(config()));
        }
    }
}

fn truncate(log: &mut PartitionLog, model: &mut Model, back: u64) {
    let Some(offset) = model.next_offset.checked_sub(1 + back) else {
        return;
    };
    if offset + 1 < model.start_offset {
        let error = log.truncate_after(Offset(offset)).unwrap_err();
        assert!(
            matches!(error, LogError::OffsetOutOfRange { .. }),
            "{error}"
        );
        return;
    }
    log.truncate_after(Offset(offset)).expect("truncate");
    let keep = model
        .batches
        .iter()
        .take_while(|b| header(b).last_offset() <= offset)
        .count();
    if keep < model.batches.len() {
        model.cut(keep);
        // A truncation syncs what it keeps.
        model.durable_count = keep;
    }
}

fn check(log: &PartitionLog, model: &Model, max_bytes: usize) {
    assert_eq!(log.next_offset(), Offset(model.next_offset));
    assert_eq!(log.start_offset(), Offset(model.start_offset));
    let expected: Vec<Vec<u8>> = model
        .batches
        .iter()
        .filter(|b| header(b).next_offset() > model.start_offset)
        .cloned()
        .collect();
    assert_eq!(log.last_term(), Term(model.last_term()));
    assert_eq!(log.last_raft_index(), model.last_raft_index());
    for batch in &expected {
        let h = header(batch);
        assert_eq!(log.locate_raft_index(h.raft_index).unwrap(), Some(h));
    }
    let past = model.last_raft_index() + 1;
    assert_eq!(log.locate_raft_index(past).unwrap(), None);
    let served: Vec<Vec<u8>> = read_all(log, max_bytes)
        .iter()
        .map(|b| b.to_vec())
        .collect();
    assert_eq!(served, expected);
}

fn run(fixture: Fixture, ops: &[Op], max_bytes: usize) {
    let mut log = Some(fixture.open(config()));
    let mut model = Model::default();
    for op in ops {
        apply(&fixture, &mut log, &mut model, op);
        check(log.as_ref().expect("open log"), &model, max_bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(64) })]

    /// The memory backend, crashes included, always matches the model.
    #[test]
    fn memory_log_matches_model(ops in proptest::collection::vec(op(), 1..60), max_bytes in 1usize..2000) {
        run(memory_fixture(), &ops, max_bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(24) })]

    /// The file backend (reopens, no crashes) always matches the model.
    #[test]
    fn file_log_matches_model(ops in proptest::collection::vec(op(), 1..60), max_bytes in 1usize..2000) {
        run(file_fixture(), &ops, max_bytes);
    }
}
