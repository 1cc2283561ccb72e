//! Reads a topic as a member of a consumer group and prints each record;
//! start several to watch the group split the partitions. Stops after
//! `IDLE_POLLS_MAX` empty polls in a row, committing on close.
//!
//! ```text
//! cargo run -p citystream-client --example consume_group -- [ADDRESS] [TOPIC] [GROUP]
//! ```
//! Defaults: `127.0.0.1:9400`, topic `example`, group `example-group`.

use std::time::Duration;

use citystream_client::{Client, ClientConfig, ConsumerConfig, StartPosition};

/// Empty polls in a row after which the example exits.
const IDLE_POLLS_MAX: u32 = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9400".to_string());
    let topic = args.next().unwrap_or_else(|| "example".to_string());
    let group = args.next().unwrap_or_else(|| "example-group".to_string());

    let client = Client::connect(ClientConfig::new(address)).await?;
    let config = ConsumerConfig {
        group: Some(group),
        start: StartPosition::Earliest,
        ..ConsumerConfig::new(topic)
    };
    let mut consumer = client.consumer(config).await?;
    println!("assigned: {:?}", consumer.assignment());
    let mut idle_polls = 0;
    while idle_polls < IDLE_POLLS_MAX {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        idle_polls = if records.is_empty() {
            idle_polls + 1
        } else {
            0
        };
        for record in records {
            let key = record.key.as_deref().map(String::from_utf8_lossy);
            println!(
                "{}/{} @ {}: {:?} = {}",
                record.topic,
                record.partition,
                record.offset,
                key,
                String::from_utf8_lossy(&record.value)
            );
        }
    }
    consumer.close().await?;
    Ok(())
}
