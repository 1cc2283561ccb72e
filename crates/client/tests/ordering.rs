//! Per-partition order with pipelining, against a real broker behind a
//! proxy that loses the first Produce request in transit: the batch behind
//! it arrives first and the leader refuses it with `OUT_OF_SEQUENCE`; the
//! producer re-sends both, in order, and the log holds every record once,
//! in send order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{Client, ClientConfig, ErrorCode, ProducerConfig, ProducerRecord};
use citystream_protocol::{
    FrameCodec, InboundFrame, Request, Response, TopicConfig, decode_request, decode_response,
};
use citystream_server::{ServerConfig, serve};
use common::{bounded, consume_to_end, value_text};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

/// What the proxy saw.
#[derive(Default)]
struct Counts {
    /// Produce requests not forwarded (only the first).
    dropped: AtomicUsize,
    /// Partition answers with `OUT_OF_SEQUENCE` seen coming back.
    out_of_sequence: AtomicUsize,
}

/// A broker whose advertised address is a proxy in front of it.
struct ProxiedBroker {
    address: String,
    counts: Arc<Counts>,
    shutdown: CancellationToken,
}

impl Drop for ProxiedBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn proxied_broker() -> ProxiedBroker {
    let broker_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broker_address = broker_listener.local_addr().unwrap().to_string();
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = proxy_listener.local_addr().unwrap().to_string();
    let broker = Arc::new(Broker::open(BrokerConfig::default(), 0).unwrap());
    let config = ServerConfig {
        advertised_address: address.clone(),
        tick_interval_ms: 10,
        ..ServerConfig::default()
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(broker_listener, broker, config, shutdown.clone()));
    let counts = Arc::new(Counts::default());
    let proxy_counts = counts.clone();
    tokio::spawn(async move {
        loop {
            let (client, _) = proxy_listener.accept().await.unwrap();
            let server = TcpStream::connect(&broker_address).await.unwrap();
            tokio::spawn(pipe(client, server, proxy_counts.clone()));
        }
    });
    ProxiedBroker {
        address,
        counts,
        shutdown,
    }
}

/// Forwards frames both ways; drops the first Produce request.
async fn pipe(client: TcpStream, server: TcpStream, counts: Arc<Counts>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut requests = FramedRead::new(client_read, FrameCodec::for_requests(1 << 24));
    let mut to_server = FramedWrite::new(server_write, FrameCodec::for_requests(1 << 24));
    let mut responses = FramedRead::new(server_read, FrameCodec::for_responses(1 << 24));
    let mut to_client = FramedWrite::new(client_write, FrameCodec::for_responses(1 << 24));
    let upstream_counts = counts.clone();
    let upstream = async move {
        while let Some(Ok(InboundFrame::Frame(body))) = requests.next().await {
            let produce = matches!(
                decode_request(body.clone()).map(|f| f.request),
                Ok(Request::Produce(_))
            );
            if produce && upstream_counts.dropped.fetch_add(1, Ordering::SeqCst) == 0 {
                continue; // lost in transit
            }
            if to_server.send(body).await.is_err() {
                return;
            }
        }
    };
    let downstream = async move {
        while let Some(Ok(InboundFrame::Frame(body))) = responses.next().await {
            if let Ok(frame) = decode_response(body.clone())
                && let Ok(Response::Produce(produce)) = frame.response
            {
                let refused = produce
                    .partitions
                    .iter()
                    .filter(|p| p.status.error == ErrorCode::OUT_OF_SEQUENCE)
                    .count();
                counts.out_of_sequence.fetch_add(refused, Ordering::SeqCst);
            }
            if to_client.send(body).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(upstream, downstream);
}

/// A batch lost in transit makes the next one arrive first: it is refused
/// with `OUT_OF_SEQUENCE`, both are re-sent in order, and the log holds
/// every record once, in the order it was sent.
#[tokio::test]
async fn a_lost_batch_is_resent_before_the_one_behind_it() {
    bounded(async {
        let broker = proxied_broker().await;
        let mut client_config = ClientConfig::new(broker.address.clone());
        client_config.request_timeout_ms = 10_000;
        let client = Client::connect(client_config).await.unwrap();
        client
            .admin()
            .create_topic("ordered", 1, TopicConfig::default())
            .await
            .unwrap();
        let producer = client
            .producer(ProducerConfig {
                batch_bytes: 1, // one record per batch: many batches in flight
                linger_ms: 0,
                request_timeout_ms: 500, // the lost request's answer never comes
                retry_backoff_ms: 10,
                ..ProducerConfig::default()
            })
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..20u32 {
            let record = ProducerRecord::new("ordered", Bytes::from(i.to_string()));
            deliveries.push(producer.send(record).await.unwrap());
        }
        producer.flush().await.unwrap();
        for (i, delivery) in deliveries.into_iter().enumerate() {
            assert_eq!(delivery.await.unwrap().offset, i as u64, "record {i}");
        }
        assert!(broker.counts.dropped.load(Ordering::SeqCst) > 1);
        assert!(
            broker.counts.out_of_sequence.load(Ordering::SeqCst) >= 1,
            "a batch behind the lost one was refused"
        );
        let mut consumer = client
            .consumer(citystream_client::ConsumerConfig {
                start: citystream_client::StartPosition::Earliest,
                auto_commit: false,
                ..citystream_client::ConsumerConfig::new("ordered")
            })
            .await
            .unwrap();
        let values: Vec<String> = consume_to_end(&mut consumer)
            .await
            .iter()
            .map(value_text)
            .collect();
        let expected: Vec<String> = (0..20).map(|i: u32| i.to_string()).collect();
        assert_eq!(values, expected, "every record once, in send order");
    })
    .await;
}
