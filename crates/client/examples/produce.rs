//! Produces records to a running broker and prints where each landed.
//!
//! ```text
//! cargo run -p citystream-client --example produce -- [ADDRESS] [TOPIC] [COUNT]
//! ```
//! Defaults: `127.0.0.1:9400`, topic `example`, 10 records. The topic is
//! created with 3 partitions if it does not exist.

use citystream_client::{
    Client, ClientConfig, ErrorCode, ProducerConfig, ProducerRecord, TopicConfig,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9400".to_string());
    let topic = args.next().unwrap_or_else(|| "example".to_string());
    let count: u32 = args.next().map_or(Ok(10), |n| n.parse())?;

    let client = Client::connect(ClientConfig::new(address)).await?;
    match client
        .admin()
        .create_topic(&topic, 3, TopicConfig::default())
        .await
    {
        Err(error) if error.code() != Some(ErrorCode::TOPIC_ALREADY_EXISTS) => Err(error)?,
        _ => {}
    }

    let producer = client.producer(ProducerConfig::default())?;
    let mut deliveries = Vec::new();
    for i in 0..count {
        let record = ProducerRecord::new(&topic, format!("hello {i}")).with_key(format!("key-{i}"));
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        let written = delivery.await?;
        println!(
            "{}/{} @ {}",
            written.topic, written.partition, written.offset
        );
    }
    producer.close().await?;
    Ok(())
}
