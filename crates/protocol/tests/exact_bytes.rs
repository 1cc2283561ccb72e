//! Hand-written byte vectors pin the wire layout, so an accidental change to
//! field order, width or endianness fails here even if round-trips still pass.

mod common;

use bytes::Bytes;
use citystream_protocol::*;
use common::*;

/// A Hello request is prefix, header, then version_min, version_max, client_id.
#[test]
fn hello_request_bytes() {
    let frame = RequestFrame {
        request_id: 7,
        api_version: 1,
        request: Request::Hello(HelloRequest {
            version_min: 1,
            version_max: 1,
            client_id: "cli".to_owned(),
        }),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x11, 0x00, 0x00, 0x00, // frame_len = 17
        0x00, 0x00,             // api_key = Hello
        0x01, 0x00,             // api_version = 1
        0x07, 0x00, 0x00, 0x00, // request_id = 7
        0x01, 0x00,             // version_min = 1
        0x01, 0x00,             // version_max = 1
        0x03, 0x00, b'c', b'l', b'i', // client_id = "cli"
    ];
    assert_eq!(&encoded_request(&frame)[..], expected);
    assert_eq!(
        decode_request(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
}

/// A Produce request carries acks, timeout and a list of (topic, partition, batch).
#[test]
fn produce_request_bytes() {
    let frame = RequestFrame {
        request_id: 0x0102_0304,
        api_version: 1,
        request: Request::Produce(ProduceRequest {
            acks: Acks::Leader,
            timeout_ms: 1000,
            partitions: vec![ProducePartition {
                topic: "t".to_owned(),
                partition: 5,
                batch: Bytes::from_static(b"abc"),
            }],
        }),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x1f, 0x00, 0x00, 0x00, // frame_len = 31
        0x01, 0x00,             // api_key = Produce
        0x01, 0x00,             // api_version = 1
        0x04, 0x03, 0x02, 0x01, // request_id = 0x01020304
        0x01,                   // acks = Leader
        0xe8, 0x03, 0x00, 0x00, // timeout_ms = 1000
        0x01, 0x00, 0x00, 0x00, // partitions: count = 1
        0x01, 0x00, b't',       //   topic = "t"
        0x05, 0x00, 0x00, 0x00, //   partition = 5
        0x03, 0x00, 0x00, 0x00, b'a', b'b', b'c', // batch = "abc"
    ];
    assert_eq!(&encoded_request(&frame)[..], expected);
    assert_eq!(
        decode_request(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
}

/// An error response is prefix, header with a non-zero code, then only the message.
#[test]
fn error_response_bytes() {
    let frame = ResponseFrame {
        request_id: 9,
        api_key: ApiKey::Fetch,
        response: Err(ApiError::new(ErrorCode::UNKNOWN_TOPIC, "no topic x")),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x14, 0x00, 0x00, 0x00, // frame_len = 20
        0x09, 0x00, 0x00, 0x00, // request_id = 9
        0x02, 0x00,             // api_key = Fetch
        0x07, 0x00,             // error_code = UNKNOWN_TOPIC
        0x0a, 0x00, b'n', b'o', b' ', b't', b'o', b'p', b'i', b'c', b' ', b'x',
    ];
    assert_eq!(&encoded_response(&frame)[..], expected);
    assert_eq!(
        decode_response(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
}

/// A successful response has error_code 0 and the body; here a ListOffsets
/// response exercising PartitionStatus with a leader hint.
#[test]
fn list_offsets_response_bytes() {
    let frame = ResponseFrame {
        request_id: 1,
        api_key: ApiKey::ListOffsets,
        response: Ok(Response::ListOffsets(ListOffsetsResponse {
            partitions: vec![ListOffsetsPartitionResponse {
                topic: "t".to_owned(),
                partition: 0,
                status: PartitionStatus {
                    error: ErrorCode::NOT_LEADER,
                    message: "m".to_owned(),
                    leader_hint: Some(NodeRef {
                        node_id: 2,
                        address: "a".to_owned(),
                    }),
                },
                offset: 0x0807_0605_0403_0201,
            }],
        })),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x28, 0x00, 0x00, 0x00, // frame_len = 40
        0x01, 0x00, 0x00, 0x00, // request_id = 1
        0x03, 0x00,             // api_key = ListOffsets
        0x00, 0x00,             // error_code = NONE
        0x01, 0x00, 0x00, 0x00, // partitions: count = 1
        0x01, 0x00, b't',       //   topic = "t"
        0x00, 0x00, 0x00, 0x00, //   partition = 0
        0x11, 0x00,             //   status.error = NOT_LEADER
        0x01, 0x00, b'm',       //   status.message = "m"
        0x01,                   //   status.leader_hint = Some
        0x02, 0x00, 0x00, 0x00, //     node_id = 2
        0x01, 0x00, b'a',       //     address = "a"
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // offset
    ];
    assert_eq!(&encoded_response(&frame)[..], expected);
    assert_eq!(
        decode_response(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
}

/// OffsetSpec is a u8 tag, followed by an i64 only for Timestamp.
#[test]
fn offset_spec_bytes() {
    let frame = RequestFrame {
        request_id: 0,
        api_version: 1,
        request: Request::ListOffsets(ListOffsetsRequest {
            partitions: vec![ListOffsetsPartition {
                topic: String::new(),
                partition: 0,
                spec: OffsetSpec::Timestamp(-2),
            }],
        }),
    };
    let encoded = encoded_request(&frame);
    let tail = &encoded[encoded.len() - 9..];
    assert_eq!(
        tail,
        &[0x02, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
}

/// A ClusterStatus request is api key 16 with an empty body.
#[test]
fn cluster_status_request_bytes() {
    let frame = RequestFrame {
        request_id: 5,
        api_version: 1,
        request: Request::ClusterStatus(ClusterStatusRequest {}),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x08, 0x00, 0x00, 0x00, // frame_len = 8
        0x10, 0x00,             // api_key = ClusterStatus (16)
        0x01, 0x00,             // api_version = 1
        0x05, 0x00, 0x00, 0x00, // request_id = 5
    ];
    assert_eq!(&encoded_request(&frame)[..], expected);
    assert_eq!(
        decode_request(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
}

/// A ClusterStatus response: ids, the optional metadata leader and its
/// term, nodes with
/// (name, address) listeners, a u8 state and load, then partitions.
#[test]
fn cluster_status_response_bytes() {
    let frame = ResponseFrame {
        request_id: 2,
        api_key: ApiKey::ClusterStatus,
        response: Ok(Response::ClusterStatus(ClusterStatusResponse {
            cluster_id: "c".to_owned(),
            node_id: 1,
            metadata_leader: None,
            metadata_term: 8,
            nodes: vec![ClusterNode {
                node_id: 1,
                addresses: vec![ListenerAddress {
                    name: "n".to_owned(),
                    address: "a".to_owned(),
                }],
                state: NodeState::Suspect,
                partitions_led: 2,
                bytes_in_per_s: 3,
                bytes_out_per_s: 4,
                cpu_permille: 5,
                generation: 6,
            }],
            partitions: vec![ClusterPartition {
                topic: "t".to_owned(),
                partition: 0,
                leader: 1,
                replicas: vec![1],
                commit_index: 7,
                log_end: 9,
                lag: 2,
                quiet: true,
            }],
        })),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x7b, 0x00, 0x00, 0x00, // frame_len = 123
        0x02, 0x00, 0x00, 0x00, // request_id = 2
        0x10, 0x00,             // api_key = ClusterStatus
        0x00, 0x00,             // error_code = NONE
        0x01, 0x00, b'c',       // cluster_id = "c"
        0x01, 0x00, 0x00, 0x00, // node_id = 1
        0x00,                   // metadata_leader = None
        0x08, 0, 0, 0, 0, 0, 0, 0, // metadata_term = 8
        0x01, 0x00, 0x00, 0x00, // nodes: count = 1
        0x01, 0x00, 0x00, 0x00, //   node_id = 1
        0x01, 0x00, 0x00, 0x00, //   addresses: count = 1
        0x01, 0x00, b'n',       //     name = "n"
        0x01, 0x00, b'a',       //     address = "a"
        0x01,                   //   state = Suspect
        0x02, 0x00, 0x00, 0x00, //   partitions_led = 2
        0x03, 0, 0, 0, 0, 0, 0, 0, // bytes_in_per_s = 3
        0x04, 0, 0, 0, 0, 0, 0, 0, // bytes_out_per_s = 4
        0x05, 0x00, 0x00, 0x00, //   cpu_permille = 5
        0x06, 0, 0, 0, 0, 0, 0, 0, // generation = 6
        0x01, 0x00, 0x00, 0x00, // partitions: count = 1
        0x01, 0x00, b't',       //   topic = "t"
        0x00, 0x00, 0x00, 0x00, //   partition = 0
        0x01, 0x00, 0x00, 0x00, //   leader = 1
        0x01, 0x00, 0x00, 0x00, //   replicas: count = 1
        0x01, 0x00, 0x00, 0x00, //     1
        0x07, 0, 0, 0, 0, 0, 0, 0, // commit_index = 7
        0x09, 0, 0, 0, 0, 0, 0, 0, // log_end = 9
        0x02, 0, 0, 0, 0, 0, 0, 0, // lag = 2
        0x01,                   //   quiet = true
    ];
    assert_eq!(expected.len() - 4, 123);
    assert_eq!(&encoded_response(&frame)[..], expected);
    assert_eq!(
        decode_response(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
    // A state tag this build does not know is refused, naming the field.
    let mut unknown_state = expected[4..].to_vec();
    unknown_state[42] = 3;
    let error = decode_response(Bytes::from(unknown_state)).unwrap_err();
    assert!(
        error
            .error
            .message
            .ends_with("bad tag 3 for nodes[0].state"),
        "{}",
        error.error.message
    );
}

/// A RemoveNode request is api key 17 and the node id as a u32.
#[test]
fn remove_node_request_bytes() {
    let frame = RequestFrame {
        request_id: 3,
        api_version: 1,
        request: Request::RemoveNode(RemoveNodeRequest { node_id: 0x0102 }),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x0c, 0x00, 0x00, 0x00, // frame_len = 12
        0x11, 0x00,             // api_key = RemoveNode (17)
        0x01, 0x00,             // api_version = 1
        0x03, 0x00, 0x00, 0x00, // request_id = 3
        0x02, 0x01, 0x00, 0x00, // node_id = 0x0102
    ];
    assert_eq!(&encoded_request(&frame)[..], expected);
    assert_eq!(
        decode_request(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
}

/// A Rebalance request is api key 18 and `dry_run` as a bool (u8 0 | 1);
/// any other byte is refused, naming the field.
#[test]
fn rebalance_request_bytes() {
    let frame = RequestFrame {
        request_id: 4,
        api_version: 1,
        request: Request::Rebalance(RebalanceRequest { dry_run: true }),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x09, 0x00, 0x00, 0x00, // frame_len = 9
        0x12, 0x00,             // api_key = Rebalance (18)
        0x01, 0x00,             // api_version = 1
        0x04, 0x00, 0x00, 0x00, // request_id = 4
        0x01,                   // dry_run = true
    ];
    assert_eq!(&encoded_request(&frame)[..], expected);
    assert_eq!(
        decode_request(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
    let mut bad_bool = expected[4..].to_vec();
    bad_bool[8] = 2;
    let error = decode_request(Bytes::from(bad_bool)).unwrap_err();
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    assert_eq!(error.error.message, "Rebalance: bad tag 2 for dry_run");
}

/// A Rebalance (and RemoveNode) response is a PartitionStatus, then the
/// reassignments: topic, partition, replicas before, replicas after.
#[test]
fn reassignments_response_bytes() {
    let frame = ResponseFrame {
        request_id: 6,
        api_key: ApiKey::Rebalance,
        response: Ok(Response::Rebalance(ReassignmentsResponse {
            status: PartitionStatus::ok(),
            reassignments: vec![Reassignment {
                topic: "t".to_owned(),
                partition: 2,
                from: vec![1, 3],
                to: vec![4],
            }],
        })),
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x2c, 0x00, 0x00, 0x00, // frame_len = 44
        0x06, 0x00, 0x00, 0x00, // request_id = 6
        0x12, 0x00,             // api_key = Rebalance
        0x00, 0x00,             // error_code = NONE
        0x00, 0x00,             // status.error = NONE
        0x00, 0x00,             // status.message = ""
        0x00,                   // status.leader_hint = None
        0x01, 0x00, 0x00, 0x00, // reassignments: count = 1
        0x01, 0x00, b't',       //   topic = "t"
        0x02, 0x00, 0x00, 0x00, //   partition = 2
        0x02, 0x00, 0x00, 0x00, //   from: count = 2
        0x01, 0x00, 0x00, 0x00, //     1
        0x03, 0x00, 0x00, 0x00, //     3
        0x01, 0x00, 0x00, 0x00, //   to: count = 1
        0x04, 0x00, 0x00, 0x00, //     4
    ];
    assert_eq!(expected.len() - 4, 44);
    assert_eq!(&encoded_response(&frame)[..], expected);
    assert_eq!(
        decode_response(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
    // RemoveNode's answer has the same body under its own key.
    let mut remove_node = expected[4..].to_vec();
    remove_node[4] = 0x11;
    let decoded = decode_response(Bytes::from(remove_node)).unwrap();
    assert_eq!(decoded.api_key, ApiKey::RemoveNode);
    assert!(matches!(decoded.response, Ok(Response::RemoveNode(_))));
}

fn compacted_create_topic(api_version: u16) -> RequestFrame {
    RequestFrame {
        request_id: 1,
        api_version,
        request: Request::CreateTopic(CreateTopicRequest {
            name: "t".to_owned(),
            partitions: 2,
            config: TopicConfig {
                replication: 3,
                cleanup: Cleanup::Compact,
                compaction_lag_ms: Some(1_000),
                segment_roll_ms: Some(60_000),
                ..TopicConfig::default()
            },
        }),
    }
}

/// At version 2 a TopicConfig ends with cleanup, compaction_lag_ms,
/// tombstone_retention_ms and segment_roll_ms after segment_bytes.
#[test]
fn create_topic_request_bytes_v2() {
    let frame = compacted_create_topic(2);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x28, 0x00, 0x00, 0x00, // frame_len = 40
        0x05, 0x00,             // api_key = CreateTopic
        0x02, 0x00,             // api_version = 2
        0x01, 0x00, 0x00, 0x00, // request_id = 1
        0x01, 0x00, b't',       // name = "t"
        0x02, 0x00, 0x00, 0x00, // partitions = 2
        0x03, 0x00,             // config.replication = 3
        0x00,                   // config.retention_ms = None
        0x00,                   // config.retention_bytes = None
        0x00,                   // config.segment_bytes = None
        0x01,                   // config.cleanup = Compact
        0x01, 0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // compaction_lag_ms = 1000
        0x00,                   // config.tombstone_retention_ms = None
        0x01, 0x60, 0xea, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // segment_roll_ms = 60000
    ];
    assert_eq!(&encoded_request(&frame)[..], expected);
    assert_eq!(
        decode_request(Bytes::copy_from_slice(&expected[4..])),
        Ok(frame)
    );
}

/// At version 1 the same TopicConfig stops after segment_bytes: the
/// compaction settings are not sent, and a v1 CreateTopic decodes as a
/// delete topic with default settings.
#[test]
fn create_topic_request_bytes_v1() {
    let frame = compacted_create_topic(1);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x14, 0x00, 0x00, 0x00, // frame_len = 20
        0x05, 0x00,             // api_key = CreateTopic
        0x01, 0x00,             // api_version = 1
        0x01, 0x00, 0x00, 0x00, // request_id = 1
        0x01, 0x00, b't',       // name = "t"
        0x02, 0x00, 0x00, 0x00, // partitions = 2
        0x03, 0x00,             // config.replication = 3
        0x00,                   // config.retention_ms = None
        0x00,                   // config.retention_bytes = None
        0x00,                   // config.segment_bytes = None
    ];
    assert_eq!(&encoded_request(&frame)[..], expected);
    let decoded = decode_request(Bytes::copy_from_slice(&expected[4..])).unwrap();
    let Request::CreateTopic(create) = decoded.request else {
        panic!("not a CreateTopic: {decoded:?}");
    };
    assert_eq!(
        create.config,
        TopicConfig {
            replication: 3,
            ..TopicConfig::default()
        }
    );
}

/// A response is written and read at its request's version: a Metadata
/// answer at version 1 shows a compacted topic without its policy, at
/// version 2 with it.
#[test]
fn metadata_response_follows_the_request_version() {
    let config = TopicConfig {
        cleanup: Cleanup::CompactDelete,
        tombstone_retention_ms: Some(5),
        ..TopicConfig::default()
    };
    let frame = ResponseFrame {
        request_id: 3,
        api_key: ApiKey::CreateTopic,
        response: Ok(Response::CreateTopic(CreateTopicResponse {
            topic: TopicMetadata {
                name: "t".to_owned(),
                status: PartitionStatus::ok(),
                config: config.clone(),
                partitions: Vec::new(),
            },
        })),
    };
    #[rustfmt::skip]
    let v1: &[u8] = &[
        0x19, 0x00, 0x00, 0x00, // frame_len = 25
        0x03, 0x00, 0x00, 0x00, // request_id = 3
        0x05, 0x00,             // api_key = CreateTopic
        0x00, 0x00,             // error_code = NONE
        0x01, 0x00, b't',       // topic.name = "t"
        0x00, 0x00, 0x00, 0x00, 0x00, // topic.status = ok
        0x00, 0x00,             // config.replication = 0
        0x00, 0x00, 0x00,       // retention_ms, retention_bytes, segment_bytes = None
        0x00, 0x00, 0x00, 0x00, // topic.partitions: count = 0
    ];
    let mut out = bytes::BytesMut::new();
    encode_response_at(&frame, 1, &mut out);
    assert_eq!(&out[..], v1);
    let decoded = decode_response_at(Bytes::copy_from_slice(&v1[4..]), 1).unwrap();
    let Ok(Response::CreateTopic(answer)) = decoded.response else {
        panic!("not a CreateTopic answer: {decoded:?}");
    };
    assert_eq!(answer.topic.config, TopicConfig::default());

    let mut out = bytes::BytesMut::new();
    encode_response_at(&frame, 2, &mut out);
    #[rustfmt::skip]
    let v2_tail: &[u8] = &[
        0x02,                   // config.cleanup = CompactDelete
        0x00,                   // compaction_lag_ms = None
        0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tombstone_retention_ms = 5
        0x00,                   // segment_roll_ms = None
        0x00, 0x00, 0x00, 0x00, // topic.partitions: count = 0
    ];
    assert_eq!(out.len(), v1.len() + 12);
    assert_eq!(&out[out.len() - v2_tail.len()..], v2_tail);
    assert_eq!(decode_response_at(out.freeze().slice(4..), 2), Ok(frame));
}
