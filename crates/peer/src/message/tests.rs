//! Message codec tests: exact bytes, round trip of every message and
//! variant, refusal of every truncation and of trailing bytes, and
//! zero-copy batch payloads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use bytes::Bytes;
use citystream_cluster::{MetadataCommand, MetadataState};
use citystream_raft::{PartitionSnapshot, PeerAddr, PrefixChunk};
use openraft::{Entry, LogId, Membership, Snapshot, SnapshotMeta, StoredMembership};

use super::*;

fn log_id(term: u64, index: u64) -> Option<LogIdOf<Tc>> {
    Some(LogId::new_term_index(term, index))
}

fn membership() -> PartitionMembership {
    let configs = vec![BTreeSet::from([1, 2]), BTreeSet::from([2, 3])];
    let peer = |s: &str| PeerAddr { peer: s.into() };
    let nodes = BTreeMap::from([(1, peer("a:1")), (2, peer("b:2")), (3, peer(""))]);
    Membership::new(configs, nodes).unwrap()
}

fn entries() -> Vec<EntryOf<Tc>> {
    vec![
        Entry {
            log_id: LogId::new_term_index(2, 5),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: LogId::new_term_index(2, 6),
            payload: EntryPayload::Normal(BatchData::new(Bytes::from_static(b"batch-bytes"))),
        },
        Entry {
            log_id: LogId::new_term_index(3, 7),
            payload: EntryPayload::Membership(membership()),
        },
    ]
}

fn bytes_of<M: WireMessage>(message: &M) -> Bytes {
    let mut out = BytesMut::new();
    encode(message, &mut out);
    out.freeze()
}

/// `message` decodes to itself (compared by its Debug form, as openraft's
/// requests have no `PartialEq`), every strict prefix is refused, and so
/// is one extra byte.
fn check<M: WireMessage + Debug>(message: M) {
    let bytes = bytes_of(&message);
    let decoded: M = decode(bytes.clone()).unwrap();
    assert_eq!(format!("{decoded:?}"), format!("{message:?}"));
    for len in 0..bytes.len() {
        assert!(
            decode::<M>(bytes.slice(..len)).is_err(),
            "{message:?} cut at {len}"
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        decode::<M>(Bytes::from(long)).unwrap_err(),
        DecodeError::Trailing(1)
    );
}

/// Every RPC message and every response variant round-trips and refuses
/// truncation.
#[test]
fn every_message_round_trips() {
    let vote = Vote::new_committed(3, 1);
    check(AppendEntriesRequest::<Tc> {
        vote,
        prev_log_id: log_id(2, 4),
        entries: entries(),
        leader_commit: None,
    });
    check(AppendEntriesRequest::<Tc> {
        vote: Vote::new(0, 0),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: log_id(1, 1),
    });
    check(AppendEntriesResponse::<Tc>::Success);
    check(AppendEntriesResponse::<Tc>::PartialSuccess(log_id(2, 9)));
    check(AppendEntriesResponse::<Tc>::PartialSuccess(None));
    check(AppendEntriesResponse::<Tc>::Conflict);
    check(AppendEntriesResponse::<Tc>::HigherVote(Vote::new(9, 2)));
    let mut transfer_vote = VoteRequest::<Tc>::new(Vote::new(4, 2), log_id(3, 8));
    transfer_vote.leadership_transfer = true;
    check(transfer_vote);
    check(VoteRequest::<Tc>::new(Vote::new(4, 2), None));
    check(VoteResponse::<Tc>::new(Vote::new(4, 2), log_id(3, 8), true));
    check(VoteResponse::<Tc>::new(Vote::new(5, 3), None, false));
    check(SnapshotResponse::<Tc>::new(vote));
    check(TransferLeaderRequest::<Tc>::new(vote, 2, log_id(3, 7)));
    check::<TransferLeaderResponse<Tc>>(Ok(()));
    check::<TransferLeaderResponse<Tc>>(Err(TransferLeaderError::VoteChanged {
        expected: vote,
        actual: Vote::new(4, 3),
    }));
    check::<TransferLeaderResponse<Tc>>(Err(TransferLeaderError::LogNotFlushed {
        expected: log_id(3, 7),
        actual: None,
    }));
}

/// A full snapshot carries its last log id, membership (with the log id
/// that set it) and next offset.
#[test]
fn snapshot_request_round_trips() {
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            last_log_id: log_id(3, 40),
            last_membership: StoredMembership::new(log_id(2, 3), membership()),
        },
        snapshot: PartitionSnapshot {
            next_offset: 1234,
            carries_prefix: true,
            source: None,
        },
    };
    check(SnapshotRequest {
        vote: Vote::new_committed(3, 1),
        snapshot,
    });
}

/// A chunk of a compacted partition's snapshot prefix carries the vote,
/// the snapshot it belongs to, where it starts, the sender's floor and
/// the batches; an empty first chunk too.
#[test]
fn prefix_chunk_round_trips() {
    let chunk = PrefixChunk {
        vote: Vote::new_committed(3, 1),
        snapshot: LogId::new_term_index(3, 40),
        first: true,
        from_offset: 77,
        floor: (2, 12),
        batches: Bytes::from_static(b"whole batches go here"),
    };
    check(chunk.clone());
    check(PrefixChunk {
        first: false,
        batches: Bytes::new(),
        ..chunk
    });
    check(ChunkAck);
}

/// A vote request and an append request with one data entry have exactly
/// the documented bytes.
#[test]
fn exact_bytes() {
    let vote = VoteRequest::<Tc>::new(Vote::new(7, 2), log_id(6, 9));
    let expected: Vec<u8> = [
        &7u64.to_le_bytes()[..], // vote term
        &2u64.to_le_bytes(),     // voted_for
        &[0],                    // not committed
        &[1],                    // last_log_id present
        &6u64.to_le_bytes(),
        &9u64.to_le_bytes(),
        &[0], // not a leadership transfer
    ]
    .concat();
    assert_eq!(&bytes_of(&vote)[..], &expected[..]);

    let append = AppendEntriesRequest::<Tc> {
        vote: Vote::new_committed(7, 2),
        prev_log_id: None,
        entries: vec![Entry {
            log_id: LogId::new_term_index(7, 10),
            payload: EntryPayload::Normal(BatchData::new(Bytes::from_static(b"abc"))),
        }],
        leader_commit: log_id(7, 9),
    };
    let expected: Vec<u8> = [
        &7u64.to_le_bytes()[..],
        &2u64.to_le_bytes(),
        &[1],                // committed vote
        &[0],                // no prev_log_id
        &[1],                // leader_commit present
        &7u64.to_le_bytes(), // its term
        &9u64.to_le_bytes(), // its index
        &1u32.to_le_bytes(), // one entry
        &7u64.to_le_bytes(), // entry term
        &10u64.to_le_bytes(),
        &[1], // normal payload
        &3u32.to_le_bytes(),
        b"abc",
    ]
    .concat();
    assert_eq!(&bytes_of(&append)[..], &expected[..]);
}

/// A decoded data entry's batch points into the received buffer instead
/// of a copy.
#[test]
fn batch_payload_is_not_copied() {
    let request = AppendEntriesRequest::<Tc> {
        vote: Vote::new_committed(1, 1),
        prev_log_id: None,
        entries: entries(),
        leader_commit: None,
    };
    let bytes = bytes_of(&request);
    let decoded: AppendEntriesRequest<Tc> = decode(bytes.clone()).unwrap();
    let EntryPayload::Normal(data) = &decoded.entries[1].payload else {
        panic!("entry 1 is a data entry");
    };
    let range = bytes.as_ptr_range();
    assert!(range.contains(&data.bytes.as_ptr()));
}

/// An entry count larger than the bytes could hold is refused before any
/// allocation, as are unknown tags and oversized configs.
#[test]
fn corrupt_counts_and_tags_are_refused() {
    let mut out = BytesMut::new();
    put_vote(&mut out, &Vote::new(1, 1));
    put_log_id(&mut out, &None);
    put_log_id(&mut out, &None);
    out.put_u32_le(u32::MAX);
    assert!(matches!(
        decode::<AppendEntriesRequest<Tc>>(out.freeze()),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        decode::<AppendEntriesResponse<Tc>>(Bytes::from_static(&[9])),
        Err(DecodeError::UnknownTag { value: 9, .. })
    ));
    let mut reader = Reader::new(Bytes::from_static(&[3, 0, 0]));
    assert!(read_membership(&mut reader).is_err());
}

fn metadata_state() -> MetadataState {
    let mut state = MetadataState::default();
    let init = MetadataCommand::InitCluster {
        cluster_id: "city-a".into(),
    };
    state.apply(&init).unwrap();
    state
        .apply(&MetadataCommand::AllocateProducerIds { count: 7 })
        .unwrap();
    state
}

/// A metadata group's full snapshot carries the whole state, which comes
/// back equal; truncation and trailing bytes are refused like any message.
#[test]
fn metadata_snapshot_request_round_trips() {
    let state = metadata_state();
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            last_log_id: log_id(3, 40),
            last_membership: StoredMembership::new(log_id(2, 3), membership()),
        },
        snapshot: state.clone(),
    };
    let request = SnapshotRequest {
        vote: Vote::new_committed(3, 1),
        snapshot,
    };
    check(request.clone());
    let decoded: SnapshotRequest<MetadataState> = decode(bytes_of(&request)).unwrap();
    assert_eq!(decoded.snapshot.snapshot, state);
}

/// The metadata data is `state_len u32 | MetadataState::encode()`, and a
/// state this version cannot decode is refused as invalid.
#[test]
fn metadata_snapshot_data_bytes() {
    let state = metadata_state();
    let mut out = BytesMut::new();
    state.write(&mut out);
    let encoded = state.encode();
    assert_eq!(&out[..4], &(encoded.len() as u32).to_le_bytes());
    assert_eq!(&out[4..], &encoded[..]);
    let mut corrupt = BytesMut::new();
    corrupt.put_u32_le(2);
    corrupt.put_slice(b"{}");
    let mut reader = Reader::new(corrupt.freeze());
    assert!(matches!(
        MetadataState::read(&mut reader),
        Err(DecodeError::Invalid { .. })
    ));
}
