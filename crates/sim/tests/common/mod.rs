//! Test harness: an in-memory broker on 127.0.0.1:0 serving the native
//! protocol, and reading whole topics back with the client.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{Client, ClientConfig, ConsumerRecord};
use citystream_server::{ServerConfig, serve};
use tokio_util::sync::CancellationToken;

pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a test body, failing it if it takes longer than [`TEST_TIMEOUT`].
pub async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test timed out");
}

/// A standalone in-memory broker serving the native protocol.
pub struct TestBroker {
    pub address: String,
    shutdown: CancellationToken,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        let shutdown = CancellationToken::new();
        let native = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = native.local_addr().unwrap().to_string();
        let broker = Arc::new(Broker::open(BrokerConfig::default(), 0).unwrap());
        let config = ServerConfig {
            advertised_address: address.clone(),
            tick_interval_ms: 10,
            ..ServerConfig::default()
        };
        tokio::spawn(serve(native, broker, config, shutdown.clone()));
        TestBroker { address, shutdown }
    }

    /// A native client of this broker.
    pub async fn client(&self) -> Client {
        Client::connect(ClientConfig::new(self.address.clone()))
            .await
            .unwrap()
    }
}

/// Every record of every partition of `topic`, partition by partition,
/// each in log order.
pub async fn read_topic(client: &Client, topic: &str) -> Vec<ConsumerRecord> {
    let partitions = client
        .partition_count(topic)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("topic {topic} does not exist"));
    let mut records = Vec::new();
    for partition in 0..partitions {
        let mut offset = 0;
        loop {
            let read = client
                .read_partition(topic, partition, offset, 1 << 20, 0)
                .await
                .unwrap();
            records.extend(read.records);
            offset = read.next_offset;
            if offset >= read.high_watermark {
                break;
            }
        }
    }
    records
}
