//! `citystream consume`: reads a topic with one `Consumer` and prints each
//! record (`value` or `json`). Without `--follow` it stops at the end of
//! the log; `--max` stops after N records; Ctrl-C stops a follow. With
//! `--group` it commits exactly what it printed before exiting, so the next
//! run of the group starts after it. Fetching and group membership are the
//! client's.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use citystream_client::{Client, Consumer, ConsumerConfig, ConsumerRecord, StartPosition};
use citystream_protocol::CommittedOffset;
use tokio_util::sync::CancellationToken;

use super::ConnectArgs;
use super::group::commit_offsets;
use crate::output::record_json;
use crate::timestamp::parse_timestamp_ms;

const EXAMPLES: &str = "\
Examples:
  # Everything in the topic, then exit
  citystream consume sensors --from-beginning

  # Follow new records as JSON lines (Ctrl-C to stop)
  citystream consume sensors --follow --format json

  # As consumer group `dashboard`: each run prints only what the group has not seen
  citystream consume sensors --group dashboard --from-beginning

  # Five records of partition 2 starting at offset 100
  citystream consume sensors --partition 2 --offset 100 --max 5

  # Records written since a point in time
  citystream consume sensors --from-time 2024-05-01T12:00:00Z

Without --from-beginning, --offset or --from-time, reading starts at the end of the log
(only new records), or, with --group, after the group's committed offsets.
--format json prints one object per line: topic, partition, offset, timestamp, hlc (the
broker's hybrid logical clock, a u64), hlc_ms (its milliseconds since the Unix epoch), key,
value, headers; keys and values that are not UTF-8 are base64 with
key_encoding/value_encoding.";

/// How long one poll waits for records before checking the exit conditions.
const POLL_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ConsumeArgs {
    /// Topic to read.
    topic: String,
    #[command(flatten)]
    connect: ConnectArgs,
    /// Read as this consumer group and commit what was printed.
    #[arg(long)]
    group: Option<String>,
    /// Start at the oldest record (where nothing is committed).
    #[arg(long, group = "start")]
    from_beginning: bool,
    /// Start at this offset (where nothing is committed).
    #[arg(long, group = "start", value_name = "N")]
    offset: Option<u64>,
    /// Start at the first record at or after this time (RFC 3339 or epoch ms).
    #[arg(long, group = "start", value_name = "TIME", value_parser = parse_timestamp_ms)]
    from_time: Option<i64>,
    /// Read only this partition [default: all].
    #[arg(long)]
    partition: Option<u32>,
    /// Stop after printing this many records.
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    /// Keep waiting for new records instead of stopping at the end of the log.
    #[arg(long)]
    follow: bool,
    /// Without --follow, give up after this long without a record.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    idle_timeout_ms: u64,
    /// How each record is printed.
    #[arg(long, value_enum, default_value = "value")]
    format: RecordFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// The value's bytes, one record per line (a tombstone is an empty line).
    Value,
    /// One JSON object per line with all fields (a tombstone has `"value": null`).
    Json,
}

/// Why the read loop ended.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Max,
    EndOfLog,
    Interrupted,
    OutputClosed,
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    if args.max == Some(0) {
        return Ok(());
    }
    let client = args.connect.connect("consume").await?;
    let config = consumer_config(&client, &args).await?;
    let mut consumer = client.consumer(config).await?;
    let mut printed = Printed::default();
    let interrupted = interrupt_token();
    let stop = read_loop(&mut consumer, &args, &mut printed, &interrupted).await;
    consumer.close().await.context("closing the consumer")?;
    if let Some(group) = &args.group {
        commit_printed(&client, group, &printed).await?;
    }
    let stop = stop?;
    tracing::debug!(?stop, records = printed.count, "consume finished");
    Ok(())
}

/// Cancelled by the first Ctrl-C. Watching once, for the whole run, means
/// a Ctrl-C that arrives while records are printed is not lost.
fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    token
}

/// Without a group, every partition (or `--partition`) is assigned
/// explicitly, so the result does not depend on a default of the client.
async fn consumer_config(client: &Client, args: &ConsumeArgs) -> anyhow::Result<ConsumerConfig> {
    let mut config = ConsumerConfig::new(args.topic.clone());
    config.group = args.group.clone();
    // The CLI commits exactly what it printed; an automatic commit could
    // include records fetched but cut off by --max.
    config.auto_commit = false;
    config.start = match (args.from_beginning, args.offset, args.from_time) {
        (true, _, _) => StartPosition::Earliest,
        (_, Some(offset), _) => StartPosition::Offset(offset),
        (_, _, Some(time_ms)) => StartPosition::Timestamp(time_ms),
        _ => StartPosition::Latest,
    };
    if let Some(partition) = args.partition {
        config.partitions = Some(vec![(args.topic.clone(), partition)]);
    } else if args.group.is_none() {
        let topic = client.admin().describe_topic(&args.topic).await?;
        if !topic.status.error.is_ok() {
            bail!("{}: {}", topic.status.error, topic.status.message);
        }
        let partitions = topic.partitions.iter();
        config.partitions = Some(
            partitions
                .map(|p| (args.topic.clone(), p.partition))
                .collect(),
        );
    }
    Ok(config)
}

/// Exact `--from-time` start: per partition, records before the first one
/// at or after the time are skipped. The broker's timestamp lookup may
/// answer the base offset of the batch holding that record, so older
/// records of the same batch would otherwise be printed. Not applied with
/// a group, whose committed positions come first.
#[derive(Debug, Default)]
struct TimeFilter {
    from_ms: Option<i64>,
    started: HashSet<(Arc<str>, u32)>,
}

impl TimeFilter {
    fn new(args: &ConsumeArgs) -> TimeFilter {
        TimeFilter {
            from_ms: args.from_time.filter(|_| args.group.is_none()),
            started: HashSet::new(),
        }
    }

    fn admits(&mut self, record: &ConsumerRecord) -> bool {
        let Some(from_ms) = self.from_ms else {
            return true;
        };
        let partition = (record.topic.clone(), record.partition);
        if self.started.contains(&partition) {
            return true;
        }
        if record.timestamp_ms < from_ms {
            return false;
        }
        self.started.insert(partition);
        true
    }
}

/// Offsets after the last printed record of each partition.
#[derive(Debug, Default)]
struct Printed {
    count: u64,
    next_offsets: BTreeMap<(Arc<str>, u32), u64>,
}

async fn read_loop(
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    printed: &mut Printed,
    interrupted: &CancellationToken,
) -> anyhow::Result<Stop> {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut last_record_at = Instant::now();
    let mut time_filter = TimeFilter::new(args);
    loop {
        let records = tokio::select! {
            _ = interrupted.cancelled() => return Ok(Stop::Interrupted),
            records = consumer.poll(POLL_TIMEOUT) => records?,
        };
        if !records.is_empty() {
            last_record_at = Instant::now();
        }
        for record in records.iter().filter(|record| time_filter.admits(record)) {
            if let Err(error) = print_record(&mut out, record, args.format) {
                return output_closed(error);
            }
            printed.count += 1;
            let partition = (record.topic.clone(), record.partition);
            printed.next_offsets.insert(partition, record.offset + 1);
            if Some(printed.count) == args.max {
                return out.flush().map_or_else(output_closed, |()| Ok(Stop::Max));
            }
        }
        if let Err(error) = out.flush() {
            return output_closed(error);
        }
        if !args.follow && reached_end(consumer, args, last_record_at)? {
            return Ok(Stop::EndOfLog);
        }
    }
}

/// The end of the log: every assigned partition read to its high
/// watermark. An empty assignment is not an end (a group join may still
/// be under way), but an idle timeout bounds the wait.
fn reached_end(
    consumer: &Consumer,
    args: &ConsumeArgs,
    last_record_at: Instant,
) -> anyhow::Result<bool> {
    if !consumer.assignment().is_empty() && consumer.at_end() {
        return Ok(true);
    }
    let idle = last_record_at.elapsed();
    if idle < Duration::from_millis(args.idle_timeout_ms) {
        return Ok(false);
    }
    if consumer.assignment().is_empty() {
        bail!(
            "no partition of {} was assigned within {} ms (are other members of the group \
             holding them all?)",
            args.topic,
            args.idle_timeout_ms
        );
    }
    tracing::warn!(
        idle_ms = idle.as_millis() as u64,
        "no record arrived; stopping"
    );
    Ok(true)
}

fn print_record(
    out: &mut impl std::io::Write,
    record: &ConsumerRecord,
    format: RecordFormat,
) -> std::io::Result<()> {
    match format {
        RecordFormat::Value => out.write_all(&record.value)?,
        RecordFormat::Json => out.write_all(record_json(record).as_bytes())?,
    }
    out.write_all(b"\n")
}

/// A closed pipe (`| head`) ends the read quietly; other write errors fail.
fn output_closed(error: std::io::Error) -> anyhow::Result<Stop> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(Stop::OutputClosed)
    } else {
        Err(anyhow::Error::new(error).context("cannot write to stdout"))
    }
}

/// Commits the offset after the last printed record of each partition, as
/// a manual commit: the consumer has already left the group, so no
/// membership or generation check can refuse it.
async fn commit_printed(client: &Client, group: &str, printed: &Printed) -> anyhow::Result<()> {
    if printed.next_offsets.is_empty() {
        return Ok(());
    }
    let offsets = printed
        .next_offsets
        .iter()
        .map(|((topic, partition), offset)| CommittedOffset {
            topic: topic.to_string(),
            partition: *partition,
            offset: *offset,
            metadata: String::new(),
        })
        .collect();
    commit_offsets(client, group, offsets).await
}
