//! Fixtures shared by the integration tests: one non-trivial instance of
//! every request and response, chosen so every field holds a distinctive,
//! non-default value (a decoder that swaps or drops a field fails round-trip).
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use citystream_protocol::*;

/// A request of every api, in wire-number order.
pub fn all_requests() -> Vec<RequestFrame> {
    ApiKey::ALL
        .iter()
        .enumerate()
        .map(|(index, key)| RequestFrame {
            request_id: 0x1000 + index as u32,
            api_version: PROTOCOL_VERSION,
            request: request_fixture(*key),
        })
        .collect()
}

/// A successful response of every api, then an error response.
pub fn all_responses() -> Vec<ResponseFrame> {
    let mut frames: Vec<ResponseFrame> = ApiKey::ALL
        .iter()
        .enumerate()
        .map(|(index, key)| ResponseFrame {
            request_id: 0x2000 + index as u32,
            api_key: *key,
            response: Ok(response_fixture(*key)),
        })
        .collect();
    frames.push(ResponseFrame {
        request_id: 0x3000,
        api_key: ApiKey::Produce,
        response: Err(ApiError::new(
            ErrorCode::NOT_LEADER,
            "not the leader; try node 2",
        )),
    });
    frames
}

pub fn encoded_request(frame: &RequestFrame) -> Bytes {
    let mut out = BytesMut::new();
    encode_request(frame, &mut out);
    out.freeze()
}

pub fn encoded_response(frame: &ResponseFrame) -> Bytes {
    let mut out = BytesMut::new();
    encode_response(frame, &mut out);
    out.freeze()
}

/// The frame body: the encoding without its 4-byte length prefix.
pub fn body_of(encoded: &Bytes) -> Bytes {
    encoded.slice(LENGTH_PREFIX_BYTES..)
}

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_owned(),
        partition,
    }
}

fn not_leader() -> PartitionStatus {
    PartitionStatus {
        error: ErrorCode::NOT_LEADER,
        message: "leader is node 3".to_owned(),
        leader_hint: Some(NodeRef {
            node_id: 3,
            address: "10.0.0.3:9403".to_owned(),
        }),
    }
}

fn topic_config() -> TopicConfig {
    TopicConfig {
        replication: 3,
        retention_ms: Some(86_400_000),
        retention_bytes: None,
        segment_bytes: Some(1 << 30),
        cleanup: Cleanup::CompactDelete,
        compaction_lag_ms: Some(60_000),
        tombstone_retention_ms: None,
        segment_roll_ms: Some(3_600_000),
    }
}

fn topic_metadata() -> TopicMetadata {
    TopicMetadata {
        name: "city.air".to_owned(),
        status: PartitionStatus::ok(),
        config: topic_config(),
        partitions: vec![PartitionMetadata {
            partition: 1,
            leader: 2,
            replicas: vec![2, 3, 1],
            log_start_offset: 40,
            high_watermark: 977,
        }],
    }
}

fn group_summary() -> GroupSummary {
    GroupSummary {
        group: "dashboards".to_owned(),
        state: "Stable".to_owned(),
        generation: 7,
        member_count: 2,
    }
}

pub fn request_fixture(key: ApiKey) -> Request {
    match key {
        ApiKey::Hello => Request::Hello(HelloRequest {
            version_min: 1,
            version_max: 3,
            client_id: "sensor-gw-ü".to_owned(),
        }),
        ApiKey::Produce => Request::Produce(ProduceRequest {
            acks: Acks::Quorum,
            timeout_ms: 1500,
            partitions: vec![
                ProducePartition {
                    topic: "city.air".to_owned(),
                    partition: 2,
                    batch: Bytes::from_static(b"\x01\x02batch-bytes\xff"),
                },
                ProducePartition {
                    topic: "city.traffic".to_owned(),
                    partition: 0,
                    batch: Bytes::new(),
                },
            ],
        }),
        ApiKey::Fetch => Request::Fetch(FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: "city.air".to_owned(),
                partition: 2,
                offset: 12_345,
                max_bytes: 65_536,
            }],
        }),
        ApiKey::ListOffsets => Request::ListOffsets(ListOffsetsRequest {
            partitions: vec![
                ListOffsetsPartition {
                    topic: "a".to_owned(),
                    partition: 0,
                    spec: OffsetSpec::Earliest,
                },
                ListOffsetsPartition {
                    topic: "b".to_owned(),
                    partition: 1,
                    spec: OffsetSpec::Latest,
                },
                ListOffsetsPartition {
                    topic: "c".to_owned(),
                    partition: 2,
                    spec: OffsetSpec::Timestamp(-1_700_000_000_000),
                },
            ],
        }),
        ApiKey::Metadata => Request::Metadata(MetadataRequest {
            topics: Some(vec!["city.air".to_owned(), "city.traffic".to_owned()]),
        }),
        ApiKey::CreateTopic => Request::CreateTopic(CreateTopicRequest {
            name: "city.weather".to_owned(),
            partitions: 6,
            config: topic_config(),
        }),
        ApiKey::DeleteTopic => Request::DeleteTopic(DeleteTopicRequest {
            name: "city.old".to_owned(),
        }),
        ApiKey::InitProducer => Request::InitProducer(InitProducerRequest {}),
        ApiKey::JoinGroup => Request::JoinGroup(JoinGroupRequest {
            group: "dashboards".to_owned(),
            member_id: "m-1".to_owned(),
            client_id: "console".to_owned(),
            topics: vec!["city.air".to_owned(), "city.traffic".to_owned()],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
        }),
        ApiKey::SyncGroup => Request::SyncGroup(SyncGroupRequest {
            group: "dashboards".to_owned(),
            member_id: "m-1".to_owned(),
            generation: 7,
        }),
        ApiKey::Heartbeat => Request::Heartbeat(HeartbeatRequest {
            group: "dashboards".to_owned(),
            member_id: "m-2".to_owned(),
            generation: 8,
        }),
        ApiKey::LeaveGroup => Request::LeaveGroup(LeaveGroupRequest {
            group: "dashboards".to_owned(),
            member_id: "m-3".to_owned(),
        }),
        ApiKey::CommitOffsets => Request::CommitOffsets(CommitOffsetsRequest {
            group: "dashboards".to_owned(),
            member_id: "m-1".to_owned(),
            generation: 7,
            offsets: vec![CommittedOffset {
                topic: "city.air".to_owned(),
                partition: 2,
                offset: 990,
                metadata: "host=a".to_owned(),
            }],
        }),
        ApiKey::FetchOffsets => Request::FetchOffsets(FetchOffsetsRequest {
            group: "dashboards".to_owned(),
            partitions: vec![tp("city.air", 2), tp("city.traffic", 0)],
        }),
        ApiKey::ListGroups => Request::ListGroups(ListGroupsRequest {}),
        ApiKey::DescribeGroup => Request::DescribeGroup(DescribeGroupRequest {
            group: "dashboards".to_owned(),
        }),
        ApiKey::ClusterStatus => Request::ClusterStatus(ClusterStatusRequest {}),
        ApiKey::RemoveNode => Request::RemoveNode(RemoveNodeRequest { node_id: 0x0304 }),
        ApiKey::Rebalance => Request::Rebalance(RebalanceRequest { dry_run: true }),
    }
}

pub fn response_fixture(key: ApiKey) -> Response {
    match key {
        ApiKey::Hello => Response::Hello(HelloResponse {
            version: 1,
            node_id: 2,
            cluster_id: "c-7f3a".to_owned(),
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            record_bytes_max: 1 << 20,
        }),
        ApiKey::Produce => Response::Produce(ProduceResponse {
            partitions: vec![
                ProducePartitionResponse {
                    topic: "city.air".to_owned(),
                    partition: 2,
                    status: PartitionStatus::ok(),
                    base_offset: 1_000,
                    log_start_offset: 10,
                },
                ProducePartitionResponse {
                    topic: "city.traffic".to_owned(),
                    partition: 0,
                    status: not_leader(),
                    base_offset: 0,
                    log_start_offset: 0,
                },
            ],
        }),
        ApiKey::Fetch => Response::Fetch(FetchResponse {
            partitions: vec![FetchPartitionResponse {
                topic: "city.air".to_owned(),
                partition: 2,
                status: PartitionStatus::ok(),
                high_watermark: 2_000,
                log_start_offset: 10,
                records: Bytes::from_static(b"records-of-several-batches"),
            }],
        }),
        ApiKey::ListOffsets => Response::ListOffsets(ListOffsetsResponse {
            partitions: vec![ListOffsetsPartitionResponse {
                topic: "city.air".to_owned(),
                partition: 2,
                status: PartitionStatus::error(ErrorCode::UNKNOWN_PARTITION, "no partition 9"),
                offset: 77,
            }],
        }),
        ApiKey::Metadata => Response::Metadata(MetadataResponse {
            cluster_id: "c-7f3a".to_owned(),
            controller_id: 1,
            brokers: vec![
                NodeRef {
                    node_id: 1,
                    address: "10.0.0.1:9401".to_owned(),
                },
                NodeRef {
                    node_id: 2,
                    address: "10.0.0.2:9402".to_owned(),
                },
            ],
            topics: vec![topic_metadata()],
        }),
        ApiKey::CreateTopic => Response::CreateTopic(CreateTopicResponse {
            topic: topic_metadata(),
        }),
        ApiKey::DeleteTopic => Response::DeleteTopic(DeleteTopicResponse {}),
        ApiKey::InitProducer => Response::InitProducer(InitProducerResponse {
            producer_id: 0x0102_0304_0506_0708,
        }),
        ApiKey::JoinGroup => Response::JoinGroup(JoinGroupResponse {
            generation: 8,
            member_id: "m-1".to_owned(),
            assignment: vec![tp("city.air", 0), tp("city.air", 1)],
        }),
        ApiKey::SyncGroup => Response::SyncGroup(SyncGroupResponse {
            assignment: vec![tp("city.traffic", 4)],
        }),
        ApiKey::Heartbeat => Response::Heartbeat(HeartbeatResponse {}),
        ApiKey::LeaveGroup => Response::LeaveGroup(LeaveGroupResponse {}),
        ApiKey::CommitOffsets => Response::CommitOffsets(CommitOffsetsResponse {
            partitions: vec![CommitPartitionResponse {
                topic: "city.air".to_owned(),
                partition: 2,
                status: PartitionStatus::error(ErrorCode::ILLEGAL_GENERATION, "generation 6 < 7"),
            }],
        }),
        ApiKey::FetchOffsets => Response::FetchOffsets(FetchOffsetsResponse {
            offsets: vec![
                FetchedOffset {
                    topic: "city.air".to_owned(),
                    partition: 2,
                    offset: Some(990),
                    metadata: "host=a".to_owned(),
                },
                FetchedOffset {
                    topic: "city.traffic".to_owned(),
                    partition: 0,
                    offset: None,
                    metadata: String::new(),
                },
            ],
        }),
        ApiKey::ListGroups => Response::ListGroups(ListGroupsResponse {
            groups: vec![group_summary()],
        }),
        ApiKey::DescribeGroup => Response::DescribeGroup(DescribeGroupResponse {
            summary: group_summary(),
            members: vec![GroupMember {
                member_id: "m-1".to_owned(),
                client_id: "console".to_owned(),
                assignment: vec![tp("city.air", 0)],
            }],
            offsets: vec![GroupOffsetLag {
                topic: "city.air".to_owned(),
                partition: 0,
                committed: 900,
                high_watermark: 1_000,
            }],
        }),
        ApiKey::ClusterStatus => Response::ClusterStatus(cluster_status()),
        ApiKey::RemoveNode => Response::RemoveNode(ReassignmentsResponse {
            status: PartitionStatus::ok(),
            reassignments: vec![
                Reassignment {
                    topic: "city.air".to_owned(),
                    partition: 1,
                    from: vec![2, 3, 1],
                    to: vec![2, 4, 1],
                },
                Reassignment {
                    topic: "city.traffic".to_owned(),
                    partition: 0,
                    from: vec![3],
                    to: vec![5],
                },
            ],
        }),
        ApiKey::Rebalance => Response::Rebalance(ReassignmentsResponse {
            status: not_leader(),
            reassignments: Vec::new(),
        }),
    }
}

fn cluster_status() -> ClusterStatusResponse {
    let listener = |name: &str, address: &str| ListenerAddress {
        name: name.to_owned(),
        address: address.to_owned(),
    };
    ClusterStatusResponse {
        cluster_id: "city-north".to_owned(),
        node_id: 2,
        metadata_leader: Some(3),
        metadata_term: 12,
        nodes: vec![
            ClusterNode {
                node_id: 2,
                addresses: vec![
                    listener("http", "10.0.0.2:6002"),
                    listener("native", "10.0.0.2:9402"),
                ],
                state: NodeState::Alive,
                partitions_led: 4,
                bytes_in_per_s: 1_048_576,
                bytes_out_per_s: 2_097_152,
                cpu_permille: 250,
                generation: 1_700_000_000_123,
            },
            ClusterNode {
                node_id: 3,
                addresses: vec![listener("native", "10.0.0.3:9403")],
                state: NodeState::Dead,
                partitions_led: 0,
                bytes_in_per_s: 0,
                bytes_out_per_s: 7,
                cpu_permille: 1_500,
                generation: 1_700_000_000_999,
            },
        ],
        partitions: vec![ClusterPartition {
            topic: "city.air".to_owned(),
            partition: 1,
            leader: 2,
            replicas: vec![2, 3, 1],
            commit_index: 977,
            log_end: 990,
            lag: 13,
            quiet: false,
        }],
    }
}
