//! `citystream bench produce|consume|e2e|failover|mqtt`: throughput and
//! latency of a running broker, leader failover of a cluster the bench
//! starts itself (`failover`), and the MQTT load generator for any MQTT
//! broker (`mqtt`). This module parses the settings, prepares the topic
//! and runs the tasks of `produce` and `consume`; `report` prints the
//! result. It measures; it asserts nothing about speed.

mod consume;
mod failover;
mod mqtt;
mod produce;
mod report;

use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_client::{Admin, Client, ErrorCode, ProducerConfig, TopicConfig};
use citystream_protocol::OffsetSpec;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::consume::{ConsumerTotals, SharedCount, assign_partitions, open_consumer, run_consumer};
use self::produce::{ProducerPlan, STAMP_BYTES, run_producer, split_count};
use self::report::{Report, new_histogram};
use super::{AcksArg, ConnectArgs, api_code};
use crate::output::UsageError;

const EXAMPLES: &str = "\
Examples:
  # Leader failover of a 3-node cluster the bench starts: 20 SIGKILLed leaders
  citystream bench failover --trials 20

  # Producer throughput: 1 million 100-byte records, 4 producers, 8 partitions
  citystream bench produce --count 1000000 --producers 4 --partitions 8

  # Producer latency at a fixed 20,000 records/s (latency counted from the scheduled time)
  citystream bench produce --count 200000 --rate 20000 --acks quorum

  # Read 1 million records from the beginning as fast as possible
  citystream bench consume --count 1000000 --consumers 2

  # End to end: produce and consume at once; latency = produce time -> consumed
  citystream bench e2e --count 100000 --rate 10000 --json

The topic (--topic, default `bench`) is created with --partitions if missing. `consume`
needs --count records already in it (run `bench produce` first). Each producer and
consumer has its own connection. State the broker's --fsync policy with the numbers.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Send --count records; latency = send -> acknowledgement.
    #[command(after_help = EXAMPLES)]
    Produce(LoadArgs),
    /// Read --count records from the beginning; no latency.
    #[command(after_help = EXAMPLES)]
    Consume(LoadArgs),
    /// Produce and consume at once; latency = produce time -> consumed.
    #[command(after_help = EXAMPLES)]
    E2e(LoadArgs),
    /// Start a 3-node cluster, SIGKILL the partition leader --trials times and
    /// time the first acknowledged produce after each kill.
    #[command(after_help = failover::EXAMPLES)]
    Failover(failover::FailoverArgs),
    /// MQTT load against any MQTT broker: publishers and subscribers, or
    /// --idle connections; reports loss, duplicates, order, rates, latency.
    #[command(after_help = mqtt::EXAMPLES)]
    Mqtt(mqtt::MqttArgs),
}

/// The settings of `produce`, `consume` and `e2e` against a running broker.
#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// Set from the subcommand.
    #[arg(skip = BenchMode::Produce)]
    mode: BenchMode,
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to use (created if missing).
    #[arg(long, default_value = "bench")]
    topic: String,
    /// Partitions of the topic when it is created [default: 1].
    #[arg(long)]
    partitions: Option<u32>,
    /// Concurrent producers, each with its own connection.
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// Concurrent consumers, each with its own connection and partitions.
    #[arg(long, default_value_t = 1)]
    consumers: u32,
    /// Bytes of each record value.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    size: usize,
    /// Records in total (over all producers or consumers).
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Acknowledgement producers wait for.
    #[arg(long, value_enum, default_value = "leader")]
    acks: AcksArg,
    /// Total records per second (fixed-rate mode) [default: as fast as possible].
    #[arg(long, value_name = "RECORDS_PER_S")]
    rate: Option<u64>,
    /// Producer batch size.
    #[arg(long, default_value_t = 256 * 1024, value_name = "BYTES")]
    batch_bytes: usize,
    /// Producer linger.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    linger_ms: u64,
    /// Idempotent producers, the default (exactly once, in order, 5 batches per partition
    /// in flight).
    #[arg(long, overrides_with = "no_idempotent")]
    idempotent: bool,
    /// Producers without idempotence (may reorder and duplicate on retry), to compare.
    #[arg(long)]
    no_idempotent: bool,
    /// Print one JSON line instead of the summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BenchMode {
    Produce,
    Consume,
    E2e,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (mode, mut args) = match args.command {
        BenchCommand::Produce(args) => (BenchMode::Produce, args),
        BenchCommand::Consume(args) => (BenchMode::Consume, args),
        BenchCommand::E2e(args) => (BenchMode::E2e, args),
        BenchCommand::Failover(args) => return failover::run(args).await,
        BenchCommand::Mqtt(args) => return mqtt::run(args).await,
    };
    args.mode = mode;
    run_load(args).await
}

async fn run_load(args: LoadArgs) -> anyhow::Result<()> {
    validate(&args)?;
    let client = args.connect.connect("bench").await?;
    let partitions = ensure_topic(&client.admin(), &args).await?;
    let report = match args.mode {
        BenchMode::Produce => bench_produce(&args, partitions).await?,
        BenchMode::Consume => bench_consume(&client, &args, partitions).await?,
        BenchMode::E2e => bench_e2e(&client, &args, partitions).await?,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.summary());
    }
    Ok(())
}

fn validate(args: &LoadArgs) -> Result<(), UsageError> {
    let problem = if args.count == 0 {
        "--count must be at least 1".to_string()
    } else if args.producers == 0 || args.consumers == 0 || args.partitions == Some(0) {
        "--producers, --consumers and --partitions must be at least 1".to_string()
    } else if args.rate == Some(0) {
        "--rate must be at least 1 record/s (omit it to send as fast as possible)".to_string()
    } else if args.mode == BenchMode::E2e && args.size < STAMP_BYTES {
        format!("bench e2e needs --size of at least {STAMP_BYTES} bytes (the send time)")
    } else {
        return Ok(());
    };
    Err(UsageError(problem))
}

/// Creates the topic if missing; returns its partition count.
async fn ensure_topic(admin: &Admin, args: &LoadArgs) -> anyhow::Result<u32> {
    let created = admin
        .create_topic(
            &args.topic,
            args.partitions.unwrap_or(1),
            TopicConfig::default(),
        )
        .await;
    let topic = match created {
        Ok(topic) => topic,
        Err(error) if api_code(&error) == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
            admin.describe_topic(&args.topic).await?
        }
        Err(error) => return Err(error).context(format!("creating topic {}", args.topic)),
    };
    let partitions = u32::try_from(topic.partitions.len()).context("partition count")?;
    if partitions == 0 {
        bail!("topic {} has no partitions", args.topic);
    }
    if args.partitions.is_some_and(|wanted| wanted != partitions) {
        tracing::warn!(topic = %args.topic, partitions, "topic exists with another partition count; using it");
    }
    Ok(partitions)
}

fn setup_line(args: &LoadArgs, partitions: u32) -> String {
    let rate = args.rate.map_or("as fast as possible".to_string(), |rate| {
        format!("at {rate} records/s")
    });
    let clients = match args.mode {
        BenchMode::Produce => format!("producers {}", args.producers),
        BenchMode::Consume => format!("consumers {}", args.consumers),
        BenchMode::E2e => format!("producers {}, consumers {}", args.producers, args.consumers),
    };
    let producing = match args.mode {
        BenchMode::Consume => String::new(),
        _ => format!(
            " | acks {}, {}, batch {} bytes, linger {} ms, {rate}",
            acks_name(args.acks),
            if args.no_idempotent {
                "not idempotent"
            } else {
                "idempotent"
            },
            args.batch_bytes,
            args.linger_ms
        ),
    };
    format!(
        "bench {}: {} records x {} bytes | topic {}, partitions {partitions} | {clients}{producing}",
        mode_name(args.mode),
        args.count,
        args.size,
        args.topic,
    )
}

fn acks_name(acks: AcksArg) -> &'static str {
    match acks {
        AcksArg::None => "none",
        AcksArg::Leader => "leader",
        AcksArg::Quorum => "quorum",
    }
}

fn mode_name(mode: BenchMode) -> &'static str {
    match mode {
        BenchMode::Produce => "produce",
        BenchMode::Consume => "consume",
        BenchMode::E2e => "e2e",
    }
}

fn settings_json(args: &LoadArgs, partitions: u32) -> serde_json::Value {
    json!({
        "topic": args.topic,
        "partitions": partitions,
        "producers": args.producers,
        "consumers": args.consumers,
        "size_bytes": args.size,
        "count": args.count,
        "acks": acks_name(args.acks),
        "rate": args.rate,
        "batch_bytes": args.batch_bytes,
        "linger_ms": args.linger_ms,
        "idempotent": !args.no_idempotent,
    })
}

fn report(args: &LoadArgs, partitions: u32, totals: Totals, label: &'static str) -> Report {
    Report {
        mode: mode_name(args.mode),
        setup: setup_line(args, partitions),
        settings: settings_json(args, partitions),
        records: totals.records,
        bytes: totals.bytes,
        elapsed: totals.elapsed,
        latency: totals.latency,
        latency_label: label,
    }
}

struct Totals {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

/// Connects one client and producer per producer task, then starts them
/// together; returns the running tasks.
async fn start_producers(
    args: &LoadArgs,
    base: Instant,
) -> anyhow::Result<JoinSet<anyhow::Result<Histogram<u64>>>> {
    let config = ProducerConfig {
        acks: args.acks.into(),
        batch_bytes: args.batch_bytes,
        linger_ms: args.linger_ms,
        idempotent: !args.no_idempotent,
        ..ProducerConfig::default()
    };
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(args.producers) / rate as f64));
    let mut ready = Vec::new();
    for count in split_count(args.count, args.producers) {
        let client = args.connect.connect("bench").await?;
        let plan = ProducerPlan {
            topic: args.topic.clone(),
            count,
            size_bytes: args.size,
            interval,
            base,
        };
        ready.push((plan, client.producer(config.clone())?));
    }
    let mut tasks = JoinSet::new();
    for (plan, producer) in ready {
        tasks.spawn(run_producer(plan, producer));
    }
    Ok(tasks)
}

async fn join_producers(
    mut tasks: JoinSet<anyhow::Result<Histogram<u64>>>,
) -> anyhow::Result<Histogram<u64>> {
    let mut latency = new_histogram();
    while let Some(joined) = tasks.join_next().await {
        let histogram = joined.context("a producer task panicked")??;
        latency.add(&histogram).context("merging latencies")?;
    }
    Ok(latency)
}

async fn bench_produce(args: &LoadArgs, partitions: u32) -> anyhow::Result<Report> {
    let started = Instant::now();
    let tasks = start_producers(args, started).await?;
    let sending = Instant::now();
    let latency = join_producers(tasks).await?;
    let totals = Totals {
        records: args.count,
        bytes: args.count * args.size as u64,
        elapsed: sending.elapsed(),
        latency,
    };
    Ok(report(args, partitions, totals, "send -> ack"))
}

/// Starts the consumers: each its own client and some partitions,
/// positioned at `start_offsets` (per partition) or the beginning. Returns
/// the tasks and when they started reading.
async fn start_consumers(
    args: &LoadArgs,
    partitions: u32,
    start_offsets: Option<&[u64]>,
    count: &std::sync::Arc<SharedCount>,
    base: Option<Instant>,
) -> anyhow::Result<(JoinSet<anyhow::Result<ConsumerTotals>>, Instant)> {
    let mut ready = Vec::new();
    for assigned in assign_partitions(partitions, args.consumers) {
        let client = args.connect.connect("bench").await?;
        let offsets: Option<Vec<u64>> =
            start_offsets.map(|all| assigned.iter().map(|&p| all[p as usize]).collect());
        ready.push(open_consumer(&client, &args.topic, &assigned, offsets.as_deref()).await?);
    }
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for consumer in ready {
        tasks.spawn(run_consumer(consumer, count.clone(), base));
    }
    Ok((tasks, started))
}

/// Sums the consumers' totals; elapsed runs from `started` to the moment
/// the target count was reached.
async fn join_consumers(
    mut tasks: JoinSet<anyhow::Result<ConsumerTotals>>,
    count: &SharedCount,
    started: Instant,
) -> anyhow::Result<Totals> {
    let mut totals = Totals {
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latency: new_histogram(),
    };
    while let Some(joined) = tasks.join_next().await {
        let consumer = joined.context("a consumer task panicked")??;
        totals.records += consumer.records;
        totals.bytes += consumer.bytes;
        totals
            .latency
            .add(&consumer.latency)
            .context("merging latencies")?;
    }
    let finished = count.reached_at().unwrap_or_else(Instant::now);
    totals.elapsed = finished.saturating_duration_since(started);
    Ok(totals)
}

async fn bench_consume(
    client: &Client,
    args: &LoadArgs,
    partitions: u32,
) -> anyhow::Result<Report> {
    let available = records_available(&client.admin(), &args.topic, partitions).await?;
    if available < args.count {
        bail!(
            "topic {} holds {available} records, fewer than --count {}; \
             run `citystream bench produce --count {}` first",
            args.topic,
            args.count,
            args.count
        );
    }
    let count = SharedCount::new(args.count);
    let (tasks, started) = start_consumers(args, partitions, None, &count, None).await?;
    let totals = join_consumers(tasks, &count, started).await?;
    Ok(report(args, partitions, totals, "not measured"))
}

async fn records_available(admin: &Admin, topic: &str, partitions: u32) -> anyhow::Result<u64> {
    let mut available = 0;
    for partition in 0..partitions {
        let start = admin
            .list_offsets(topic, partition, OffsetSpec::Earliest)
            .await?;
        let end = admin
            .list_offsets(topic, partition, OffsetSpec::Latest)
            .await?;
        available += end.saturating_sub(start);
    }
    Ok(available)
}

/// Consumers start at the current end of every partition, then producers
/// start; the run ends when the consumers have read `--count` records.
async fn bench_e2e(client: &Client, args: &LoadArgs, partitions: u32) -> anyhow::Result<Report> {
    let admin = client.admin();
    let mut end_offsets = Vec::new();
    for partition in 0..partitions {
        end_offsets.push(
            admin
                .list_offsets(&args.topic, partition, OffsetSpec::Latest)
                .await?,
        );
    }
    let base = Instant::now();
    let count = SharedCount::new(args.count);
    let (consumers, _) =
        start_consumers(args, partitions, Some(&end_offsets), &count, Some(base)).await?;
    let started = Instant::now();
    let producers = start_producers(args, base).await?;
    join_producers(producers).await?;
    let totals = join_consumers(consumers, &count, started).await?;
    Ok(report(args, partitions, totals, "produce -> consumed"))
}
