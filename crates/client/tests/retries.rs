//! Producer retries against a scripted fake broker: a retriable partition
//! error and a dropped connection are both retried, an idempotent batch is
//! re-sent byte for byte (same producer id and sequence), which is what lets
//! the real broker write it once, and a leader that cannot be reached any
//! more sends the producer back to the metadata.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use citystream_client::{
    Client, ClientConfig, ClientError, ErrorCode, ProducerConfig, ProducerRecord,
};
use citystream_protocol::{
    FrameCodec, HelloResponse, InboundFrame, InitProducerResponse, MetadataResponse, NodeRef,
    PartitionMetadata, PartitionStatus, ProducePartitionResponse, ProduceResponse, Request,
    Response, ResponseFrame, TopicConfig, TopicMetadata, decode_request,
};
use citystream_record::RecordBatch;
use common::bounded;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

/// What the fake broker does with the next Produce request.
#[derive(Debug, Clone, Copy)]
enum ProduceAction {
    /// Answer every partition with this error code.
    Fail(ErrorCode),
    /// Close the connection without answering.
    Drop,
}

#[derive(Default)]
struct Script {
    /// Actions for the first Produce requests; later ones succeed.
    actions: VecDeque<ProduceAction>,
    /// Every produced batch received, in order.
    batches: Vec<Bytes>,
    connections: usize,
    /// Named as the leader by the first Metadata answer instead of this broker.
    stale_leader: Option<String>,
    metadata_requests: usize,
}

/// Starts a one-node fake broker leading partition 0 of topic `t`.
async fn fake_broker(actions: Vec<ProduceAction>) -> (String, Arc<Mutex<Script>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let script = Arc::new(Mutex::new(Script {
        actions: actions.into(),
        ..Script::default()
    }));
    let (serving_address, serving_script) = (address.clone(), script.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            serving_script.lock().connections += 1;
            tokio::spawn(serve(
                stream,
                serving_address.clone(),
                serving_script.clone(),
            ));
        }
    });
    (address, script)
}

async fn serve(stream: TcpStream, address: String, script: Arc<Mutex<Script>>) {
    let mut framed = Framed::new(stream, FrameCodec::for_requests(1 << 24));
    while let Some(Ok(InboundFrame::Frame(body))) = framed.next().await {
        let frame = decode_request(body).unwrap();
        let api_key = frame.request.api_key();
        let Some(response) = answer(frame.request, &address, &script) else {
            return; // drops the connection
        };
        let response = ResponseFrame {
            request_id: frame.request_id,
            api_key,
            response: Ok(response),
        };
        framed.send(response).await.unwrap();
    }
}

fn answer(request: Request, address: &str, script: &Mutex<Script>) -> Option<Response> {
    Some(match request {
        Request::Hello(_) => Response::Hello(HelloResponse {
            version: citystream_protocol::PROTOCOL_VERSION,
            node_id: 1,
            cluster_id: "fake".to_string(),
            frame_bytes_max: 1 << 24,
            record_bytes_max: 1 << 20,
        }),
        Request::Metadata(_) => {
            let mut script = script.lock();
            script.metadata_requests += 1;
            let leader = script.stale_leader.take();
            Response::Metadata(metadata(leader.as_deref().unwrap_or(address)))
        }
        Request::InitProducer(_) => {
            Response::InitProducer(InitProducerResponse { producer_id: 77 })
        }
        Request::Produce(produce) => {
            let mut script = script.lock();
            script
                .batches
                .extend(produce.partitions.iter().map(|p| p.batch.clone()));
            let status = match script.actions.pop_front() {
                Some(ProduceAction::Drop) => return None,
                Some(ProduceAction::Fail(code)) => PartitionStatus {
                    error: code,
                    message: "scripted failure".to_string(),
                    leader_hint: Some(NodeRef {
                        node_id: 1,
                        address: address.to_string(),
                    }),
                },
                None => PartitionStatus::ok(),
            };
            Response::Produce(ProduceResponse {
                partitions: produce
                    .partitions
                    .iter()
                    .map(|p| ProducePartitionResponse {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        status: status.clone(),
                        base_offset: 0,
                        log_start_offset: 0,
                    })
                    .collect(),
            })
        }
        other => panic!("the fake broker does not serve {other:?}"),
    })
}

fn metadata(address: &str) -> MetadataResponse {
    MetadataResponse {
        cluster_id: "fake".to_string(),
        controller_id: 1,
        brokers: vec![NodeRef {
            node_id: 1,
            address: address.to_string(),
        }],
        topics: vec![TopicMetadata {
            name: "t".to_string(),
            status: PartitionStatus::ok(),
            config: TopicConfig::default(),
            partitions: vec![PartitionMetadata {
                partition: 0,
                leader: 1,
                replicas: vec![1],
                log_start_offset: 0,
                high_watermark: 0,
            }],
        }],
    }
}

fn fast_retries(idempotent: bool) -> ProducerConfig {
    ProducerConfig {
        idempotent,
        linger_ms: 1,
        retry_backoff_ms: 5,
        retry_backoff_max_ms: 20,
        delivery_timeout_ms: 500,
        ..ProducerConfig::default()
    }
}

/// Sends three records as one batch and returns their offsets.
async fn send_three(client: &Client, config: ProducerConfig) -> Vec<u64> {
    let producer = client.producer(config).unwrap();
    let mut deliveries = Vec::new();
    for value in ["a", "b", "c"] {
        deliveries.push(
            producer
                .send(ProducerRecord::new("t", value))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.unwrap().offset);
    }
    offsets
}

/// A retriable partition error is retried and the idempotent batch is re-sent unchanged.
#[tokio::test]
async fn idempotent_retry_resends_the_same_sequence() {
    bounded(async {
        let (address, script) = fake_broker(vec![ProduceAction::Fail(ErrorCode::NOT_LEADER)]).await;
        let client = Client::connect(ClientConfig::new(address)).await.unwrap();
        assert_eq!(send_three(&client, fast_retries(true)).await, vec![0, 1, 2]);
        let script = script.lock();
        assert_eq!(script.batches.len(), 2, "one failed attempt, one retry");
        assert_eq!(
            script.batches[0], script.batches[1],
            "the retry is byte-identical"
        );
        let header = *RecordBatch::from_bytes(script.batches[0].clone())
            .unwrap()
            .header();
        assert_eq!((header.producer_id, header.base_sequence), (77, 0));
    })
    .await;
}

/// A connection lost mid-request fails the request, and the retry reconnects.
#[tokio::test]
async fn lost_connection_is_retried_on_a_new_one() {
    bounded(async {
        let (address, script) = fake_broker(vec![ProduceAction::Drop]).await;
        let client = Client::connect(ClientConfig::new(address)).await.unwrap();
        assert_eq!(
            send_three(&client, fast_retries(false)).await,
            vec![0, 1, 2]
        );
        let script = script.lock();
        assert_eq!(script.batches.len(), 2);
        assert_eq!(script.connections, 2, "the client reconnected once");
    })
    .await;
}

/// A non-retriable error fails the delivery with the broker's code and message.
#[tokio::test]
async fn non_retriable_error_fails_the_records() {
    bounded(async {
        let (address, _script) =
            fake_broker(vec![ProduceAction::Fail(ErrorCode::CORRUPT_BATCH)]).await;
        let client = Client::connect(ClientConfig::new(address)).await.unwrap();
        let producer = client.producer(fast_retries(false)).unwrap();
        let delivery = producer.send(ProducerRecord::new("t", "x")).await.unwrap();
        let error = delivery.await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::CORRUPT_BATCH));
        assert!(error.to_string().contains("scripted failure"));
        assert_eq!(
            producer.flush().await.map_err(|e| e.code()),
            Ok(()),
            "nothing is left to flush"
        );
    })
    .await;
}

/// Retries go on until the delivery timeout; then the record fails with
/// an error naming the partition, how long it was tried and the last error.
#[tokio::test]
async fn retries_stop_at_the_delivery_timeout() {
    bounded(async {
        let busy = ProduceAction::Fail(ErrorCode::BUSY);
        let (address, script) = fake_broker(vec![busy; 1_000]).await;
        let client = Client::connect(ClientConfig::new(address)).await.unwrap();
        let producer = client.producer(fast_retries(false)).unwrap();
        let delivery = producer.send(ProducerRecord::new("t", "x")).await.unwrap();
        let error = delivery.await.unwrap_err();
        let ClientError::DeliveryTimeout {
            topic,
            partition,
            waited_ms,
            attempts,
            ..
        } = &error
        else {
            panic!("expected a delivery timeout, got {error}");
        };
        assert_eq!((topic.as_str(), *partition), ("t", 0));
        assert!(*waited_ms >= 500, "{error}");
        let sent = script.lock().batches.len();
        assert_eq!(*attempts as usize, sent, "{error}");
        assert!(sent > 3, "retried more than a fixed count: {sent}");
        let text = error.to_string();
        assert!(text.contains("t/0") && text.contains("BUSY"), "{text}");
    })
    .await;
}

/// Settings that cannot work are refused when the producer is made.
#[tokio::test]
async fn bad_producer_settings_are_refused() {
    bounded(async {
        let (address, _script) = fake_broker(Vec::new()).await;
        let client = Client::connect(ClientConfig::new(address)).await.unwrap();
        let refused = [
            ProducerConfig {
                max_in_flight: 6,
                ..ProducerConfig::default()
            },
            ProducerConfig {
                max_in_flight: 0,
                ..ProducerConfig::default()
            },
            ProducerConfig {
                delivery_timeout_ms: 0,
                ..ProducerConfig::default()
            },
            ProducerConfig {
                retry_backoff_ms: 2_000,
                retry_backoff_max_ms: 1_000,
                ..ProducerConfig::default()
            },
        ];
        for config in refused {
            let error = client.producer(config.clone()).err();
            assert!(
                matches!(error, Some(ClientError::InvalidArgument(_))),
                "{config:?} was accepted"
            );
        }
        let not_idempotent = ProducerConfig {
            max_in_flight: 6,
            idempotent: false,
            ..ProducerConfig::default()
        };
        assert!(client.producer(not_idempotent).is_ok());
    })
    .await;
}

/// A leader that refuses connections (killed) answers no NOT_LEADER: the
/// producer re-reads the metadata and sends to the leader named there.
#[tokio::test]
async fn unreachable_leader_is_replaced_from_fresh_metadata() {
    bounded(async {
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        }; // closed again: connections to it are refused
        let (address, script) = fake_broker(Vec::new()).await;
        script.lock().stale_leader = Some(dead);
        let client = Client::connect(ClientConfig::new(address)).await.unwrap();
        assert_eq!(
            send_three(&client, fast_retries(false)).await,
            vec![0, 1, 2]
        );
        let script = script.lock();
        assert_eq!(
            script.batches.len(),
            1,
            "sent once the live leader was known"
        );
        assert!(script.metadata_requests >= 2, "the metadata was read again");
    })
    .await;
}
