//! Partition replication in cluster mode, in process: three servers on
//! 127.0.0.1 with a static member list (`ServeOptions::cluster`), Raft
//! traffic on their native ports. Topics are created through the metadata
//! group at any node; produce and fetch reach the partition leader (others
//! answer NOT_LEADER with its address); acknowledged records survive the
//! leader's shutdown. Wire-level: the raw test client, no redirects
//! followed for us.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use citystream_broker::BrokerConfig;
use citystream_protocol::{
    Acks, Cleanup, CreateTopicRequest, ErrorCode, ProduceResponse, Request, Response, TopicConfig,
};
use citystream_server::{ClusterConfig, ServeOptions, Timing};
use common::*;

const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Bounds each whole test (elections and a failover included).
const CLUSTER_TEST_TIMEOUT: Duration = Duration::from_secs(60);

struct Cluster {
    servers: BTreeMap<u32, TestServer>,
    addresses: BTreeMap<u32, SocketAddr>,
}

impl Cluster {
    async fn start(nodes: u32) -> Cluster {
        let mut listeners = BTreeMap::new();
        for id in 1..=nodes {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listeners.insert(id, listener);
        }
        let addresses: BTreeMap<u32, SocketAddr> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap()))
            .collect();
        let peers: BTreeMap<u32, String> = addresses
            .iter()
            .map(|(id, a)| (*id, a.to_string()))
            .collect();
        let mut servers = BTreeMap::new();
        for (id, listener) in listeners {
            let server = start_node(id, listener, peers.clone(), None).await;
            servers.insert(id, server);
        }
        Cluster { servers, addresses }
    }

    /// Starts node `id` without a member list, joining through node `via`
    /// (`--join`).
    async fn join(&mut self, id: u32, via: u32) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addresses.insert(id, listener.local_addr().unwrap());
        let seed = self.addresses[&via].to_string();
        let server = start_node(id, listener, BTreeMap::new(), Some(seed)).await;
        self.servers.insert(id, server);
    }

    /// Waits until every node is registered in the metadata (as node
    /// `id`'s Metadata answer lists them).
    async fn await_registered(&self, id: u32) {
        let mut client = self.client(id).await;
        loop {
            if let Ok(Response::Metadata(metadata)) = client.call(metadata_request()).await
                && metadata.brokers.len() == self.servers.len()
            {
                return;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn client(&self, id: u32) -> TestClient {
        self.servers[&id].client().await
    }

    async fn stop_all(self) {
        for (_, server) in self.servers {
            server.stop().await;
        }
    }
}

/// One cluster node on `listener`: a static member of `peers`, or (with
/// none) joining through the node at `join`.
async fn start_node(
    id: u32,
    listener: tokio::net::TcpListener,
    peers: BTreeMap<u32, String>,
    join: Option<String>,
) -> TestServer {
    let address = listener.local_addr().unwrap().to_string();
    let broker = BrokerConfig {
        node_id: id,
        auto_create_topics: false,
        retention_check_interval_ms: 200,
        ..broker_config()
    };
    let config = citystream_server::ServerConfig {
        advertised_address: address.clone(),
        ..server_config()
    };
    let options = ServeOptions {
        cluster: Some(ClusterConfig {
            node_id: id,
            peers,
            join,
            advertised_address: address.clone(),
            gossip_address: address,
            cluster_id: "test-cluster".to_owned(),
            timing: Timing::DEFAULT,
            snapshot_transfer_bytes_per_sec: None,
        }),
        ..ServeOptions::default()
    };
    TestServer::start_on(listener, broker, config, options).await
}

/// Creates a topic at `node`, retrying while the metadata group has no
/// leader yet.
async fn create_topic(client: &mut TestClient, name: &str, partitions: u32, replication: u16) {
    let config = TopicConfig {
        replication,
        ..TopicConfig::default()
    };
    create_topic_with(client, name, partitions, config).await;
}

async fn create_topic_with(
    client: &mut TestClient,
    name: &str,
    partitions: u32,
    config: TopicConfig,
) {
    loop {
        let answer = client
            .call(Request::CreateTopic(CreateTopicRequest {
                name: name.to_owned(),
                partitions,
                config: config.clone(),
            }))
            .await;
        match answer {
            Ok(Response::CreateTopic(created)) => {
                assert_eq!(created.topic.partitions.len(), partitions as usize);
                return;
            }
            Err(error) if error.code == ErrorCode::REQUEST_TIMED_OUT => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            other => panic!("unexpected create answer {other:?}"),
        }
    }
}

/// Produces one batch with `acks=quorum`, starting at `first` and following
/// NOT_LEADER hints and retriable errors; returns the leader that took it
/// and its base offset.
async fn produce_following(
    cluster: &Cluster,
    first: u32,
    topic: &str,
    values: &[&[u8]],
) -> (u32, u64) {
    let mut target = first;
    loop {
        let Some(server) = cluster.servers.get(&target) else {
            target = *cluster.servers.keys().next().unwrap();
            continue;
        };
        let mut client = server.client().await;
        let answer = client
            .call(produce_request(Acks::Quorum, topic, 0, batch(values)))
            .await;
        let Ok(Response::Produce(ProduceResponse { partitions })) = answer else {
            panic!("unexpected produce answer {answer:?}");
        };
        let status = &partitions[0].status;
        if status.error.is_ok() {
            return (target, partitions[0].base_offset);
        }
        assert!(
            status.error == ErrorCode::NOT_LEADER || status.error.is_retriable(),
            "produce failed for good: {status:?}"
        );
        if let Some(hint) = &status.leader_hint {
            let hinted = cluster
                .addresses
                .iter()
                .find(|(_, a)| a.to_string() == hint.address)
                .map(|(id, _)| *id);
            assert_eq!(
                hinted,
                Some(hint.node_id),
                "hint names a node by its address"
            );
            target = hint.node_id;
        } else {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// Every data record of partition 0 read from `leader`, up to its high
/// watermark.
async fn read_all(cluster: &Cluster, leader: u32, topic: &str) -> Vec<(u64, Vec<u8>)> {
    read_from(cluster, leader, topic, 0).await
}

/// [`read_all`] from `offset` on.
async fn read_from(
    cluster: &Cluster,
    leader: u32,
    topic: &str,
    mut offset: u64,
) -> Vec<(u64, Vec<u8>)> {
    let mut client = cluster.client(leader).await;
    let mut out = Vec::new();
    loop {
        let response = client.fetch(fetch_request(topic, offset, 0, 0)).await;
        let partition = &response.partitions[0];
        assert!(partition.status.error.is_ok(), "{:?}", partition.status);
        let batches: Vec<_> = citystream_record::BatchIter::new(partition.records.clone())
            .map(|b| b.expect("valid batch"))
            .collect();
        let Some(last) = batches.last() else {
            return out;
        };
        offset = last.header().next_offset();
        out.extend(records(&partition.records));
        if offset >= partition.high_watermark {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_replicated_and_survive_the_leader() {
    let test = async {
        let mut cluster = Cluster::start(3).await;
        // At once: creation waits until the static members registered.
        create_topic(&mut cluster.client(1).await, "city", 1, 3).await;

        let mut acked = Vec::new();
        let mut leader = 2;
        for i in 0..5u8 {
            let value = [b'a', i];
            let (at, base_offset) = produce_following(&cluster, leader, "city", &[&value]).await;
            leader = at;
            acked.push((base_offset, value.to_vec()));
        }
        let offsets: Vec<u64> = acked.iter().map(|(o, _)| *o).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets grow: {offsets:?}"
        );

        // A follower refuses to serve reads and names the leader.
        let follower = *cluster.servers.keys().find(|id| **id != leader).unwrap();
        let mut client = cluster.client(follower).await;
        let response = client.fetch(fetch_request("city", 0, 0, 0)).await;
        let status = &response.partitions[0].status;
        assert_eq!(status.error, ErrorCode::NOT_LEADER, "{status:?}");
        assert_eq!(status.leader_hint.as_ref().map(|h| h.node_id), Some(leader));

        let read = read_all(&cluster, leader, "city").await;
        let data: Vec<_> = read.iter().map(|(o, v)| (*o, v.clone())).collect();
        assert_eq!(
            data, acked,
            "the leader serves exactly the acknowledged records"
        );

        // The leader goes away; a survivor takes over with every record.
        cluster.servers.remove(&leader).unwrap().stop().await;
        let survivor = *cluster.servers.keys().next().unwrap();
        let (new_leader, base_offset) =
            produce_following(&cluster, survivor, "city", &[b"after"]).await;
        assert_ne!(new_leader, leader);
        acked.push((base_offset, b"after".to_vec()));
        let read = read_all(&cluster, new_leader, "city").await;
        assert_eq!(read, acked, "acknowledged records survive the leader");
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_topic_requests_are_refused_in_cluster_mode() {
    let test = async {
        let cluster = Cluster::start(3).await;
        cluster.await_registered(3).await;
        let mut client = cluster.client(3).await;
        create_topic(&mut client, "ok", 2, 0).await;
        let too_many = client
            .call(Request::CreateTopic(CreateTopicRequest {
                name: "wide".to_owned(),
                partitions: 1,
                config: TopicConfig {
                    replication: 4,
                    ..TopicConfig::default()
                },
            }))
            .await;
        let error = expect_error(too_many, ErrorCode::INVALID_REQUEST);
        assert!(error.message.contains("exceeds"), "{}", error.message);
        // Compaction settings are checked as on a single broker.
        let compacted = client
            .call(Request::CreateTopic(CreateTopicRequest {
                name: "retained".to_owned(),
                partitions: 1,
                config: TopicConfig {
                    cleanup: Cleanup::Compact,
                    tombstone_retention_ms: Some(0),
                    ..TopicConfig::default()
                },
            }))
            .await;
        let error = expect_error(compacted, ErrorCode::INVALID_REQUEST);
        assert!(
            error.message.contains("tombstone_retention_ms"),
            "{}",
            error.message
        );
        // The replicated produce path checks tombstones against the topic.
        let answer = client
            .call(produce_request(Acks::Quorum, "ok", 0, tombstone_batch()))
            .await;
        let Ok(Response::Produce(response)) = answer else {
            panic!("unexpected answer {answer:?}");
        };
        let status = &response.partitions[0].status;
        assert_eq!(status.error, ErrorCode::INVALID_REQUEST, "{status:?}");
        assert!(
            status
                .message
                .contains("null values (tombstones) need a compacted topic"),
            "{status:?}"
        );
        let bad_name = client.create_topic("no spaces", 1).await;
        expect_error(bad_name, ErrorCode::INVALID_TOPIC_NAME);
        let exists = client.create_topic("ok", 1).await;
        expect_error(exists, ErrorCode::TOPIC_ALREADY_EXISTS);
        let answer = client
            .call(produce_request(Acks::Quorum, "ok", 9, batch(&[b"x"])))
            .await;
        let Ok(Response::Produce(response)) = answer else {
            panic!("unexpected answer {answer:?}");
        };
        assert_eq!(
            response.partitions[0].status.error,
            ErrorCode::UNKNOWN_PARTITION
        );
        // Default replication is min(3, nodes): every node holds a replica.
        let Ok(Response::Metadata(metadata)) = client.call(metadata_request()).await else {
            panic!("no metadata");
        };
        let topic = metadata.topics.iter().find(|t| t.name == "ok").unwrap();
        assert_eq!(topic.config.replication, 3);
        assert!(topic.partitions.iter().all(|p| p.replicas.len() == 3));
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// ClusterStatus at node `id`.
async fn status_at(cluster: &Cluster, id: u32) -> citystream_protocol::ClusterStatusResponse {
    let mut client = cluster.client(id).await;
    match client
        .call(Request::ClusterStatus(
            citystream_protocol::ClusterStatusRequest {},
        ))
        .await
    {
        Ok(Response::ClusterStatus(status)) => status,
        other => panic!("unexpected status answer {other:?}"),
    }
}

/// Waits until every partition of `topic` is led by its preferred replica
/// (the first listed): leaders hand over to it (`node/preferred.rs`), and
/// from then on leadership stays put. Node 1's status may name a leader it
/// only guesses, so each named leader must also name itself (a node does
/// only while it leads). Returns node 1's status.
async fn await_preferred_leaders(
    cluster: &Cluster,
    topic: &str,
) -> citystream_protocol::ClusterStatusResponse {
    'wait: loop {
        tokio::time::sleep(RETRY_PAUSE).await;
        let status = status_at(cluster, 1).await;
        let partitions: Vec<_> = status
            .partitions
            .iter()
            .filter(|p| p.topic == topic)
            .collect();
        if partitions.is_empty() {
            continue;
        }
        for p in &partitions {
            if p.leader == 0 || p.replicas.first() != Some(&p.leader) {
                continue 'wait;
            }
            let own = status_at(cluster, p.leader).await;
            let leads = own
                .partitions
                .iter()
                .any(|o| o.topic == topic && o.partition == p.partition && o.leader == p.leader);
            if !leads {
                continue 'wait;
            }
        }
        return status;
    }
}

/// A dead replica's node is removed: its partitions move to the spare
/// node, which catches up with every record, and writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_node_moves_its_replicas_to_a_spare_node() {
    let test = async {
        let mut cluster = Cluster::start(4).await;
        cluster.await_registered(1).await;
        create_topic(&mut cluster.client(1).await, "moved", 1, 3).await;
        let (leader, _) = produce_following(&cluster, 1, "moved", &[b"one"]).await;
        let replicas = status_at(&cluster, leader).await.partitions[0]
            .replicas
            .clone();
        let spare = (1..=4).find(|id| !replicas.contains(id)).unwrap();
        let victim = *replicas.iter().find(|id| **id != leader).unwrap();
        cluster.servers.remove(&victim).unwrap().stop().await;

        let mut client = cluster.client(spare).await;
        let answer = client
            .call(Request::RemoveNode(
                citystream_protocol::RemoveNodeRequest { node_id: victim },
            ))
            .await;
        let Ok(Response::RemoveNode(moves)) = answer else {
            panic!("unexpected remove answer {answer:?}");
        };
        assert_eq!(moves.reassignments.len(), 1, "{moves:?}");
        let moved = &moves.reassignments[0];
        assert!(moved.from.contains(&victim) && !moved.to.contains(&victim));
        assert!(moved.to.contains(&spare), "{moved:?}");

        let (_, offset) = produce_following(&cluster, leader, "moved", &[b"two"]).await;
        // The spare's replica catches up with everything committed.
        loop {
            let status = status_at(&cluster, spare).await;
            let partition = &status.partitions[0];
            if partition.replicas.contains(&spare) && partition.commit_index > offset {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        // Removing it again, or an unknown node, is refused.
        for node_id in [victim, 42] {
            let again = client
                .call(Request::RemoveNode(
                    citystream_protocol::RemoveNodeRequest { node_id },
                ))
                .await;
            expect_error(again, ErrorCode::INVALID_REQUEST);
        }
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// Consumer groups have one coordinator (the metadata leader): an offset
/// committed through one node is what every other node reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_offsets_are_the_same_through_every_node() {
    use citystream_protocol::{
        CommitOffsetsRequest, CommittedOffset, FetchOffsetsRequest, TopicPartition,
    };
    let test = async {
        let cluster = Cluster::start(3).await;
        cluster.await_registered(1).await;
        create_topic(&mut cluster.client(1).await, "g", 1, 3).await;
        let commit = Request::CommitOffsets(CommitOffsetsRequest {
            group: "dashboard".to_owned(),
            member_id: String::new(),
            generation: 0,
            offsets: vec![CommittedOffset {
                topic: "g".to_owned(),
                partition: 0,
                offset: 7,
                metadata: String::new(),
            }],
        });
        let answer = cluster.client(2).await.call(commit).await;
        let Ok(Response::CommitOffsets(committed)) = answer else {
            panic!("unexpected commit answer {answer:?}");
        };
        assert!(
            committed.partitions[0].status.error.is_ok(),
            "{committed:?}"
        );
        for id in 1..=3 {
            let fetch = Request::FetchOffsets(FetchOffsetsRequest {
                group: "dashboard".to_owned(),
                partitions: vec![TopicPartition {
                    topic: "g".to_owned(),
                    partition: 0,
                }],
            });
            let answer = cluster.client(id).await.call(fetch).await;
            let Ok(Response::FetchOffsets(fetched)) = answer else {
                panic!("unexpected fetch answer {answer:?}");
            };
            assert_eq!(fetched.offsets[0].offset, Some(7), "through node {id}");
        }
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// A retry of an idempotent batch whose first ack wait timed out is
/// answered with the batch's offset once it commits, and the batch is in
/// the log once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_an_ack_timeout_finds_the_first_copy() {
    use citystream_protocol::{InitProducerRequest, ProducePartition, ProduceRequest};
    let test = async {
        let cluster = Cluster::start(3).await;
        cluster.await_registered(1).await;
        create_topic(&mut cluster.client(1).await, "once", 1, 3).await;
        // Leadership settles first: a hand-over mid-test would answer
        // NOT_LEADER where the test expects a timeout or an ack.
        let leader = await_preferred_leaders(&cluster, "once").await.partitions[0].leader;
        produce_following(&cluster, leader, "once", &[b"first"]).await;
        let mut client = cluster.client(leader).await;
        let answer = client
            .call(Request::InitProducer(InitProducerRequest {}))
            .await;
        let Ok(Response::InitProducer(issued)) = answer else {
            panic!("unexpected init answer {answer:?}");
        };
        let batch = |sequence: u32| {
            let mut builder = citystream_record::BatchBuilder::new();
            builder.set_producer(issued.producer_id, sequence);
            let value = format!("once-{sequence}");
            builder
                .push(1_700_000_000_000, None, value.as_bytes(), &[])
                .unwrap();
            builder.finish()
        };
        let produce = |sequence: u32, timeout_ms: u32| {
            Request::Produce(ProduceRequest {
                acks: Acks::Quorum,
                timeout_ms,
                partitions: vec![ProducePartition {
                    topic: "once".to_owned(),
                    partition: 0,
                    batch: batch(sequence),
                }],
            })
        };
        // 1 ms is usually too short for a quorum round: the first wait
        // gives up. Each batch is retried until acknowledged.
        let mut timed_out = 0;
        for sequence in 0..20u32 {
            let first = client.call(produce(sequence, 1)).await;
            let Ok(Response::Produce(first)) = first else {
                panic!("unexpected produce answer {first:?}");
            };
            let first = &first.partitions[0];
            if !first.status.error.is_ok() {
                assert_eq!(first.status.error, ErrorCode::REQUEST_TIMED_OUT);
                timed_out += 1;
            }
            let mut attempts = 0;
            let offset = loop {
                let retry = client.call(produce(sequence, 5_000)).await;
                let Ok(Response::Produce(retry)) = retry else {
                    panic!("unexpected produce answer {retry:?}");
                };
                let retry = &retry.partitions[0];
                if retry.status.error.is_ok() {
                    break retry.base_offset;
                }
                attempts += 1;
                assert!(
                    attempts < 40,
                    "the retry never succeeds: {:?}",
                    retry.status
                );
                tokio::time::sleep(RETRY_PAUSE).await;
            };
            if first.status.error.is_ok() {
                assert_eq!(first.base_offset, offset, "a duplicate keeps its offset");
            }
        }
        eprintln!("{timed_out} of 20 first attempts timed out");
        let values: Vec<Vec<u8>> = read_all(&cluster, leader, "once")
            .await
            .into_iter()
            .map(|(_, value)| value)
            .collect();
        let mut expected = vec![b"first".to_vec()];
        expected.extend((0..20).map(|sequence| format!("once-{sequence}").into_bytes()));
        assert_eq!(values, expected, "each batch once, in order");
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// Waits until node `id` reports every partition of `topic` quiet; returns
/// its status then.
async fn await_quiet(
    cluster: &Cluster,
    id: u32,
    topic: &str,
) -> citystream_protocol::ClusterStatusResponse {
    loop {
        let status = status_at(cluster, id).await;
        let partitions: Vec<_> = status
            .partitions
            .iter()
            .filter(|p| p.topic == topic)
            .collect();
        if !partitions.is_empty() && partitions.iter().all(|p| p.quiet) {
            return status;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Idle partitions go quiet on every replica (their leader stops Raft
/// heartbeats; one beat per node pair keeps followers from electing), a
/// write to a quiet partition is taken and replicated at once, and when a
/// quiet partition's leader goes away the survivors elect a new one that
/// holds every acknowledged record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_partitions_go_quiet_and_still_fail_over() {
    let test = async {
        let mut cluster = Cluster::start(3).await;
        create_topic(&mut cluster.client(1).await, "calm", 2, 3).await;
        // Leadership settles first, so the write after the quiet spell
        // reaches the leader without a hand-over in between.
        let leader = await_preferred_leaders(&cluster, "calm").await;
        let leader = leader
            .partitions
            .iter()
            .find(|p| p.topic == "calm")
            .unwrap()
            .leader;
        let (_, first) = produce_following(&cluster, leader, "calm", &[b"one"]).await;
        for id in 1..=3 {
            let status = await_quiet(&cluster, id, "calm").await;
            let partition = &status.partitions[0];
            assert_eq!((partition.commit_index, partition.lag), (first + 1, 0));
        }

        // A write to the quiet group is taken at once (no retry: the leader
        // renews its lease first); it is committed, the group quiets again.
        // Quiet for longer than openraft's leader lease (600 ms) first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut client = cluster.client(leader).await;
        let answer = client
            .call(produce_request(Acks::Quorum, "calm", 0, batch(&[b"two"])))
            .await;
        let Ok(Response::Produce(ProduceResponse { partitions })) = answer else {
            panic!("unexpected produce answer {answer:?}");
        };
        assert!(
            partitions[0].status.error.is_ok(),
            "{:?}",
            partitions[0].status
        );
        let second = partitions[0].base_offset;
        assert_eq!(second, first + 1);
        let status = await_quiet(&cluster, leader, "calm").await;
        assert_eq!(status.partitions[0].commit_index, second + 1);

        cluster.servers.remove(&leader).unwrap().stop().await;
        let survivor = *cluster.servers.keys().next().unwrap();
        let (new_leader, third) = produce_following(&cluster, survivor, "calm", &[b"three"]).await;
        assert_ne!(new_leader, leader);
        let read = read_all(&cluster, new_leader, "calm").await;
        let values: Vec<&[u8]> = read.iter().map(|(_, v)| v.as_slice()).collect();
        assert_eq!(values, [&b"one"[..], b"two", b"three"]);
        assert_eq!(read.last().map(|(o, _)| *o), Some(third));
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// A fourth node joins a running three-node cluster through one of its
/// nodes (`--join`): it registers as a broker, a rebalance moves replicas
/// onto it, its replicas catch up with every record, and writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_replicas_after_a_rebalance() {
    let test = async {
        let mut cluster = Cluster::start(3).await;
        create_topic(&mut cluster.client(1).await, "spread", 3, 3).await;
        let (_, first) = produce_following(&cluster, 1, "spread", &[b"one"]).await;

        cluster.join(4, 2).await;
        cluster.await_registered(1).await;
        let mut client = cluster.client(4).await;
        let answer = client
            .call(Request::Rebalance(citystream_protocol::RebalanceRequest {
                dry_run: false,
            }))
            .await;
        let Ok(Response::Rebalance(moves)) = answer else {
            panic!("unexpected rebalance answer {answer:?}");
        };
        assert!(
            !moves.reassignments.is_empty()
                && moves.reassignments.iter().all(|m| m.to.contains(&4)),
            "replicas move onto the new node: {moves:?}"
        );

        // Node 4's replicas catch up: each goes quiet, which needs the same
        // last and committed index as its leader's.
        let moved: Vec<usize> = moves
            .reassignments
            .iter()
            .map(|m| m.partition as usize)
            .collect();
        loop {
            let status = status_at(&cluster, 4).await;
            let caught_up = moved.iter().all(|p| {
                let partition = &status.partitions[*p];
                partition.replicas.contains(&4) && partition.quiet && partition.commit_index > 0
            });
            if caught_up {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        let (at, second) = produce_following(&cluster, 4, "spread", &[b"two"]).await;
        assert!(second > first);
        let values: Vec<Vec<u8>> = read_all(&cluster, at, "spread")
            .await
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values, [b"one".to_vec(), b"two".to_vec()]);
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// A node that joined a full metadata group is a learner there; when a
/// voter is removed (`remove-node`) it takes the voter's place, so the
/// metadata group still has a quorum after one more node stops: a topic
/// can still be created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_learner_replaces_a_removed_metadata_voter() {
    let test = async {
        let mut cluster = Cluster::start(3).await;
        cluster.join(4, 1).await;
        cluster.await_registered(1).await;
        cluster.servers.remove(&3).unwrap().stop().await;
        let mut client = cluster.client(4).await;
        let answer = client
            .call(Request::RemoveNode(
                citystream_protocol::RemoveNodeRequest { node_id: 3 },
            ))
            .await;
        assert!(
            matches!(answer, Ok(Response::RemoveNode(_))),
            "unexpected remove answer {answer:?}"
        );
        // Voters are now 1, 2 and 4: losing one of them keeps a quorum.
        let gone = status_at(&cluster, 4).await.metadata_leader.unwrap_or(1);
        cluster.servers.remove(&gone).unwrap().stop().await;
        let survivor = *cluster.servers.keys().next().unwrap();
        create_topic(&mut cluster.client(survivor).await, "after", 1, 2).await;
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// A CommitOffsets request for group `group` with `(partition, offset,
/// metadata)` on topic `topic`.
fn commit_request(
    group: &str,
    member_id: &str,
    generation: u32,
    topic: &str,
    offsets: &[(u32, u64, &str)],
) -> Request {
    Request::CommitOffsets(citystream_protocol::CommitOffsetsRequest {
        group: group.to_owned(),
        member_id: member_id.to_owned(),
        generation,
        offsets: offsets
            .iter()
            .map(
                |(partition, offset, metadata)| citystream_protocol::CommittedOffset {
                    topic: topic.to_owned(),
                    partition: *partition,
                    offset: *offset,
                    metadata: (*metadata).to_owned(),
                },
            )
            .collect(),
    })
}

/// Every committed offset of `group` through node `id`, as (topic,
/// partition, offset, metadata); retried while the answer is retriable
/// (a coordinator being elected or taking over).
async fn fetch_group_offsets(
    cluster: &Cluster,
    id: u32,
    group: &str,
) -> Vec<(String, u32, Option<u64>, String)> {
    loop {
        let fetch = Request::FetchOffsets(citystream_protocol::FetchOffsetsRequest {
            group: group.to_owned(),
            partitions: Vec::new(),
        });
        match cluster.client(id).await.call(fetch).await {
            Ok(Response::FetchOffsets(fetched)) => {
                return fetched
                    .offsets
                    .into_iter()
                    .map(|o| (o.topic, o.partition, o.offset, o.metadata))
                    .collect();
            }
            Err(error) if error.code.is_retriable() => tokio::time::sleep(RETRY_PAUSE).await,
            other => panic!("unexpected fetch answer {other:?}"),
        }
    }
}

/// An acknowledged offset commit survives the loss of the group
/// coordinator (the metadata leader): the next coordinator answers with
/// exactly the committed offsets, and a refused commit changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_the_coordinator() {
    let test = async {
        let mut cluster = Cluster::start(3).await;
        cluster.await_registered(1).await;
        create_topic(&mut cluster.client(1).await, "kept", 2, 3).await;
        let leader = loop {
            if let Some(leader) = status_at(&cluster, 1).await.metadata_leader {
                break leader;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        };
        // Through a node that is not the coordinator: the commit is forwarded.
        let entry = *cluster.servers.keys().find(|id| **id != leader).unwrap();
        let commit = commit_request("billing", "", 0, "kept", &[(0, 7, "seven"), (1, 11, "")]);
        let answer = cluster.client(entry).await.call(commit).await;
        let Ok(Response::CommitOffsets(committed)) = answer else {
            panic!("unexpected commit answer {answer:?}");
        };
        assert!(
            committed.partitions.iter().all(|p| p.status.error.is_ok()),
            "{committed:?}"
        );
        let ghost = commit_request("billing", "ghost", 3, "kept", &[(0, 99, "")]);
        let refused = cluster.client(entry).await.call(ghost).await;
        expect_error(refused, ErrorCode::UNKNOWN_MEMBER);

        cluster.servers.remove(&leader).unwrap().stop().await;
        let survivor = *cluster.servers.keys().next().unwrap();
        let fetched = fetch_group_offsets(&cluster, survivor, "billing").await;
        let expected = vec![
            ("kept".to_owned(), 0, Some(7), "seven".to_owned()),
            ("kept".to_owned(), 1, Some(11), String::new()),
        ];
        assert_eq!(fetched, expected, "the committed offsets survive");
        let new_leader = status_at(&cluster, survivor).await.metadata_leader;
        assert_ne!(new_leader, Some(leader));
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// Partition 0 of `topic` as node `id` holds it: (replicas, log start,
/// high watermark) of its local replica.
async fn local_extent(cluster: &Cluster, id: u32, topic: &str) -> (Vec<u32>, u64, u64) {
    let mut client = cluster.client(id).await;
    let Ok(Response::Metadata(metadata)) = client.call(metadata_request()).await else {
        panic!("no metadata from node {id}");
    };
    let found = metadata.topics.iter().find(|t| t.name == topic);
    let partition = &found.expect("the topic is known").partitions[0];
    (
        partition.replicas.clone(),
        partition.log_start_offset,
        partition.high_watermark,
    )
}

/// Retention in cluster mode (decision 0005 §2): every replica deletes old
/// segments through a snapshot, a fetch below the start is refused, and a
/// replica placed on a spare node after the deletion starts at the
/// leader's snapshot and holds exactly the retained records, which survive
/// the old leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_through_snapshots_and_a_new_replica_starts_there() {
    let test = async {
        let mut cluster = Cluster::start(4).await;
        cluster.await_registered(1).await;
        let config = TopicConfig {
            replication: 3,
            retention_ms: None,
            retention_bytes: Some(2048),
            segment_bytes: Some(1024),
            ..TopicConfig::default()
        };
        create_topic_with(&mut cluster.client(1).await, "rolling", 1, config).await;
        // Leadership first settles, so it does not move while the test
        // reads from the leader.
        let leader = await_preferred_leaders(&cluster, "rolling")
            .await
            .partitions[0]
            .leader;
        let value = |i: usize| format!("{i:03}-{}", "x".repeat(96)).into_bytes();
        for i in 0..40 {
            produce_following(&cluster, leader, "rolling", &[&value(i)]).await;
        }
        let (replicas, _, _) = local_extent(&cluster, leader, "rolling").await;
        // Retention runs every 200 ms on each replica: wait until every log
        // start has moved and then stayed put for several rounds.
        let mut last = Vec::new();
        let start = loop {
            let mut starts = Vec::new();
            for id in &replicas {
                starts.push(local_extent(&cluster, *id, "rolling").await.1);
            }
            if starts.iter().all(|s| *s > 0) && starts == last {
                break local_extent(&cluster, leader, "rolling").await.1;
            }
            last = starts;
            tokio::time::sleep(Duration::from_millis(600)).await;
        };
        let retained = read_from(&cluster, leader, "rolling", start).await;
        let expected: Vec<Vec<u8>> = (40 - retained.len()..40).map(value).collect();
        let values: Vec<Vec<u8>> = retained.iter().map(|(_, v)| v.clone()).collect();
        assert!(
            values.len() < 30,
            "old records are gone: {} left",
            values.len()
        );
        assert_eq!(values, expected, "the newest records are kept, in order");
        let mut client = cluster.client(leader).await;
        let response = client.fetch(fetch_request("rolling", 0, 0, 0)).await;
        assert_eq!(
            response.partitions[0].status.error,
            ErrorCode::OFFSET_OUT_OF_RANGE
        );

        let spare = (1..=4).find(|id| !replicas.contains(id)).unwrap();
        let victim = *replicas.iter().find(|id| **id != leader).unwrap();
        cluster.servers.remove(&victim).unwrap().stop().await;
        let answer = client
            .call(Request::RemoveNode(
                citystream_protocol::RemoveNodeRequest { node_id: victim },
            ))
            .await;
        assert!(matches!(answer, Ok(Response::RemoveNode(_))), "{answer:?}");
        // The spare catches up although the leader no longer holds the
        // start of the log: it is sent the snapshot. (It may delete more
        // afterwards, under its own retention.)
        loop {
            let (_, _, end) = local_extent(&cluster, leader, "rolling").await;
            let (replicas, spare_start, spare_end) = local_extent(&cluster, spare, "rolling").await;
            if replicas.contains(&spare) && spare_end == end {
                assert!(spare_start >= start, "the spare never held purged records");
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }

        cluster.servers.remove(&leader).unwrap().stop().await;
        let (new_leader, _) = produce_following(&cluster, spare, "rolling", &[b"after"]).await;
        let (_, new_start, _) = local_extent(&cluster, new_leader, "rolling").await;
        let read = read_from(&cluster, new_leader, "rolling", new_start).await;
        let mut expected = values.clone();
        expected.push(b"after".to_vec());
        let values: Vec<Vec<u8>> = read.into_iter().map(|(_, v)| v).collect();
        assert!(!values.is_empty());
        assert_eq!(values, expected[expected.len() - values.len()..]);
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}

/// Leaders go to the preferred replicas (the first of each placement,
/// spread over the nodes by placement), whoever won the first elections:
/// each partition's leader hands over once its preferred replica has been
/// caught up for a while, and writes go on through the hints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_preferred_replicas() {
    let test = async {
        let cluster = Cluster::start(3).await;
        create_topic(&mut cluster.client(1).await, "spread", 3, 3).await;
        let (_, first) = produce_following(&cluster, 1, "spread", &[b"one"]).await;
        let status = await_preferred_leaders(&cluster, "spread").await;
        let leaders: std::collections::BTreeSet<u32> =
            status.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(
            leaders.len(),
            3,
            "one partition led by each node: {status:?}"
        );
        let (_, second) = produce_following(&cluster, 1, "spread", &[b"two"]).await;
        assert!(second > first);
        cluster.stop_all().await;
    };
    bounded_by(CLUSTER_TEST_TIMEOUT, test).await;
}
