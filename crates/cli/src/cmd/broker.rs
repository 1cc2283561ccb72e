//! `citystream broker`: validates the node's settings (flags or
//! `CITYSTREAM_*` variables), opens the broker, binds the listener, prints
//! one ready line with the bound address, and serves until Ctrl-C or
//! SIGTERM, then shuts down cleanly (the server syncs the logs). The
//! serving itself belongs to the server crate.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use citystream_broker::{Broker, BrokerConfig, FsyncPolicy, LogConfig};
use citystream_server::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::output::UsageError;
use crate::timestamp::now_ms;

const EXAMPLES: &str = "\
Examples:
  # A durable broker on the default port
  citystream broker --data-dir ./citystream-data --listen 127.0.0.1:9400

  # Throwaway broker on a free port (the ready line prints the port)
  citystream broker --in-memory --listen 127.0.0.1:0

  # fsync every write, small segments, keep one hour of data
  citystream broker --data-dir /var/lib/citystream --fsync always \\
      --segment-bytes 16777216 --retention-ms 3600000

  # The same through the environment
  CITYSTREAM_DATA_DIR=./data CITYSTREAM_FSYNC=never citystream broker

The broker prints `citystream broker <node> listening on <address> (...)` on stdout once it
accepts connections. Ctrl-C or SIGTERM stops it cleanly; a second Ctrl-C exits at once.
Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change their level.";

const FSYNC_INTERVAL_MS_MAX: u64 = 60_000;
const SEGMENT_BYTES_MIN: u64 = 4 * 1024;

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct BrokerArgs {
    /// Directory holding the topic logs and group offsets (created if missing).
    #[arg(long, env = "CITYSTREAM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep everything in memory (lost on exit); instead of --data-dir.
    #[arg(long, env = "CITYSTREAM_IN_MEMORY")]
    pub in_memory: bool,
    /// Address of the native protocol listener; port 0 picks a free port.
    #[arg(
        long,
        env = "CITYSTREAM_LISTEN",
        default_value = "127.0.0.1:9400",
        value_name = "HOST:PORT"
    )]
    pub listen: String,
    /// Address clients are told to use for this node [default: the bound address].
    #[arg(long, env = "CITYSTREAM_ADVERTISED_ADDRESS", value_name = "HOST:PORT")]
    pub advertised_address: Option<String>,
    /// Id of this node in the cluster.
    #[arg(long, env = "CITYSTREAM_NODE_ID", default_value_t = 1)]
    pub node_id: u32,
    /// When appended records are fsynced to disk.
    #[arg(long, env = "CITYSTREAM_FSYNC", value_enum, default_value = "interval")]
    pub fsync: FsyncArg,
    /// Period of group-commit fsync with --fsync interval.
    #[arg(
        long,
        env = "CITYSTREAM_FSYNC_INTERVAL_MS",
        default_value_t = 5,
        value_name = "MS"
    )]
    pub fsync_interval_ms: u64,
    /// Create a topic on its first produce instead of refusing it.
    #[arg(long, env = "CITYSTREAM_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic.
    #[arg(long, env = "CITYSTREAM_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: u32,
    /// Roll a partition's log to a new segment file at this size.
    #[arg(long, env = "CITYSTREAM_SEGMENT_BYTES", default_value_t = 128 * 1024 * 1024, value_name = "BYTES")]
    pub segment_bytes: u64,
    /// Delete segments whose newest record is older than this [default: keep forever].
    #[arg(long, env = "CITYSTREAM_RETENTION_MS", value_name = "MS")]
    pub retention_ms: Option<u64>,
    /// Delete the oldest segments while a partition is larger than this [default: no limit].
    #[arg(long, env = "CITYSTREAM_RETENTION_BYTES", value_name = "BYTES")]
    pub retention_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncArg {
    /// fsync before acknowledging every write.
    Always,
    /// fsync every --fsync-interval-ms (group commit).
    Interval,
    /// Never fsync; rely on the OS (or replication).
    Never,
}

/// Validated settings of one broker process.
#[derive(Debug)]
struct BrokerSettings {
    listen: String,
    advertised_address: Option<String>,
    broker: BrokerConfig,
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let settings = validate(&args)?;
    if let Some(dir) = &settings.broker.data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let bound = listener
        .local_addr()
        .context("the listener has no address")?;
    let broker =
        Broker::open(settings.broker.clone(), now_ms()).context("cannot open the broker")?;
    let server_config = ServerConfig {
        advertised_address: settings
            .advertised_address
            .clone()
            .unwrap_or_else(|| bound.to_string()),
        ..ServerConfig::default()
    };
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone())?;
    println!(
        "citystream broker {} listening on {bound} ({})",
        settings.broker.node_id,
        describe_storage(&settings.broker)
    );
    citystream_server::serve(listener, Arc::new(broker), server_config, shutdown)
        .await
        .context("the server failed")?;
    tracing::info!(node = settings.broker.node_id, "broker stopped cleanly");
    Ok(())
}

/// Turns flags into a broker configuration, refusing contradictions.
fn validate(args: &BrokerArgs) -> Result<BrokerSettings, UsageError> {
    let data_dir = match (&args.data_dir, args.in_memory) {
        (Some(_), true) => return usage("give either --data-dir or --in-memory, not both"),
        (None, false) => {
            return usage(
                "give --data-dir DIR to keep data on disk, or --in-memory for a throwaway broker",
            );
        }
        (Some(dir), false) => Some(dir.clone()),
        (None, true) => None,
    };
    check_address("--listen", &args.listen)?;
    if let Some(address) = &args.advertised_address {
        check_address("--advertised-address", address)?;
    }
    let fsync = fsync_policy(args)?;
    if args.default_partitions == 0 {
        return usage("--default-partitions must be at least 1");
    }
    if args.segment_bytes < SEGMENT_BYTES_MIN {
        return usage(format!(
            "--segment-bytes must be at least {SEGMENT_BYTES_MIN}"
        ));
    }
    if args.retention_ms == Some(0) || args.retention_bytes == Some(0) {
        return usage(
            "--retention-ms and --retention-bytes must be above 0 (omit them to keep everything)",
        );
    }
    let log = LogConfig {
        segment_bytes_max: args.segment_bytes,
        fsync,
        retention_ms: args.retention_ms,
        retention_bytes: args.retention_bytes,
        ..LogConfig::default()
    };
    let broker = BrokerConfig {
        node_id: args.node_id,
        data_dir,
        log,
        auto_create_topics: args.auto_create_topics,
        default_partitions: args.default_partitions,
        ..BrokerConfig::default()
    };
    Ok(BrokerSettings {
        listen: args.listen.clone(),
        advertised_address: args.advertised_address.clone(),
        broker,
    })
}

fn fsync_policy(args: &BrokerArgs) -> Result<FsyncPolicy, UsageError> {
    Ok(match args.fsync {
        FsyncArg::Always => FsyncPolicy::Always,
        FsyncArg::Never => FsyncPolicy::Never,
        FsyncArg::Interval => {
            let interval_ms = args.fsync_interval_ms;
            if !(1..=FSYNC_INTERVAL_MS_MAX).contains(&interval_ms) {
                return usage(format!(
                    "--fsync-interval-ms must be 1-{FSYNC_INTERVAL_MS_MAX} (got {interval_ms}); \
                     use --fsync always to sync every write"
                ));
            }
            FsyncPolicy::Interval { interval_ms }
        }
    })
}

/// `HOST:PORT` with a numeric port; the host is resolved when binding.
fn check_address(flag: &str, address: &str) -> Result<(), UsageError> {
    let valid = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        usage(format!(
            "{flag} {address:?} is not HOST:PORT (e.g. 127.0.0.1:9400)"
        ))
    }
}

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

/// The storage part of the ready line, e.g. `data dir ./d, fsync interval 5ms`.
fn describe_storage(config: &BrokerConfig) -> String {
    let Some(dir) = &config.data_dir else {
        return "in memory".to_string();
    };
    let fsync = match config.log.fsync {
        FsyncPolicy::Always => "fsync always".to_string(),
        FsyncPolicy::Interval { interval_ms } => format!("fsync interval {interval_ms}ms"),
        FsyncPolicy::Never => "fsync never".to_string(),
    };
    format!("data dir {}, {fsync}", dir.display())
}

/// The first Ctrl-C or SIGTERM cancels `shutdown`; a second signal exits
/// at once (for a shutdown that hangs).
fn spawn_signal_handler(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down (signal received; send it again to exit at once)");
        shutdown.cancel();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("second signal: exiting without a clean shutdown");
        std::process::exit(130);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BrokerArgs,
    }

    fn settings(argv: &[&str]) -> Result<BrokerSettings, UsageError> {
        let wrapper =
            Wrapper::try_parse_from(std::iter::once("broker").chain(argv.iter().copied()))
                .expect("flags parse");
        validate(&wrapper.args)
    }

    /// Flags land in the broker and log configuration.
    #[test]
    fn flags_become_configuration() {
        let settings = settings(&[
            "--data-dir",
            "/tmp/d",
            "--node-id",
            "3",
            "--fsync",
            "interval",
            "--fsync-interval-ms",
            "20",
            "--auto-create-topics",
            "false",
            "--default-partitions",
            "4",
            "--retention-ms",
            "1000",
        ])
        .unwrap();
        let broker = &settings.broker;
        assert_eq!(broker.node_id, 3);
        assert_eq!(
            broker.data_dir.as_deref(),
            Some(std::path::Path::new("/tmp/d"))
        );
        assert!(matches!(
            broker.log.fsync,
            FsyncPolicy::Interval { interval_ms: 20 }
        ));
        assert!(!broker.auto_create_topics);
        assert_eq!(broker.default_partitions, 4);
        assert_eq!(broker.log.retention_ms, Some(1000));
        assert_eq!(
            describe_storage(broker),
            "data dir /tmp/d, fsync interval 20ms"
        );
    }

    /// Contradictory or impossible settings are refused with the reason.
    #[test]
    fn bad_settings_are_refused() {
        let cases: [(&[&str], &str); 6] = [
            (&["--data-dir", "d", "--in-memory"], "not both"),
            (&[], "--in-memory"),
            (
                &["--in-memory", "--fsync-interval-ms", "0"],
                "--fsync-interval-ms",
            ),
            (&["--in-memory", "--listen", "localhost"], "--listen"),
            (&["--in-memory", "--listen", "1.2.3.4:99999"], "HOST:PORT"),
            (&["--in-memory", "--default-partitions", "0"], "at least 1"),
        ];
        for (argv, expected) in cases {
            let error = settings(argv).unwrap_err();
            assert!(error.0.contains(expected), "{argv:?}: {}", error.0);
        }
    }
}
