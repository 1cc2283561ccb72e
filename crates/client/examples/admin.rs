//! Lists topics (with partition offsets) and consumer groups (with lag).
//!
//! ```text
//! cargo run -p citystream-client --example admin -- [ADDRESS]
//! ```
//! Default address: `127.0.0.1:9400`.

use citystream_client::{Client, ClientConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9400".to_string());
    let client = Client::connect(ClientConfig::new(address)).await?;
    let admin = client.admin();

    for topic in admin.list_topics().await? {
        println!(
            "topic {} ({} partitions)",
            topic.name,
            topic.partitions.len()
        );
        for partition in &topic.partitions {
            println!(
                "  partition {}: leader {}, offsets [{}, {})",
                partition.partition,
                partition.leader,
                partition.log_start_offset,
                partition.high_watermark
            );
        }
    }
    for summary in admin.list_groups().await? {
        println!(
            "group {} [{}] generation {}, {} members",
            summary.group, summary.state, summary.generation, summary.member_count
        );
        let described = admin.describe_group(&summary.group).await?;
        for offset in described.offsets {
            let lag = offset.high_watermark.saturating_sub(offset.committed);
            println!(
                "  {}/{}: committed {}, lag {lag}",
                offset.topic, offset.partition, offset.committed
            );
        }
    }
    Ok(())
}
