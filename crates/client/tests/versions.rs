//! The client against a broker that speaks only protocol version 1 (a
//! scripted fake): the handshake settles on 1, requests go out at 1 and
//! answers are read at 1, and creating a compacted topic fails with a clear
//! error before anything is sent (a v1 broker would make a delete topic).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use citystream_client::{Cleanup, Client, ClientConfig, ClientError, TopicConfig};
use citystream_protocol::{
    ApiKey, CreateTopicResponse, FrameCodec, HelloResponse, InboundFrame, LENGTH_PREFIX_BYTES,
    MetadataResponse, NodeRef, PartitionStatus, Request, Response, ResponseFrame, TopicMetadata,
    decode_request, encode_response_at,
};
use common::bounded;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// Requests the fake got after Hello, and whether each came at version 1.
#[derive(Default)]
struct Seen {
    create_topic: AtomicUsize,
    not_v1: AtomicUsize,
}

async fn v1_broker() -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let (served, node) = (seen.clone(), address.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(stream, node.clone(), served.clone()));
        }
    });
    (address, seen)
}

async fn serve(stream: TcpStream, address: String, seen: Arc<Seen>) {
    let mut framed = Framed::new(stream, FrameCodec::for_requests(1 << 24));
    while let Some(Ok(InboundFrame::Frame(body))) = framed.next().await {
        let frame = decode_request(body).unwrap();
        if frame.api_version != 1 {
            seen.not_v1.fetch_add(1, Ordering::Relaxed);
        }
        let response = answer(&frame.request, &address, &seen);
        let response = ResponseFrame {
            request_id: frame.request_id,
            api_key: frame.request.api_key(),
            response: Ok(response),
        };
        let mut out = BytesMut::new();
        encode_response_at(&response, 1, &mut out);
        let body = out.freeze().slice(LENGTH_PREFIX_BYTES..);
        framed.send(body).await.unwrap();
    }
}

fn answer(request: &Request, address: &str, seen: &Seen) -> Response {
    match request {
        Request::Hello(hello) => {
            assert!(hello.version_min <= 1, "the client still speaks 1");
            Response::Hello(HelloResponse {
                version: 1,
                node_id: 1,
                cluster_id: "v1".to_string(),
                frame_bytes_max: 1 << 24,
                record_bytes_max: 1 << 20,
            })
        }
        Request::CreateTopic(create) => {
            seen.create_topic.fetch_add(1, Ordering::Relaxed);
            Response::CreateTopic(CreateTopicResponse {
                topic: TopicMetadata {
                    name: create.name.clone(),
                    status: PartitionStatus::ok(),
                    config: create.config.clone(),
                    partitions: Vec::new(),
                },
            })
        }
        Request::Metadata(_) => Response::Metadata(MetadataResponse {
            cluster_id: "v1".to_string(),
            controller_id: 1,
            brokers: vec![NodeRef {
                node_id: 1,
                address: address.to_string(),
            }],
            topics: Vec::new(),
        }),
        other => panic!("unexpected {:?}", other.api_key() as ApiKey),
    }
}

/// Facing a v1-only broker, the client negotiates 1 and creates a delete
/// topic, but refuses a compacted one with an error that names the versions.
#[tokio::test]
async fn v1_broker_gets_v1_and_no_compacted_topic() {
    bounded(async {
        let (address, seen) = v1_broker().await;
        let client = Client::connect(ClientConfig::new(address.clone()))
            .await
            .unwrap();
        let admin = client.admin();
        let plain = admin
            .create_topic("plain", 1, TopicConfig::default())
            .await
            .unwrap();
        assert_eq!(plain.config.cleanup, Cleanup::Delete);
        assert_eq!(seen.create_topic.load(Ordering::Relaxed), 1);

        let compacted = TopicConfig {
            cleanup: Cleanup::Compact,
            ..TopicConfig::default()
        };
        let error = admin
            .create_topic("retained", 1, compacted)
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::InvalidArgument(_)), "{error}");
        assert_eq!(
            error.to_string(),
            format!(
                "invalid argument: cannot create compacted topic retained (cleanup compact): \
                 the broker at {address} speaks protocol version 1, and compacted topics need \
                 version 2"
            )
        );
        assert_eq!(seen.create_topic.load(Ordering::Relaxed), 1, "nothing sent");
        assert_eq!(seen.not_v1.load(Ordering::Relaxed), 0);
    })
    .await;
}
