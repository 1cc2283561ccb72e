//! [`SubscriberConfig`]: what a role may be told, with defaults for all
//! but where the archive goes. Rule settings live with their rules
//! (`monitor/`, `traffic.rs`, `analytics/`); this file holds the shell's
//! limits.

use std::path::PathBuf;

use crate::analytics::AnalyticsConfig;
use crate::monitor::thresholds::{ThresholdRule, default_thresholds};
use crate::monitor::zscore::ZScoreConfig;
use crate::traffic::CongestionConfig;

#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// Where the archiver writes `<station>.csv`.
    pub archive_dir: PathBuf,
    /// fsync each CSV file written to before offsets are committed
    /// (otherwise only flushed to the OS).
    pub archive_fsync: bool,
    /// Monitor: fixed limits.
    pub thresholds: Vec<ThresholdRule>,
    /// Monitor: rolling z-scores.
    pub zscore: ZScoreConfig,
    /// Traffic manager: when congestion is advised.
    pub congestion: CongestionConfig,
    pub analytics: AnalyticsConfig,
    /// Readings per input partition read again, outputs suppressed, before
    /// the first reading a (re)started stateful role processes, so its
    /// windows and episodes are what they were (0: start empty).
    pub replay_records: u64,
    /// Records per output partition read back on start to find what was
    /// already written. Outputs written after the last commit (at most
    /// `commit_interval_ms` of them) must fall within it.
    pub scan_records: u64,
    /// Outputs are flushed (acknowledged, fsynced) and the inputs committed
    /// at most this often: a commit is a replicated metadata write, too
    /// costly per poll at low rates (0: after every poll). Five subscribers
    /// committing every 2 s are 2.5 metadata writes a second; 100,000
    /// scanned records cover 2 s of outputs at 50,000 readings/s.
    pub commit_interval_ms: u64,
    /// Longest wait of one poll for readings.
    pub poll_timeout_ms: u64,
    /// Bytes one fetch may return: bounds the readings of one poll, hence
    /// the outputs written between two commits.
    pub fetch_bytes_max: u32,
    /// A fetch is answered once this many bytes are ready or after
    /// `fetch_wait_ms`: at the city's default rates a subscriber then makes
    /// a few fetches a second per broker instead of one per reading, for up
    /// to `fetch_wait_ms` of added latency.
    pub fetch_bytes_min: u32,
    pub fetch_wait_ms: u32,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            archive_dir: PathBuf::from("city-archive"),
            archive_fsync: true,
            thresholds: default_thresholds(),
            zscore: ZScoreConfig::default(),
            congestion: CongestionConfig::default(),
            analytics: AnalyticsConfig::default(),
            replay_records: 10_000,
            scan_records: 100_000,
            commit_interval_ms: 2_000,
            poll_timeout_ms: 500,
            fetch_bytes_max: 1024 * 1024,
            fetch_bytes_min: 64 * 1024,
            fetch_wait_ms: 500,
        }
    }
}

impl SubscriberConfig {
    /// The defaults, archiving into `archive_dir`.
    pub fn new(archive_dir: impl Into<PathBuf>) -> SubscriberConfig {
        SubscriberConfig {
            archive_dir: archive_dir.into(),
            ..SubscriberConfig::default()
        }
    }
}
