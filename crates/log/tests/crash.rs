//! Crash test: a child process appends with `fsync = always` and is killed
//! with SIGKILL at random moments, many times over the same directory.
//! After every kill the log is reopened (recovered) and must hold every
//! acknowledged batch, byte-identical and in order, and serve nothing that
//! is not exactly the workload's batch for its offset.

#[path = "../src/bin/log-crash-child/workload.rs"]
mod workload;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use citystream_log::{LogConfig, Offset, PartitionLog};
use citystream_record::BatchIter;
use rand::{Rng, SeedableRng};

const ITERATIONS: usize = 40;
/// A child is killed after acknowledging 1 to this many appends.
const ACKS_BEFORE_KILL_MAX: usize = 40;
const SEED: u64 = 0x5eed_c4a5;

/// Every acknowledged batch survives every SIGKILL, and nothing else is served.
#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let mut acked_end = 0;
    for iteration in 0..ITERATIONS {
        let acks = run_child_until_killed(dir.path(), &mut rng);
        if let Some(&(first_base, _)) = acks.first() {
            assert!(
                first_base >= acked_end,
                "iteration {iteration}: child restarted below an acked offset"
            );
        }
        for pair in acks.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "acks are dense");
        }
        acked_end = acks.last().map_or(acked_end, |&(_, last)| last + 1);
        verify(dir.path(), acked_end, iteration);
    }
    assert!(acked_end > ITERATIONS as u64, "the children made progress");
}

/// Starts a child, kills it after a random number of acks (and a random
/// short delay), and returns every `(base, last)` it acknowledged.
fn run_child_until_killed(dir: &std::path::Path, rng: &mut impl Rng) -> Vec<(u64, u64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-crash-child"))
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let kill_after = rng.random_range(1..=ACKS_BEFORE_KILL_MAX);
    let delay = Duration::from_micros(rng.random_range(0..2000));
    let mut acks = Vec::new();
    let mut killed = false;
    // Ends at EOF: the child is killed after `kill_after` lines, or exits.
    for line in stdout.lines() {
        let line = line.unwrap();
        let (base, last) = line.split_once(' ').expect("BASE LAST");
        acks.push((base.parse().unwrap(), last.parse().unwrap()));
        if acks.len() == kill_after && !killed {
            std::thread::sleep(delay);
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        killed && !status.success(),
        "child ended by itself: {status}"
    );
    acks
}

/// Reopens the log and checks it serves exactly the workload, dense from 0,
/// through at least `acked_end`.
fn verify(dir: &std::path::Path, acked_end: u64, iteration: usize) {
    let log = PartitionLog::open(dir, LogConfig::default()).unwrap();
    let next_offset = log.next_offset().0;
    assert!(
        next_offset >= acked_end,
        "iteration {iteration}: lost acked records ({next_offset} < {acked_end})"
    );
    let (mut from, mut raft_index) = (0, 1);
    // Each read returns at least one batch, so this ends at the log end.
    while from < next_offset {
        let bytes = log.read(Offset(from), 256 * 1024).unwrap().bytes;
        for batch in BatchIter::new(bytes) {
            let batch = batch.expect("served batches parse and pass their CRC");
            assert_eq!(
                batch.header().base_offset,
                from,
                "iteration {iteration}: batches in order"
            );
            assert_eq!(
                batch.bytes().to_vec(),
                workload::stored_batch(from, raft_index),
                "iteration {iteration}: batch {from}"
            );
            from = batch.header().next_offset();
            raft_index += 1;
        }
    }
}
