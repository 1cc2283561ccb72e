//! Measures producer throughput: `PRODUCERS` producers each send `COUNT`
//! 100-byte keyless records and wait for every acknowledgement.
//!
//! ```text
//! cargo run --release -p citystream-client --example throughput -- [ADDRESS|in-process] [COUNT] [PRODUCERS]
//! ```
//! Default: `in-process` (a server over an in-memory broker on the same
//! runtime), 1,000,000 records per producer, 4 producers.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{
    Client, ClientConfig, ErrorCode, Producer, ProducerConfig, ProducerRecord, TopicConfig,
};
use citystream_server::{ServerConfig, serve};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "throughput";
const VALUE_BYTES: usize = 100;
const PARTITIONS: u32 = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "in-process".to_string());
    let count: u64 = args.next().map_or(Ok(1_000_000), |n| n.parse())?;
    let producers: u64 = args.next().map_or(Ok(4), |n| n.parse())?;
    let shutdown = CancellationToken::new();
    let address = match target.as_str() {
        "in-process" => start_server(shutdown.clone()).await?,
        address => address.to_string(),
    };
    let client = Client::connect(ClientConfig::new(address)).await?;
    match client
        .admin()
        .create_topic(TOPIC, PARTITIONS, TopicConfig::default())
        .await
    {
        Err(error) if error.code() != Some(ErrorCode::TOPIC_ALREADY_EXISTS) => Err(error)?,
        _ => {}
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let producer = client.producer(ProducerConfig::default())?;
        tasks.push(tokio::spawn(run_producer(producer, count)));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let records = (count * producers) as f64;
    println!(
        "{records} records in {elapsed:.2} s: {:.0} records/s, {:.1} MB/s",
        records / elapsed,
        records * VALUE_BYTES as f64 / elapsed / 1e6
    );
    shutdown.cancel();
    Ok(())
}

async fn run_producer(producer: Producer, count: u64) -> anyhow::Result<()> {
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    for _ in 0..count {
        // Delivery futures are dropped: `close` reports the first failure.
        producer
            .send(ProducerRecord::new(TOPIC, value.clone()))
            .await?;
    }
    producer.close().await?;
    Ok(())
}

async fn start_server(shutdown: CancellationToken) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let broker = Arc::new(Broker::open(BrokerConfig::default(), 0)?);
    let config = ServerConfig {
        advertised_address: address.clone(),
        ..ServerConfig::default()
    };
    tokio::spawn(serve(listener, broker, config, shutdown));
    Ok(address)
}
