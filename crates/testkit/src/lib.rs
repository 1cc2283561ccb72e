//! The harness the crates' integration tests share (a dev-dependency
//! only): a standalone in-memory broker on 127.0.0.1:0 serving the native
//! protocol, a bound on a test body's time, reading a whole topic back
//! with the client, and free consecutive ports for processes to bind. What a crate's tests add on top (HTTP listeners over
//! the broker, readings, receivers) stays in its own `tests/common`.

use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use citystream_broker::Broker;
use citystream_client::{Client, ClientConfig, ConsumerRecord};
use citystream_server::{ServerConfig, serve};
use tokio_util::sync::CancellationToken;

/// The broker settings [`TestBroker::start_with`] takes.
pub use citystream_broker::BrokerConfig;

/// The longest a test body may run before [`bounded`] fails it.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a test body, failing it if it takes longer than [`TEST_TIMEOUT`].
pub async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test timed out");
}

/// A standalone in-memory broker serving the native protocol; stops when
/// dropped.
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
        TestBroker::start_with(BrokerConfig::default()).await
    }

    pub async fn start_with(config: BrokerConfig) -> TestBroker {
        let shutdown = CancellationToken::new();
        let native = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port");
        let address = native.local_addr().expect("the bound address").to_string();
        let broker = Arc::new(Broker::open(config, 0).expect("an in-memory broker"));
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
            .expect("connect to the test broker")
    }
}

/// Every record of every partition of `topic` (none if it does not
/// exist), partition by partition, each in log order.
pub async fn read_topic(client: &Client, topic: &str) -> Vec<ConsumerRecord> {
    let partitions = client
        .partition_count(topic)
        .await
        .expect("the topic's partition count")
        .unwrap_or(0);
    let mut records = Vec::new();
    for partition in 0..partitions {
        let mut offset = 0;
        loop {
            let read = client
                .read_partition(topic, partition, offset, 1 << 20, 0)
                .await
                .expect("read a partition");
            records.extend(read.records);
            offset = read.next_offset;
            if offset >= read.high_watermark {
                break;
            }
        }
    }
    records
}

/// A base port with `count` consecutive ports on 127.0.0.1 free for both
/// TCP and UDP right now (a cluster node gossips over UDP on its native
/// port number).
pub fn free_ports(count: u16) -> u16 {
    'search: loop {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
        let base = probe.local_addr().expect("the probe's address").port();
        drop(probe);
        if base.checked_add(count).is_none() {
            continue;
        }
        for port in base..base + count {
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            if TcpListener::bind(address).is_err() || UdpSocket::bind(address).is_err() {
                continue 'search;
            }
        }
        return base;
    }
}
