//! # citystream-simulation
//!
//! A seeded, deterministic simulation of one replicated partition group:
//! 3 replicas (5 with [`SimConfig::nodes`]) of `citystream-raft` over
//! in-memory logs (`citystream_log::MemoryStorage`), a simulated network,
//! a random workload and random faults, with the safety invariants checked
//! after every step and again at the end.
//!
//! ## How it runs
//!
//! Each seed runs in a fresh single-threaded tokio runtime whose clock is
//! paused and advances on its own whenever every task waits (simulated
//! time: a 500 ms election timeout costs nothing). Nothing reads the wall
//! clock. All randomness is seeded from the one `u64` seed: openraft's
//! election timeouts (`citystream_raft::seeded`), the network's delays and
//! losses ([`net`]) and the workload and faults (a `StdRng`). Decisions only
//! iterate `BTreeMap`s. Same seed, same run: [`Outcome::trace_hash`] hashes
//! the event trace, and a test checks that two runs of a seed agree.
//!
//! ## What is simulated
//!
//! * **Network** ([`net`]): every request and reply waits 0–20 ms; a
//!   per-seed share of requests and of replies is lost (0–10 %), another
//!   share of requests is delivered twice; partitions split the nodes into
//!   two sides; crashed nodes are unreachable.
//! * **Crash and restart** ([`crash`]): a crash shuts the node's Raft
//!   down. Half of the crashes are power losses, after which
//!   `MemoryStorage::crash()` drops every byte not yet fsynced; the others
//!   are kills (`kill -9`), which keep every byte written (the page cache
//!   survives). The kind is drawn from an RNG of its own, so
//!   [`SimConfig::crashes`] changes no other draw. Half of the killed
//!   nodes are restarted at once, as a supervisor would, and an offset
//!   fetch follows: a killed leader comes back before anyone else can be
//!   elected, and openraft restores it in its own term. A restart reopens
//!   the log from that storage (the recovery path) and builds a new Raft,
//!   state machine and heartbeat ticker on it.
//! * **Workload**: produce (a batch of 1–3 records through a node; acked
//!   when `client_write` returns), consumer-group offset commits, fetches of
//!   acknowledged records and of group offsets (linearizable read on the
//!   node, then the log below its high watermark), admin (leader transfer,
//!   forced election), retention, and time passing. A client sends to the
//!   node it believes leads (sometimes to any node) and follows one
//!   "forward to leader" hint.
//! * **Retention**: the logs roll 192-byte segments (a few batches each)
//!   and retain 512 bytes (`retention_bytes`; no `retention_ms`, as there
//!   is no wall clock). The step "retention on node n" calls
//!   `citystream_raft::apply_retention(raft, sm, 0)` on a running node:
//!   snapshot at the retention point, then purge. The final heal runs it on
//!   every node too. A follower that falls behind the leader's purge is
//!   sent the snapshot. The summary line each test prints (`cargo test -p
//!   citystream-simulation -- --nocapture`) counts the purges: about 3,000
//!   for the 1,000 seeds (the compacted third has no retention). The
//!   errors "group stopped" and "snapshot timed out" are traced; any other
//!   is a failure.
//! * **Compaction** (decision 0017; [`compaction`]): one seed in three
//!   (seeds divisible by 3, [`SimConfig::compacted_seeds`]) runs the group
//!   on a compacted log (`cleanup = compact`: no retention, the same
//!   192-byte segments, a tombstone retention of
//!   [`compaction::TOMBSTONE_RETENTION_MS`] of log time). Its writes are
//!   stamped with HLCs from the simulated clock, as a leader's broker
//!   stamps them; its produced records take one of 8 keys, one in ten a
//!   tombstone. Its retention step becomes "compaction on node n":
//!   `citystream_raft::apply_compaction(raft, sm, params, 0, i64::MAX)`,
//!   which snapshots and purges at the node's compaction point in one
//!   step and rewrites below it in a later one, so crashes, cuts and
//!   leader changes fall between the phases. Half of the rewrite steps
//!   (drawn from a stream of their own, while another node is up) are cut
//!   short by a crash of their node after the plan or after the run wrote
//!   its `.cleaned` output, before the commit; a node restarted at once
//!   must have deleted that output, and every later check holds its log
//!   to the horizon of its last committed pass. Every other compacted
//!   seed's passes have a key map of 6 slots
//!   (`compaction::key_map_bounded`): a pass stops where it fills, below
//!   the compaction point, and the next goes on. A follower behind a purge is
//!   sent the snapshot with its compacted prefix, whose chunks travel as
//!   messages of the network ([`net`]): delayed, lost, duplicated. The
//!   summary line counts the passes, the passes cut short, the seeds with
//!   the small key map, the prefix transfers and the keys deleted by an
//!   expired tombstone.
//!
//! ## Invariants
//!
//! The compacted seeds keep invariants 1 and 5 as they are, restate 2–4
//! as "… or by a valid compaction" and add a sixth; the model of what a
//! compaction may remove is decision 0017 §2 applied to the committed
//! batches as first seen ([`compaction`]). Each node has a horizon bound:
//! the largest horizon a pass reached on it, raised to the sender's bound
//! whenever it stages a prefix chunk; its log is compacted at most that
//! far. A record is *removable* at a horizon `H` if, below `H`, a later
//! data record has its key, or it is a tombstone whose HLC plus the
//! retention is at most the largest `last_hlc()` below `H`, or it is in a
//! control batch.
//!
//! 1. **At most one leader per term**: a task per node watches its metrics;
//!    every (term, leader) it sees goes into one map, which must never hold
//!    two leaders for a term. It samples each metrics change, so a
//!    leadership shorter than one scheduling turn could go unseen.
//! 2. **Committed entries never change**: after every step, each running
//!    node's log is read from its log start to its high watermark (only
//!    committed entries are below it), nodes with the lowest start first.
//!    The first time an offset is seen its batch bytes join the model;
//!    every later sighting, on any node, in any incarnation, must be
//!    byte-identical. A restarted node is re-read from its log start. The
//!    log start (`start_offset()`, moved only by a purge or a snapshot
//!    install) of each node, running or as its storage kept it through a
//!    crash, never goes backwards across steps, crashes and restarts; it is
//!    at most the node's high watermark; and it is the base offset of a
//!    committed batch the model has seen or the end of the committed log
//!    seen so far, never past it (a node's committed log is read into the
//!    model before retention runs on it). Fetching an acked offset below a
//!    node's start must fail (out of range), never return bytes.
//!    *Compacted seeds*: a node's log is re-read from its start at every
//!    check (passes and prefix installs rewrite what was checked), and the
//!    model is fed before every compaction step, so it holds every batch
//!    in its original form before any pass can touch it (a compacted batch
//!    at an offset the model has not seen fails). A served batch equals
//!    the model's, or is a `COMPACTED` batch that reaches no further than
//!    the node's horizon bound, equals `compact_batch` of the original
//!    with exactly the survivors it serves (same base offset, term, Raft
//!    index, HLC, timestamps, producer and span; survivors byte for byte
//!    at their offsets) and lost only removable records; or a `GAP` batch
//!    below the bound covering whole original batches of removable
//!    records only, with the last one's term and index and a largest HLC
//!    and timestamp between the covered batches' and the log's below it.
//!    A compacted log's start may move only past removable records (with
//!    no retention it never moves).
//! 3. **Every acknowledged record stays readable at its offset, until
//!    retention deletes it**: an ack's (offset, records) must match the
//!    committed batch at that offset; after every step a majority of nodes
//!    must hold every acked batch at its offset (a running node in its log,
//!    a crashed one in what its storage kept through the power loss, read
//!    from a copy), where a node whose log starts after the offset counts
//!    only if the batch was seen committed (purged legitimately); fetches
//!    re-read acked offsets from random nodes (at or after their start). At
//!    the end every node must serve every acked batch at or after its log
//!    start, every acked batch below a node's start must have been seen
//!    committed, and every acked batch must have been seen held by a
//!    majority at some check. Not "by every node": a node that installed a
//!    snapshot never held the batches before it while another node, whose
//!    own retention point is lower, still serves them (seen in many seeds).
//!    *Compacted seeds*: a node also holds an acked batch if the batch
//!    covering its offset (a gap may start before it) is a valid
//!    compaction of it as in 2: every acked record it lost is superseded
//!    by a later committed record of its key below the node's horizon
//!    bound, or is an expired tombstone. A compacted batch that is no
//!    valid compaction fails there and then. Fetches read the covering
//!    batch likewise.
//! 4. **Replicas identical after healing**: at the end every node is
//!    restarted, the network healed and made loss-free, one more write is
//!    acked in the final term, retention runs on every node, and once every
//!    high watermark equals its log end, every log must end at the same
//!    offset and the logs must be byte-identical, batch by batch, over the
//!    range they all hold, [highest log start, end). Each replica deletes
//!    whole segments of its own, so the starts may differ.
//!    *Compacted seeds*: instead of retention, compaction steps run on
//!    every node, round after round, until no node has a closed segment
//!    past its clean point. Then every log ends at the same offset and
//!    starts at 0; every node's records, less the model's removable set at
//!    the highest horizon bound of any node (the model's `C_H`: replicas
//!    roll segments at their own byte counts, so their own horizons
//!    differ), equal the committed log's records less the same set,
//!    offset by offset; and each node's newest record per key (offset and
//!    value or tombstone) is the committed log's, except that a key whose
//!    newest record is a tombstone removable at the node's bound may be
//!    gone. Batches are not compared byte for byte: two replicas may cut
//!    gaps differently (decision 0017 §2).
//! 5. **Consumer-group offsets never go backwards**: there is no group
//!    coordinator in the Raft layer yet, so a group's offset commit is
//!    modelled as a record (key `__offsets/<group>`, value the offset)
//!    written through the same group by one sequential committer per group
//!    with strictly increasing values. Checked: in the committed log every
//!    group's values increase; a linearizable offset fetch never returns
//!    less than the last acked commit or than an earlier fetch. A fetch
//!    whose node no longer holds the commit that value came from (nor any
//!    later one of the group: it is before the node's log start) is traced
//!    and not checked, as the log alone no longer knows the offset; a
//!    commit after the log start that the fetch does not see is still a
//!    failure. Fetches wait for `Raft::wait_for_recovery` only on a node
//!    whose incarnation began after a power loss ([`RecoveryGate`]), never
//!    after a kill. This checks what Raft gives such a coordinator, not the
//!    coordinator itself. Compaction keeps each group's newest commit, so
//!    compacted seeds check it unchanged.
//! 6. **Compaction keeps the newest record per key on every replica**
//!    (compacted seeds): after every pass that reached a horizon `H` on a
//!    node, and after the final compaction below each node's clean point,
//!    no key has two records below it on that node.
//!
//! ## Running and replaying
//!
//! `cargo test -p citystream-simulation` runs 1,000 seeds (four tests of
//! 250, which the harness runs on as many threads as there are cores) of
//! [`DEFAULT_STEPS`] steps each. Environment variables:
//!
//! * `CITYSTREAM_SIM_SEEDS=<count>`: seeds in all (default 1000).
//! * `CITYSTREAM_SIM_FIRST_SEED=<n>`: the first seed (default 0).
//! * `CITYSTREAM_SIM_STEPS=<n>`: steps per seed (default [`DEFAULT_STEPS`]).
//! * `CITYSTREAM_SIM_NODES=<n>`: replicas (default 3); the test
//!   `five_node_seeds` runs 25 seeds (`CITYSTREAM_SIM_FIVE_NODE_SEEDS`)
//!   with 5 from seed 100,000.
//! * `CITYSTREAM_SIM_CRASHES=mixed|kill|power-loss`: which crashes
//!   (default `mixed`, half and half).
//! * `CITYSTREAM_SIM_COMPACTED=every-third|none|all`: which seeds run a
//!   compacted log (default `every-third`); the test
//!   `compacted_seeds_compact_and_send_prefixes` runs 60 seeds
//!   (`CITYSTREAM_SIM_COMPACTED_SEEDS`) all compacted from seed 200,000.
//! * `CITYSTREAM_SIM_RECOVERY_GATE=after-power-loss|never`: whether an
//!   incarnation that began after a power loss waits for
//!   `Raft::wait_for_recovery` before an offset fetch (default
//!   `after-power-loss`; see "Findings").
//! * `CITYSTREAM_SIM_NET_TRACE=1`: also print every RPC's fate.
//!
//! A failure prints `SIMULATION FAILED seed=<n>: <what>`, the last events of
//! the trace, and the replay command:
//!
//! ```text
//! CITYSTREAM_SIM_SEED=<n> cargo test -p citystream-simulation --test simulation replay -- --nocapture
//! ```
//!
//! with whatever other variables the failing run had (the printed command
//! includes them). The replay prints the seed's whole trace.
//!
//! **How deterministic.** tokio wakes the receivers of a `watch` channel
//! in an order drawn from its own RNG, which only `tokio_unstable` lets a
//! program seed; openraft's replication tasks are such receivers, so two
//! RPCs sent at the same simulated instant may be sent in either order.
//! The network therefore draws every message's fate from an RNG per
//! directed link, which makes fates independent of that order. The traces
//! of all 1,000 CI seeds were identical in two separate processes, and a
//! test compares two runs of a seed in one process (each runtime gets a
//! fresh tokio RNG), but a run whose outcome hinges on the order of two
//! same-instant events could still replay differently; seeding tokio
//! (`--cfg tokio_unstable`, `Builder::rng_seed`) would close that.
//!
//! **Cost.** openraft's generic core is compiled unoptimized into this
//! crate under the dev profile, with its `validit` checks on; a step costs
//! about 1.5 ms and a seed's start and final heal about 25 ms. With
//! [`DEFAULT_STEPS`] = 32 (production timing, `Timing::DEFAULT`), the 1,000
//! seeds plus the other tests take about 50 s on 2 cores in debug (a
//! compacted seed costs about what another does).
//!
//! ## Findings
//!
//! * **Stale linearizable read after a leader restarts within its term**
//!   (fixed; regression test
//!   `restarted_leader_serves_fresh_reads_without_recovery_gate`, seeds
//!   3855, 6468, 7000 and 7269 at 60 steps). A leader crashed right after
//!   acking an offset commit and restarted while no other node could be
//!   elected; openraft resumed it as leader *in the same term* (its
//!   committed vote is its own). `citystream-raft` did not persist the
//!   committed log id (`save_committed`), so the restarted leader's state
//!   machine started empty (or at its retention snapshot) and
//!   `ensure_linearizable` returned a read log id below what it had
//!   acknowledged (observed: `term 2, index 1`, the term's first entry; in
//!   seed 7000 `term 1, index 15`): the fetch returned an older group
//!   offset than one already acked. The simulation then gated every offset
//!   fetch on `Raft::wait_for_recovery`, as openraft's docs advise when
//!   `committed` is not persisted. Now `citystream-raft` persists it (one
//!   unsynced record in `raft-state` per commit round) and a restarted
//!   node re-applies up to it before it serves anything, so after a kill
//!   no read waits for recovery: the 1,000 CI seeds include 65 offset
//!   fetches answered, unwaited, by a leader restored in its term (the
//!   summary line counts them), and 3,000 seeds at 60 steps with every
//!   crash a kill and no gate at all passed with 1,052. With the committed
//!   id not read back, the CI seeds 0, 702 and 995 failed this way (before
//!   one seed in three became compacted: 0 and 702 now are). **Power
//!   loss** can still take the latest committed records (they are not
//!   fsynced, to keep fsyncs off the produce path) and so bring the stale
//!   read back: `power_loss_without_recovery_gate_can_serve_stale_reads`
//!   shows it on the same four seeds. An incarnation that began after a
//!   power loss therefore still waits for recovery before an offset fetch
//!   ([`RecoveryGate::AfterPowerLoss`], the default). The same root made a
//!   restarted node's high watermark start again from its log start; after
//!   a kill it now starts where it was.
//! * With `FsyncPolicy::Always` or `Interval`, `PartitionRaftStorage::append`
//!   writes and fsyncs in one synchronous call, so a simulated crash (which
//!   happens between polls) never finds unsynced Raft entries: power loss
//!   is exercised, but it loses nothing Raft relied on for safety (only
//!   the latest committed-id records, above). `FsyncPolicy::Never`
//!   (where acked data can be lost by design, 0005 §9.5) is not simulated.
//!
//! ## Limits
//!
//! One partition group with a fixed membership (no metadata group, no
//! membership changes, no gossip, no broker or wire protocol); no clock
//! skew (one simulated clock); no disk errors other than power loss;
//! snapshots and purges only through retention by size or compaction steps
//! (openraft is configured never to take them on its own); the duplicate
//! of a request is the same Raft RPC (no reordering inside a TCP stream is
//! modelled beyond what independent delays give). Compaction: no
//! `compact,delete` retention; lag 0 (the lag floor that keeps producer
//! dedup exact is not exercised, nor are producer ids); a key map large
//! enough that every pass reaches its point (memory-bounded passes are
//! left to the log's own tests); the snapshot message itself is not
//! faulted, only its prefix chunks; passes run to their end within one
//! step (a crash never falls between a pass's plan and its commit).

pub mod compaction;
pub mod crash;
pub mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_log::{BatchHeader, FsyncPolicy, LogConfig, MemoryStorage, Offset, PartitionLog};
use citystream_raft::{
    BatchData, PartitionRaft, PartitionRaftStorage, PartitionStateMachine, PeerAddr,
    RetentionError, SharedLog, Timing, partition_config, seeded,
};
use citystream_record::{BATCH_HEADER_LEN, BatchBuilder, HybridClock, RecordBatch, set_base_hlc};
use openraft::async_runtime::WatchReceiver;
use openraft::{Raft, ReadPolicy};
use parking_lot::{Mutex, RwLock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use crate::compaction::CompactedSeeds;
use crate::compaction::{Horizons, Removable};
use crate::crash::CrashDraw;
pub use crate::crash::{CrashKind, Crashes, RecoveryGate};
use crate::net::{Net, NetFaults, NetStats};

/// Steps per seed unless `CITYSTREAM_SIM_STEPS` says otherwise.
pub const DEFAULT_STEPS: u32 = 32;
/// Seeds per `cargo test` run unless `CITYSTREAM_SIM_SEEDS` says otherwise.
pub const DEFAULT_SEEDS: u64 = 1000;
/// Trace lines printed with a failure.
const TRACE_TAIL: usize = 40;
/// Consumer groups of the offset-commit workload.
const GROUPS: u32 = 2;
/// The production default (decision 0005 §7).
const TIMING: Timing = Timing::DEFAULT;
/// How long the workload waits for one write or read (simulated).
const OP_WAIT: Duration = Duration::from_millis(700);
/// How long a client waits after a failed write before its next request.
const CLIENT_BACKOFF: Duration = Duration::from_millis(100);
/// Segment size of the simulated logs: a few batches each, so segments
/// roll often.
const SEGMENT_BYTES: u64 = 192;
/// Retention by size: a log keeps about this many bytes (whole segments),
/// so a seed's workload outgrows it and retention purges several times.
const RETENTION_BYTES: u64 = 512;
/// How long the final heal may take to converge (simulated).
const SETTLE_WAIT: Duration = Duration::from_secs(60);
/// Physical milliseconds of the HLC a compacted seed stamps at simulated
/// time 0 (the workload's timestamps start here too).
const LOG_EPOCH_MS: i64 = 1_700_000_000_000;

/// A deliberate bug in the checker's inputs, to prove it can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// Record an ack for a write that was never made (at the end).
    PhantomAck,
    /// After the final heal, overwrite one record byte in node 1's log
    /// file (keeping the file "synced"), as silent disk damage would.
    CorruptReplica,
    /// In a compacted seed, node 1 compacts with a tombstone retention of
    /// 0, as a replica with another setting than the topic's would: it
    /// drops tombstones the others keep.
    TombstonesExpireAtOnce,
}

/// What one seed simulates.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: u64,
    pub steps: u32,
    /// The log's fsync policy. Raft syncs before counting an entry toward
    /// a quorum under `Always` and `Interval` alike.
    pub fsync: FsyncPolicy,
    pub sabotage: Option<Sabotage>,
    /// Which kinds of crash the faults are ([`crate::crash`]).
    pub crashes: Crashes,
    /// When a node serves offset fetches only after
    /// `Raft::wait_for_recovery` (see the crate docs, "Findings").
    pub recovery_gate: RecoveryGate,
    /// Which seeds run a compacted log ([`compaction`]).
    pub compacted_seeds: CompactedSeeds,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            steps: DEFAULT_STEPS,
            fsync: FsyncPolicy::Interval { interval_ms: 5 },
            sabotage: None,
            crashes: Crashes::Mixed,
            recovery_gate: RecoveryGate::AfterPowerLoss,
            compacted_seeds: CompactedSeeds::EveryThird,
        }
    }
}

/// A run that kept every invariant.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    /// Hash of the whole event trace (same seed, same hash).
    pub trace_hash: u64,
    pub acked_writes: usize,
    pub committed_batches: usize,
    pub crashes: u32,
    /// The crashes that were power losses (the others were kills).
    pub power_losses: u32,
    /// Linearizable offset fetches answered, without waiting for recovery,
    /// by a leader that had crashed leading and was restored in that same
    /// term: the reads a persisted committed id keeps fresh.
    pub restored_leader_reads: u32,
    pub partitions: u32,
    /// Retention runs that asked openraft to purge (`apply_retention`
    /// returned a log id).
    pub purges: u32,
    /// The group ran a compacted log.
    pub compacted: bool,
    /// Compaction passes that rewrote segments.
    pub compaction_passes: u32,
    /// Compaction passes cut short by a crash of their node, between plan
    /// and commit.
    pub interrupted_passes: u32,
    /// The seed's passes had a key map too small to reach the compaction
    /// point at once.
    pub key_map_bounded: bool,
    /// Keys whose newest committed record is a tombstone that expired
    /// below the final compaction horizon (gone from the log).
    pub expired_tombstones: usize,
    pub terms: usize,
    pub simulated_ms: u64,
    pub net: NetStats,
    /// The whole event trace.
    pub trace: Vec<String>,
}

/// A run that broke an invariant (or could not finish).
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub message: String,
    /// The last events before the failure.
    pub trace: Vec<String>,
    /// The command that replays this run.
    pub replay: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "SIMULATION FAILED seed={}: {}", self.seed, self.message)?;
        writeln!(f, "last {} events:", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        write!(f, "replay: {}", self.replay)
    }
}

/// Runs one seed to the end. Panics inside the run (openraft's or ours)
/// are caught and reported as a [`Failure`] with the seed.
pub fn run_seed(seed: u64, config: &SimConfig) -> Result<Outcome, Failure> {
    let trace = Arc::new(Mutex::new(Vec::new()));
    let run = {
        let trace = trace.clone();
        let config = config.clone();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime builds");
            runtime.block_on(async move { Sim::new(seed, config, trace).run().await })
        }))
    };
    match run {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(message)) => Err(failure(seed, config, message, &trace.lock())),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            Err(failure(
                seed,
                config,
                format!("panicked: {what}"),
                &trace.lock(),
            ))
        }
    }
}

fn failure(seed: u64, config: &SimConfig, message: String, trace: &[String]) -> Failure {
    let tail = trace[trace.len().saturating_sub(TRACE_TAIL)..].to_vec();
    Failure {
        seed,
        message,
        trace: tail,
        replay: replay_command(seed, config),
    }
}

/// The `cargo test` command that reruns `seed` under `config`.
pub fn replay_command(seed: u64, config: &SimConfig) -> String {
    let mut env = format!("CITYSTREAM_SIM_SEED={seed}");
    if config.steps != DEFAULT_STEPS {
        env.push_str(&format!(" CITYSTREAM_SIM_STEPS={}", config.steps));
    }
    if config.nodes != 3 {
        env.push_str(&format!(" CITYSTREAM_SIM_NODES={}", config.nodes));
    }
    if config.crashes != SimConfig::default().crashes {
        env.push_str(&format!(
            " CITYSTREAM_SIM_CRASHES={}",
            config.crashes.name()
        ));
    }
    if config.recovery_gate != SimConfig::default().recovery_gate {
        let gate = config.recovery_gate.name();
        env.push_str(&format!(" CITYSTREAM_SIM_RECOVERY_GATE={gate}"));
    }
    if config.compacted_seeds != SimConfig::default().compacted_seeds {
        let compacted = config.compacted_seeds.name();
        env.push_str(&format!(" CITYSTREAM_SIM_COMPACTED={compacted}"));
    }
    let note = if config.sabotage.is_some() || config.fsync != SimConfig::default().fsync {
        " (with the failing test's own SimConfig)"
    } else {
        ""
    };
    format!(
        "{env} cargo test -p citystream-simulation --test simulation replay -- --nocapture{note}"
    )
}

/// Runs `count` seeds from `first`; returns the outcomes or the failures.
pub fn run_seeds(first: u64, count: u64, config: &SimConfig) -> (Vec<Outcome>, Vec<Failure>) {
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for seed in first..first + count {
        match run_seed(seed, config) {
            Ok(outcome) => outcomes.push(outcome),
            Err(failure) => {
                eprintln!("{failure}");
                failures.push(failure);
            }
        }
    }
    (outcomes, failures)
}

/// A running incarnation of a node.
struct Running {
    raft: PartitionRaft,
    log: SharedLog,
    sm: PartitionStateMachine,
    tasks: Vec<JoinHandle<()>>,
}

struct Node {
    storage: MemoryStorage,
    running: Option<Running>,
    incarnation: u64,
    /// Offset up to which this incarnation's committed log was checked.
    checked_upto: u64,
    /// While crashed: what its storage still holds (read through a log
    /// opened on a copy of the storage right after the power loss).
    durable: Option<Durable>,
    /// The highest log start offset seen on this node, in any incarnation
    /// (running, or in what a crash kept).
    start_seen: u64,
    /// The crash before the current (or next) incarnation, if any.
    last_crash: Option<CrashKind>,
    /// The term this node led when it last crashed, if it was leading.
    led_when_crashed: Option<u64>,
}

/// What a crashed node's storage kept: its log start and its batches.
struct Durable {
    start: u64,
    batches: Vec<(BatchHeader, Bytes)>,
}

/// An acknowledged produce: where it landed and its records section.
#[derive(Debug, Clone)]
struct Ack {
    last_offset: u64,
    records: Bytes,
    label: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct GroupModel {
    /// The last value the committer proposed (acked or not).
    proposed: u64,
    /// The highest acked commit.
    acked: u64,
    /// The highest value a fetch returned.
    fetched: u64,
    /// The last value in the committed log seen so far.
    committed: u64,
    /// The offset of the batch holding the higher of `acked` and
    /// `fetched` (values grow with offsets), if any.
    floor_at: Option<u64>,
}

/// What the checker knows and expects.
#[derive(Default)]
struct Model {
    /// Committed batches by base offset, as first seen on any node.
    committed: BTreeMap<u64, Bytes>,
    /// The offset after the last committed batch known.
    committed_end: u64,
    acked: BTreeMap<u64, Ack>,
    /// Nodes seen holding each acked batch at its offset, at any check.
    served: BTreeMap<u64, BTreeSet<u64>>,
    groups: BTreeMap<u32, GroupModel>,
    /// What compaction removes at each horizon asked so far (the
    /// committed log below a horizon never changes).
    removable: BTreeMap<u64, Arc<Removable>>,
}

/// Leaders seen per term, shared with the metrics watchers.
#[derive(Default)]
struct Leaders {
    by_term: BTreeMap<u64, u64>,
    violation: Option<String>,
}

type Trace = Arc<Mutex<Vec<String>>>;

struct Sim {
    seed: u64,
    config: SimConfig,
    rng: StdRng,
    net: Net,
    nodes: BTreeMap<u64, Node>,
    model: Model,
    leaders: Arc<Mutex<Leaders>>,
    trace: Trace,
    start: Instant,
    next_write: u64,
    crashes: u32,
    crash_draw: CrashDraw,
    power_losses: u32,
    restored_leader_reads: u32,
    partitions: u32,
    /// Retention runs that asked openraft to purge.
    purges: u32,
    /// Terms whose leader is already in the trace.
    traced_terms: BTreeSet<u64>,
    /// The group runs a compacted log ([`SimConfig::compacted_seeds`]).
    compacted: bool,
    /// Stamps the HLCs of a compacted seed's writes, as a leader does.
    clock: HybridClock,
    /// How far each node's log may be compacted (shared with the network).
    horizons: Horizons,
    compaction_passes: u32,
    interrupted_passes: u32,
    /// Draws which compaction steps a crash cuts short, from a stream of
    /// its own (a seed's workload stays as it was).
    compaction_draw: StdRng,
    expired_tombstones: usize,
}

const OFFSETS_KEY_PREFIX: &str = "__offsets/";

impl Sim {
    fn new(seed: u64, config: SimConfig, trace: Trace) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let faults = NetFaults {
            max_delay_ms: 20,
            drop_per_mille: rng.random_range(0..=100),
            dup_per_mille: rng.random_range(0..=100),
        };
        let nodes = (1..=config.nodes)
            .map(|id| {
                let node = Node {
                    storage: MemoryStorage::new(),
                    running: None,
                    incarnation: 0,
                    checked_upto: 0,
                    durable: None,
                    start_seen: 0,
                    last_crash: None,
                    led_when_crashed: None,
                };
                (id, node)
            })
            .collect();
        let crash_draw = CrashDraw::new(seed, config.crashes);
        let compacted = config.compacted_seeds.applies(seed);
        let horizons = Horizons::default();
        let sim = Sim {
            seed,
            config,
            rng,
            net: Net::new(seed, faults, horizons.clone()),
            nodes,
            model: Model::default(),
            leaders: Arc::default(),
            trace,
            start: Instant::now(),
            next_write: 0,
            crashes: 0,
            crash_draw,
            power_losses: 0,
            restored_leader_reads: 0,
            partitions: 0,
            purges: 0,
            traced_terms: BTreeSet::new(),
            compacted,
            clock: HybridClock::new(),
            horizons,
            compaction_passes: 0,
            interrupted_passes: 0,
            compaction_draw: StdRng::seed_from_u64(seed ^ 0x0063_6f6d_7061_6374),
            expired_tombstones: 0,
        };
        let log = if compacted { "compacted log, " } else { "" };
        sim.event(format!("seed {seed}: {log}faults {faults:?}"));
        sim
    }

    fn event(&self, what: String) {
        let at = self.start.elapsed().as_millis();
        self.trace.lock().push(format!("{at:>7}ms {what}"));
    }

    fn log_config(&self) -> LogConfig {
        let config = LogConfig {
            segment_bytes_max: SEGMENT_BYTES,
            index_interval_bytes: 128,
            fsync: self.config.fsync,
            retention_ms: None,
            retention_bytes: Some(RETENTION_BYTES),
            ..LogConfig::default()
        };
        if !self.compacted {
            return config;
        }
        // `cleanup = compact`: no retention; the log start never moves.
        LogConfig {
            retention_bytes: None,
            compacted: true,
            compaction_lag_ms: 0,
            tombstone_retention_ms: compaction::TOMBSTONE_RETENTION_MS,
            ..config
        }
    }

    /// Stamps a compacted seed's batch with HLCs from the simulated clock,
    /// as the leader's broker does before proposing it; compaction's log
    /// time (tombstone expiry) follows them. Other seeds write unstamped
    /// batches, as they always did.
    fn stamp(&mut self, batch: Bytes) -> Bytes {
        if !self.compacted {
            return batch;
        }
        let now_ms = LOG_EPOCH_MS + self.start.elapsed().as_millis() as i64;
        let count = BatchHeader::decode(&batch).map_or(1, |h| h.record_count);
        let mut bytes = batch.to_vec();
        set_base_hlc(&mut bytes, self.clock.stamp(now_ms, count));
        Bytes::from(bytes)
    }

    async fn run(mut self) -> Result<Outcome, String> {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for &id in &ids {
            self.start_node(id).await?;
        }
        let members: BTreeMap<u64, PeerAddr> = ids
            .iter()
            .map(|&id| {
                let peer = format!("node-{id}:9093");
                (id, PeerAddr { peer })
            })
            .collect();
        for &id in &ids {
            let raft = self.raft(id).expect("just started");
            // A node that already heard from an elected peer refuses: fine.
            let _ = raft.initialize(members.clone()).await;
        }
        for step in 0..self.config.steps {
            self.step(step).await?;
            self.check().await?;
        }
        self.finish().await
    }

    fn raft(&self, id: u64) -> Option<PartitionRaft> {
        self.nodes[&id].running.as_ref().map(|r| r.raft.clone())
    }

    fn up_nodes(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.running.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn down_nodes(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.running.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.rng.random_range(0..items.len())])
        }
    }

    /// The running node that claims leadership in the highest term.
    fn believed_leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.running.as_ref().map(|r| (*id, r)))
            .filter(|(_, r)| r.raft.is_leader())
            .max_by_key(|(_, r)| r.raft.metrics().borrow_watched().current_term)
            .map(|(id, _)| id)
    }

    /// Opens node `id`'s log from its storage and starts a Raft on it.
    async fn start_node(&mut self, id: u64) -> Result<(), String> {
        let config = self.log_config();
        let node = self.nodes.get_mut(&id).expect("known node");
        node.incarnation += 1;
        node.checked_upto = 0;
        let incarnation = node.incarnation;
        let storage = node.storage.clone();
        let log = PartitionLog::open_with(Arc::new(storage.clone()), config)
            .map_err(|e| format!("node {id} log does not reopen: {e}"))?;
        let log: SharedLog = Arc::new(RwLock::new(log));
        let storage = Arc::new(storage);
        let raft_storage = PartitionRaftStorage::open(log.clone(), storage.clone())
            .map_err(|e| format!("node {id} raft state does not reopen: {e}"))?;
        let sm = PartitionStateMachine::open(log.clone(), storage)
            .map_err(|e| format!("node {id} snapshot does not reopen: {e}"))?;
        let raft_config =
            partition_config(TIMING, self.config.fsync).map_err(|e| format!("config: {e}"))?;
        let rng_seed = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (id << 32) ^ incarnation;
        let factory = self.net.factory(id);
        let raft = seeded(rng_seed, async {
            Raft::new(id, raft_config, factory, raft_storage, sm.clone()).await
        })
        .await
        .map_err(|e| format!("node {id} raft does not start: {e}"))?;
        self.net.up(id, raft.clone());
        let tasks = vec![
            tokio::spawn(heartbeats(raft.clone())),
            tokio::spawn(watch_leaders(raft.clone(), self.leaders.clone())),
        ];
        let node = self.nodes.get_mut(&id).expect("known node");
        node.durable = None;
        node.running = Some(Running {
            raft,
            log,
            sm,
            tasks,
        });
        self.event(format!("node {id} started (incarnation {incarnation})"));
        Ok(())
    }

    /// Stops node `id` as a kill or a power loss does: the latter also
    /// loses its unsynced bytes. Returns the kind of crash.
    async fn crash_node(&mut self, id: u64) -> Result<CrashKind, String> {
        let config = self.log_config();
        let kind = self.crash_draw.next();
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(running) = node.running.take() else {
            return Ok(kind);
        };
        self.net.down(id);
        for task in &running.tasks {
            task.abort();
        }
        let leading = {
            let metrics = running.raft.metrics();
            let m = metrics.borrow_watched();
            m.state.is_leader().then_some(m.current_term)
        };
        let _ = running.raft.shutdown().await;
        drop(running);
        if kind == CrashKind::PowerLoss {
            node.storage.crash();
        }
        let survived = durable_batches(&node.storage, config)
            .map_err(|e| format!("node {id}: storage after the crash does not open: {e}"))?;
        node.durable = Some(survived);
        node.last_crash = Some(kind);
        node.led_when_crashed = leading;
        self.check_start(id)?;
        self.crashes += 1;
        let what = match kind {
            CrashKind::Kill => "killed (unsynced bytes kept)",
            CrashKind::PowerLoss => {
                self.power_losses += 1;
                "lost power (unsynced bytes lost)"
            }
        };
        let leading = leading.map_or(String::new(), |term| format!(", leading term {term}"));
        self.event(format!("node {id} {what}{leading}"));
        Ok(kind)
    }

    async fn step(&mut self, step: u32) -> Result<(), String> {
        let roll = self.rng.random_range(0..100u32);
        match roll {
            0..=34 => self.produce(step).await?,
            35..=44 => self.commit_offset().await,
            45..=54 => self.fetch_acked().await?,
            55..=59 => self.fetch_offset().await?,
            60..=62 => {
                if let Some(id) = self.pick(&self.up_nodes())
                    && self.up_nodes().len() > 1
                {
                    let kind = self.crash_node(id).await?;
                    // A supervisor restarting a killed process at once: a
                    // leader comes back before anyone else can be elected,
                    // and openraft restores it in its own term. A read
                    // follows while it is fresh from the restart.
                    if kind == CrashKind::Kill && self.crash_draw.restart_at_once() {
                        self.start_node(id).await?;
                        self.fetch_offset().await?;
                    }
                }
            }
            63..=67 => {
                if let Some(id) = self.pick(&self.down_nodes()) {
                    self.start_node(id).await?;
                }
            }
            68..=70 => {
                let sides: BTreeMap<u64, u8> = self
                    .nodes
                    .keys()
                    .map(|&id| (id, self.rng.random_range(0..2u8)))
                    .collect();
                self.partitions += 1;
                self.event(format!("partition {sides:?}"));
                self.net.partition(sides);
            }
            71..=75 => {
                self.event("heal".into());
                self.net.heal();
            }
            76..=77 => self.admin().await,
            78..=89 if self.compacted => self.compaction().await?,
            78..=89 => self.retention().await?,
            _ => {
                let ms = self.rng.random_range(1..=200);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        Ok(())
    }

    /// Writes one batch through `node`; `Ok` when Raft acknowledges it.
    /// Like a client, it follows one "forward to leader" hint.
    async fn write(&self, node: u64, batch: Bytes) -> Result<(u64, u64), String> {
        match self.write_once(node, batch.clone()).await {
            Err((_, Some(leader))) if leader != node => self
                .write_once(leader, batch)
                .await
                .map_err(|(e, _)| format!("{e} (after following the hint to {leader})")),
            other => other.map_err(|(e, _)| e),
        }
    }

    async fn write_once(
        &self,
        node: u64,
        batch: Bytes,
    ) -> Result<(u64, u64), (String, Option<u64>)> {
        let raft = self.raft(node).ok_or(("node is down".to_string(), None))?;
        match tokio::time::timeout(OP_WAIT, raft.client_write(BatchData::new(batch))).await {
            Ok(Ok(response)) => Ok((response.data.base_offset, response.data.last_offset)),
            Ok(Err(e)) => {
                let hint = e.forward_to_leader().and_then(|f| f.leader_id);
                Err((e.to_string(), hint))
            }
            Err(_) => Err(("timed out".into(), None)),
        }
    }

    /// The node a client would send to: usually the believed leader,
    /// sometimes any running node (which refuses unless it leads).
    fn client_target(&mut self) -> Option<u64> {
        let leader = self.believed_leader();
        if leader.is_some() && self.rng.random_range(0..10) < 8 {
            return leader;
        }
        self.pick(&self.up_nodes())
    }

    async fn produce(&mut self, step: u32) -> Result<(), String> {
        let Some(node) = self.client_target() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Ok(());
        };
        self.next_write += 1;
        let label = format!("w{}", self.next_write);
        let records = self.rng.random_range(1..=3u32);
        let mut builder = BatchBuilder::new();
        let timestamp_ms = LOG_EPOCH_MS + i64::from(step);
        for i in 0..records {
            let value = format!("{label}-{i}");
            if self.compacted {
                self.push_keyed(&mut builder, timestamp_ms, &value);
                continue;
            }
            builder
                .push(timestamp_ms, Some(b"k"), value.as_bytes(), &[])
                .expect("small record");
        }
        let batch = self.stamp(builder.finish());
        match self.write(node, batch.clone()).await {
            Ok((base, last)) => {
                self.event(format!(
                    "produce {label} via {node}: acked [{base}, {last}]"
                ));
                let ack = Ack {
                    last_offset: last,
                    records: batch.slice(BATCH_HEADER_LEN..),
                    label,
                };
                if let Some(committed) = self.model.committed.get(&base) {
                    check_ack(base, &ack, committed)?;
                }
                self.model.acked.insert(base, ack);
            }
            Err(e) => {
                self.event(format!("produce {label} via {node}: not acked ({e})"));
                tokio::time::sleep(CLIENT_BACKOFF).await;
            }
        }
        Ok(())
    }

    /// A compacted seed's record: one of [`compaction::KEYS`] keys, a
    /// tombstone in [`compaction::TOMBSTONE_PERCENT`] per cent of them.
    fn push_keyed(&mut self, builder: &mut BatchBuilder, timestamp_ms: i64, value: &str) {
        let key = format!("key-{}", self.rng.random_range(0..compaction::KEYS));
        let pushed = if self.rng.random_range(0..100) < compaction::TOMBSTONE_PERCENT {
            builder.push_tombstone(timestamp_ms, Some(key.as_bytes()), &[])
        } else {
            builder.push(timestamp_ms, Some(key.as_bytes()), value.as_bytes(), &[])
        };
        pushed.expect("small record");
    }

    /// One consumer group's committer: writes the next (higher) offset.
    async fn commit_offset(&mut self) {
        let Some(node) = self.client_target() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        };
        let group = self.rng.random_range(0..GROUPS);
        let value =
            self.model.groups.entry(group).or_default().proposed + self.rng.random_range(1..=10u64);
        self.model.groups.entry(group).or_default().proposed = value;
        let mut builder = BatchBuilder::new();
        let key = format!("{OFFSETS_KEY_PREFIX}{group}");
        builder
            .push(0, Some(key.as_bytes()), value.to_string().as_bytes(), &[])
            .expect("small record");
        let batch = self.stamp(builder.finish());
        match self.write(node, batch).await {
            Ok((base, _)) => {
                self.event(format!(
                    "commit group {group}={value} via {node}: acked at {base}"
                ));
                let model = self.model.groups.entry(group).or_default();
                model.acked = model.acked.max(value);
                model.floor_at = model.floor_at.max(Some(base));
            }
            Err(e) => {
                self.event(format!(
                    "commit group {group}={value} via {node}: not acked ({e})"
                ));
                tokio::time::sleep(CLIENT_BACKOFF).await;
            }
        }
    }

    /// Reads a random acked batch back from a random running node, if that
    /// node's high watermark covers it.
    async fn fetch_acked(&mut self) -> Result<(), String> {
        let Some(node) = self.pick(&self.up_nodes()) else {
            return Ok(());
        };
        let acked: Vec<u64> = self.model.acked.keys().copied().collect();
        let Some(offset) = self.pick(&acked) else {
            return Ok(());
        };
        let running = self.nodes[&node].running.as_ref().expect("up");
        if running.sm.high_watermark() <= offset {
            self.event(format!("fetch {offset} from {node}: above its HWM"));
            return Ok(());
        }
        let start = running.log.read().start_offset().0;
        if offset < start {
            // Purged (by retention or a snapshot install): the read must
            // fail, never return other bytes.
            if let Ok(bytes) = read_batch_at(&running.log.read(), offset) {
                return Err(format!(
                    "fetch of purged offset {offset} from node {node} (log start {start}) returned a batch of {} bytes instead of an error",
                    bytes.len()
                ));
            }
            self.event(format!(
                "fetch {offset} from {node}: below log start {start}"
            ));
            return Ok(());
        }
        if self.compacted {
            return self.fetch_compacted(node, offset);
        }
        let batch = read_batch_at(&running.log.read(), offset)
            .map_err(|e| format!("fetch of acked offset {offset} from node {node}: {e}"))?;
        let ack = &self.model.acked[&offset];
        check_ack(offset, ack, &batch).map_err(|e| format!("fetch from node {node}: {e}"))?;
        self.event(format!("fetch {offset} from {node}: {} ok", ack.label));
        Ok(())
    }

    /// A linearizable offset fetch for a group from a random running node.
    async fn fetch_offset(&mut self) -> Result<(), String> {
        let Some(node) = self.client_target() else {
            return Ok(());
        };
        let group = self.rng.random_range(0..GROUPS);
        let floor = self.model.groups.get(&group).copied().unwrap_or_default();
        let raft = self.raft(node).expect("up");
        let gated = self
            .config
            .recovery_gate
            .applies(self.nodes[&node].last_crash);
        if gated && raft.wait_for_recovery(Some(OP_WAIT)).await.is_err() {
            self.event(format!(
                "offset fetch group {group} from {node}: not recovered yet"
            ));
            return Ok(());
        }
        let read = tokio::time::timeout(OP_WAIT, raft.ensure_linearizable(ReadPolicy::ReadIndex));
        let read_log_id = match read.await {
            Ok(Ok(read_log_id)) => read_log_id,
            Ok(Err(e)) => {
                self.event(format!(
                    "offset fetch group {group} from {node}: refused ({e})"
                ));
                return Ok(());
            }
            Err(_) => {
                self.event(format!("offset fetch group {group} from {node}: timed out"));
                return Ok(());
            }
        };
        let Some(running) = self.nodes[&node].running.as_ref() else {
            return Ok(());
        };
        let hwm = running.sm.high_watermark();
        let batches = read_all(&running.log.read(), hwm)
            .map_err(|e| format!("node {node} log unreadable below HWM {hwm}: {e}"))?;
        let mut found = None;
        for (header, bytes) in &batches {
            if let Some((g, v)) = offset_commit(bytes)
                && g == group
            {
                found = Some((v, header.base_offset));
            }
        }
        let start = running.log.read().start_offset().0;
        let (value, at) = match found {
            Some((value, at)) => (value, Some(at)),
            // Retention purged the commit the floor comes from, and every
            // later one this log held (a real coordinator keeps the offsets
            // in its own state). Not a stale read: that commit is before
            // this log's start, not after its HWM.
            None if floor.floor_at.is_some_and(|at| at < start) => {
                self.event(format!(
                    "offset fetch group {group} from {node}: purged (log start {start})"
                ));
                return Ok(());
            }
            None => (0, None),
        };
        if value < floor.acked || value < floor.fetched {
            return Err(format!(
                "consumer group {group} offset went backwards: linearizable fetch from node {node} (read log id {read_log_id:?}, HWM {hwm}) returned {value}, but {} was acked and {} fetched before",
                floor.acked, floor.fetched
            ));
        }
        let model = self.model.groups.entry(group).or_default();
        model.fetched = value;
        model.floor_at = model.floor_at.max(at);
        let restored = !gated && self.restored_leader(node, &raft);
        if restored {
            self.restored_leader_reads += 1;
        }
        let note = if restored {
            " (by a leader restored in its term)"
        } else {
            ""
        };
        self.event(format!(
            "offset fetch group {group} from {node}: {value}{note}"
        ));
        Ok(())
    }

    /// Whether `node` leads the very term it was leading when it last
    /// crashed: openraft restored it as leader (its committed vote is its
    /// own), with no new term and no new first entry.
    fn restored_leader(&self, node: u64, raft: &PartitionRaft) -> bool {
        let metrics = raft.metrics();
        let m = metrics.borrow_watched();
        m.state.is_leader() && self.nodes[&node].led_when_crashed == Some(m.current_term)
    }

    /// Retention on a random running node (`citystream_raft::apply_retention`
    /// by size; the simulation has no wall clock, so `now_ms` is 0). The
    /// node's committed log is checked first, so the model has seen every
    /// committed batch the purge may delete.
    async fn retention(&mut self) -> Result<(), String> {
        match self.pick(&self.up_nodes()) {
            Some(id) => self.retention_on(id).await,
            None => Ok(()),
        }
    }

    async fn retention_on(&mut self, id: u64) -> Result<(), String> {
        self.learn_committed(id)?;
        let running = self.nodes[&id].running.as_ref().expect("up");
        let (raft, sm) = (running.raft.clone(), running.sm.clone());
        let before = sm.log().read().start_offset().0;
        match citystream_raft::apply_retention(&raft, &sm, 0).await {
            Ok(Some(upto)) => {
                self.purges += 1;
                self.event(format!(
                    "retention on {id}: purge up to index {} (log start was {before})",
                    upto.index
                ));
            }
            Ok(None) => self.event(format!("retention on {id}: nothing to purge")),
            Err(e @ RetentionError::Stopped) | Err(e @ RetentionError::SnapshotTimedOut(_)) => {
                self.event(format!("retention on {id}: {e}"))
            }
            Err(e) => return Err(format!("retention on node {id} failed: {e}")),
        }
        Ok(())
    }

    async fn admin(&mut self) {
        let Some(leader) = self.believed_leader() else {
            return;
        };
        let raft = self.raft(leader).expect("up");
        if self.rng.random_bool(0.5) {
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            let to = self.pick(&ids).expect("nodes");
            self.event(format!("admin: transfer leadership {leader} -> {to}"));
            let _ = raft.trigger().transfer_leader(to).await;
        } else if let Some(node) = self.pick(&self.up_nodes()) {
            self.event(format!("admin: node {node} starts an election"));
            let raft = self.raft(node).expect("up");
            let _ = raft.trigger().elect(true).await;
        }
    }

    /// Checks invariants 1–3 and 5 on what every running node serves now.
    async fn check(&mut self) -> Result<(), String> {
        let new_leaders: Vec<(u64, u64)> = {
            let leaders = self.leaders.lock();
            if let Some(violation) = leaders.violation.clone() {
                return Err(violation);
            }
            leaders
                .by_term
                .iter()
                .filter(|(term, _)| !self.traced_terms.contains(term))
                .map(|(&term, &id)| (term, id))
                .collect()
        };
        for (term, id) in new_leaders {
            self.traced_terms.insert(term);
            self.event(format!("node {id} leads term {term}"));
        }
        // Lowest log start first: a node whose log starts later (after a
        // purge or a snapshot install) is read once the model has learned
        // the committed batches before its start from the others.
        let mut ids = self.up_nodes();
        ids.sort_by_key(|id| (self.start_offset(*id), *id));
        for &id in &ids {
            self.learn_committed(id)?;
        }
        for &id in &ids {
            self.check_start(id)?;
        }
        self.check_acks_on_quorum()
    }

    /// Where node `id`'s log starts: in its running log, or in what its
    /// storage kept through a crash.
    fn start_offset(&self, id: u64) -> u64 {
        let node = &self.nodes[&id];
        match (&node.running, &node.durable) {
            (Some(running), _) => running.log.read().start_offset().0,
            (None, Some(durable)) => durable.start,
            (None, None) => 0,
        }
    }

    /// Invariant 2 on running node `id`: reads its log below its high
    /// watermark from where the last check of this incarnation stopped
    /// (or its log start) and compares it with the model or extends it.
    fn learn_committed(&mut self, id: u64) -> Result<(), String> {
        let node = &self.nodes[&id];
        let running = node.running.as_ref().expect("up");
        let hwm = running.sm.high_watermark();
        // A compacted log changes below what was checked (a pass, a
        // snapshot's prefix swapped in): it is read whole every time.
        let from = if self.compacted { 0 } else { node.checked_upto };
        if hwm <= from {
            return Ok(());
        }
        let batches = {
            let log = running.log.read();
            let start = log.start_offset().0;
            if start > from && start > self.model.committed_end {
                return Err(format!(
                    "node {id}'s log starts at offset {start} (HWM {hwm}), past the end of every committed log seen so far ({}): it purged or was reset past offsets never seen committed",
                    self.model.committed_end
                ));
            }
            read_range(&log, from, hwm)
                .map_err(|e| format!("node {id} cannot read its committed log: {e}"))?
        };
        for (header, bytes) in batches {
            self.learn(id, &header, bytes)?;
        }
        let node = self.nodes.get_mut(&id).expect("known");
        node.checked_upto = hwm;
        Ok(())
    }

    /// Invariant 2, the log start of node `id` (running, or as its storage
    /// kept it through a crash): it never goes backwards, across restarts
    /// too; it is at most the node's HWM; and it is the base offset of a
    /// committed batch the model has seen, or the end of the committed log
    /// seen: a purge or a snapshot install only drops committed batches.
    fn check_start(&mut self, id: u64) -> Result<(), String> {
        let start = self.start_offset(id);
        let node = &self.nodes[&id];
        if start < node.start_seen {
            return Err(format!(
                "node {id}'s log start went backwards: {start} after {} (incarnation {})",
                node.start_seen, node.incarnation
            ));
        }
        if let Some(running) = &node.running {
            let hwm = running.sm.high_watermark();
            if start > hwm {
                return Err(format!(
                    "node {id}'s log starts at {start}, past its HWM {hwm}"
                ));
            }
        }
        if start > 0
            && start != self.model.committed_end
            && !self.model.committed.contains_key(&start)
        {
            return Err(format!(
                "node {id}'s log starts at {start}, which is neither the base offset of a committed batch nor the committed end {}",
                self.model.committed_end
            ));
        }
        if self.compacted && start > 0 {
            // No retention: only a prefix compaction removed whole may go.
            let removable = self.removable_at(self.horizons.of(id))?;
            let view =
                compaction::record_view(self.model.committed.range(..start).map(|(_, b)| b))?;
            if let Some(lost) = view.iter().find(|r| !removable.contains(r.offset)) {
                return Err(format!(
                    "node {id}'s compacted log starts at {start}: it lost the record at offset {}, which compaction up to its horizon {} keeps",
                    lost.offset, removable.horizon
                ));
            }
        }
        self.nodes.get_mut(&id).expect("known").start_seen = start;
        Ok(())
    }

    /// Invariant 3 at all times: every acked batch is held, byte for byte
    /// at its offset, by a majority of the nodes: in the log of a running
    /// node (committed or not), or in what a crashed node's storage kept.
    /// A node whose log starts after the batch counts only if the batch was
    /// seen committed (it was purged legitimately).
    fn check_acks_on_quorum(&mut self) -> Result<(), String> {
        if self.model.acked.is_empty() {
            return Ok(());
        }
        let mut holders: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut starts = BTreeMap::new();
        let mut logs = Vec::new();
        for (&id, node) in &self.nodes {
            let (start, batches) = match (&node.running, &node.durable) {
                (Some(running), _) => {
                    let log = running.log.read();
                    let batches = read_all(&log, log.next_offset().0)
                        .map_err(|e| format!("node {id} log unreadable: {e}"))?;
                    (log.start_offset().0, batches)
                }
                (None, Some(durable)) => (durable.start, durable.batches.clone()),
                (None, None) => (0, Vec::new()),
            };
            starts.insert(id, start);
            logs.push((id, batches));
        }
        for (id, batches) in logs {
            for (header, bytes) in batches {
                let covered: Vec<u64> = self
                    .model
                    .acked
                    .range(header.base_offset..header.next_offset())
                    .map(|(&offset, _)| offset)
                    .collect();
                for offset in covered {
                    if self.holds_ack(id, offset, &header, &bytes)? {
                        holders.entry(offset).or_default().push(id);
                        self.model.served.entry(offset).or_default().insert(id);
                    }
                }
            }
        }
        let quorum = self.nodes.len() / 2 + 1;
        for (offset, ack) in &self.model.acked {
            let held = holders.get(offset).map_or(&[][..], |v| &v[..]);
            let purged: Vec<u64> = if self.model.committed.contains_key(offset) {
                starts
                    .iter()
                    .filter(|&(_, &start)| start > *offset)
                    .map(|(&id, _)| id)
                    .collect()
            } else {
                Vec::new()
            };
            if held.len() + purged.len() < quorum {
                return Err(format!(
                    "acknowledged write {} at offset {offset} is held by nodes {held:?} only (purged after being seen committed on {purged:?}; log starts {starts:?}), fewer than a quorum of {quorum}",
                    ack.label
                ));
            }
        }
        Ok(())
    }

    /// Compares a committed batch node `id` serves with the model, or adds
    /// it to the model if it is the next one.
    fn learn(&mut self, id: u64, header: &BatchHeader, bytes: Bytes) -> Result<(), String> {
        let offset = header.base_offset;
        if let Some(known) = self.model.committed.get(&offset) {
            if *known != bytes && self.compacted && header.is_compacted() {
                return self.check_compacted_on(id, &bytes).map_err(|e| {
                    format!("committed entry changed, and not by a valid compaction: node {id} serves at offset {offset}: {e}")
                });
            }
            if *known != bytes {
                return Err(format!(
                    "committed entry changed: node {id} serves at offset {offset} (term {}, raft index {}) a batch that differs from the committed one (term {}, index {})",
                    header.term,
                    header.raft_index,
                    BatchHeader::decode(known).map(|h| h.term).unwrap_or(0),
                    BatchHeader::decode(known)
                        .map(|h| h.raft_index)
                        .unwrap_or(0),
                ));
            }
            return Ok(());
        }
        if offset != self.model.committed_end {
            return Err(format!(
                "node {id} serves committed offset {offset} but the committed log known so far ends at {}",
                self.model.committed_end
            ));
        }
        if header.is_compacted() {
            return Err(format!(
                "node {id} serves a compacted batch at offset {offset}, never seen committed in its original form"
            ));
        }
        if let Some(ack) = self.model.acked.get(&offset) {
            check_ack(offset, ack, &bytes).map_err(|e| format!("node {id}: {e}"))?;
        }
        if let Some((group, value)) = offset_commit(&bytes) {
            let model = self.model.groups.entry(group).or_default();
            if value <= model.committed {
                return Err(format!(
                    "consumer group {group} offset goes backwards in the committed log: {value} at offset {offset} after {}",
                    model.committed
                ));
            }
            model.committed = value;
        }
        self.model.committed_end = header.next_offset();
        self.model.committed.insert(offset, bytes);
        Ok(())
    }

    /// Heals everything, lets the group converge, and checks invariants
    /// 3 and 4 on every replica.
    async fn finish(mut self) -> Result<Outcome, String> {
        self.event("final: heal, restart all, loss-free network".into());
        self.net.heal();
        self.net.set_faults(NetFaults {
            max_delay_ms: 20,
            drop_per_mille: 0,
            dup_per_mille: 0,
        });
        for id in self.down_nodes() {
            self.start_node(id).await?;
        }
        let deadline = Instant::now() + SETTLE_WAIT;
        // One write acked in the final term commits everything before it.
        let mut n = 0u32;
        loop {
            if Instant::now() > deadline {
                return Err("no write was acked within 60 s after the final heal".into());
            }
            if let Some(leader) = self.believed_leader() {
                n += 1;
                let mut builder = BatchBuilder::new();
                builder
                    .push(0, Some(b"final"), format!("final-{n}").as_bytes(), &[])
                    .expect("small");
                let batch = self.stamp(builder.finish());
                if self.write(leader, batch).await.is_ok() {
                    self.event(format!("final write acked via {leader}"));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !self.compacted {
            // Retention on every node before converging, so the final
            // comparison also covers purged logs and snapshot installs.
            for id in self.nodes.keys().copied().collect::<Vec<_>>() {
                self.retention_on(id).await?;
            }
        }
        let mut end = self.converge(deadline).await?;
        if self.compacted {
            self.compact_everywhere(deadline).await?;
            end = self.converge(deadline).await?;
        }
        self.event(format!("settled at offset {end}"));
        if self.config.sabotage == Some(Sabotage::CorruptReplica) {
            corrupt_last_segment(&self.nodes[&1].storage);
            self.event("sabotage: corrupted node 1's log".into());
        }
        if self.config.sabotage == Some(Sabotage::PhantomAck) {
            let ack = Ack {
                last_offset: end,
                records: Bytes::from_static(b"never written"),
                label: "phantom".into(),
            };
            self.model.acked.insert(end, ack);
            self.event(format!("sabotage: phantom ack at {end}"));
        }
        self.check().await?;
        let logs = self.final_logs(end)?;
        if self.compacted {
            self.compacted_replicas_agree(&logs)?;
        } else {
            replicas_identical(&logs, end)?;
        }
        self.acks_served_at_end(&logs)?;
        for line in self.net.take_log() {
            eprintln!("net {line}");
        }
        Ok(self.outcome().await)
    }

    /// Waits until every node's HWM and log end are one same offset, and
    /// returns it.
    async fn converge(&self, deadline: Instant) -> Result<u64, String> {
        loop {
            let ends: BTreeSet<(u64, u64)> = self
                .nodes
                .values()
                .map(|n| {
                    let r = n.running.as_ref().expect("all up");
                    (r.sm.high_watermark(), r.log.read().next_offset().0)
                })
                .collect();
            if ends.len() == 1 {
                let (hwm, next) = *ends.iter().next().expect("one");
                if hwm == next {
                    return Ok(next);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "replicas did not converge within 60 s of healing: (hwm, log end) per node {ends:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every node's batches, each log ending at `end` (invariant 4).
    fn final_logs(&self, end: u64) -> Result<FinalLogs, String> {
        let mut logs = BTreeMap::new();
        for (&id, node) in &self.nodes {
            let running = node.running.as_ref().expect("all up");
            let log = running.log.read();
            if log.next_offset().0 != end {
                return Err(format!(
                    "replicas differ after healing: node {id}'s log ends at {}, not {end}",
                    log.next_offset().0
                ));
            }
            let batches = read_all(&log, end)
                .map_err(|e| format!("node {id} log unreadable after healing: {e}"))?;
            let final_log = FinalLog {
                start: log.start_offset().0,
                clean_end: log.clean_end().0,
                batches,
            };
            logs.insert(id, final_log);
        }
        Ok(logs)
    }

    /// Invariant 3 at the end: every node serves every acked batch at or
    /// after its log start (in a compacted seed, or a valid compaction of
    /// it); a batch below a node's start was seen committed (purged
    /// legitimately); and a majority of the nodes was seen holding every
    /// acked batch at some check. (Not every node: a node that installed a
    /// snapshot never held the batches before it, while another node that
    /// has not run retention still serves them.)
    fn acks_served_at_end(&mut self, logs: &FinalLogs) -> Result<(), String> {
        let starts: BTreeMap<u64, u64> = logs.iter().map(|(&id, l)| (id, l.start)).collect();
        let acked: Vec<(u64, Ack)> = self
            .model
            .acked
            .iter()
            .map(|(&o, a)| (o, a.clone()))
            .collect();
        for (&id, log) in logs {
            let start = log.start;
            let by_offset: BTreeMap<u64, &(BatchHeader, Bytes)> =
                log.batches.iter().map(|b| (b.0.base_offset, b)).collect();
            for (offset, ack) in &acked {
                let offset = *offset;
                if offset < start {
                    if !self.model.committed.contains_key(&offset) {
                        return Err(format!(
                            "acknowledged write {} at offset {offset} is below node {id}'s log start {start} but was never seen committed",
                            ack.label
                        ));
                    }
                    continue;
                }
                let found = if self.compacted {
                    by_offset
                        .range(..=offset)
                        .next_back()
                        .map(|(_, b)| *b)
                        .filter(|(h, _)| h.next_offset() > offset)
                } else {
                    by_offset.get(&offset).copied()
                };
                let Some((header, batch)) = found else {
                    return Err(format!(
                        "acknowledged write {} at offset {offset} is missing on node {id} after healing (log start {start})",
                        ack.label
                    ));
                };
                if !self.holds_ack(id, offset, header, batch)? {
                    check_ack(offset, ack, batch).map_err(|e| format!("node {id}: {e}"))?;
                }
                self.model.served.entry(offset).or_default().insert(id);
            }
        }
        let quorum = self.nodes.len() / 2 + 1;
        for (offset, ack) in &acked {
            let served = self.model.served.get(offset).map_or(0, BTreeSet::len);
            if served < quorum {
                return Err(format!(
                    "acknowledged write {} at offset {offset} was never seen held by a quorum of {quorum} (only by {:?}; log starts {starts:?})",
                    ack.label,
                    self.model.served.get(offset)
                ));
            }
        }
        Ok(())
    }

    /// Stops every node and sums the run up.
    async fn outcome(self) -> Outcome {
        let mut hasher = DefaultHasher::new();
        self.trace.lock().hash(&mut hasher);
        let terms = self.leaders.lock().by_term.len();
        for node in self.nodes.values() {
            if let Some(running) = &node.running {
                for task in &running.tasks {
                    task.abort();
                }
                let _ = running.raft.shutdown().await;
            }
        }
        Outcome {
            seed: self.seed,
            trace_hash: hasher.finish(),
            acked_writes: self.model.acked.len(),
            committed_batches: self.model.committed.len(),
            crashes: self.crashes,
            power_losses: self.power_losses,
            restored_leader_reads: self.restored_leader_reads,
            partitions: self.partitions,
            purges: self.purges,
            compacted: self.compacted,
            compaction_passes: self.compaction_passes,
            interrupted_passes: self.interrupted_passes,
            key_map_bounded: self.compacted && compaction::key_map_bounded(self.seed),
            expired_tombstones: self.expired_tombstones,
            terms,
            simulated_ms: self.start.elapsed().as_millis() as u64,
            net: self.net.stats(),
            trace: self.trace.lock().clone(),
        }
    }
}

/// A node's log after the final heal.
struct FinalLog {
    start: u64,
    clean_end: u64,
    batches: Vec<(BatchHeader, Bytes)>,
}

type FinalLogs = BTreeMap<u64, FinalLog>;

/// Invariant 4: byte-identical replicas over the range they all still
/// hold, [highest log start, end).
fn replicas_identical(logs: &FinalLogs, end: u64) -> Result<(), String> {
    let starts: BTreeMap<u64, u64> = logs.iter().map(|(&id, l)| (id, l.start)).collect();
    let common = *starts.values().max().expect("nodes");
    let (&first_id, first) = logs.iter().next().expect("nodes");
    let tail = |log: &FinalLog| -> Vec<(BatchHeader, Bytes)> {
        log.batches
            .iter()
            .filter(|(h, _)| h.base_offset >= common)
            .cloned()
            .collect()
    };
    let first_tail = tail(first);
    for (&id, log) in logs {
        let other = tail(log);
        if other.len() != first_tail.len() {
            return Err(format!(
                "replicas differ after healing: over [{common}, {end}) node {first_id} has {} batches, node {id} {} (log starts {starts:?})",
                first_tail.len(),
                other.len()
            ));
        }
        for ((ha, a), (hb, b)) in first_tail.iter().zip(&other) {
            if a != b {
                return Err(format!(
                    "replicas differ after healing: node {first_id} offset {} vs node {id} offset {}",
                    ha.base_offset, hb.base_offset
                ));
            }
        }
    }
    Ok(())
}

/// The broker's heartbeat ticker for one group.
async fn heartbeats(raft: PartitionRaft) {
    let mut tick = tokio::time::interval(Duration::from_millis(TIMING.heartbeat_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if raft.is_leader() && raft.trigger().heartbeat().await.is_err() {
            return;
        }
    }
}

/// Records every (term, leader) the node's metrics show; a second leader
/// for a term is a violation of invariant 1.
async fn watch_leaders(raft: PartitionRaft, leaders: Arc<Mutex<Leaders>>) {
    let mut metrics = raft.metrics();
    loop {
        let seen = {
            let m = metrics.borrow_watched();
            m.state.is_leader().then_some((m.current_term, m.id))
        };
        if let Some((term, id)) = seen {
            let mut leaders = leaders.lock();
            let known = *leaders.by_term.entry(term).or_insert(id);
            if known != id && leaders.violation.is_none() {
                leaders.violation = Some(format!(
                    "two leaders in term {term}: node {known} and node {id}"
                ));
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// What a crashed node's storage holds: a log opened (recovered) on a
/// copy of its files, so the node's own storage is left as the crash left
/// it for the restart to recover.
fn durable_batches(storage: &MemoryStorage, config: LogConfig) -> Result<Durable, String> {
    use citystream_log::Storage;
    let copy = MemoryStorage::new();
    for name in storage.list().map_err(|e| e.to_string())? {
        if let Some(bytes) = storage.file_bytes(&name) {
            copy.set_file_bytes(&name, bytes);
        }
    }
    let log = PartitionLog::open_with(Arc::new(copy), config).map_err(|e| e.to_string())?;
    Ok(Durable {
        start: log.start_offset().0,
        batches: read_all(&log, log.next_offset().0)?,
    })
}

/// The batch of `log` starting at `offset`.
fn read_batch_at(log: &PartitionLog, offset: u64) -> Result<Bytes, String> {
    let mut bytes = log
        .read(Offset(offset), 1)
        .map_err(|e| e.to_string())?
        .bytes;
    let header = BatchHeader::decode(&bytes).map_err(|e| e.to_string())?;
    if header.base_offset != offset {
        return Err(format!(
            "offset {offset} is inside a batch starting at {}",
            header.base_offset
        ));
    }
    Ok(bytes.split_to(header.batch_len as usize))
}

/// The batch of `log` that covers `offset` (a gap may start before it).
fn read_covering(log: &PartitionLog, offset: u64) -> Result<(BatchHeader, Bytes), String> {
    let mut bytes = log
        .read(Offset(offset), 1)
        .map_err(|e| e.to_string())?
        .bytes;
    let header = BatchHeader::decode(&bytes).map_err(|e| e.to_string())?;
    if header.base_offset > offset || header.next_offset() <= offset {
        return Err(format!(
            "a read at {offset} returned the batch [{}, {})",
            header.base_offset,
            header.next_offset()
        ));
    }
    Ok((header, bytes.split_to(header.batch_len as usize)))
}

/// Whole batches of `log` with base offsets in `[from, to)`.
fn read_range(log: &PartitionLog, from: u64, to: u64) -> Result<Vec<(BatchHeader, Bytes)>, String> {
    let mut batches = Vec::new();
    let mut offset = from.max(log.start_offset().0);
    while offset < to {
        let mut bytes = log
            .read(Offset(offset), 64 * 1024)
            .map_err(|e| format!("read at {offset}: {e}"))?
            .bytes;
        if bytes.is_empty() {
            return Err(format!("nothing to read at {offset} below {to}"));
        }
        while !bytes.is_empty() && offset < to {
            let header = BatchHeader::decode(&bytes).map_err(|e| e.to_string())?;
            offset = header.next_offset();
            batches.push((header, bytes.split_to(header.batch_len as usize)));
        }
    }
    Ok(batches)
}

fn read_all(log: &PartitionLog, to: u64) -> Result<Vec<(BatchHeader, Bytes)>, String> {
    read_range(log, 0, to)
}

/// Whether a committed batch holds what its ack promised.
fn check_ack(offset: u64, ack: &Ack, batch: &Bytes) -> Result<(), String> {
    let header = BatchHeader::decode(batch).map_err(|e| e.to_string())?;
    if header.last_offset() != ack.last_offset
        || batch.get(BATCH_HEADER_LEN..) != Some(&ack.records[..])
    {
        return Err(format!(
            "acknowledged write {} at offset {offset} is not readable there: the batch at {offset} ends at {} and holds other records",
            ack.label,
            header.last_offset()
        ));
    }
    Ok(())
}

/// The (group, offset) an offset-commit batch carries.
fn offset_commit(bytes: &Bytes) -> Option<(u32, u64)> {
    let batch = RecordBatch::from_bytes(bytes.clone()).ok()?;
    if batch.header().is_control() {
        return None;
    }
    let record = batch.records().next()?;
    let key = std::str::from_utf8(record.key?).ok()?;
    let group = key.strip_prefix(OFFSETS_KEY_PREFIX)?.parse().ok()?;
    // The simulated commits always carry a value; a null one is not a commit.
    let value = std::str::from_utf8(record.value?).ok()?.parse().ok()?;
    Some((group, value))
}

/// Flips the last byte of the largest log segment file (a record byte of
/// the last batch), keeping it marked synced.
fn corrupt_last_segment(storage: &MemoryStorage) {
    use citystream_log::Storage;
    let mut names = storage.list().expect("memory storage lists");
    names.sort();
    let segment = names
        .iter()
        .filter(|n| n.ends_with(".log"))
        .max()
        .cloned()
        .expect("a segment file");
    let mut bytes = storage.file_bytes(&segment).expect("segment bytes");
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x55;
    }
    storage.set_file_bytes(&segment, bytes);
}
