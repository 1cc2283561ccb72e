//! Test harness: a server on `127.0.0.1:0` over an in-memory broker, and a
//! tiny raw client speaking the protocol codec directly (deliberately not
//! the client crate, so these tests pin the wire behaviour of the server).

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citystream_broker::{Broker, BrokerConfig};
use citystream_protocol::{
    Acks, ApiError, CreateTopicRequest, ErrorCode, FetchPartition, FetchRequest, FetchResponse,
    FrameCodec, HelloRequest, InboundFrame, ListOffsetsPartition, ListOffsetsRequest,
    MetadataRequest, OffsetSpec, PROTOCOL_VERSION, ProducePartition, ProduceRequest,
    ProduceResponse, Request, RequestFrame, Response, ResponseFrame, TopicConfig,
    decode_response_at, encode_request,
};
use citystream_record::{BatchBuilder, BatchIter};
use citystream_server::{ServeOptions, ServerConfig, ServerError, serve, serve_with};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// Upper bound on any one test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long "nothing arrives" is watched for.
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// Runs a test body, failing it if it takes longer than [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    bounded_by(TEST_TIMEOUT, test).await;
}

/// Runs a test body, failing it if it takes longer than `limit`.
pub async fn bounded_by<F: Future<Output = ()>>(limit: Duration, test: F) {
    tokio::time::timeout(limit, test)
        .await
        .expect("test timed out");
}

/// An in-memory broker without auto-create, so topics exist only if a test
/// creates them.
pub fn broker_config() -> BrokerConfig {
    BrokerConfig {
        node_id: 7,
        data_dir: None,
        auto_create_topics: false,
        ..BrokerConfig::default()
    }
}

pub fn server_config() -> ServerConfig {
    ServerConfig {
        cluster_id: "test-cluster".to_string(),
        advertised_address: "127.0.0.1:19400".to_string(),
        tick_interval_ms: 10,
        ..ServerConfig::default()
    }
}

pub struct TestServer {
    pub address: SocketAddr,
    pub broker: Arc<Broker>,
    pub shutdown: CancellationToken,
    pub serving: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(broker_config(), server_config()).await
    }

    pub async fn start_with(broker: BrokerConfig, config: ServerConfig) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let broker = Arc::new(Broker::open(broker, 0).unwrap());
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(serve(
            listener,
            Arc::clone(&broker),
            config,
            shutdown.clone(),
        ));
        TestServer {
            address,
            broker,
            shutdown,
            serving,
        }
    }

    /// A server in cluster mode: `options` carries its membership.
    pub async fn start_with_options(
        broker: BrokerConfig,
        config: ServerConfig,
        options: ServeOptions,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        TestServer::start_on(listener, broker, config, options).await
    }

    /// A server on a listener the test bound (so peers can be told its
    /// address before it starts).
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        broker: BrokerConfig,
        config: ServerConfig,
        options: ServeOptions,
    ) -> TestServer {
        let address = listener.local_addr().unwrap();
        let broker = Arc::new(Broker::open(broker, 0).unwrap());
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(serve_with(
            listener,
            Arc::clone(&broker),
            config,
            options,
            shutdown.clone(),
        ));
        TestServer {
            address,
            broker,
            shutdown,
            serving,
        }
    }

    /// A connection that has completed the handshake.
    pub async fn client(&self) -> TestClient {
        let mut client = TestClient::connect(self.address).await;
        client.hello().await;
        client
    }

    /// Cancels the token and waits for `serve` to return.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.serving.await.unwrap().unwrap();
    }
}

pub struct TestClient {
    framed: Framed<TcpStream, FrameCodec>,
    next_request_id: u32,
    /// Requests are sent, and answers read, at this version.
    api_version: u16,
}

impl TestClient {
    pub async fn connect(address: SocketAddr) -> TestClient {
        let stream = TcpStream::connect(address).await.unwrap();
        let codec = FrameCodec::for_responses(citystream_protocol::FRAME_BYTES_MAX_DEFAULT);
        TestClient {
            framed: Framed::new(stream, codec),
            next_request_id: 1,
            api_version: PROTOCOL_VERSION,
        }
    }

    /// Sends later requests at `api_version` (and reads their answers so).
    pub fn speak(&mut self, api_version: u16) {
        self.api_version = api_version;
    }

    pub async fn hello(&mut self) -> Response {
        self.call(Request::Hello(hello_request(1, PROTOCOL_VERSION)))
            .await
            .expect("hello succeeds")
    }

    /// Sends a request without waiting; returns its request id.
    pub async fn send(&mut self, request: Request) -> u32 {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let frame = RequestFrame {
            request_id,
            api_version: self.api_version,
            request,
        };
        let mut out = BytesMut::new();
        encode_request(&frame, &mut out);
        self.send_raw(&out).await;
        request_id
    }

    /// Writes bytes as they are (length prefix included), bypassing the
    /// codec's encoder (which would add a second prefix).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.framed.get_mut().write_all(bytes).await.unwrap();
    }

    /// The next response frame; panics if the connection closes.
    pub async fn recv(&mut self) -> ResponseFrame {
        self.try_recv().await.expect("connection closed")
    }

    /// The next response frame, `None` once the server closed the stream.
    pub async fn try_recv(&mut self) -> Option<ResponseFrame> {
        let body = self.recv_body().await?;
        Some(decode_response_at(body, self.api_version).expect("valid response"))
    }

    /// The next response frame's bytes (length prefix stripped), `None` once
    /// the server closed the stream.
    pub async fn recv_body(&mut self) -> Option<Bytes> {
        match self.framed.next().await? {
            Ok(InboundFrame::Frame(body)) => Some(body),
            Ok(other) => panic!("unexpected frame {other:?}"),
            Err(error) => panic!("framing failed: {error}"),
        }
    }

    /// Asserts that no response arrives for [`QUIET_PERIOD`].
    pub async fn expect_quiet(&mut self) {
        if let Ok(frame) = tokio::time::timeout(QUIET_PERIOD, self.try_recv()).await {
            panic!("expected no response, got {frame:?}");
        }
    }

    /// Sends one request and waits for its response (nothing else in flight).
    pub async fn call(&mut self, request: Request) -> Result<Response, ApiError> {
        let request_id = self.send(request).await;
        let frame = self.recv().await;
        assert_eq!(frame.request_id, request_id, "response to another request");
        frame.response
    }

    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: u32,
    ) -> Result<Response, ApiError> {
        self.call(Request::CreateTopic(CreateTopicRequest {
            name: name.to_string(),
            partitions,
            config: TopicConfig::default(),
        }))
        .await
    }

    pub async fn produce(&mut self, topic: &str, partition: u32, batch: Bytes) -> ProduceResponse {
        match self
            .call(produce_request(Acks::Leader, topic, partition, batch))
            .await
        {
            Ok(Response::Produce(response)) => response,
            other => panic!("unexpected produce answer {other:?}"),
        }
    }

    pub async fn fetch(&mut self, request: FetchRequest) -> FetchResponse {
        match self.call(Request::Fetch(request)).await {
            Ok(Response::Fetch(response)) => response,
            other => panic!("unexpected fetch answer {other:?}"),
        }
    }

    /// The high watermark of a partition, via ListOffsets(Latest).
    pub async fn latest_offset(&mut self, topic: &str, partition: u32) -> u64 {
        let request = Request::ListOffsets(ListOffsetsRequest {
            partitions: vec![ListOffsetsPartition {
                topic: topic.to_string(),
                partition,
                spec: OffsetSpec::Latest,
            }],
        });
        match self.call(request).await {
            Ok(Response::ListOffsets(response)) => {
                let entry = &response.partitions[0];
                assert_eq!(
                    entry.status.error,
                    ErrorCode::NONE,
                    "{}",
                    entry.status.message
                );
                entry.offset
            }
            other => panic!("unexpected list offsets answer {other:?}"),
        }
    }
}

/// A keyed value then a tombstone (a null value) for the same key.
pub fn tombstone_batch() -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.push(1_000, Some(b"lamp"), b"on", &[]).unwrap();
    builder.push_tombstone(1_001, Some(b"lamp"), &[]).unwrap();
    builder.finish()
}

pub fn hello_request(version_min: u16, version_max: u16) -> HelloRequest {
    HelloRequest {
        version_min,
        version_max,
        client_id: "server-tests".to_string(),
    }
}

pub fn metadata_request() -> Request {
    Request::Metadata(MetadataRequest { topics: None })
}

pub fn produce_request(acks: Acks, topic: &str, partition: u32, batch: Bytes) -> Request {
    Request::Produce(ProduceRequest {
        acks,
        timeout_ms: 1_000,
        partitions: vec![ProducePartition {
            topic: topic.to_string(),
            partition,
            batch,
        }],
    })
}

/// A fetch of one partition.
pub fn fetch_request(topic: &str, offset: u64, max_wait_ms: u32, min_bytes: u32) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes,
        max_bytes: 1024 * 1024,
        partitions: vec![FetchPartition {
            topic: topic.to_string(),
            partition: 0,
            offset,
            max_bytes: 1024 * 1024,
        }],
    }
}

/// A batch with one record per value (keys `k0`, `k1`, ...).
pub fn batch(values: &[&[u8]]) -> Bytes {
    let mut builder = BatchBuilder::new();
    for (index, value) in values.iter().enumerate() {
        let key = format!("k{index}");
        builder
            .push(1_700_000_000_000, Some(key.as_bytes()), value, &[])
            .unwrap();
    }
    builder.finish()
}

/// `(offset, value)` of every record in fetched bytes.
/// The data records of fetched batches; control batches (Raft's blank and
/// membership entries in cluster mode) are skipped, as consumers do.
pub fn records(bytes: &Bytes) -> Vec<(u64, Vec<u8>)> {
    BatchIter::new(bytes.clone())
        .map(|batch| batch.expect("valid batch"))
        .filter(|batch| !batch.header().is_control())
        .flat_map(|batch| {
            batch
                .records()
                .map(|record| {
                    let value = record.value.expect("test records have values");
                    (record.offset, value.to_vec())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The error of a whole-request failure.
pub fn expect_error(outcome: Result<Response, ApiError>, code: ErrorCode) -> ApiError {
    match outcome {
        Err(error) if error.code == code => error,
        other => panic!("expected {code}, got {other:?}"),
    }
}
