//! What a simulated crash keeps, and when a node's linearizable reads wait
//! for `Raft::wait_for_recovery` after one.
//!
//! A crash is a process kill or a power loss ([`CrashKind`]). They differ
//! in what `citystream-raft` gets back of the committed log id: it is
//! appended to `raft-state` without fsync, so a kill keeps it (the page
//! cache survives) and a power loss can lose the latest advances. A leader
//! that openraft restores in its own term answers linearizable reads from
//! the committed id it got back, so after a power loss that answer may be
//! behind what it acknowledged before: reads then wait for recovery
//! ([`RecoveryGate::AfterPowerLoss`]), after a kill they do not.
//!
//! This module only names the choices and draws crash kinds; the crash
//! itself is `Sim::crash_node` in the crate root.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a crash keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// The process dies (`kill -9`), the machine does not: every byte
    /// written survives, fsynced or not.
    Kill,
    /// The machine loses power: `MemoryStorage::crash()` drops every byte
    /// not fsynced.
    PowerLoss,
}

/// Which kinds of crash a seed's faults are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crashes {
    /// Each crash is a kill or a power loss, half and half.
    Mixed,
    /// Every crash is of one kind.
    Only(CrashKind),
}

impl Crashes {
    /// The value of `CITYSTREAM_SIM_CRASHES` that selects this.
    pub fn name(self) -> &'static str {
        match self {
            Crashes::Mixed => "mixed",
            Crashes::Only(CrashKind::Kill) => "kill",
            Crashes::Only(CrashKind::PowerLoss) => "power-loss",
        }
    }

    /// The inverse of [`Crashes::name`].
    pub fn parse(name: &str) -> Option<Crashes> {
        [
            Crashes::Mixed,
            Crashes::Only(CrashKind::Kill),
            Crashes::Only(CrashKind::PowerLoss),
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

/// When a node serves linearizable (offset) fetches only after
/// `Raft::wait_for_recovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryGate {
    /// Never: reads rely on the committed id `citystream-raft` persisted.
    Never,
    /// In an incarnation that began after a power loss, which may have
    /// lost the persisted committed id's latest advances.
    AfterPowerLoss,
}

impl RecoveryGate {
    /// The value of `CITYSTREAM_SIM_RECOVERY_GATE` that selects this.
    pub fn name(self) -> &'static str {
        match self {
            RecoveryGate::Never => "never",
            RecoveryGate::AfterPowerLoss => "after-power-loss",
        }
    }

    /// The inverse of [`RecoveryGate::name`].
    pub fn parse(name: &str) -> Option<RecoveryGate> {
        [RecoveryGate::Never, RecoveryGate::AfterPowerLoss]
            .into_iter()
            .find(|g| g.name() == name)
    }

    /// Whether an incarnation that began after `crash` (none: the first)
    /// waits for recovery before a read.
    pub(crate) fn applies(self, crash: Option<CrashKind>) -> bool {
        self == RecoveryGate::AfterPowerLoss && crash == Some(CrashKind::PowerLoss)
    }
}

/// Draws the kind of each crash from an RNG of its own, so that a seed's
/// workload and faults are the same whatever [`Crashes`] says.
pub(crate) struct CrashDraw {
    crashes: Crashes,
    rng: StdRng,
}

impl CrashDraw {
    pub(crate) fn new(seed: u64, crashes: Crashes) -> CrashDraw {
        // Any constant other than 0 keeps this stream apart from the
        // workload's (seeded with `seed`).
        let rng = StdRng::seed_from_u64(seed ^ 0x6372_6173_6821);
        CrashDraw { crashes, rng }
    }

    pub(crate) fn next(&mut self) -> CrashKind {
        match self.crashes {
            Crashes::Only(kind) => kind,
            Crashes::Mixed if self.rng.random_bool(0.5) => CrashKind::Kill,
            Crashes::Mixed => CrashKind::PowerLoss,
        }
    }

    /// Whether a killed node is restarted at once (half of the kills), as
    /// a supervisor would, rather than by a later restart step.
    pub(crate) fn restart_at_once(&mut self) -> bool {
        self.rng.random_bool(0.5)
    }
}
