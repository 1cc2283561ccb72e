//! Properties of [`PartitionRaftStorage`] that openraft's suite does not
//! check because they are ours: offsets assigned on append, stamped headers
//! read back without copying, durability before `IOFlushed`, refusal of a
//! replicated batch whose offset diverged, offsets rewound by truncation,
//! and state recovered after a restart, including the committed log id,
//! which comes back no further than the log backs it.

use std::io;
use std::sync::Arc;

use citystream_log::{
    BatchHeader, FileStorage, FsyncPolicy, LogConfig, MemoryStorage, PartitionLog, Storage,
};
use citystream_raft::{
    BatchData, PartitionRaftStorage, RAFT_STATE_FILE, SharedLog, Tc, UnsyncedLogs, seeded,
};
use citystream_record::BatchBuilder;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::{EntryOf, LogIdOf};
use openraft::{Entry, EntryPayload, LogId, RaftLogReader, Vote};
use parking_lot::RwLock;

fn open(storage: Arc<dyn Storage>, fsync: FsyncPolicy) -> (PartitionRaftStorage, SharedLog) {
    let config = LogConfig {
        segment_bytes_max: 512,
        fsync,
        ..LogConfig::default()
    };
    let log = Arc::new(RwLock::new(
        PartitionLog::open_with(storage.clone(), config).unwrap(),
    ));
    (
        PartitionRaftStorage::open(log.clone(), storage).unwrap(),
        log,
    )
}

fn id(term: u64, index: u64) -> LogIdOf<Tc> {
    LogId::new_term_index(term, index)
}

/// A data entry holding a batch of `records` records tagged `tag`.
fn data(term: u64, index: u64, tag: &str, records: u32) -> EntryOf<Tc> {
    let mut builder = BatchBuilder::new();
    for i in 0..records {
        builder
            .push(
                1_000 + i64::from(i),
                None,
                format!("{tag}-{i}").as_bytes(),
                &[],
            )
            .unwrap();
    }
    let payload = EntryPayload::Normal(BatchData::new(builder.finish()));
    Entry {
        log_id: id(term, index),
        payload,
    }
}

fn blank(term: u64, index: u64) -> EntryOf<Tc> {
    Entry {
        log_id: id(term, index),
        payload: EntryPayload::Blank,
    }
}

/// Appends and waits for the `IOFlushed` callback.
async fn append(store: &mut PartitionRaftStorage, entries: Vec<EntryOf<Tc>>) -> io::Result<()> {
    let (tx, rx) = Tc::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.expect("callback completed")
}

fn header_of(entry: &EntryOf<Tc>) -> BatchHeader {
    match &entry.payload {
        EntryPayload::Normal(data) => BatchHeader::decode(&data.bytes).unwrap(),
        other => panic!("expected a data entry, got {other:?}"),
    }
}

/// Each entry takes the next offsets (a blank entry one, a data batch one
/// per record), and reads back with the header the log stamped: offset,
/// term and Raft index (the openraft index plus one).
#[tokio::test]
async fn append_assigns_dense_offsets_and_reads_back_stamped() {
    seeded(1, async {
        let (mut store, log) = open(Arc::new(MemoryStorage::new()), FsyncPolicy::Always);
        let entries = vec![
            blank(1, 0),
            data(1, 1, "a", 2),
            data(1, 2, "b", 3),
            data(2, 3, "c", 1),
        ];
        append(&mut store, entries).await.unwrap();
        assert_eq!(log.read().next_offset().0, 1 + 2 + 3 + 1);
        let read = store
            .get_log_reader()
            .await
            .try_get_log_entries(0..)
            .await
            .unwrap();
        assert_eq!(read.len(), 4);
        assert!(matches!(read[0].payload, EntryPayload::Blank));
        let stamped: Vec<_> = read[1..]
            .iter()
            .map(|e| {
                let h = header_of(e);
                (h.base_offset, h.term, h.raft_index)
            })
            .collect();
        assert_eq!(stamped, [(1, 1, 2), (3, 1, 3), (6, 2, 4)]);
        assert_eq!(read[3].log_id, id(2, 3));
    })
    .await;
}

/// Under the `Interval` policy without a group commit an append is
/// fsynced before `IOFlushed` reports it, so it survives a power loss; under `Never` the callback is
/// completed without fsync and the entries are lost (the documented lie).
#[tokio::test]
async fn acknowledged_appends_survive_a_crash_unless_fsync_is_never() {
    seeded(2, async {
        for (fsync, survives) in [
            (FsyncPolicy::Interval { interval_ms: 5 }, true),
            (FsyncPolicy::Never, false),
        ] {
            let storage = MemoryStorage::new();
            let (mut store, log) = open(Arc::new(storage.clone()), fsync);
            append(&mut store, vec![blank(1, 0), data(1, 1, "a", 2)])
                .await
                .unwrap();
            store.save_vote(&Vote::new_committed(1, 7)).await.unwrap();
            drop((store, log));
            storage.crash();
            let (mut store, _log) = open(Arc::new(storage), fsync);
            let state = store.get_log_state().await.unwrap();
            let expected = survives.then(|| id(1, 1));
            assert_eq!(state.last_log_id, expected, "{fsync:?}");
            let vote = store.get_log_reader().await.read_vote().await.unwrap();
            assert_eq!(
                vote,
                Some(Vote::new_committed(1, 7)),
                "the vote file is atomic"
            );
        }
    })
    .await;
}

/// Decision 0020: with the node's group commit, an `Interval` append is
/// reported flushed once written, before any fsync (a power loss right
/// then loses it; a process crash does not, the page cache keeps it), and
/// the log is noted; the node's interval fsync (`sync_all`) makes it
/// durable. A vote still syncs the appends before it.
#[tokio::test]
async fn group_commit_defers_the_fsync_of_interval_appends() {
    seeded(3, async {
        let interval = FsyncPolicy::Interval { interval_ms: 5 };
        for synced_by in ["nothing", "the group commit", "a vote"] {
            let storage = MemoryStorage::new();
            let unsynced = UnsyncedLogs::new();
            let (store, log) = open(Arc::new(storage.clone()), interval);
            let mut store = store.with_group_commit(Arc::clone(&unsynced));
            append(&mut store, vec![blank(1, 0), data(1, 1, "a", 2)])
                .await
                .unwrap();
            match synced_by {
                "the group commit" => unsynced.sync_all().unwrap(),
                "a vote" => store.save_vote(&Vote::new_committed(1, 7)).await.unwrap(),
                _ => {}
            }
            drop((store, log));
            storage.crash();
            let (mut store, _log) = open(Arc::new(storage), interval);
            let state = store.get_log_state().await.unwrap();
            let expected = (synced_by != "nothing").then(|| id(1, 1));
            assert_eq!(state.last_log_id, expected, "synced by {synced_by}");
        }
    })
    .await;
}

/// A replicated batch carrying another offset than this log would assign
/// is refused before anything is written: the replicas diverged.
#[tokio::test]
async fn replicated_batch_with_diverged_offset_is_refused() {
    seeded(3, async {
        let (mut leader, _) = open(Arc::new(MemoryStorage::new()), FsyncPolicy::Always);
        append(&mut leader, vec![blank(1, 0), data(1, 1, "a", 3)])
            .await
            .unwrap();
        let stamped = leader
            .get_log_reader()
            .await
            .try_get_log_entries(1..2)
            .await
            .unwrap();

        let (mut follower, log) = open(Arc::new(MemoryStorage::new()), FsyncPolicy::Always);
        // Same index, but the follower's log is one offset longer.
        append(&mut follower, vec![data(1, 0, "x", 2)])
            .await
            .unwrap();
        let err = append(&mut follower, stamped).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert_eq!(log.read().next_offset().0, 2, "nothing was written");
    })
    .await;
}

/// Truncating after an entry removes the later batches and rewinds the
/// log end to where the first removed batch started; the next entry for
/// that index takes those offsets.
#[tokio::test]
async fn truncate_after_rewinds_offsets() {
    seeded(4, async {
        let (mut store, log) = open(Arc::new(MemoryStorage::new()), FsyncPolicy::Always);
        let entries = (0..6).map(|i| data(1, i, "t", 5)).collect();
        append(&mut store, entries).await.unwrap();
        store.truncate_after(Some(id(1, 1))).await.unwrap();
        assert_eq!(log.read().next_offset().0, 10);
        assert_eq!(
            store.get_log_state().await.unwrap().last_log_id,
            Some(id(1, 1))
        );
        append(&mut store, vec![data(2, 2, "new", 1)])
            .await
            .unwrap();
        let read = store
            .get_log_reader()
            .await
            .try_get_log_entries(2..)
            .await
            .unwrap();
        assert_eq!(header_of(&read[0]).base_offset, 10);
        store.truncate_after(None).await.unwrap();
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
        assert_eq!(log.read().next_offset().0, 0);
    })
    .await;
}

/// After a restart on real files (the `raft-state` file beside the
/// segments), the log state, last purged id and vote are what they were.
#[tokio::test]
async fn restart_recovers_log_state_and_vote() {
    seeded(5, async {
        let dir = tempfile::tempdir().unwrap();
        let reopen = || {
            open(
                Arc::new(FileStorage::new(dir.path()).unwrap()),
                FsyncPolicy::Always,
            )
        };
        let (mut store, log) = reopen();
        let entries = (0..20).map(|i| data(1 + i / 10, i, "r", 2)).collect();
        append(&mut store, entries).await.unwrap();
        store.save_committed(Some(id(1, 6))).await.unwrap();
        store.save_vote(&Vote::new_committed(2, 3)).await.unwrap();
        // Appended to the file the vote's rename put in place.
        store.save_committed(Some(id(2, 12))).await.unwrap();
        store.purge(id(1, 4)).await.unwrap();
        store.save_committed(Some(id(2, 15))).await.unwrap();
        let before = store.get_log_state().await.unwrap();
        assert_eq!(before.last_purged_log_id, Some(id(1, 4)));
        assert_eq!(before.last_log_id, Some(id(2, 19)));
        drop((store, log));

        let (mut store, _log) = reopen();
        assert_eq!(store.get_log_state().await.unwrap(), before);
        assert_eq!(store.read_committed().await.unwrap(), Some(id(2, 15)));
        let mut reader = store.get_log_reader().await;
        assert_eq!(
            reader.read_vote().await.unwrap(),
            Some(Vote::new_committed(2, 3))
        );
        let read = reader.try_get_log_entries(0..).await.unwrap();
        assert_eq!(
            read.first().map(|e| e.log_id),
            Some(id(1, 5)),
            "purged entries are not served"
        );
        assert_eq!(read.len(), 15);
        assert_eq!(
            header_of(&read[0]).base_offset,
            10,
            "5 purged batches of 2 records"
        );
    })
    .await;
}

/// A saved committed id comes back after a process crash (the record is
/// in the page cache, not fsynced), and also after a power loss once a
/// header rewrite (here the vote's) carried it; the latest record alone
/// does not survive a power loss.
#[tokio::test]
async fn committed_survives_a_restart() {
    seeded(6, async {
        let storage = MemoryStorage::new();
        let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Always);
        let entries = (0..10).map(|i| data(1, i, "c", 1)).collect();
        append(&mut store, entries).await.unwrap();
        store.save_committed(Some(id(1, 3))).await.unwrap();
        store.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
        store.save_committed(Some(id(1, 7))).await.unwrap();
        drop((store, log));

        let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Always);
        assert_eq!(
            store.read_committed().await.unwrap(),
            Some(id(1, 7)),
            "kill -9"
        );
        drop((store, log));

        storage.crash();
        let (mut store, _log) = open(Arc::new(storage), FsyncPolicy::Always);
        assert_eq!(
            store.read_committed().await.unwrap(),
            Some(id(1, 3)),
            "power loss: the header's id"
        );
    })
    .await;
}

/// When the log lost entries the committed id covered (here unsynced
/// entries under `FsyncPolicy::Never`, lost to a power loss while a vote
/// had made the id durable), the id comes back lowered to the log's last
/// entry, and stays lowered in the file.
#[tokio::test]
async fn committed_is_clamped_to_what_the_log_holds() {
    seeded(7, async {
        let storage = MemoryStorage::new();
        let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Always);
        let synced = (0..5).map(|i| data(1, i, "s", 1)).collect();
        append(&mut store, synced).await.unwrap();
        drop((store, log));
        let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Never);
        let unsynced = (5..10).map(|i| data(1, i, "u", 1)).collect();
        append(&mut store, unsynced).await.unwrap();
        store.save_committed(Some(id(1, 8))).await.unwrap();
        store.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
        drop((store, log));
        storage.crash();

        for _ in 0..2 {
            let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Always);
            let state = store.get_log_state().await.unwrap();
            assert_eq!(state.last_log_id, Some(id(1, 4)));
            assert_eq!(store.read_committed().await.unwrap(), Some(id(1, 4)));
            drop((store, log));
        }
    })
    .await;
}

/// A committed id at or below the last purged id, or naming another entry
/// than the log holds at its index, comes back as none: openraft restores
/// the snapshot and learns the rest from the leader.
#[tokio::test]
async fn committed_not_backed_by_the_log_is_dropped() {
    seeded(8, async {
        let storage = MemoryStorage::new();
        let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Always);
        let entries = (0..10).map(|i| data(1, i, "p", 1)).collect();
        append(&mut store, entries).await.unwrap();
        store.save_committed(Some(id(1, 3))).await.unwrap();
        store.purge(id(1, 5)).await.unwrap();
        drop((store, log));
        let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Always);
        assert_eq!(
            store.read_committed().await.unwrap(),
            None,
            "below the purge"
        );
        store.save_committed(Some(id(1, 7))).await.unwrap();
        drop((store, log));
        let (mut store, log) = open(Arc::new(storage.clone()), FsyncPolicy::Always);
        assert_eq!(store.read_committed().await.unwrap(), Some(id(1, 7)));
        drop((store, log));

        // The same file beside a log whose entry 7 has term 2.
        let other = MemoryStorage::new();
        let (mut store, log) = open(Arc::new(other.clone()), FsyncPolicy::Always);
        let entries = (0..10).map(|i| data(1 + i / 7, i, "o", 1)).collect();
        append(&mut store, entries).await.unwrap();
        drop((store, log));
        let file = storage.file_bytes(RAFT_STATE_FILE).unwrap();
        other.set_file_bytes(RAFT_STATE_FILE, file);
        let (mut store, _log) = open(Arc::new(other), FsyncPolicy::Always);
        assert_eq!(store.read_committed().await.unwrap(), None, "another term");
    })
    .await;
}
