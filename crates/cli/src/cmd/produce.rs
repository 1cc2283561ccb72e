//! `citystream produce`: reads records from stdin or `--file`, sends them
//! with one batching `Producer` and reports how many were acknowledged.
//! Stdin in `lines` format streams (one record per line, sent as read);
//! every other input is parsed and validated whole first, so a bad line
//! sends nothing. Parsing is `input`'s; batching and retries the client's.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use citystream_client::{
    Acks, ClientError, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
use clap::ValueEnum as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

use super::{AcksArg, ConnectArgs};
use crate::input::{self, InputFormat, InputRecord, ParseOptions};
use crate::output::UsageError;

const EXAMPLES: &str = "\
Examples:
  # One record per stdin line
  seq 1 100 | citystream produce sensors

  # All records with one key, to partition 2, waiting for a quorum
  echo '{\"pm25\": 12}' | citystream produce air --key station-7 --partition 2 --acks quorum

  # A CSV file: each row becomes a JSON object keyed by the header row
  citystream produce readings --file readings.csv --format csv --key-column sensor

  # Keyed lines: key,value per line (each key's records stay in order)
  printf 'station-1,12.5\nstation-2,9.1\n' | citystream produce air --key-separator ,

  # A producer log: time<TAB>message<TAB>tag<TAB>topic per line
  citystream produce --file city.log --format producer-log

  # Tombstones (compacted topics): each line is a key to delete
  printf 'station-1\nstation-2\n' | citystream produce retained --tombstone

Formats:
  lines         each line is a record value (empty lines are empty records)
  csv           RFC 4180 with a header row; every row must have the header's column count;
                values are JSON strings
  producer-log  time<TAB>message<TAB>tag<TAB>topic: time (RFC 3339 or epoch ms) is the record
                timestamp, message the value, tag the key and a `tag` header (none if empty),
                topic where the record goes (the TOPIC argument is then not needed)

A --file, and any csv or producer-log input, is checked whole before anything is sent:
a bad line is reported with its line number and nothing is written.
At the end `acknowledged N records` is printed on stdout.";

/// Deliveries awaited at once before `send` waits for acknowledgements.
const PENDING_DELIVERIES_MAX: usize = 100_000;

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ProduceArgs {
    /// Topic to write to (not needed with --format producer-log).
    topic: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
    /// Read records from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// How the input is turned into records.
    #[arg(long, value_enum, default_value = "lines")]
    format: InputFormat,
    /// Key of every record (records with one key keep their order).
    #[arg(long, conflicts_with = "key_column")]
    key: Option<String>,
    /// CSV column whose value is each record's key.
    #[arg(long, value_name = "COLUMN")]
    key_column: Option<String>,
    /// With --format lines: each line is KEY<SEPARATOR>VALUE, split at the first separator
    /// (e.g. --key-separator ,); a line without one is refused.
    #[arg(long, value_name = "SEPARATOR", conflicts_with_all = ["key", "key_column"])]
    key_separator: Option<String>,
    /// Send tombstones (null values; compacted topics only): each input line is the key of a
    /// tombstone, which deletes that key. With --format lines only.
    #[arg(long, conflicts_with_all = ["key", "key_column", "key_separator"])]
    tombstone: bool,
    /// Header added to every record (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Write to this partition [default: by key hash, or spread when keyless].
    #[arg(long)]
    partition: Option<u32>,
    /// Acknowledgement to wait for: quorum (a majority of replicas has it; on one node the
    /// same as leader), leader (the leader appended it) or none.
    #[arg(long, value_enum, default_value = "quorum")]
    acks: AcksArg,
    /// Idempotent delivery, the default: every record is written exactly once and in input
    /// order, across retries and leader changes.
    #[arg(long, overrides_with = "no_idempotent")]
    idempotent: bool,
    /// Turn idempotence off: a retried batch may be written twice, and may land after one
    /// sent behind it (reorder and duplicate on retry).
    #[arg(long)]
    no_idempotent: bool,
    /// Give up on a record once it has been retried for this long (connection refused, no
    /// leader yet, timeouts are retried until then).
    #[arg(long, default_value_t = 120_000, value_name = "MS")]
    delivery_timeout_ms: u64,
    /// Send a partition's batch once it holds this many bytes.
    #[arg(long, default_value_t = 256 * 1024, value_name = "BYTES")]
    batch_bytes: usize,
    /// ...or once its oldest record waited this long.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    linger_ms: u64,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    if args.topic.is_none() && args.format != InputFormat::ProducerLog {
        bail!("name the TOPIC to write to (only --format producer-log routes by its topic column)");
    }
    if args.topic.is_some() && args.format == InputFormat::ProducerLog {
        eprintln!("note: producer-log routes each record by its topic column; TOPIC is ignored");
    }
    if args.tombstone && args.format != InputFormat::Lines {
        Err(UsageError(
            "--tombstone applies to --format lines only (each line is a key)".to_owned(),
        ))?;
    }
    match &args.key_separator {
        Some(_) if args.format != InputFormat::Lines => Err(UsageError(
            "--key-separator applies to --format lines only".to_owned(),
        ))?,
        Some(separator) if separator.is_empty() => {
            Err(UsageError("--key-separator must not be empty".to_owned()))?
        }
        _ => {}
    }
    let streaming = args.format == InputFormat::Lines && args.file.is_none();
    let parsed = if streaming {
        None
    } else {
        Some(load(&args).await?)
    };
    let client = args.connect.connect("produce").await?;
    let producer = client
        .producer(producer_config(&args))
        .map_err(|error| UsageError(error.to_string()))?;
    let mut deliveries = Deliveries::new(progress_bar(&args, parsed.as_ref()));
    match parsed {
        Some(records) => {
            for record in records {
                let line = record.line;
                deliveries
                    .push(line, send(&producer, &args, record).await?)
                    .await?;
            }
        }
        None => send_stdin_lines(&producer, &args, &mut deliveries).await?,
    }
    producer
        .flush()
        .await
        .context("flushing the last records")?;
    let acknowledged = deliveries.wait_all().await?;
    producer.close().await.context("closing the producer")?;
    if Acks::from(args.acks) == Acks::None {
        println!("sent {acknowledged} records (--acks none: not acknowledged)");
    } else {
        println!("acknowledged {acknowledged} records");
    }
    Ok(())
}

/// Reads and parses the whole input; any bad line fails before sending.
async fn load(args: &ProduceArgs) -> anyhow::Result<Vec<InputRecord>> {
    let (text, source) = match &args.file {
        Some(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?;
            (text, path.display().to_string())
        }
        None => {
            let mut text = String::new();
            tokio::io::stdin()
                .read_to_string(&mut text)
                .await
                .context("cannot read stdin as UTF-8 text")?;
            (text, "stdin".to_string())
        }
    };
    let options = ParseOptions {
        key_column: args.key_column.clone(),
        key_separator: args.key_separator.clone(),
    };
    let format = args.format.to_possible_value().expect("no skipped formats");
    let records = input::parse(args.format, &text, &options)
        .map_err(anyhow::Error::new)
        .and_then(check_topic_names)
        .and_then(|records| check_tombstone_keys(args, records))
        .with_context(|| {
            format!(
                "{source} is not valid {} input; nothing was sent",
                format.get_name()
            )
        })?;
    Ok(records)
}

/// Per-record topics (producer-log) are checked with the broker's own rule
/// before anything is sent, so a bad name late in a file sends nothing.
fn check_topic_names(records: Vec<InputRecord>) -> anyhow::Result<Vec<InputRecord>> {
    for record in &records {
        if let Some(topic) = &record.topic {
            citystream_broker::names::validate_user_topic_name(topic)
                .map_err(|error| anyhow::anyhow!("line {}: {error}", record.line))?;
        }
    }
    Ok(records)
}

/// With --tombstone every line is a key, and an empty one would delete
/// the empty key: more likely a stray blank line, so it is refused.
fn check_tombstone_keys(
    args: &ProduceArgs,
    records: Vec<InputRecord>,
) -> anyhow::Result<Vec<InputRecord>> {
    if args.tombstone {
        for record in &records {
            tombstone_key(record)?;
        }
    }
    Ok(records)
}

/// The key a --tombstone line deletes: the line itself.
fn tombstone_key(record: &InputRecord) -> anyhow::Result<Bytes> {
    if record.value.is_empty() {
        bail!(
            "line {}: empty line; with --tombstone each line is the key to delete",
            record.line
        );
    }
    Ok(Bytes::from(record.value.clone()))
}

async fn send_stdin_lines(
    producer: &Producer,
    args: &ProduceArgs,
    deliveries: &mut Deliveries,
) -> anyhow::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut line_number = 0;
    while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
        line_number += 1;
        let record = input::parse_line(line_number, line, args.key_separator.as_deref())
            .with_context(|| {
                format!(
                    "stdin is not valid input; the {} lines before were sent",
                    line_number - 1
                )
            })?;
        deliveries
            .push(line_number, send(producer, args, record).await?)
            .await?;
    }
    Ok(())
}

async fn send(
    producer: &Producer,
    args: &ProduceArgs,
    record: InputRecord,
) -> anyhow::Result<DeliveryFuture> {
    let line = record.line;
    let tombstone_key = match args.tombstone {
        true => Some(tombstone_key(&record)?),
        false => None,
    };
    let Some(topic) = record.topic.or_else(|| args.topic.clone()) else {
        unreachable!("run() requires TOPIC unless the format routes per record");
    };
    let mut headers: Vec<(String, Bytes)> = record
        .headers
        .into_iter()
        .map(|(name, value)| (name, Bytes::from(value)))
        .collect();
    headers.extend(
        args.headers
            .iter()
            .map(|(n, v)| (n.clone(), Bytes::from(v.clone()))),
    );
    let producer_record = match tombstone_key {
        Some(key) => ProducerRecord {
            partition: args.partition,
            headers,
            timestamp_ms: record.timestamp_ms,
            ..ProducerRecord::tombstone(topic, key)
        },
        None => ProducerRecord {
            topic,
            partition: args.partition,
            key: record.key.or_else(|| args.key.clone()).map(Bytes::from),
            value: Bytes::from(record.value),
            headers,
            timestamp_ms: record.timestamp_ms,
            tombstone: false,
        },
    };
    producer
        .send(producer_record)
        .await
        .with_context(|| format!("cannot send the record of line {line}"))
}

/// Input order is log order: the default (idempotent) producer keeps it,
/// with up to 5 batches per partition in flight.
fn producer_config(args: &ProduceArgs) -> ProducerConfig {
    ProducerConfig {
        acks: args.acks.into(),
        batch_bytes: args.batch_bytes,
        linger_ms: args.linger_ms,
        idempotent: !args.no_idempotent,
        delivery_timeout_ms: args.delivery_timeout_ms,
        ..ProducerConfig::default()
    }
}

/// A progress bar on stderr for file input, hidden when stderr is not a terminal.
fn progress_bar(args: &ProduceArgs, records: Option<&Vec<InputRecord>>) -> ProgressBar {
    let (Some(_), Some(records)) = (&args.file, records) else {
        return ProgressBar::hidden();
    };
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(records.len() as u64);
    let style = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} records acknowledged ({per_sec}, eta {eta})",
    )
    .expect("the template is valid");
    bar.set_style(style);
    bar
}

type PendingDelivery = BoxFuture<'static, (usize, Result<RecordMetadata, ClientError>)>;

/// Acknowledgements awaited so far, with the input line of each record.
struct Deliveries {
    pending: FuturesUnordered<PendingDelivery>,
    acknowledged: u64,
    progress: ProgressBar,
}

impl Deliveries {
    fn new(progress: ProgressBar) -> Deliveries {
        Deliveries {
            pending: FuturesUnordered::new(),
            acknowledged: 0,
            progress,
        }
    }

    async fn push(&mut self, line: usize, delivery: DeliveryFuture) -> anyhow::Result<()> {
        self.pending
            .push(async move { (line, delivery.await) }.boxed());
        while let Some(Some(done)) = self.pending.next().now_or_never() {
            self.settle(done)?;
        }
        while self.pending.len() >= PENDING_DELIVERIES_MAX {
            let done = self.pending.next().await.expect("pending is not empty");
            self.settle(done)?;
        }
        Ok(())
    }

    /// Waits for every outstanding acknowledgement; returns the total.
    async fn wait_all(&mut self) -> anyhow::Result<u64> {
        while let Some(done) = self.pending.next().await {
            self.settle(done)?;
        }
        self.progress.finish_and_clear();
        Ok(self.acknowledged)
    }

    fn settle(
        &mut self,
        (line, result): (usize, Result<RecordMetadata, ClientError>),
    ) -> anyhow::Result<()> {
        match result {
            Ok(_) => {
                self.acknowledged += 1;
                self.progress.inc(1);
                Ok(())
            }
            Err(error) => {
                self.progress.abandon();
                Err(anyhow::Error::new(error).context(format!(
                    "the record of line {line} was not written ({} records acknowledged before)",
                    self.acknowledged
                )))
            }
        }
    }
}
