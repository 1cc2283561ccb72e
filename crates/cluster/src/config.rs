//! openraft settings of the metadata group: a partition group's
//! ([`citystream_raft::partition_config`]) plus openraft's own snapshot
//! policy (0005 §3: every 1000 entries, keep 1000), which a partition
//! group turns off because retention decides there. Safe here because
//! every snapshot is written to `sm-state` before the log is purged.

use std::sync::Arc;

use citystream_log::FsyncPolicy;
use citystream_raft::{Timing, partition_config};
use openraft::{Config, ConfigError, SnapshotPolicy};

/// Entries between snapshots, and entries kept behind one.
pub const SNAPSHOT_ENTRIES: u64 = 1000;

/// The validated configuration of the metadata group.
pub fn metadata_config(timing: Timing, fsync: FsyncPolicy) -> Result<Arc<Config>, ConfigError> {
    let mut config = (*partition_config(timing, fsync)?).clone();
    config.cluster_name = "citystream-metadata".into();
    config.snapshot_policy = SnapshotPolicy::LogsSinceLast(SNAPSHOT_ENTRIES);
    config.max_in_snapshot_log_to_keep = SNAPSHOT_ENTRIES;
    Ok(Arc::new(config.validate()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metadata group snapshots on openraft's schedule; the rest is a
    /// partition group's configuration.
    #[test]
    fn metadata_config_snapshots() {
        let config = metadata_config(Timing::DEFAULT, FsyncPolicy::Always).unwrap();
        assert_eq!(config.snapshot_policy, SnapshotPolicy::LogsSinceLast(1000));
        assert_eq!(config.max_in_snapshot_log_to_keep, 1000);
        assert!(!config.enable_heartbeat);
    }
}
