//! openraft's storage conformance suite (`openraft::testing::log::Suite`)
//! over the metadata group's pair: citystream-raft's
//! [`PartitionRaftStorage`] and [`MetadataStateMachine`], on the log's
//! memory backend. It checks applied state, membership and snapshot
//! building and installing as openraft expects them.

use std::sync::Arc;

use citystream_cluster::MetadataStateMachine;
use citystream_log::{FsyncPolicy, LogConfig, MemoryStorage, PartitionLog, Storage};
use citystream_raft::{PartitionRaftStorage, Tc, seeded};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use parking_lot::RwLock;

struct MemoryBuilder;

impl StoreBuilder<Tc, PartitionRaftStorage, MetadataStateMachine> for MemoryBuilder {
    async fn build(
        &self,
    ) -> Result<((), PartitionRaftStorage, MetadataStateMachine), StorageError<Tc>> {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let config = LogConfig {
            segment_bytes_max: 512,
            index_interval_bytes: 128,
            fsync: FsyncPolicy::Always,
            ..LogConfig::default()
        };
        let log = PartitionLog::open_with(storage.clone(), config).expect("log opens");
        let log = Arc::new(RwLock::new(log));
        let read_error = |e: std::io::Error| StorageError::read(Tc::err_from_error(&e));
        let raft_storage =
            PartitionRaftStorage::open(log.clone(), storage.clone()).map_err(read_error)?;
        let sm = MetadataStateMachine::open(storage, log).map_err(read_error)?;
        Ok(((), raft_storage, sm))
    }
}

/// The metadata state machine passes openraft's whole suite.
#[tokio::test]
async fn suite_on_memory_storage() {
    seeded(1, Suite::test_all(MemoryBuilder))
        .await
        .expect("openraft storage suite with the metadata state machine");
}
