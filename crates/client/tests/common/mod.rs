//! Test harness: a citystream server on `127.0.0.1:0` over an in-memory
//! broker (advertising its real address, so leader routing is exercised),
//! a client connected to it, and helpers to produce and drain records.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{
    Client, ClientConfig, Consumer, ConsumerRecord, Producer, ProducerConfig, ProducerRecord,
    TopicConfig,
};
use citystream_server::{ServerConfig, serve};
use tokio_util::sync::CancellationToken;

/// Upper bound on any one test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a test body, failing it if it takes longer than [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test timed out");
}

pub struct TestServer {
    pub address: String,
    pub broker: Arc<Broker>,
    shutdown: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestServer {
    /// A server whose broker does not auto-create topics.
    pub async fn start() -> TestServer {
        TestServer::start_with(false).await
    }

    pub async fn start_with(auto_create_topics: bool) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let broker_config = BrokerConfig {
            auto_create_topics,
            ..BrokerConfig::default()
        };
        let broker = Arc::new(Broker::open(broker_config, 0).unwrap());
        let server_config = ServerConfig {
            advertised_address: address.clone(),
            tick_interval_ms: 10,
            ..ServerConfig::default()
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            broker.clone(),
            server_config,
            shutdown.clone(),
        ));
        TestServer {
            address,
            broker,
            shutdown,
        }
    }

    pub async fn client(&self) -> Client {
        let mut config = ClientConfig::new(self.address.clone());
        config.request_timeout_ms = 10_000;
        Client::connect(config).await.unwrap()
    }

    /// A client with a topic of `partitions` partitions already created.
    pub async fn client_with_topic(&self, topic: &str, partitions: u32) -> Client {
        let client = self.client().await;
        client
            .admin()
            .create_topic(topic, partitions, TopicConfig::default())
            .await
            .unwrap();
        client
    }
}

/// A producer that sends promptly (small linger) for tests.
pub fn producer(client: &Client) -> Producer {
    client
        .producer(ProducerConfig {
            linger_ms: 1,
            ..ProducerConfig::default()
        })
        .expect("a valid producer config")
}

/// Sends `count` keyed records `key-i` / `value-i` and waits for all acks.
pub async fn produce(producer: &Producer, topic: &str, range: std::ops::Range<u32>) {
    let mut deliveries = Vec::new();
    for i in range {
        let record = ProducerRecord::new(topic, format!("value-{i}")).with_key(format!("key-{i}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
}

/// Polls until `count` records arrived (the test timeout bounds it).
pub async fn consume(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    while records.len() < count {
        records.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    records
}

/// Polls until the consumer has read everything up to the high watermark.
pub async fn consume_to_end(consumer: &mut Consumer) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    loop {
        records.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
        if consumer.at_end() {
            return records;
        }
    }
}

pub fn value_text(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.to_vec()).unwrap()
}
