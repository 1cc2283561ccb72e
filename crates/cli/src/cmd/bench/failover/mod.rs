//! `citystream bench failover`: how long a partition is unavailable for
//! produce when its leader dies. The bench starts a 3-node cluster of its
//! own binary (`local_cluster`), creates a 1-partition topic replicated 3
//! times, runs `--trials` trials (`trial`: SIGKILL the leader under a probe
//! producer, time the first acknowledgement after the kill, restart the node
//! and wait for it to catch up), then reads the partition back (`verify`)
//! to check that no acknowledged record was lost, reordered or written
//! twice (the probe's producer is idempotent). This file parses the
//! settings, owns the data dir and decides the exit status; `report`
//! prints. Timing is reported, never judged; only a failed check makes the
//! command fail, after the figures are printed.

mod local_cluster;
mod probe;
mod report;
mod trial;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_client::{Client, ClientConfig, ErrorCode, TopicConfig};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use self::local_cluster::{BrokerSettings, LocalCluster, NODE_COUNT};
use self::probe::{Acked, ProbeSettings};
use self::report::{FailoverReport, report_json, summary, trial_line};
use self::trial::run_trial;
use crate::cmd::api_code;
use crate::output::UsageError;

pub const EXAMPLES: &str = "\
Examples:
  # 20 failovers with the broker defaults (heartbeat 100 ms, election timeout 300 ms)
  citystream bench failover --trials 20

  # Keep the nodes' data and logs in ./failover; one JSON object at the end
  citystream bench failover --trials 5 --data-dir ./failover --json

  # Faster detection: shorter heartbeat and election timeout
  citystream bench failover --heartbeat-ms 50 --election-timeout-ms 150

  # The probe retries every 10 ms instead of backing off to 200 ms: times the
  # cluster more closely, not the producer's backoff
  citystream bench failover --retry-backoff-max-ms 10

The bench starts three `citystream broker` children of this binary on free 127.0.0.1
ports, kills and restarts them itself, and kills them all when it ends (also on Ctrl-C).
Failover time = SIGKILL of the leader -> first acknowledgement (acks=quorum) of a record
sent after the kill. The probe producer is idempotent. After the trials the bench reads the
partition back and exits non-zero (after printing its figures) if an acknowledged record is
missing, if acknowledged offsets do not rise in send order, or if a record is in it twice.";

/// The topic the trials produce to (1 partition, replication 3).
const TOPIC: &str = "failover-bench";
/// How long creating the topic may be refused after the cluster formed.
const TOPIC_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Probe sequence numbers of trial `n` start at `n << TRIAL_SEQUENCE_SHIFT`.
const TRIAL_SEQUENCE_SHIFT: u32 = 32;

#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Leader kills to time.
    #[arg(long, default_value_t = 20)]
    trials: u32,
    /// Directory for the nodes' data and logs (must not hold node dirs yet)
    /// [default: a new temporary directory, removed after a run whose check passed].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Records per second the probe producer sends (16-byte values, partition 0).
    #[arg(long, default_value_t = 500, value_name = "RECORDS_PER_S")]
    rate: u64,
    /// Cap of the probe producer's retry backoff (it starts at 10 ms and
    /// doubles); a failover time includes up to one of these.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    retry_backoff_max_ms: u64,
    /// The brokers' --heartbeat-ms.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    heartbeat_ms: u64,
    /// The brokers' --election-timeout-ms.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    election_timeout_ms: u64,
    /// The brokers' --fsync.
    #[arg(long, default_value = "interval", value_parser = ["always", "interval", "never"])]
    fsync: String,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    if args.trials == 0 || args.rate == 0 || args.retry_backoff_max_ms == 0 {
        let problem = "--trials, --rate and --retry-backoff-max-ms must be at least 1";
        return Err(UsageError(problem.to_string()).into());
    }
    let (data_dir, temporary) = prepare_data_dir(args.data_dir.as_ref())?;
    // On Ctrl-C or SIGTERM the bench future is dropped, and with it the
    // cluster: every node process is killed by its guard. (A SIGKILLed bench
    // cannot clean up: its nodes keep running.)
    let mut terminate = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let outcome = tokio::select! {
        outcome = run_trials(&args, &data_dir) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
    };
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            eprintln!("node data and logs kept in {}", data_dir.display());
            return Err(error);
        }
    };
    if args.json {
        println!("{}", report_json(&args, &report));
    } else {
        print!("{}", summary(&report));
    }
    let verification = &report.verification;
    if !verification.passed() {
        // The nodes' logs and data are the evidence: keep them.
        eprintln!("node data and logs kept in {}", data_dir.display());
        bail!(
            "the check failed: of {} acknowledged records {} lost, {} out of order, {} written twice",
            verification.acknowledged,
            verification.lost,
            verification.order_violations,
            verification.duplicates
        );
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}

/// The data dir to use and whether the bench made it up (and may remove it).
fn prepare_data_dir(given: Option<&PathBuf>) -> anyhow::Result<(PathBuf, bool)> {
    let (dir, temporary) = match given {
        Some(dir) => (dir.clone(), false),
        None => {
            let unique = format!(
                "citystream-bench-failover-{}-{}",
                std::process::id(),
                crate::timestamp::now_ms()
            );
            (std::env::temp_dir().join(unique), true)
        }
    };
    for node_id in 1..=NODE_COUNT {
        let node_dir = dir.join(format!("node{node_id}"));
        if node_dir.exists() {
            let problem = format!("{} exists; give an empty --data-dir", node_dir.display());
            return Err(UsageError(problem).into());
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok((dir, temporary))
}

async fn run_trials(
    args: &FailoverArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<FailoverReport> {
    let settings = BrokerSettings {
        heartbeat_ms: args.heartbeat_ms,
        election_timeout_ms: args.election_timeout_ms,
        fsync: args.fsync.clone(),
    };
    let mut cluster = LocalCluster::start(data_dir, settings).await?;
    let mut config = ClientConfig::new(cluster.address(1));
    config.bootstrap = cluster.bootstrap();
    config.client_id = "citystream-bench-failover".to_string();
    let client = Client::connect(config).await?;
    create_topic(&client).await?;
    let probe_settings = ProbeSettings {
        rate_per_s: args.rate,
        retry_backoff_max_ms: args.retry_backoff_max_ms,
    };
    let mut trials = Vec::new();
    let mut acked: Vec<Acked> = Vec::new();
    let (mut failed_sends, mut last_send_error) = (0, None);
    for number in 1..=args.trials {
        let first_sequence = u64::from(number) << TRIAL_SEQUENCE_SHIFT;
        let (result, log) = run_trial(&mut cluster, &client, probe_settings, first_sequence)
            .await
            .with_context(|| format!("trial {number}"))?;
        if !args.json {
            println!("{}", trial_line(number, &result));
        }
        trials.push(result);
        acked.extend(log.acked);
        failed_sends += log.failed;
        last_send_error = log.last_error.or(last_send_error);
    }
    let verification = verify::check(&client, TOPIC, &acked).await?;
    Ok(FailoverReport {
        trials,
        failed_sends,
        last_send_error,
        verification,
    })
}

/// Creates [`TOPIC`] (1 partition, replicated on every node). Retried for
/// a while: a node that just joined may not be registered in the cluster
/// metadata yet, and the topic's replication would exceed the brokers known.
async fn create_topic(client: &Client) -> anyhow::Result<()> {
    let topic_config = TopicConfig {
        replication: NODE_COUNT as u16,
        ..TopicConfig::default()
    };
    let deadline = Instant::now() + TOPIC_CREATION_TIMEOUT;
    loop {
        match client
            .admin()
            .create_topic(TOPIC, 1, topic_config.clone())
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if api_code(&error) == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
                return Ok(());
            }
            Err(error) if Instant::now() > deadline => {
                return Err(error).context("creating the topic");
            }
            Err(error) => tracing::debug!(%error, "topic not created yet; retrying"),
        }
        tokio::time::sleep(local_cluster::POLL_INTERVAL).await;
    }
}
