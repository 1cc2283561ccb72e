//! The simulation's CI entry points: 1,000 seeds split over four tests
//! (run in parallel by the test harness), the replay of one seed, a
//! determinism check, and proofs that the checker can fail.

use std::time::Instant;

use citystream_simulation::Outcome;

use citystream_simulation::{
    CompactedSeeds, CrashKind, Crashes, DEFAULT_SEEDS, DEFAULT_STEPS, RecoveryGate, Sabotage,
    SimConfig, run_seed, run_seeds,
};

/// Test threads the seeds are split over.
const SHARDS: u64 = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be an unsigned integer, got {v:?}"))
    })
}

/// `parse` of the variable `name`, or `None` if it is not set.
fn env_choice<T>(name: &str, parse: fn(&str) -> Option<T>) -> Option<T> {
    std::env::var(name)
        .ok()
        .map(|v| parse(v.trim()).unwrap_or_else(|| panic!("{name} has no setting {v:?}")))
}

fn config() -> SimConfig {
    let steps = env_u64("CITYSTREAM_SIM_STEPS").map_or(DEFAULT_STEPS, |s| s as u32);
    let nodes = env_u64("CITYSTREAM_SIM_NODES").unwrap_or(3);
    let defaults = SimConfig::default();
    SimConfig {
        nodes,
        steps,
        crashes: env_choice("CITYSTREAM_SIM_CRASHES", Crashes::parse).unwrap_or(defaults.crashes),
        recovery_gate: env_choice("CITYSTREAM_SIM_RECOVERY_GATE", RecoveryGate::parse)
            .unwrap_or(defaults.recovery_gate),
        compacted_seeds: env_choice("CITYSTREAM_SIM_COMPACTED", CompactedSeeds::parse)
            .unwrap_or(defaults.compacted_seeds),
        ..defaults
    }
}

/// What the compacted seeds among `outcomes` did.
fn compaction_summary(outcomes: &[Outcome]) -> String {
    let compacted: Vec<&Outcome> = outcomes.iter().filter(|o| o.compacted).collect();
    let passes: u32 = compacted.iter().map(|o| o.compaction_passes).sum();
    let chunks: u64 = compacted.iter().map(|o| o.net.prefix_chunks).sum();
    let installs: u64 = compacted.iter().map(|o| o.net.prefix_installs).sum();
    let expired: usize = compacted.iter().map(|o| o.expired_tombstones).sum();
    let interrupted: u32 = compacted.iter().map(|o| o.interrupted_passes).sum();
    let bounded = compacted.iter().filter(|o| o.key_map_bounded).count();
    format!(
        "  of which {} compacted: {passes} passes rewrote segments, {interrupted} passes cut short by a crash before their commit, {bounded} seeds with a key map too small for a whole pass, {installs} snapshots sent their prefix ({chunks} chunks staged), {expired} keys deleted by an expired tombstone",
        compacted.len()
    )
}

/// Runs this shard's part of `CITYSTREAM_SIM_SEEDS` seeds from
/// `CITYSTREAM_SIM_FIRST_SEED`; fails listing every failing seed.
fn shard(index: u64) {
    let count = env_u64("CITYSTREAM_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("CITYSTREAM_SIM_FIRST_SEED").unwrap_or(0);
    let per_shard = count.div_ceil(SHARDS);
    let start = first + index * per_shard;
    let end = (start + per_shard).min(first + count);
    if start >= end {
        return;
    }
    let started = Instant::now();
    let (outcomes, failures) = run_seeds(start, end - start, &config());
    let acked: usize = outcomes.iter().map(|o| o.acked_writes).sum();
    let crashes: u32 = outcomes.iter().map(|o| o.crashes).sum();
    let power_losses: u32 = outcomes.iter().map(|o| o.power_losses).sum();
    let restored_reads: u32 = outcomes.iter().map(|o| o.restored_leader_reads).sum();
    let partitions: u32 = outcomes.iter().map(|o| o.partitions).sum();
    let purges: u32 = outcomes.iter().map(|o| o.purges).sum();
    let terms: usize = outcomes.iter().map(|o| o.terms).sum();
    let dropped: u64 = outcomes.iter().map(|o| o.net.dropped).sum();
    let duplicated: u64 = outcomes.iter().map(|o| o.net.duplicated).sum();
    eprintln!(
        "simulation seeds [{start}, {end}): {} passed, {} failed in {:.1?}; {acked} acked writes, {crashes} crashes ({power_losses} power losses), {restored_reads} offset fetches by leaders restored in their term, {partitions} partitions, {purges} retention purges, {terms} leader terms, {dropped} messages lost, {duplicated} duplicated",
        outcomes.len(),
        failures.len(),
        started.elapsed()
    );
    eprintln!("{}", compaction_summary(&outcomes));
    let combined = outcomes
        .iter()
        .fold(0u64, |acc, o| acc.rotate_left(5) ^ o.trace_hash);
    eprintln!("combined trace hash of seeds [{start}, {end}): {combined:016x}");
    let seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
    assert!(
        failures.is_empty(),
        "failing seeds: {seeds:?} (each printed above with its replay command)"
    );
}

#[test]
fn seeds_shard_0() {
    shard(0);
}

#[test]
fn seeds_shard_1() {
    shard(1);
}

#[test]
fn seeds_shard_2() {
    shard(2);
}

#[test]
fn seeds_shard_3() {
    shard(3);
}

/// Replays `CITYSTREAM_SIM_SEED` (seed 0 without it), printing its trace.
#[test]
fn replay() {
    let seed = env_u64("CITYSTREAM_SIM_SEED").unwrap_or(0);
    match run_seed(seed, &config()) {
        Ok(outcome) => {
            for line in &outcome.trace {
                eprintln!("{line}");
            }
            eprintln!(
                "seed {seed} passed: {} acked writes, {} committed batches, {} crashes, {} partitions, {} terms, {} simulated ms, {:?}",
                outcome.acked_writes,
                outcome.committed_batches,
                outcome.crashes,
                outcome.partitions,
                outcome.terms,
                outcome.simulated_ms,
                outcome.net
            );
        }
        Err(failure) => panic!("{failure}"),
    }
}

/// The same seed twice gives the same trace.
#[test]
fn same_seed_same_trace() {
    for seed in [1, 7, 42] {
        let a = run_seed(seed, &config()).expect("seed passes");
        let b = run_seed(seed, &config()).expect("seed passes");
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} is not deterministic"
        );
        assert_eq!(a.acked_writes, b.acked_writes);
    }
    let a = run_seed(1, &config()).expect("seed passes");
    let b = run_seed(2, &config()).expect("seed passes");
    assert_ne!(
        a.trace_hash, b.trace_hash,
        "different seeds, different runs"
    );
}

/// The checker reports an ack that the log does not hold.
#[test]
fn checker_catches_a_phantom_ack() {
    let config = SimConfig {
        sabotage: Some(Sabotage::PhantomAck),
        ..config()
    };
    let failure = run_seed(3, &config).expect_err("a phantom ack is caught");
    assert!(failure.message.contains("phantom"), "{failure}");
    assert!(
        failure
            .to_string()
            .starts_with("SIMULATION FAILED seed=3: ")
    );
    assert!(
        failure
            .to_string()
            .contains("CITYSTREAM_SIM_SEED=3 cargo test")
    );
}

/// The checker reports a replica whose bytes were damaged after healing.
#[test]
fn checker_catches_a_corrupt_replica() {
    let config = SimConfig {
        sabotage: Some(Sabotage::CorruptReplica),
        ..config()
    };
    let failure = run_seed(4, &config).expect_err("a corrupt replica is caught");
    assert!(failure.message.contains("node 1"), "{failure}");
}

/// The checker reports a replica whose compaction removed records it must
/// keep: node 1 drops every tombstone at once, so a key's newest record
/// (a tombstone still within its retention) is gone there alone.
#[test]
fn checker_catches_a_replica_compacting_too_much() {
    let config = SimConfig {
        sabotage: Some(Sabotage::TombstonesExpireAtOnce),
        ..config()
    };
    let failure = run_seed(SABOTAGED_COMPACTED_SEED, &config).expect_err("the loss is caught");
    assert!(failure.message.contains("neither superseded"), "{failure}");
}

/// A compacted seed (divisible by 3) in which node 1 compacts away a
/// tombstone still within its retention.
const SABOTAGED_COMPACTED_SEED: u64 = 12;

/// The stale-read finding (crate docs, "Findings"), fixed: a leader that
/// crashes right after acknowledging an offset commit and that openraft
/// restores in its own term answers linearizable reads from the committed
/// id citystream-raft persisted, so the offset does not go backwards even
/// with no recovery wait at all. Before `save_committed` these seeds (60
/// steps, found with the gate off, what is now
/// `CITYSTREAM_SIM_STEPS=60 CITYSTREAM_SIM_SEEDS=11000 CITYSTREAM_SIM_RECOVERY_GATE=never cargo test -p citystream-simulation --test simulation seeds_shard`)
/// all failed so. Every crash is a kill here, which keeps the committed
/// id's unsynced records; with the default mix they pass too. Checked to
/// fail, all four, when `read_committed` returns nothing.
#[test]
fn restarted_leader_serves_fresh_reads_without_recovery_gate() {
    let ungated = SimConfig {
        steps: 60,
        crashes: Crashes::Only(CrashKind::Kill),
        recovery_gate: RecoveryGate::Never,
        ..stale_read_config()
    };
    let ordinary = SimConfig {
        steps: 60,
        ..stale_read_config()
    };
    for config in [ungated, ordinary] {
        for seed in STALE_READ_SEEDS {
            if let Err(failure) = run_seed(seed, &config) {
                panic!("{failure}");
            }
        }
    }
}

/// The limit of the fix: a power loss can take the committed id's latest
/// (unsynced) advances with it, so a leader restored in its term may again
/// answer from behind; this is why the default gates reads on
/// `wait_for_recovery` in an incarnation that followed a power loss. With
/// every crash a power loss and no gate, the same seeds still fail.
#[test]
fn power_loss_without_recovery_gate_can_serve_stale_reads() {
    let config = SimConfig {
        steps: 60,
        crashes: Crashes::Only(CrashKind::PowerLoss),
        recovery_gate: RecoveryGate::Never,
        ..stale_read_config()
    };
    for seed in STALE_READ_SEEDS {
        let failure = run_seed(seed, &config).expect_err("the stale read is reproduced");
        assert!(failure.message.contains("went backwards"), "{failure}");
    }
}

const STALE_READ_SEEDS: [u64; 4] = [3855, 6468, 7000, 7269];

/// The stale-read seeds were found before any seed ran a compacted log;
/// three of them are divisible by 3, so they keep the delete log they
/// were found with.
fn stale_read_config() -> SimConfig {
    SimConfig {
        compacted_seeds: CompactedSeeds::None,
        ..SimConfig::default()
    }
}

/// Compacted seeds do compact: passes rewrite segments, followers behind
/// a compaction point are sent snapshots with their prefix, and some keys
/// end deleted by a tombstone whose retention ran out; every invariant
/// holds. The CI seeds already run compacted one seed in three; these
/// are all compacted, from seed 200,000 on (`CITYSTREAM_SIM_COMPACTED_SEEDS`
/// of them, default 60).
#[test]
fn compacted_seeds_compact_and_send_prefixes() {
    let count = env_u64("CITYSTREAM_SIM_COMPACTED_SEEDS").unwrap_or(60);
    let config = SimConfig {
        compacted_seeds: CompactedSeeds::All,
        ..config()
    };
    let started = Instant::now();
    let (outcomes, failures) = run_seeds(200_000, count, &config);
    eprintln!(
        "compacted seeds: {} passed, {} failed in {:.1?}",
        outcomes.len(),
        failures.len(),
        started.elapsed()
    );
    let summary = compaction_summary(&outcomes);
    eprintln!("{summary}");
    let seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
    assert!(failures.is_empty(), "failing compacted seeds: {seeds:?}");
    if count >= 60 {
        let passes: u32 = outcomes.iter().map(|o| o.compaction_passes).sum();
        let installs: u64 = outcomes.iter().map(|o| o.net.prefix_installs).sum();
        let expired: usize = outcomes.iter().map(|o| o.expired_tombstones).sum();
        let interrupted: u32 = outcomes.iter().map(|o| o.interrupted_passes).sum();
        let bounded_passes: u32 = outcomes
            .iter()
            .filter(|o| o.key_map_bounded)
            .map(|o| o.compaction_passes)
            .sum();
        assert!(
            passes > 0 && installs > 0 && expired > 0 && interrupted > 0 && bounded_passes > 0,
            "{summary}"
        );
    }
}

/// A few seeds with five replicas (quorum of three), from seed 100,000 on.
#[test]
fn five_node_seeds() {
    let count = env_u64("CITYSTREAM_SIM_FIVE_NODE_SEEDS").unwrap_or(25);
    let config = SimConfig {
        nodes: 5,
        ..config()
    };
    let started = Instant::now();
    let (outcomes, failures) = run_seeds(100_000, count, &config);
    let acked: usize = outcomes.iter().map(|o| o.acked_writes).sum();
    eprintln!(
        "five-node seeds: {} passed, {} failed in {:.1?}; {acked} acked writes",
        outcomes.len(),
        failures.len(),
        started.elapsed()
    );
    let seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
    assert!(failures.is_empty(), "failing five-node seeds: {seeds:?}");
}
