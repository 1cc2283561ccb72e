//! A client of the broker in its own process (decision 0021): requests go
//! to the server's dispatcher without a socket. The client bootstraps from
//! one address nothing listens on and metadata advertises another, so any
//! request that went over TCP would fail to connect.

mod common;

use std::sync::Arc;

use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{
    Acks, Client, ClientConfig, ClientError, ConsumerConfig, ProducerConfig, ProducerRecord,
    StartPosition, TopicConfig,
};
use citystream_server::{Local, ServeOptions, ServerConfig, serve_with};
use common::{bounded, consume, value_text};
use tokio_util::sync::CancellationToken;

/// A served broker, its `Local` door, and an address nothing listens on.
struct LocalServer {
    local: Local,
    bootstrap: String,
    shutdown: CancellationToken,
    served: tokio::task::JoinHandle<()>,
}

async fn start() -> LocalServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unreachable = || {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        closed.local_addr().unwrap().to_string()
    };
    let broker = Arc::new(Broker::open(BrokerConfig::default(), 0).unwrap());
    let config = ServerConfig {
        advertised_address: unreachable(),
        tick_interval_ms: 10,
        ..ServerConfig::default()
    };
    let local = Local::new();
    let options = ServeOptions {
        local: Some(local.clone()),
        ..ServeOptions::default()
    };
    let shutdown = CancellationToken::new();
    let served = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            serve_with(listener, broker, config, options, shutdown)
                .await
                .unwrap();
        }
    });
    local.ready().await;
    LocalServer {
        local,
        bootstrap: unreachable(),
        shutdown,
        served,
    }
}

impl LocalServer {
    async fn client(&self) -> Client {
        let mut config = ClientConfig::new(self.bootstrap.clone());
        config.connect_timeout_ms = 500;
        config.request_timeout_ms = 10_000;
        config.local = Some(Arc::new(self.local.clone()));
        Client::connect(config).await.unwrap()
    }
}

/// Pipelined idempotent batches keep their order, a group consumer long
/// polls and commits, and a produce asking for no acknowledgement is
/// applied: all through the local door, none over a socket.
#[tokio::test]
async fn a_client_of_the_broker_in_its_process_needs_no_socket() {
    bounded(async {
        let server = start().await;
        let client = server.client().await;
        client
            .admin()
            .create_topic("readings", 3, TopicConfig::default())
            .await
            .unwrap();
        let mut consumer = client
            .consumer(ConsumerConfig {
                group: Some("local-readers".to_owned()),
                start: StartPosition::Earliest,
                auto_commit: false,
                ..ConsumerConfig::new("readings")
            })
            .await
            .unwrap();
        let producer = client
            .producer(ProducerConfig {
                linger_ms: 1,
                batch_bytes: 256,
                ..ProducerConfig::default()
            })
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..600 {
            let record = ProducerRecord::new("readings", format!("{i}"))
                .with_key(format!("station-{}", i % 3));
            deliveries.push(producer.send(record).await.unwrap());
        }
        for delivery in deliveries {
            delivery.await.unwrap();
        }
        let unacked = client
            .producer(ProducerConfig {
                acks: Acks::None,
                linger_ms: 0,
                ..ProducerConfig::default()
            })
            .unwrap();
        let record = ProducerRecord::new("readings", "600").with_key("station-0");
        unacked.send(record).await.unwrap().await.unwrap();

        let records = consume(&mut consumer, 601).await;
        assert_eq!(records.len(), 601);
        for station in 0..3 {
            let key = format!("station-{station}");
            let values: Vec<u32> = records
                .iter()
                .filter(|r| r.key.as_deref() == Some(key.as_bytes()))
                .map(|r| value_text(r).parse().unwrap())
                .collect();
            let mut expected: Vec<u32> = (0..600).filter(|i| i % 3 == station).collect();
            if station == 0 {
                expected.push(600);
            }
            assert_eq!(values, expected, "the order of {key}");
        }
        consumer.commit().await.unwrap();
        let described = client
            .admin()
            .describe_group("local-readers")
            .await
            .unwrap();
        let committed: u64 = described.offsets.iter().map(|o| o.committed).sum();
        assert_eq!(committed, 601, "{described:?}");
        server.shutdown.cancel();
        server.served.await.unwrap();
    })
    .await;
}

/// Once the broker has stopped, a request fails as over a closed
/// connection: a transport error the client may retry elsewhere.
#[tokio::test]
async fn a_stopped_broker_fails_requests_as_a_closed_connection() {
    bounded(async {
        let server = start().await;
        let client = server.client().await;
        client.metadata(None).await.unwrap();
        server.shutdown.cancel();
        server.served.await.unwrap();
        let error = client.metadata(None).await.unwrap_err();
        assert!(
            matches!(&error, ClientError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::ConnectionAborted),
            "{error}"
        );
    })
    .await;
}
