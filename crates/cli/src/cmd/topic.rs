//! `citystream topic create|list|describe|delete`: topic administration
//! through the client's `Admin`, printed as tables. Validation of names and
//! counts is the broker's; its errors are printed as they come.

use anyhow::bail;
use citystream_client::{Cleanup, TopicConfig};
use citystream_protocol::TopicMetadata;

use super::ConnectArgs;
use crate::output::Table;

const EXAMPLES: &str = "\
Examples:
  citystream topic create sensors --partitions 3
  citystream topic create alerts --partitions 1 --retention-ms 86400000
  citystream topic create retained --cleanup compact --tombstone-retention-ms 3600000
  citystream topic list
  citystream topic describe sensors
  citystream topic delete sensors --broker 127.0.0.1:9401";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicCommand {
    /// Create a topic.
    #[command(
        after_help = "Examples:\n  citystream topic create sensors --partitions 3\n  \
        citystream topic create logs --partitions 6 --replication 3 --retention-bytes 1073741824\n  \
        citystream topic create retained --cleanup compact --segment-roll-ms 600000"
    )]
    Create(CreateArgs),
    /// List topics with their partition and record counts.
    #[command(after_help = "Examples:\n  citystream topic list\n  \
        citystream topic list --broker 10.0.0.5:9400")]
    List {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Show a topic's settings and, per partition, leader, replicas and offsets.
    #[command(after_help = "Examples:\n  citystream topic describe sensors")]
    Describe {
        /// Topic name.
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Delete a topic and all its records.
    #[command(after_help = "Examples:\n  citystream topic delete sensors")]
    Delete {
        /// Topic name.
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Topic name: 1-249 of ASCII letters, digits, '.', '_' and '-'.
    name: String,
    /// Number of partitions.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Replicas per partition [default: the broker's].
    #[arg(long)]
    replication: Option<u16>,
    /// Delete segments older than this [default: the broker's].
    #[arg(long, value_name = "MS")]
    retention_ms: Option<u64>,
    /// Keep at most about this many bytes per partition [default: the broker's].
    #[arg(long, value_name = "BYTES")]
    retention_bytes: Option<u64>,
    /// Segment file size [default: the broker's].
    #[arg(long, value_name = "BYTES")]
    segment_bytes: Option<u64>,
    /// What happens to old records: `delete` (by age and size), `compact`
    /// (keep the newest record per key; every record needs a key, and a
    /// tombstone deletes one) or `compact,delete` (both).
    #[arg(long, value_name = "POLICY", default_value = "delete", value_parser = parse_cleanup)]
    cleanup: Cleanup,
    /// Compacted topics: leave records younger than this uncompacted [default: 0].
    #[arg(long, value_name = "MS")]
    compaction_lag_ms: Option<u64>,
    /// Compacted topics: keep a tombstone this long after it was written
    /// [default: 86400000, one day].
    #[arg(long, value_name = "MS")]
    tombstone_retention_ms: Option<u64>,
    /// Start a new segment once the active one is this old [default: none;
    /// 3600000 on compacted topics].
    #[arg(long, value_name = "MS")]
    segment_roll_ms: Option<u64>,
    #[command(flatten)]
    connect: ConnectArgs,
}

fn parse_cleanup(text: &str) -> Result<Cleanup, String> {
    text.parse()
}

pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    match args.command {
        TopicCommand::Create(create) => run_create(create).await,
        TopicCommand::List { connect } => {
            let admin = connect.connect("topic").await?.admin();
            print!("{}", list_table(&admin.list_topics().await?));
            Ok(())
        }
        TopicCommand::Describe { name, connect } => {
            let admin = connect.connect("topic").await?.admin();
            let topic = admin.describe_topic(&name).await?;
            check_status(&topic)?;
            print!("{}", describe_text(&topic));
            Ok(())
        }
        TopicCommand::Delete { name, connect } => {
            let admin = connect.connect("topic").await?.admin();
            admin.delete_topic(&name).await?;
            println!("deleted topic {name}");
            Ok(())
        }
    }
}

async fn run_create(args: CreateArgs) -> anyhow::Result<()> {
    let config = TopicConfig {
        replication: args.replication.unwrap_or(0),
        retention_ms: args.retention_ms,
        retention_bytes: args.retention_bytes,
        segment_bytes: args.segment_bytes,
        cleanup: args.cleanup,
        compaction_lag_ms: args.compaction_lag_ms,
        tombstone_retention_ms: args.tombstone_retention_ms,
        segment_roll_ms: args.segment_roll_ms,
    };
    let admin = args.connect.connect("topic").await?.admin();
    let topic = admin
        .create_topic(&args.name, args.partitions, config)
        .await?;
    check_status(&topic)?;
    let cleanup = match topic.config.cleanup {
        Cleanup::Delete => String::new(),
        compacted => format!(" (cleanup {compacted})"),
    };
    println!(
        "created topic {} with {} partition{}{cleanup}",
        topic.name,
        topic.partitions.len(),
        if topic.partitions.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// A topic answer can carry its own error (e.g. UNKNOWN_TOPIC).
fn check_status(topic: &TopicMetadata) -> anyhow::Result<()> {
    if topic.status.error.is_ok() {
        return Ok(());
    }
    bail!("{}: {}", topic.status.error, topic.status.message)
}

/// Records a partition holds now (retention may have removed older ones).
fn record_count(topic: &TopicMetadata) -> u64 {
    topic
        .partitions
        .iter()
        .map(|p| p.high_watermark.saturating_sub(p.log_start_offset))
        .sum()
}

fn list_table(topics: &[TopicMetadata]) -> String {
    let mut table = Table::new(&["TOPIC", "PARTITIONS", "RECORDS", "END OFFSETS", "CLEANUP"]);
    for topic in topics {
        let end_offsets: u64 = topic.partitions.iter().map(|p| p.high_watermark).sum();
        table.push(vec![
            topic.name.clone(),
            topic.partitions.len().to_string(),
            record_count(topic).to_string(),
            end_offsets.to_string(),
            topic.config.cleanup.to_string(),
        ]);
    }
    table.render()
}

fn describe_text(topic: &TopicMetadata) -> String {
    let config = &topic.config;
    let or_default =
        |value: Option<u64>| value.map_or("broker default".to_string(), |v| v.to_string());
    let mut text = format!(
        "topic {}: {} partitions, replication {}, {} records\n\
         retention ms: {}, retention bytes: {}, segment bytes: {}\n{}\n",
        topic.name,
        topic.partitions.len(),
        config.replication,
        record_count(topic),
        or_default(config.retention_ms),
        or_default(config.retention_bytes),
        or_default(config.segment_bytes),
        cleanup_text(config),
    );
    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "START OFFSET",
        "HIGH WATERMARK",
        "RECORDS",
    ]);
    for partition in &topic.partitions {
        let replicas: Vec<String> = partition.replicas.iter().map(u32::to_string).collect();
        table.push(vec![
            partition.partition.to_string(),
            partition.leader.to_string(),
            replicas.join(","),
            partition.log_start_offset.to_string(),
            partition.high_watermark.to_string(),
            (partition
                .high_watermark
                .saturating_sub(partition.log_start_offset))
            .to_string(),
        ]);
    }
    text.push_str(&table.render());
    text
}

/// The cleanup line of `describe`, each unset setting shown with the
/// default the broker applies (decision 0017 §9).
fn cleanup_text(config: &TopicConfig) -> String {
    let roll = match (config.segment_roll_ms, config.cleanup.compacts()) {
        (Some(roll_ms), _) => roll_ms.to_string(),
        (None, true) => format!("{COMPACTED_SEGMENT_ROLL_MS_DEFAULT} (default)"),
        (None, false) => "none".to_string(),
    };
    if !config.cleanup.compacts() {
        return format!("cleanup: {}, segment roll ms: {roll}\n", config.cleanup);
    }
    let or_default = |value: Option<u64>, default: u64| {
        value.map_or(format!("{default} (default)"), |v| v.to_string())
    };
    format!(
        "cleanup: {}, compaction lag ms: {}, tombstone retention ms: {}, segment roll ms: {roll}\n",
        config.cleanup,
        or_default(config.compaction_lag_ms, 0),
        or_default(
            config.tombstone_retention_ms,
            TOMBSTONE_RETENTION_MS_DEFAULT
        ),
    )
}

/// What the broker applies when a compacted topic leaves these unset.
const TOMBSTONE_RETENTION_MS_DEFAULT: u64 = 86_400_000;
const COMPACTED_SEGMENT_ROLL_MS_DEFAULT: u64 = 3_600_000;

#[cfg(test)]
mod tests {
    use citystream_protocol::{PartitionMetadata, PartitionStatus};

    use super::*;

    fn topic() -> TopicMetadata {
        let partition = |partition, start, end| PartitionMetadata {
            partition,
            leader: 1,
            replicas: vec![1, 2],
            log_start_offset: start,
            high_watermark: end,
        };
        TopicMetadata {
            name: "sensors".into(),
            status: PartitionStatus::ok(),
            config: TopicConfig {
                replication: 2,
                ..TopicConfig::default()
            },
            partitions: vec![partition(0, 0, 10), partition(1, 5, 7)],
        }
    }

    /// The list sums records (end - start) and end offsets over partitions.
    #[test]
    fn list_sums_partitions() {
        let text = list_table(&[topic()]);
        assert_eq!(
            text,
            "TOPIC    PARTITIONS  RECORDS  END OFFSETS  CLEANUP\nsensors  2           12       17           delete\n"
        );
    }

    /// Describe shows one row per partition with leader and replicas.
    #[test]
    fn describe_shows_each_partition() {
        let text = describe_text(&topic());
        assert!(text.starts_with("topic sensors: 2 partitions, replication 2, 12 records\n"));
        assert!(
            text.contains("1          1       1,2       5             7               2"),
            "{text}"
        );
        assert!(
            text.contains("cleanup: delete, segment roll ms: none\n"),
            "{text}"
        );
    }

    /// A compacted topic's describe shows its policy and, for each unset
    /// setting, the default the broker applies.
    #[test]
    fn describe_shows_compaction_settings() {
        let mut compacted = topic();
        compacted.config.cleanup = Cleanup::Compact;
        compacted.config.compaction_lag_ms = Some(5_000);
        let text = describe_text(&compacted);
        assert!(
            text.contains(
                "cleanup: compact, compaction lag ms: 5000, tombstone retention ms: 86400000 \
                 (default), segment roll ms: 3600000 (default)\n"
            ),
            "{text}"
        );
    }
}
