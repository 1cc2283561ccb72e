//! `citystream bench mqtt`: the MQTT load generator, for any broker (ours
//! or Mosquitto, side by side with the same settings). Publishers and
//! subscribers each get their own connection (`citystream-mqtt-client`),
//! spread round robin over `--address`es; every payload carries its
//! publisher, sequence number and send time, so the run reports what was
//! lost, repeated or reordered as well as rates and latency. Publishers
//! stay at most `--window` messages ahead of the slowest subscriber, so
//! the rates are lossless ones. `--idle N` instead measures a broker's
//! memory per idle connection.
//!
//! This file parses the settings, opens the connections, runs the tasks of
//! `traffic`, decides when the run is over and the exit status (non-zero
//! when a QoS 1/2 run lost messages, after the figures are printed);
//! `accounting` counts, `report` prints, `idle` is the memory mode.

mod accounting;
mod idle;
mod report;
mod traffic;

use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_mqtt_client::{ConnectOptions, MqttClient, QoS, Version};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::accounting::{STAMP_BYTES, summarize};
use self::report::MqttReport;
use self::traffic::{
    PublisherOutcome, PublisherPlan, SubscriberOutcome, SubscriberPlan, Window, run_publisher,
    run_subscriber,
};
use super::report::new_histogram;
use crate::output::UsageError;

pub const EXAMPLES: &str = "\
Examples:
  # QoS 0 fan-in: 4 publishers -> 1 subscriber, 100,000 messages each, at a local broker
  citystream bench mqtt --address 127.0.0.1:1883 --publishers 4 --subscribers 1 --qos 0

  # QoS 1 on a 3-node cluster, clients spread over the nodes, persistent subscriber
  citystream bench mqtt --address 127.0.0.1:1884,127.0.0.1:1885,127.0.0.1:1886 \\
    --publishers 4 --subscribers 1 --qos 1 --persistent

  # Fan-out for 10 s: 1 publisher -> 50 subscribers, MQTT 3.1.1, one JSON line
  citystream bench mqtt --publishers 1 --subscribers 50 --qos 1 --seconds 10 --version 3.1.1 --json

  # Memory per idle connection of the broker process 4242
  citystream bench mqtt --idle 10000 --broker-pid 4242

Publishers pause while (messages published) - (fewest delivered to one subscriber) >= --window,
so the rates are lossless ones; --window 0 turns that off. Lost = expected - delivered, per
subscriber (QoS 0: every written message expected; QoS 1/2: every acknowledged one). The run
exits non-zero when a QoS 1/2 run lost messages, after printing its figures.";

/// Client ids and topics of a run start with this.
const NAME_PREFIX: &str = "bench";
/// Session expiry of `--persistent` subscribers (5.0).
const PERSISTENT_SESSION_EXPIRY_SECS: u32 = 3_600;
/// Messages per publisher without --messages or --seconds.
const MESSAGES_DEFAULT: u64 = 100_000;
/// How often the end of a run is checked for.
const DRAIN_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct MqttArgs {
    /// MQTT listeners; repeat or separate with commas to spread the clients
    /// over a cluster's nodes (round robin, subscribers first).
    #[arg(
        long = "address",
        value_delimiter = ',',
        default_value = "127.0.0.1:1883",
        value_name = "HOST:PORT"
    )]
    addresses: Vec<String>,
    /// Publishing connections.
    #[arg(long, default_value_t = 1)]
    publishers: u32,
    /// Subscribing connections; each subscribes to every publisher's topic.
    #[arg(long, default_value_t = 1)]
    subscribers: u32,
    /// QoS of publishes and subscriptions.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Bytes of each payload (at least 20: publisher, sequence, send time).
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    size: usize,
    /// Messages per publisher [default: 100000 unless --seconds].
    #[arg(long, value_name = "N", conflicts_with = "seconds")]
    messages: Option<u64>,
    /// Publish for this long instead of a message count.
    #[arg(long, value_name = "S")]
    seconds: Option<f64>,
    /// Most messages publishers may be ahead of the slowest subscriber (0: no limit).
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    window: u64,
    /// Subscribers keep persistent sessions: fixed client ids, clean start
    /// off, 5.0 session expiry 1 h (each starts from a fresh session).
    #[arg(long)]
    persistent: bool,
    /// MQTT protocol version.
    #[arg(long = "version", value_enum, default_value = "5")]
    protocol: ProtocolArg,
    /// Keep alive of every connection.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    keep_alive_secs: u16,
    /// After publishing, wait this long without a new delivery before
    /// counting what is missing as lost.
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    drain_timeout_ms: u64,
    /// With no subscriber progress for this long, publishers write the
    /// window's outstanding messages off and go on.
    #[arg(long, default_value_t = 2_000, value_name = "MS")]
    stall_timeout_ms: u64,
    /// Open N idle connections instead and report the broker's memory per connection.
    #[arg(long, value_name = "N")]
    idle: Option<u32>,
    /// The broker process whose VmRSS `--idle` reads before and after.
    #[arg(long, value_name = "PID", requires = "idle")]
    broker_pid: Option<u32>,
    /// Print one JSON line instead of the summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProtocolArg {
    #[value(name = "3.1.1")]
    V3_1_1,
    #[value(name = "5")]
    V5,
}

impl ProtocolArg {
    fn name(self) -> &'static str {
        match self {
            ProtocolArg::V3_1_1 => "3.1.1",
            ProtocolArg::V5 => "5",
        }
    }
}

impl From<ProtocolArg> for Version {
    fn from(protocol: ProtocolArg) -> Version {
        match protocol {
            ProtocolArg::V3_1_1 => Version::V3_1_1,
            ProtocolArg::V5 => Version::V5,
        }
    }
}

pub async fn run(args: MqttArgs) -> anyhow::Result<()> {
    validate(&args)?;
    // Distinguishes this run's topics and client ids from earlier runs'.
    let run_tag = format!("{:x}", crate::timestamp::now_ms() % 0x1_0000_0000);
    if let Some(count) = args.idle {
        return idle::run_idle(&args, count, &run_tag).await;
    }
    let report = run_load(&args, &run_tag).await?;
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.summary());
    }
    if args.qos > 0 && (report.accounting.lost > 0 || report.publish_failed > 0) {
        bail!(
            "QoS {} run: {} deliveries lost, {} publishes failed",
            args.qos,
            report.accounting.lost,
            report.publish_failed
        );
    }
    Ok(())
}

fn validate(args: &MqttArgs) -> Result<(), UsageError> {
    let problem = if args
        .addresses
        .iter()
        .any(|address| address.trim().is_empty())
    {
        "--address must name HOST:PORT".to_string()
    } else if args.idle.is_none() && args.publishers == 0 {
        "--publishers must be at least 1".to_string()
    } else if args.size < STAMP_BYTES {
        format!("--size must be at least {STAMP_BYTES} bytes (publisher, sequence, send time)")
    } else if args.messages == Some(0) || args.seconds.is_some_and(|seconds| seconds <= 0.0) {
        "--messages and --seconds must be positive".to_string()
    } else if args.idle == Some(0) {
        "--idle must be at least 1".to_string()
    } else {
        return Ok(());
    };
    Err(UsageError(problem))
}

/// The address of client number `index` (subscribers first, then publishers).
fn client_address(addresses: &[String], index: usize) -> &str {
    &addresses[index % addresses.len()]
}

fn qos(args: &MqttArgs) -> QoS {
    QoS::from_u8(args.qos).expect("--qos is validated to 0..=2")
}

fn options(args: &MqttArgs, client_id: String) -> ConnectOptions {
    let mut options = ConnectOptions::new(args.protocol.into(), client_id);
    options.keep_alive_secs = args.keep_alive_secs;
    options
}

/// The topic prefix of this run; publisher `n` publishes to `PREFIX/n`.
fn topic_prefix(run_tag: &str) -> String {
    format!("{NAME_PREFIX}/{run_tag}/")
}

/// Connects subscriber `index` and subscribes it to every publisher.
async fn connect_subscriber(
    args: &MqttArgs,
    index: u32,
    run_tag: &str,
) -> anyhow::Result<MqttClient> {
    let address = client_address(&args.addresses, index as usize);
    let client = if args.persistent {
        let client_id = format!("{NAME_PREFIX}-sub-{index}");
        // A clean start first, so an earlier run's session and its queued
        // messages are gone; then the persistent connection.
        let (fresh, _) = MqttClient::connect(address, options(args, client_id.clone())).await?;
        fresh.disconnect().await?;
        let mut persistent = options(args, client_id);
        persistent.clean_start = false;
        if args.protocol == ProtocolArg::V5 {
            persistent.session_expiry_secs = Some(PERSISTENT_SESSION_EXPIRY_SECS);
        }
        MqttClient::connect(address, persistent).await?.0
    } else {
        let client_id = format!("{NAME_PREFIX}-sub-{run_tag}-{index}");
        MqttClient::connect(address, options(args, client_id))
            .await?
            .0
    };
    let filter = format!("{}+", topic_prefix(run_tag));
    let reasons = client.subscribe(&[(&filter, qos(args))]).await?;
    if reasons
        .iter()
        .any(|reason| reason.is_error() || reason.0 != args.qos)
    {
        bail!(
            "subscriber {index}: SUBACK {reasons:?} for {filter} at QoS {}",
            args.qos
        );
    }
    Ok(client)
}

/// `--messages`, or its default when `--seconds` is not given either.
fn messages_per_publisher(args: &MqttArgs) -> Option<u64> {
    args.messages
        .or(args.seconds.is_none().then_some(MESSAGES_DEFAULT))
}

/// Connects everything, runs the load, waits for the deliveries and counts.
async fn run_load(args: &MqttArgs, run_tag: &str) -> anyhow::Result<MqttReport> {
    let base = Instant::now();
    let stall = Duration::from_millis(args.stall_timeout_ms);
    let window = Window::new(args.window, args.subscribers, stall);
    let stop = CancellationToken::new();
    let mut subscribers = JoinSet::new();
    for index in 0..args.subscribers {
        let mut client = connect_subscriber(args, index, run_tag)
            .await
            .with_context(|| format!("connecting subscriber {index}"))?;
        let messages = client.take_messages().expect("taken once");
        let plan = SubscriberPlan {
            index: index as usize,
            publishers: args.publishers,
            prefix: topic_prefix(run_tag),
            base,
        };
        let task = run_subscriber(client, messages, plan, window.clone(), stop.clone());
        subscribers.spawn(async move { (index, task.await) });
    }
    let publishing = connect_publishers(args, run_tag, base).await?;
    let started = Instant::now();
    let mut publishers = JoinSet::new();
    for (client, mut plan) in publishing {
        plan.deadline = args.seconds.map(|s| started + Duration::from_secs_f64(s));
        let (index, task) = (plan.index, run_publisher(client, plan, window.clone()));
        publishers.spawn(async move { (index, task.await) });
    }
    let published = join_all(publishers).await?;
    let publish_elapsed = started.elapsed();
    let mut published_per_publisher = vec![0; args.publishers as usize];
    for (index, outcome) in &published {
        published_per_publisher[*index as usize] = outcome.figures.published;
    }
    let expected = published_per_publisher.iter().sum::<u64>();
    drain(
        &window,
        expected,
        Duration::from_millis(args.drain_timeout_ms),
    )
    .await;
    stop.cancel();
    let received = join_all(subscribers).await?;
    Ok(finish(
        args,
        started,
        publish_elapsed,
        published,
        received,
        &published_per_publisher,
        window.stalls(),
    )
    .await)
}

async fn connect_publishers(
    args: &MqttArgs,
    run_tag: &str,
    base: Instant,
) -> anyhow::Result<Vec<(MqttClient, PublisherPlan)>> {
    let mut ready = Vec::new();
    for index in 0..args.publishers {
        let address = client_address(&args.addresses, (args.subscribers + index) as usize);
        let client_id = format!("{NAME_PREFIX}-pub-{run_tag}-{index}");
        let (client, _) = MqttClient::connect(address, options(args, client_id))
            .await
            .with_context(|| format!("connecting publisher {index} to {address}"))?;
        let plan = PublisherPlan {
            index,
            topic: format!("{}{index}", topic_prefix(run_tag)),
            qos: qos(args),
            size_bytes: args.size,
            messages: messages_per_publisher(args),
            deadline: None,
            base,
        };
        ready.push((client, plan));
    }
    Ok(ready)
}

/// Waits until every subscriber has `expected` messages, or none got a new
/// one for `timeout`.
async fn drain(window: &Window, expected: u64, timeout: Duration) {
    let mut last_total = None;
    let mut last_progress = Instant::now();
    loop {
        let counts = window.delivered_counts();
        if counts.iter().all(|&count| count >= expected) {
            return;
        }
        let total: u64 = counts.iter().sum();
        if last_total != Some(total) {
            (last_total, last_progress) = (Some(total), Instant::now());
        } else if last_progress.elapsed() >= timeout {
            return;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Every task's outcome, by index.
async fn join_all<T: Send + 'static>(
    mut tasks: JoinSet<(u32, T)>,
) -> anyhow::Result<Vec<(u32, T)>> {
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined.context("a bench task panicked")?);
    }
    outcomes.sort_by_key(|(index, _)| *index);
    Ok(outcomes)
}

/// Closes every connection and builds the report.
async fn finish(
    args: &MqttArgs,
    started: Instant,
    publish_elapsed: Duration,
    published: Vec<(u32, PublisherOutcome)>,
    received: Vec<(u32, SubscriberOutcome)>,
    published_per_publisher: &[u64],
    window_stalls: u64,
) -> MqttReport {
    let mut problems = Vec::new();
    let (mut sent, mut failed, mut ack_latency) = (0, 0, new_histogram());
    let mut clients = Vec::new();
    for (index, outcome) in published {
        let figures = outcome.figures;
        sent += figures.sent;
        failed += figures.failed;
        let _ = ack_latency.add(&figures.ack_latency);
        if let Some(error) = figures.last_error {
            problems.push(format!("publisher {index}: {error}"));
        }
        clients.push((format!("publisher {index}"), outcome.client));
    }
    let (mut tallies, mut latency) = (Vec::new(), new_histogram());
    let mut last_delivery_at: Option<Instant> = None;
    for (index, outcome) in received {
        tallies.push(outcome.tally);
        let _ = latency.add(&outcome.latency);
        last_delivery_at = last_delivery_at.max(outcome.last_delivery_at);
        clients.push((format!("subscriber {index}"), outcome.client));
    }
    for (name, client) in clients {
        if let Some(reason) = client.close_reason() {
            problems.push(format!("{name}: connection ended early: {reason}"));
        }
        let _ = client.disconnect().await;
    }
    MqttReport {
        setup: setup_line(args),
        settings: settings_json(args),
        subscribers: args.subscribers,
        sent,
        published: published_per_publisher.iter().sum(),
        publish_failed: failed,
        problems,
        accounting: summarize(&tallies, published_per_publisher),
        publish_elapsed,
        delivery_elapsed: last_delivery_at.map_or(Duration::ZERO, |at| at - started),
        latency,
        ack_latency,
        window_stalls,
    }
}

fn setup_line(args: &MqttArgs) -> String {
    let amount = match messages_per_publisher(args) {
        Some(messages) => format!("{messages} messages per publisher"),
        None => format!("{} s", args.seconds.unwrap_or_default()),
    };
    let window = match args.window {
        0 => "no window".to_string(),
        window => format!("window {window}"),
    };
    let sessions = if args.persistent {
        "persistent subscribers"
    } else {
        "clean sessions"
    };
    format!(
        "bench mqtt: QoS {}, {} publishers -> {} subscribers, {} B, {amount}, {window}, MQTT {}, {sessions}, {}",
        args.qos,
        args.publishers,
        args.subscribers,
        args.size,
        args.protocol.name(),
        args.addresses.join(","),
    )
}

fn settings_json(args: &MqttArgs) -> serde_json::Value {
    json!({
        "addresses": args.addresses,
        "publishers": args.publishers,
        "subscribers": args.subscribers,
        "qos": args.qos,
        "size_bytes": args.size,
        "messages_per_publisher": messages_per_publisher(args),
        "seconds": args.seconds,
        "window": args.window,
        "persistent": args.persistent,
        "version": args.protocol.name(),
    })
}
