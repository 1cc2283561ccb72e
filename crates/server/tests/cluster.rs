//! ClusterStatus and the Metadata broker list, standalone and in cluster
//! mode (two servers in this process, each with its own gossip membership
//! on 127.0.0.1).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use citystream_broker::BrokerConfig;
use citystream_membership::{Membership, MembershipConfig, NodeId, NodeInfo};
use citystream_protocol::{
    ClusterNode, ClusterPartition, ClusterStatusRequest, ClusterStatusResponse, ListenerAddress,
    MetadataResponse, NodeState, Request, Response,
};
use citystream_server::{ServeOptions, ServerConfig};
use common::*;

const CLUSTER_ID: &str = "test-cluster";
/// Pause between two looks at a converging cluster.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

async fn cluster_status(client: &mut TestClient) -> ClusterStatusResponse {
    match client
        .call(Request::ClusterStatus(ClusterStatusRequest {}))
        .await
    {
        Ok(Response::ClusterStatus(status)) => status,
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn metadata(client: &mut TestClient) -> MetadataResponse {
    match client.call(metadata_request()).await {
        Ok(Response::Metadata(metadata)) => metadata,
        other => panic!("unexpected answer {other:?}"),
    }
}

/// Polls ClusterStatus until `done` holds (the test's own timeout bounds it).
async fn wait_for_status(
    client: &mut TestClient,
    done: impl Fn(&ClusterStatusResponse) -> bool,
) -> ClusterStatusResponse {
    loop {
        let status = cluster_status(client).await;
        if done(&status) {
            return status;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn alive_ids(status: &ClusterStatusResponse) -> Vec<u32> {
    status
        .nodes
        .iter()
        .filter(|node| node.state == NodeState::Alive)
        .map(|node| node.node_id)
        .collect()
}

/// A standalone broker answers ClusterStatus with itself alone, Alive, and
/// every partition it holds, led by itself with nothing uncommitted.
#[tokio::test]
async fn standalone_status_lists_this_node_and_its_partitions() {
    bounded(async {
        let server = TestServer::start().await;
        let mut client = server.client().await;
        client.create_topic("city.air", 2).await.unwrap();
        client.produce("city.air", 0, batch(&[b"a", b"b"])).await;

        let status = cluster_status(&mut client).await;
        assert_eq!(status.cluster_id, CLUSTER_ID);
        assert_eq!(status.node_id, 7);
        assert_eq!(status.metadata_leader, None);
        assert_eq!(status.nodes.len(), 1);
        let node = &status.nodes[0];
        assert_eq!(
            (node.node_id, node.state, node.partitions_led),
            (7, NodeState::Alive, 2)
        );
        assert_eq!(
            node.addresses,
            vec![ListenerAddress {
                name: "native".to_string(),
                address: "127.0.0.1:19400".to_string(),
            }]
        );
        let partition = |partition, end| ClusterPartition {
            topic: "city.air".to_string(),
            partition,
            leader: 7,
            replicas: vec![7],
            commit_index: end,
            log_end: end,
            lag: 0,
            quiet: false,
        };
        assert_eq!(status.partitions, vec![partition(0, 2), partition(1, 0)]);
        server.stop().await;
    })
    .await;
}

/// One node of a gossip cluster: its server, the native address it
/// advertises and its gossip address.
async fn start_node(node_id: u32, seeds: Vec<SocketAddr>) -> (TestServer, String, SocketAddr) {
    let mut config =
        MembershipConfig::new(NodeId(node_id), CLUSTER_ID, "127.0.0.1:0".parse().unwrap());
    config.seeds = seeds;
    // The native address is only published, never dialled, in this test.
    let native = format!("127.0.0.1:{}", 19_400 + node_id);
    let info = NodeInfo::new(NodeId(node_id), CLUSTER_ID).with_listener("native", &native);
    let membership = Membership::start(config, info).await.unwrap();
    let gossip = membership.local_gossip_addr();
    let broker = BrokerConfig {
        node_id,
        ..broker_config()
    };
    let server_config = ServerConfig {
        advertised_address: native.clone(),
        ..server_config()
    };
    let options = ServeOptions {
        membership: Some(membership),
        discovery: None,
        cluster: None,
        local: None,
    };
    let server = TestServer::start_with_options(broker, server_config, options).await;
    (server, native, gossip)
}

/// In cluster mode ClusterStatus and Metadata list every gossip member with
/// its native address and published load; a stopped node stops being Alive
/// and leaves the Metadata broker list.
#[tokio::test]
async fn cluster_mode_lists_gossip_members() {
    bounded(async {
        // Node 1 learns node 2's gossip address from node 2's first SYN.
        let (first, first_native, first_gossip) = start_node(1, Vec::new()).await;
        let (second, second_native, _) = start_node(2, vec![first_gossip]).await;
        let mut client = first.client().await;
        client.create_topic("t", 3).await.unwrap();

        let status = wait_for_status(&mut client, |status| {
            alive_ids(status) == [1, 2]
                && status
                    .nodes
                    .iter()
                    .any(|n| n.node_id == 1 && n.partitions_led == 3)
        })
        .await;
        let second_node: &ClusterNode = &status.nodes[1];
        assert_eq!(second_node.addresses[0].address, second_native);
        assert!(second_node.generation > 0);
        let brokers = metadata(&mut client).await.brokers;
        let listed: Vec<_> = brokers
            .iter()
            .map(|b| (b.node_id, b.address.as_str()))
            .collect();
        assert_eq!(
            listed,
            [(1, first_native.as_str()), (2, second_native.as_str())]
        );

        second.stop().await;
        wait_for_status(&mut client, |status| alive_ids(status) == [1]).await;
        let brokers = metadata(&mut client).await.brokers;
        assert_eq!(brokers.len(), 1);
        first.stop().await;
    })
    .await;
}
