//! Admin requests that must reach the metadata leader, against two scripted
//! fake nodes: a `NOT_LEADER` answer is followed to the hinted node, or,
//! without a hint, to the controller named by Metadata; the redirects are
//! bounded. A standalone in-process broker refuses RemoveNode and Rebalance
//! with a clear error. (Real leader changes need a Raft cluster, which the
//! server does not run yet; the redirect decision itself is unit-tested in
//! `src/controller.rs`.)

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use citystream_client::{Client, ClientConfig, ErrorCode, TopicConfig};
use citystream_protocol::{
    ApiError, ApiKey, CreateTopicResponse, DeleteTopicResponse, FrameCodec, HelloResponse,
    InboundFrame, MetadataResponse, NodeRef, PartitionStatus, Reassignment, ReassignmentsResponse,
    Request, Response, ResponseFrame, TopicMetadata, decode_request,
};
use common::{TestServer, bounded};
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// How a fake node answers a request (Hello is answered for it).
type Answer = Arc<dyn Fn(&Request) -> Result<Response, ApiError> + Send + Sync>;

/// A fake node: its id, address, and how many requests of each api it got.
struct FakeNode {
    node: NodeRef,
    received: Arc<Mutex<HashMap<ApiKey, usize>>>,
}

impl FakeNode {
    fn received(&self, key: ApiKey) -> usize {
        self.received.lock().get(&key).copied().unwrap_or(0)
    }
}

/// Binds two nodes (ids 1 and 2) and starts each answering with the
/// closure `answers` gives for it, given both nodes' references.
async fn fake_nodes(answers: impl Fn(u32, &[NodeRef; 2]) -> Answer) -> [FakeNode; 2] {
    let listeners = [bind().await, bind().await];
    let nodes = [1, 2].map(|node_id| NodeRef {
        node_id,
        address: listeners[node_id as usize - 1]
            .local_addr()
            .unwrap()
            .to_string(),
    });
    let mut fakes = Vec::new();
    for (listener, node) in listeners.into_iter().zip(&nodes) {
        let received = Arc::new(Mutex::new(HashMap::new()));
        let answer = answers(node.node_id, &nodes);
        tokio::spawn(accept(listener, node.node_id, answer, received.clone()));
        fakes.push(FakeNode {
            node: node.clone(),
            received,
        });
    }
    fakes.try_into().ok().unwrap()
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn accept(
    listener: TcpListener,
    node_id: u32,
    answer: Answer,
    received: Arc<Mutex<HashMap<ApiKey, usize>>>,
) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::spawn(serve(stream, node_id, answer.clone(), received.clone()));
    }
}

async fn serve(
    stream: TcpStream,
    node_id: u32,
    answer: Answer,
    received: Arc<Mutex<HashMap<ApiKey, usize>>>,
) {
    let mut framed = Framed::new(stream, FrameCodec::for_requests(1 << 24));
    while let Some(Ok(InboundFrame::Frame(body))) = framed.next().await {
        let frame = decode_request(body).unwrap();
        let api_key = frame.request.api_key();
        *received.lock().entry(api_key).or_default() += 1;
        let response = match &frame.request {
            Request::Hello(_) => Ok(hello(node_id)),
            request => answer(request),
        };
        let response = ResponseFrame {
            request_id: frame.request_id,
            api_key,
            response,
        };
        framed.send(response).await.unwrap();
    }
}

fn hello(node_id: u32) -> Response {
    Response::Hello(HelloResponse {
        version: citystream_protocol::PROTOCOL_VERSION,
        node_id,
        cluster_id: "fake".to_string(),
        frame_bytes_max: 1 << 24,
        record_bytes_max: 1 << 20,
    })
}

fn metadata(controller_id: u32, nodes: &[NodeRef; 2]) -> Response {
    Response::Metadata(MetadataResponse {
        cluster_id: "fake".to_string(),
        controller_id,
        brokers: nodes.to_vec(),
        topics: Vec::new(),
    })
}

fn not_leader(hint: Option<&NodeRef>) -> PartitionStatus {
    PartitionStatus {
        error: ErrorCode::NOT_LEADER,
        message: "not the metadata leader".to_string(),
        leader_hint: hint.cloned(),
    }
}

fn created(status: PartitionStatus) -> Response {
    Response::CreateTopic(CreateTopicResponse {
        topic: TopicMetadata {
            name: "t".to_string(),
            status,
            config: TopicConfig::default(),
            partitions: Vec::new(),
        },
    })
}

fn moves(status: PartitionStatus, reassignments: Vec<Reassignment>) -> ReassignmentsResponse {
    ReassignmentsResponse {
        status,
        reassignments,
    }
}

fn one_move() -> Vec<Reassignment> {
    vec![Reassignment {
        topic: "t".to_string(),
        partition: 0,
        from: vec![1, 3],
        to: vec![2, 3],
    }]
}

async fn client_of(node: &FakeNode) -> Client {
    let mut config = ClientConfig::new(node.node.address.clone());
    config.request_timeout_ms = 5_000;
    Client::connect(config).await.unwrap()
}

/// CreateTopic answered NOT_LEADER with a hint is sent again to the hinted
/// node, and that node's answer is returned.
#[tokio::test]
async fn create_topic_follows_the_leader_hint() {
    bounded(async {
        let nodes = fake_nodes(|node_id, nodes| {
            let nodes = nodes.clone();
            Arc::new(move |request| match request {
                Request::Metadata(_) => Ok(metadata(2, &nodes)),
                Request::CreateTopic(_) if node_id == 1 => Ok(created(not_leader(Some(&nodes[1])))),
                Request::CreateTopic(_) => Ok(created(PartitionStatus::ok())),
                other => panic!("unexpected {:?}", other.api_key()),
            })
        })
        .await;
        let admin = client_of(&nodes[0]).await.admin();
        let topic = admin
            .create_topic("t", 1, TopicConfig::default())
            .await
            .unwrap();
        assert!(topic.status.error.is_ok());
        assert_eq!(nodes[0].received(ApiKey::CreateTopic), 1);
        assert_eq!(nodes[1].received(ApiKey::CreateTopic), 1);
    })
    .await;
}

/// DeleteTopic answered with a request-level NOT_LEADER (no hint) is sent
/// to the controller that Metadata names.
#[tokio::test]
async fn delete_topic_without_hint_goes_to_the_controller() {
    bounded(async {
        let nodes = fake_nodes(|node_id, nodes| {
            let nodes = nodes.clone();
            Arc::new(move |request| match request {
                Request::Metadata(_) => Ok(metadata(2, &nodes)),
                Request::DeleteTopic(_) if node_id == 1 => {
                    Err(ApiError::new(ErrorCode::NOT_LEADER, "ask the controller"))
                }
                Request::DeleteTopic(_) => Ok(Response::DeleteTopic(DeleteTopicResponse {})),
                other => panic!("unexpected {:?}", other.api_key()),
            })
        })
        .await;
        let admin = client_of(&nodes[0]).await.admin();
        admin.delete_topic("t").await.unwrap();
        assert_eq!(nodes[0].received(ApiKey::DeleteTopic), 1);
        assert_eq!(nodes[1].received(ApiKey::DeleteTopic), 1);
    })
    .await;
}

/// Rebalance goes to the controller Metadata names; when that node is no
/// longer the leader its hint is followed, and the moves come from there.
#[tokio::test]
async fn rebalance_goes_to_the_controller_then_follows_its_hint() {
    bounded(async {
        let nodes = fake_nodes(|node_id, nodes| {
            let nodes = nodes.clone();
            Arc::new(move |request| match request {
                // Stale: node 1 still believes it leads.
                Request::Metadata(_) => Ok(metadata(1, &nodes)),
                Request::Rebalance(_) if node_id == 1 => Ok(Response::Rebalance(moves(
                    not_leader(Some(&nodes[1])),
                    Vec::new(),
                ))),
                Request::Rebalance(rebalance) => {
                    assert!(rebalance.dry_run);
                    Ok(Response::Rebalance(moves(
                        PartitionStatus::ok(),
                        one_move(),
                    )))
                }
                other => panic!("unexpected {:?}", other.api_key()),
            })
        })
        .await;
        let admin = client_of(&nodes[0]).await.admin();
        assert_eq!(admin.rebalance(true).await.unwrap(), one_move());
        assert_eq!(nodes[0].received(ApiKey::Rebalance), 1);
        assert_eq!(nodes[1].received(ApiKey::Rebalance), 1);
    })
    .await;
}

/// Two nodes that keep pointing at each other get three sends in all, then
/// the caller sees NOT_LEADER.
#[tokio::test]
async fn redirects_are_bounded() {
    bounded(async {
        let nodes = fake_nodes(|node_id, nodes| {
            let nodes = nodes.clone();
            Arc::new(move |request| match request {
                Request::Metadata(_) => Ok(metadata(1, &nodes)),
                Request::RemoveNode(_) => {
                    let other = &nodes[if node_id == 1 { 1 } else { 0 }];
                    Ok(Response::RemoveNode(moves(
                        not_leader(Some(other)),
                        Vec::new(),
                    )))
                }
                other => panic!("unexpected {:?}", other.api_key()),
            })
        })
        .await;
        let admin = client_of(&nodes[0]).await.admin();
        let error = admin.remove_node(3).await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::NOT_LEADER));
        let sends = nodes[0].received(ApiKey::RemoveNode) + nodes[1].received(ApiKey::RemoveNode);
        assert_eq!(sends, 3);
    })
    .await;
}

/// A standalone broker has no metadata Raft group: RemoveNode and Rebalance
/// fail with INVALID_REQUEST saying cluster mode is needed.
#[tokio::test]
async fn standalone_broker_refuses_placement_changes() {
    bounded(async {
        let server = TestServer::start().await;
        let admin = server.client().await.admin();
        let error = admin.rebalance(false).await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::INVALID_REQUEST));
        assert!(error.to_string().contains("needs cluster mode"), "{error}");
        let error = admin.remove_node(2).await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::INVALID_REQUEST));
        assert!(error.to_string().contains("needs cluster mode"), "{error}");
    })
    .await;
}
