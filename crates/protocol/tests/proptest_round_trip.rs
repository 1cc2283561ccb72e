//! Generated messages of the busiest apis (Produce, Fetch response, JoinGroup,
//! Metadata) round-trip for any field values, including empty and non-ASCII
//! strings and empty or large lists.

use bytes::{Bytes, BytesMut};
use citystream_protocol::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn payload() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..256).prop_map(Bytes::from)
}

fn acks() -> impl Strategy<Value = Acks> {
    prop_oneof![Just(Acks::None), Just(Acks::Leader), Just(Acks::Quorum)]
}

fn status() -> impl Strategy<Value = PartitionStatus> {
    let hint = option::of(
        (any::<u32>(), name()).prop_map(|(node_id, address)| NodeRef { node_id, address }),
    );
    (any::<u16>(), name(), hint).prop_map(|(code, message, leader_hint)| PartitionStatus {
        error: ErrorCode(code),
        message,
        leader_hint,
    })
}

fn produce() -> impl Strategy<Value = Request> {
    let partition =
        (name(), any::<u32>(), payload()).prop_map(|(topic, partition, batch)| ProducePartition {
            topic,
            partition,
            batch,
        });
    (acks(), any::<u32>(), vec(partition, 0..8)).prop_map(|(acks, timeout_ms, partitions)| {
        Request::Produce(ProduceRequest {
            acks,
            timeout_ms,
            partitions,
        })
    })
}

fn join_group() -> impl Strategy<Value = Request> {
    (
        name(),
        name(),
        name(),
        vec(name(), 0..8),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(group, member_id, client_id, topics, session, rebalance)| {
                Request::JoinGroup(JoinGroupRequest {
                    group,
                    member_id,
                    client_id,
                    topics,
                    session_timeout_ms: session,
                    rebalance_timeout_ms: rebalance,
                })
            },
        )
}

fn metadata_request() -> impl Strategy<Value = Request> {
    option::of(vec(name(), 0..8)).prop_map(|topics| Request::Metadata(MetadataRequest { topics }))
}

fn fetch_response() -> impl Strategy<Value = Response> {
    let partition = (
        name(),
        any::<u32>(),
        status(),
        any::<u64>(),
        any::<u64>(),
        payload(),
    )
        .prop_map(
            |(topic, partition, status, high, start, records)| FetchPartitionResponse {
                topic,
                partition,
                status,
                high_watermark: high,
                log_start_offset: start,
                records,
            },
        );
    vec(partition, 0..8).prop_map(|partitions| Response::Fetch(FetchResponse { partitions }))
}

fn metadata_response() -> impl Strategy<Value = Response> {
    let config = (
        any::<u16>(),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        prop_oneof![
            Just(Cleanup::Delete),
            Just(Cleanup::Compact),
            Just(Cleanup::CompactDelete)
        ],
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
    )
        .prop_map(
            |(replication, ms, bytes, segment, cleanup, lag, tombstone, roll)| TopicConfig {
                replication,
                retention_ms: ms,
                retention_bytes: bytes,
                segment_bytes: segment,
                cleanup,
                compaction_lag_ms: lag,
                tombstone_retention_ms: tombstone,
                segment_roll_ms: roll,
            },
        );
    let partition = (
        any::<u32>(),
        any::<u32>(),
        vec(any::<u32>(), 0..5),
        any::<u64>(),
    )
        .prop_map(|(partition, leader, replicas, high)| PartitionMetadata {
            partition,
            leader,
            replicas,
            log_start_offset: high / 2,
            high_watermark: high,
        });
    let topic = (name(), status(), config, vec(partition, 0..4)).prop_map(
        |(name, status, config, partitions)| TopicMetadata {
            name,
            status,
            config,
            partitions,
        },
    );
    let broker = (any::<u32>(), name()).prop_map(|(node_id, address)| NodeRef { node_id, address });
    (name(), any::<u32>(), vec(broker, 0..4), vec(topic, 0..4)).prop_map(
        |(cluster_id, controller_id, brokers, topics)| {
            Response::Metadata(MetadataResponse {
                cluster_id,
                controller_id,
                brokers,
                topics,
            })
        },
    )
}

fn round_trip_request(request_id: u32, request: Request) -> Result<(), TestCaseError> {
    let frame = RequestFrame {
        request_id,
        api_version: PROTOCOL_VERSION,
        request,
    };
    let mut out = BytesMut::new();
    encode_request(&frame, &mut out);
    let decoded = decode_request(out.freeze().slice(LENGTH_PREFIX_BYTES..));
    prop_assert_eq!(decoded, Ok(frame));
    Ok(())
}

fn round_trip_response(request_id: u32, response: Response) -> Result<(), TestCaseError> {
    let frame = ResponseFrame {
        request_id,
        api_key: response.api_key(),
        response: Ok(response),
    };
    let mut out = BytesMut::new();
    encode_response(&frame, &mut out);
    let decoded = decode_response(out.freeze().slice(LENGTH_PREFIX_BYTES..));
    prop_assert_eq!(decoded, Ok(frame));
    Ok(())
}

proptest! {
    /// Any Produce request round-trips.
    #[test]
    fn produce_round_trips(id in any::<u32>(), request in produce()) {
        round_trip_request(id, request)?;
    }

    /// Any JoinGroup request round-trips.
    #[test]
    fn join_group_round_trips(id in any::<u32>(), request in join_group()) {
        round_trip_request(id, request)?;
    }

    /// Any Metadata request, for all topics or a list, round-trips.
    #[test]
    fn metadata_request_round_trips(id in any::<u32>(), request in metadata_request()) {
        round_trip_request(id, request)?;
    }

    /// Any Fetch response round-trips.
    #[test]
    fn fetch_response_round_trips(id in any::<u32>(), response in fetch_response()) {
        round_trip_response(id, response)?;
    }

    /// Any Metadata response round-trips.
    #[test]
    fn metadata_response_round_trips(id in any::<u32>(), response in metadata_response()) {
        round_trip_response(id, response)?;
    }

    /// Any error response round-trips.
    #[test]
    fn error_response_round_trips(id in any::<u32>(), code in 1u16.., message in name()) {
        let frame = ResponseFrame {
            request_id: id,
            api_key: ApiKey::Fetch,
            response: Err(ApiError::new(ErrorCode(code), message)),
        };
        let mut out = BytesMut::new();
        encode_response(&frame, &mut out);
        let decoded = decode_response(out.freeze().slice(LENGTH_PREFIX_BYTES..));
        prop_assert_eq!(decoded, Ok(frame));
    }
}
