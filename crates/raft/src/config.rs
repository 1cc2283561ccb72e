//! openraft settings for a partition group (decision 0005 §7): timing,
//! pre-vote, and no snapshots or purges that openraft decides on its own
//! (retention decides, §2). Heartbeats are off per group: one ticker per
//! broker calls `trigger().heartbeat()` for every group it leads (§4). The
//! broker also turns openraft's tick off and starts elections itself
//! (decision 0008, `crates/server/src/node/liveness.rs`).

use std::sync::Arc;

use citystream_log::FsyncPolicy;
use openraft::{Config, ConfigError, SnapshotPolicy};

/// Heartbeat and election timing, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl Timing {
    /// The proposed default: failover measured at 0.91–1.11 s (0005 §7).
    pub const DEFAULT: Timing = Timing {
        heartbeat_ms: 100,
        election_min_ms: 300,
        election_max_ms: 600,
    };
}

impl Default for Timing {
    fn default() -> Self {
        Timing::DEFAULT
    }
}

/// The validated configuration of a partition group whose log uses `fsync`.
pub fn partition_config(timing: Timing, fsync: FsyncPolicy) -> Result<Arc<Config>, ConfigError> {
    let config = Config {
        cluster_name: "citystream".into(),
        heartbeat_interval: timing.heartbeat_ms,
        election_timeout_min: timing.election_min_ms,
        election_timeout_max: timing.election_max_ms,
        enable_heartbeat: false,
        enable_pre_vote: Some(true),
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        api_batch_linger_ms: 0,
        // Per request of a snapshot transfer: a chunk of a compacted
        // topic's prefix (1 MiB, staged and fsynced), or the install that
        // swaps the prefix in.
        install_snapshot_timeout: 10_000,
        // Unless each append is fsynced, a follower restarted after a power
        // loss may have lost entries it reported; the leader must accept
        // that instead of panicking (§9.5, decision 0020).
        allow_log_reversion: Some(fsync != FsyncPolicy::Always),
        ..Config::default()
    };
    Ok(Arc::new(config.validate()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default timing validates and keeps openraft from snapshotting,
    /// purging or heartbeating on its own.
    #[test]
    fn default_config_is_valid() {
        let config = partition_config(Timing::DEFAULT, FsyncPolicy::Always).unwrap();
        assert!(!config.enable_heartbeat);
        assert_eq!(config.snapshot_policy, SnapshotPolicy::Never);
        assert_eq!(config.election_timeout_max, 600);
        assert_eq!(config.allow_log_reversion, Some(false));
    }
}
