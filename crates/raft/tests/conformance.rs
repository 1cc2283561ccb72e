//! openraft's own storage conformance suite (`openraft::testing::log::Suite`,
//! 42 checks of log state, vote, reads, truncation, purge, apply and
//! snapshot transfer) run over [`PartitionRaftStorage`] and
//! [`PartitionStateMachine`], on the log's memory backend and on real files
//! in a temporary directory. Segments are tiny so that reads, truncation
//! and purges cross segment boundaries.

use std::sync::Arc;

use citystream_log::{FileStorage, FsyncPolicy, LogConfig, MemoryStorage, PartitionLog, Storage};
use citystream_raft::{PartitionRaftStorage, PartitionStateMachine, Tc, seeded};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use parking_lot::RwLock;

fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 512,
        index_interval_bytes: 128,
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    }
}

fn build_on(
    storage: Arc<dyn Storage>,
) -> Result<(PartitionRaftStorage, PartitionStateMachine), StorageError<Tc>> {
    let log = PartitionLog::open_with(storage.clone(), log_config()).expect("log opens");
    let log = Arc::new(RwLock::new(log));
    let raft_storage = PartitionRaftStorage::open(log.clone(), storage.clone())
        .map_err(|e| StorageError::read(Tc::err_from_error(&e)))?;
    let sm = PartitionStateMachine::open(log, storage)
        .map_err(|e| StorageError::read(Tc::err_from_error(&e)))?;
    Ok((raft_storage, sm))
}

struct MemoryBuilder;

impl StoreBuilder<Tc, PartitionRaftStorage, PartitionStateMachine> for MemoryBuilder {
    async fn build(
        &self,
    ) -> Result<((), PartitionRaftStorage, PartitionStateMachine), StorageError<Tc>> {
        let (storage, sm) = build_on(Arc::new(MemoryStorage::new()))?;
        Ok(((), storage, sm))
    }
}

struct FileBuilder;

impl StoreBuilder<Tc, PartitionRaftStorage, PartitionStateMachine, tempfile::TempDir>
    for FileBuilder
{
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            PartitionRaftStorage,
            PartitionStateMachine,
        ),
        StorageError<Tc>,
    > {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = FileStorage::new(dir.path()).expect("file storage");
        let (storage, sm) = build_on(Arc::new(storage))?;
        Ok((dir, storage, sm))
    }
}

/// The storage passes openraft's whole suite on the in-memory backend.
#[tokio::test]
async fn suite_on_memory_storage() {
    seeded(1, Suite::test_all(MemoryBuilder))
        .await
        .expect("openraft storage suite on MemoryStorage");
}

/// The storage passes openraft's whole suite on files in a temp directory.
#[tokio::test]
async fn suite_on_file_storage() {
    seeded(2, Suite::test_all(FileBuilder))
        .await
        .expect("openraft storage suite on FileStorage");
}
