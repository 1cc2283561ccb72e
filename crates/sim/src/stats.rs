//! Counters of a publisher run, shared with whoever prints them (the CLI's
//! summary line, `citystream demo`'s status). Relaxed atomics: each counter
//! is exact, a snapshot of several is not one instant.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct SimStats {
    /// Records handed to the producer.
    pub sent: AtomicU64,
    /// Records the broker acknowledged.
    pub acknowledged: AtomicU64,
    /// Records that were not written: refused by `send`, or whose delivery
    /// failed (after the producer's own retries).
    pub failed: AtomicU64,
    /// Records sent with `priority: high`.
    pub alarms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStatsSnapshot {
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub alarms: u64,
}

impl SimStats {
    pub fn snapshot(&self) -> SimStatsSnapshot {
        SimStatsSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            alarms: self.alarms.load(Ordering::Relaxed),
        }
    }

    /// Why the latest failed record failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("never poisoned").clone()
    }

    pub(crate) fn count_sent(&self, alarm: bool) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if alarm {
            self.alarms.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_acknowledged(&self) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `records` failures; logs the first one of a run.
    pub(crate) fn count_failed(&self, records: u64, error: &dyn std::fmt::Display) {
        let before = self.failed.fetch_add(records, Ordering::Relaxed);
        let message = error.to_string();
        if before == 0 {
            tracing::warn!(error = %message, "a city record was not written (later failures are counted, not logged)");
        }
        *self.last_error.lock().expect("never poisoned") = Some(message);
    }
}
