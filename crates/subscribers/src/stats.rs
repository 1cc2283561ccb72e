//! [`SubscriberStats`]: counters a role updates as it goes, for the demo's
//! progress lines and tests. Plain atomics; several roles may share one.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::role::Role;

#[derive(Debug, Default)]
pub struct SubscriberStats {
    /// Readings processed (not counting replays that rebuild state).
    pub readings: AtomicU64,
    /// Outputs written, all kinds together.
    pub outputs: AtomicU64,
    /// `city.alerts` records written.
    pub alerts: AtomicU64,
    /// `city.advisories` records written.
    pub advisories: AtomicU64,
    /// `city.latest` records written.
    pub latest: AtomicU64,
    /// `city.analytics` window summaries written.
    pub summaries: AtomicU64,
    /// CSV rows archived.
    pub rows: AtomicU64,
    /// Outputs found already written (before a restart, or before a
    /// rebalance replayed their readings) and not written again.
    pub duplicates_skipped: AtomicU64,
    /// Readings read again, outputs suppressed, to rebuild windows and
    /// episodes after a (re)start.
    pub replayed: AtomicU64,
    /// Input records that were not readings (skipped).
    pub malformed: AtomicU64,
    /// Offset commits.
    pub commits: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub readings: u64,
    pub outputs: u64,
    pub alerts: u64,
    pub advisories: u64,
    pub latest: u64,
    pub summaries: u64,
    pub rows: u64,
    pub duplicates_skipped: u64,
    pub replayed: u64,
    pub malformed: u64,
    pub commits: u64,
}

impl SubscriberStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            readings: read(&self.readings),
            outputs: read(&self.outputs),
            alerts: read(&self.alerts),
            advisories: read(&self.advisories),
            latest: read(&self.latest),
            summaries: read(&self.summaries),
            rows: read(&self.rows),
            duplicates_skipped: read(&self.duplicates_skipped),
            replayed: read(&self.replayed),
            malformed: read(&self.malformed),
            commits: read(&self.commits),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts one output written by `role`.
    pub(crate) fn output_written(&self, role: Role) {
        SubscriberStats::add(&self.outputs, 1);
        let by_kind = match role {
            Role::Monitor => &self.alerts,
            Role::Traffic => &self.advisories,
            Role::Public => &self.latest,
            Role::Analytics => &self.summaries,
            Role::Archiver => &self.rows,
        };
        SubscriberStats::add(by_kind, 1);
    }
}
