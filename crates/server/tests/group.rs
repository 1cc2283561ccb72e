//! Consumer groups and idempotent producer ids over the wire.

mod common;

use citystream_protocol::{
    CommitOffsetsRequest, CommittedOffset, DescribeGroupRequest, ErrorCode, FetchOffsetsRequest,
    HeartbeatRequest, InitProducerRequest, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest,
    Request, Response, SyncGroupRequest, TopicPartition,
};
use common::*;

fn join_request(group: &str, member_id: &str, topic: &str) -> Request {
    Request::JoinGroup(JoinGroupRequest {
        group: group.to_string(),
        member_id: member_id.to_string(),
        client_id: "group-test".to_string(),
        topics: vec![topic.to_string()],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 5_000,
    })
}

async fn join(client: &mut TestClient, group: &str, topic: &str) -> JoinGroupResponse {
    match client.call(join_request(group, "", topic)).await {
        Ok(Response::JoinGroup(joined)) => joined,
        other => panic!("unexpected join answer {other:?}"),
    }
}

fn heartbeat(group: &str, member_id: &str, generation: u32) -> Request {
    Request::Heartbeat(HeartbeatRequest {
        group: group.to_string(),
        member_id: member_id.to_string(),
        generation,
    })
}

/// Proves heartbeats name the failure: UNKNOWN_GROUP for a group nobody
/// joined, UNKNOWN_MEMBER for a member the group does not have.
#[tokio::test]
async fn heartbeat_reports_unknown_group_and_member() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("beats", 1).await.unwrap();
        expect_error(
            client.call(heartbeat("nobody", "m", 1)).await,
            ErrorCode::UNKNOWN_GROUP,
        );
        let joined = join(&mut client, "beaters", "beats").await;
        let stranger = heartbeat("beaters", "stranger", joined.generation);
        expect_error(client.call(stranger).await, ErrorCode::UNKNOWN_MEMBER);
        let member = heartbeat("beaters", &joined.member_id, joined.generation);
        assert!(client.call(member).await.is_ok());
        server.stop().await;
    })
    .await;
}

/// Proves join, sync, commit and fetch-offsets agree with each other, and
/// list/describe show the group.
#[tokio::test]
async fn group_join_sync_commit_fetch_round_trip() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("work", 2).await.unwrap();
        client.produce("work", 0, batch(&[b"1", b"2", b"3"])).await;
        let joined = join(&mut client, "workers", "work").await;
        assert!(!joined.member_id.is_empty());
        let mut assignment = joined.assignment.clone();
        assignment.sort();
        let expected: Vec<TopicPartition> = (0..2)
            .map(|partition| TopicPartition {
                topic: "work".to_string(),
                partition,
            })
            .collect();
        assert_eq!(assignment, expected);

        let sync = Request::SyncGroup(SyncGroupRequest {
            group: "workers".to_string(),
            member_id: joined.member_id.clone(),
            generation: joined.generation,
        });
        let Ok(Response::SyncGroup(synced)) = client.call(sync).await else {
            panic!("sync failed");
        };
        assert_eq!(synced.assignment.len(), 2);

        let commit = Request::CommitOffsets(CommitOffsetsRequest {
            group: "workers".to_string(),
            member_id: joined.member_id.clone(),
            generation: joined.generation,
            offsets: vec![CommittedOffset {
                topic: "work".to_string(),
                partition: 0,
                offset: 3,
                metadata: "done".to_string(),
            }],
        });
        let Ok(Response::CommitOffsets(committed)) = client.call(commit).await else {
            panic!("commit failed");
        };
        assert_eq!(committed.partitions[0].status.error, ErrorCode::NONE);

        let fetch = Request::FetchOffsets(FetchOffsetsRequest {
            group: "workers".to_string(),
            partitions: expected.clone(),
        });
        let Ok(Response::FetchOffsets(fetched)) = client.call(fetch).await else {
            panic!("fetch offsets failed");
        };
        let by_partition = |partition: u32| {
            fetched
                .offsets
                .iter()
                .find(|o| o.partition == partition)
                .expect("partition answered")
                .clone()
        };
        assert_eq!(by_partition(0).offset, Some(3));
        assert_eq!(by_partition(0).metadata, "done");
        assert_eq!(by_partition(1).offset, None);

        let Ok(Response::ListGroups(listed)) =
            client.call(Request::ListGroups(ListGroupsRequest {})).await
        else {
            panic!("list groups failed");
        };
        let summary = listed.groups.iter().find(|g| g.group == "workers").unwrap();
        assert_eq!(summary.member_count, 1);

        let describe = Request::DescribeGroup(DescribeGroupRequest {
            group: "workers".to_string(),
        });
        let Ok(Response::DescribeGroup(described)) = client.call(describe).await else {
            panic!("describe failed");
        };
        assert_eq!(described.members[0].member_id, joined.member_id);
        assert_eq!(described.offsets[0].committed, 3);
        assert_eq!(described.offsets[0].high_watermark, 3);
        server.stop().await;
    })
    .await;
}

/// Proves producer ids are issued, non-zero and distinct.
#[tokio::test]
async fn init_producer_issues_distinct_ids() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        let mut ids = Vec::new();
        for _ in 0..2 {
            let answer = client
                .call(Request::InitProducer(InitProducerRequest {}))
                .await;
            let Ok(Response::InitProducer(issued)) = answer else {
                panic!("unexpected init producer answer {answer:?}");
            };
            ids.push(issued.producer_id);
        }
        assert!(ids.iter().all(|&id| id != 0));
        assert_ne!(ids[0], ids[1]);
        server.stop().await;
    })
    .await;
}

/// Proves the server's tick timer drives the broker: a member that stops
/// heartbeating is expired after its session timeout.
#[tokio::test]
async fn silent_member_is_expired_by_the_tick_timer() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("sessions", 1).await.unwrap();
        let short_session = Request::JoinGroup(JoinGroupRequest {
            group: "sleepers".to_string(),
            member_id: String::new(),
            client_id: "group-test".to_string(),
            topics: vec!["sessions".to_string()],
            session_timeout_ms: 1_000,
            rebalance_timeout_ms: 1_000,
        });
        let Ok(Response::JoinGroup(joined)) = client.call(short_session).await else {
            panic!("join failed");
        };
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        let late = heartbeat("sleepers", &joined.member_id, joined.generation);
        expect_error(client.call(late).await, ErrorCode::UNKNOWN_MEMBER);
        server.stop().await;
    })
    .await;
}
