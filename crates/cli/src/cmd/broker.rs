//! `citystream broker`: validates the node's settings (flags or
//! `CITYSTREAM_*` variables), checks the node identity stored in the data
//! dir, opens the broker, binds the listener, starts gossip in cluster mode
//! (`cluster`), prints one ready line with the bound address, and serves
//! until Ctrl-C or SIGTERM, then shuts down cleanly (the server syncs the
//! logs and stops gossip). The serving itself belongs to the server crate.

mod cluster;
mod http;
mod mqtt;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use citystream_broker::{
    Broker, BrokerConfig, COMPACTION_BUFFER_BYTES_MIN, FsyncPolicy, LogConfig,
};
use citystream_server::{IdentityError, NodeIdentity, ServerConfig, Timing};
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

  # With the HTTP API (curl http://127.0.0.1:6001/api/topics)
  citystream broker --data-dir ./citystream-data --http 127.0.0.1:6001

  # fsync every write, small segments, keep one hour of data
  citystream broker --data-dir /var/lib/citystream --fsync always \\
      --segment-bytes 16777216 --retention-ms 3600000

  # The same through the environment
  CITYSTREAM_DATA_DIR=./data CITYSTREAM_FSYNC=never citystream broker

  # A static three-node cluster on one machine (run each line in its own terminal)
  citystream broker --data-dir d1 --node-id 1 --cluster-id city-a --listen 127.0.0.1:9401 \
      --peers 1=127.0.0.1:9401,2=127.0.0.1:9402,3=127.0.0.1:9403
  citystream broker --data-dir d2 --node-id 2 --cluster-id city-a --listen 127.0.0.1:9402 \
      --peers 1=127.0.0.1:9401,2=127.0.0.1:9402,3=127.0.0.1:9403
  citystream broker --data-dir d3 --node-id 3 --cluster-id city-a --listen 127.0.0.1:9403 \
      --peers 1=127.0.0.1:9401,2=127.0.0.1:9402,3=127.0.0.1:9403
  citystream cluster status --broker 127.0.0.1:9401

  # Join a running node, or find the others on the LAN by multicast
  citystream broker --data-dir d4 --node-id 4 --cluster-id city-a --listen 10.0.0.4:9400 \
      --join 10.0.0.1:9400
  citystream broker --data-dir d5 --node-id 5 --cluster-id city-a --listen 10.0.0.5:9400 --discover

The broker prints `citystream broker <node> listening on <address> (...)` on stdout once it
accepts connections; the parentheses name its storage, its worker threads and its other
listeners. Ctrl-C or SIGTERM stops it cleanly; a second Ctrl-C exits at once.
Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change their level.

The data dir remembers its node id and cluster id (DATA_DIR/node.json, written on the
first start); starting it as another node or cluster is refused (exit code 2).

Cluster mode (any of --peers, --join, --discover) starts gossip membership over UDP on
--gossip-port, by default the same number as the native TCP port (TCP and UDP ports do
not clash). Peers are contacted at their native address, so keep the default unless that
UDP port is taken.

With --peers, topics live in a metadata Raft group and every partition is its own Raft
group over its replicas (replication factor per topic, default min(3, nodes)); Raft
traffic shares the native TCP port. Any node answers; a produce or fetch at a node that
does not lead the partition is redirected (NOT_LEADER with the leader's address), which
the client and CLI follow.

--join HOST:PORT adds this node to a running cluster through any of its nodes: the metadata
leader adds it to the metadata group (as a voter while there are fewer than 3, else as a
learner) and it registers as a broker; `citystream cluster rebalance` then moves replicas
onto it. --discover finds the running nodes by multicast instead. A node of another
cluster id, or with the id of a removed node, is refused. The first nodes of a new
cluster are started with --peers.";

const FSYNC_INTERVAL_MS_MAX: u64 = 60_000;
/// The lowest cap on a snapshot transfer: one 1 MiB chunk a second.
const SNAPSHOT_TRANSFER_BYTES_PER_SEC_MIN: u64 = 1024 * 1024;
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
    /// Id of this node in the cluster (stored in the data dir on first start).
    #[arg(long, env = "CITYSTREAM_NODE_ID", default_value_t = 1)]
    pub node_id: u32,
    /// Name of the cluster this node belongs to (stored in the data dir on first start).
    #[arg(
        long,
        env = "CITYSTREAM_CLUSTER_ID",
        default_value = "citystream",
        value_name = "NAME"
    )]
    pub cluster_id: String,
    /// Every node of a static cluster, this one included, at its native address.
    #[arg(long, env = "CITYSTREAM_PEERS", value_name = "ID=HOST:PORT,...")]
    pub peers: Option<String>,
    /// Native address of a running node to join through (a gossip seed).
    #[arg(long, env = "CITYSTREAM_JOIN", value_name = "HOST:PORT")]
    pub join: Option<String>,
    /// Find the other nodes on the LAN by UDP multicast.
    #[arg(long, env = "CITYSTREAM_DISCOVER")]
    pub discover: bool,
    /// UDP port of gossip in cluster mode [default: the native listener's port number].
    #[arg(long, env = "CITYSTREAM_GOSSIP_PORT", value_name = "PORT")]
    pub gossip_port: Option<u16>,
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
    /// Raft heartbeat period of every group (cluster mode).
    #[arg(
        long,
        env = "CITYSTREAM_HEARTBEAT_MS",
        default_value_t = 100,
        value_name = "MS"
    )]
    pub heartbeat_ms: u64,
    /// Shortest Raft election timeout; each election waits a random time
    /// between this and twice this (cluster mode). Failover takes about
    /// twice this value.
    #[arg(
        long,
        env = "CITYSTREAM_ELECTION_TIMEOUT_MS",
        default_value_t = 300,
        value_name = "MS"
    )]
    pub election_timeout_ms: u64,
    /// The most bytes a second a partition leader sends of a compacted
    /// topic's log to a replica that is behind or new (cluster mode;
    /// default: no cap). At least 1048576.
    #[arg(
        long,
        env = "CITYSTREAM_SNAPSHOT_TRANSFER_BYTES_PER_SEC",
        value_name = "BYTES"
    )]
    pub snapshot_transfer_bytes_per_sec: Option<u64>,
    /// Threads that run the broker's tasks (connections, produce, fetch,
    /// replication) [default: the number of cores; TOKIO_WORKER_THREADS
    /// is read when this is not given]. Fewer threads than cores cost less
    /// CPU per message when the broker shares the machine or serves a few
    /// busy connections (decision 0022).
    #[arg(long, env = "CITYSTREAM_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<std::num::NonZeroUsize>,
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
    /// How often retention looks for segments to delete (in cluster mode
    /// each replica deletes through a snapshot at its retention point).
    #[arg(
        long,
        env = "CITYSTREAM_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub retention_check_interval_ms: u64,
    /// Compacted topics never compact records younger than this, whatever
    /// their own `compaction_lag_ms`, so an idempotent producer's retries
    /// are still recognised (decision 0017 §8).
    #[arg(
        long,
        env = "CITYSTREAM_COMPACTION_LAG_FLOOR_MS",
        default_value_t = 300_000,
        value_name = "MS"
    )]
    pub compaction_lag_floor_ms: u64,
    /// Memory of one compaction pass's key map (one pass at a time per
    /// node; at least 16 MiB).
    #[arg(
        long,
        env = "CITYSTREAM_COMPACTION_BUFFER_BYTES",
        default_value_t = 32 * 1024 * 1024,
        value_name = "BYTES"
    )]
    pub compaction_buffer_bytes: u64,
    /// A compacted partition is compacted again only once this share of
    /// its closed bytes is past the last pass (1-100; Kafka's
    /// min.cleanable.dirty.ratio).
    #[arg(
        long,
        env = "CITYSTREAM_COMPACTION_DIRTY_RATIO_MIN_PERCENT",
        default_value_t = 50,
        value_name = "PERCENT"
    )]
    pub compaction_dirty_ratio_min_percent: u8,
    /// Serve the HTTP API (topics, records, groups, cluster, health) here [default: off].
    #[arg(long, env = "CITYSTREAM_HTTP", value_name = "HOST:PORT")]
    pub http: Option<String>,
    /// Allow browsers from this origin (`*` or scheme://host[:port]) to call the HTTP API.
    #[arg(
        long,
        env = "CITYSTREAM_HTTP_CORS_ORIGIN",
        value_name = "ORIGIN",
        requires = "http"
    )]
    pub http_cors_origin: Option<String>,
    /// Serve the queue-compatibility API (the Flask distributed-queue broker's routes) here
    /// [default: off].
    #[arg(long, env = "CITYSTREAM_COMPAT_QUEUE", value_name = "HOST:PORT")]
    pub compat_queue: Option<String>,
    /// Serve the city-broker-compatibility API (the Flask smart-city pub/sub broker's routes)
    /// here [default: off].
    #[arg(long, env = "CITYSTREAM_COMPAT_CITY", value_name = "HOST:PORT")]
    pub compat_city: Option<String>,
    /// Serve MQTT 3.1.1 and 5.0 over TCP here [default: off]. Messages are records of
    /// stream topics (docs/mqtt.md).
    #[arg(long, env = "CITYSTREAM_MQTT", value_name = "HOST:PORT")]
    pub mqtt: Option<String>,
    /// Store MQTT topic names matching FILTER in stream topic TOPIC (first match wins;
    /// repeatable). Other names go to `mqtt.<first level>`.
    #[arg(long, value_name = "FILTER=TOPIC", requires = "mqtt")]
    pub mqtt_map: Vec<String>,
    /// Refuse MQTT subscriptions to FILTER or to filters it covers (SUBACK 0x80; repeatable).
    #[arg(long, value_name = "FILTER", requires = "mqtt")]
    pub mqtt_deny: Vec<String>,
    /// The control address of the `citystream demo` that started this broker; the console's
    /// stop and start buttons go there through /api/demo (set by the demo).
    #[arg(long, value_name = "URL", hide = true, requires = "http")]
    pub demo_control: Option<String>,
    /// How logs are written to stderr: text for people, or one JSON object per line.
    #[arg(
        long,
        env = "CITYSTREAM_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Refuse HTTP request bodies larger than this (413, nothing written).
    #[arg(long, env = "CITYSTREAM_HTTP_BODY_BYTES_MAX", default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    pub http_body_bytes_max: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncArg {
    /// fsync before acknowledging every write.
    Always,
    /// fsync every --fsync-interval-ms (group commit); a write is
    /// acknowledged once in the files of the leader, or of a quorum.
    Interval,
    /// Never fsync; rely on the OS (or replication).
    Never,
}

/// Validated settings of one broker process.
#[derive(Debug)]
struct BrokerSettings {
    listen: String,
    http: Option<http::HttpSettings>,
    compat_queue: Option<String>,
    compat_city: Option<String>,
    mqtt: Option<(String, citystream_mqtt::MqttConfig)>,
    advertised_address: Option<String>,
    identity: NodeIdentity,
    cluster: cluster::ClusterSettings,
    broker: BrokerConfig,
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let settings = validate(&args)?;
    let identity = claim_data_dir(&settings)?;
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let bound = listener
        .local_addr()
        .context("the listener has no address")?;
    let advertised_address = settings
        .advertised_address
        .clone()
        .unwrap_or_else(|| bound.to_string());
    let broker =
        Broker::open(settings.broker.clone(), now_ms()).context("cannot open the broker")?;
    let http = match &settings.http {
        Some(http) => Some((http::bind(&http.listen, "HTTP").await?, http.config.clone())),
        None => None,
    };
    let compat_queue = match &settings.compat_queue {
        Some(listen) => Some(http::bind(listen, "the queue-compatibility API").await?),
        None => None,
    };
    let compat_city = match &settings.compat_city {
        Some(listen) => Some(http::bind(listen, "the city-compatibility API").await?),
        None => None,
    };
    let mqtt = match &settings.mqtt {
        Some((listen, config)) => Some((http::bind(listen, "MQTT").await?, config.clone())),
        None => None,
    };
    // Gossip tells the other nodes (and the console) where these listen.
    let mut listeners = Vec::new();
    if let Some(((_, address), _)) = &http {
        listeners.push(("http", advertise(*address, &advertised_address)));
    }
    if let Some((_, address)) = &compat_queue {
        listeners.push(("compat-queue", advertise(*address, &advertised_address)));
    }
    if let Some((_, address)) = &compat_city {
        listeners.push(("compat-city", advertise(*address, &advertised_address)));
    }
    if let Some(((_, address), _)) = &mqtt {
        listeners.push(("mqtt", advertise(*address, &advertised_address)));
    }
    let mut options = cluster::start(
        &settings.cluster,
        &identity,
        bound,
        &advertised_address,
        &listeners,
    )
    .await?;
    let gossip = options.membership.as_ref().map(|m| m.local_gossip_addr());
    let server_config = ServerConfig {
        cluster_id: identity.cluster_id.clone(),
        advertised_address,
        ..ServerConfig::default()
    };
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone())?;
    let mut http_note = http.as_ref().map_or(String::new(), |((_, address), _)| {
        format!("; http on {address}")
    });
    if let Some((_, address)) = &compat_queue {
        http_note.push_str(&format!("; compat-queue on {address}"));
    }
    if let Some((_, address)) = &compat_city {
        http_note.push_str(&format!("; compat-city on {address}"));
    }
    if let Some(((_, address), _)) = &mqtt {
        http_note.push_str(&format!("; mqtt on {address}"));
    }
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let workers = match workers {
        1 => "1 worker thread".to_string(),
        n => format!("{n} worker threads"),
    };
    println!(
        "citystream broker {} listening on {bound} ({}; {workers}{http_note})",
        identity.node_id,
        describe_node(&settings.broker, &identity, gossip)
    );
    let metrics = match &http {
        Some(_) => Some(
            citystream_http::install_recorder().context("cannot install the metrics recorder")?,
        ),
        None => None,
    };
    let services = http::Services {
        http: http
            .zip(metrics)
            .map(|(((listener, _), config), metrics)| (listener, config, metrics)),
        compat_queue: compat_queue.map(|(listener, _)| listener),
        compat_city: compat_city.map(|(listener, _)| listener),
        mqtt: mqtt.map(|((listener, _), config)| (listener, config)),
    };
    let local = citystream_server::Local::new();
    options.local = Some(local.clone());
    let services_task = http::spawn(bound, services, local, shutdown.clone());
    citystream_server::serve_with(listener, Arc::new(broker), server_config, options, shutdown)
        .await
        .context("the server failed")?;
    let _ = services_task.await;
    tracing::info!(node = identity.node_id, "broker stopped cleanly");
    Ok(())
}

/// The address to announce for a listener bound at `bound`: as bound, or,
/// when bound to every interface, on the host of the advertised native
/// address.
fn advertise(bound: std::net::SocketAddr, native_advertised: &str) -> String {
    if !bound.ip().is_unspecified() {
        return bound.to_string();
    }
    let host = native_advertised
        .rsplit_once(':')
        .map_or(native_advertised, |(host, _)| host);
    format!("{host}:{}", bound.port())
}

/// Creates the data dir and checks (or writes) the identity stored in it.
/// Another node's or cluster's dir is a usage error (exit code 2).
fn claim_data_dir(settings: &BrokerSettings) -> anyhow::Result<NodeIdentity> {
    let data_dir = settings.broker.data_dir.as_deref();
    if let Some(dir) = data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    match settings.identity.clone().load_or_create(data_dir) {
        Ok(identity) => Ok(identity),
        Err(error @ IdentityError::Mismatch { .. }) => Err(UsageError(error.to_string()).into()),
        Err(error) => Err(anyhow::Error::new(error).context("cannot check the node identity")),
    }
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
    let identity = node_identity(args)?;
    let cluster = cluster_settings(args)?;
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
    if args.retention_check_interval_ms == 0 {
        return usage("--retention-check-interval-ms must be at least 1");
    }
    if !(1..=100).contains(&args.compaction_dirty_ratio_min_percent) {
        return usage("--compaction-dirty-ratio-min-percent must be 1-100");
    }
    if args.compaction_buffer_bytes < COMPACTION_BUFFER_BYTES_MIN {
        return usage(format!(
            "--compaction-buffer-bytes must be at least {COMPACTION_BUFFER_BYTES_MIN} (16 MiB)"
        ));
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
        retention_check_interval_ms: args.retention_check_interval_ms,
        compaction_lag_floor_ms: args.compaction_lag_floor_ms,
        compaction_buffer_bytes: args.compaction_buffer_bytes,
        compaction_dirty_ratio_min_percent: args.compaction_dirty_ratio_min_percent,
        ..BrokerConfig::default()
    };
    Ok(BrokerSettings {
        listen: args.listen.clone(),
        http: http_settings(args)?,
        compat_queue: match &args.compat_queue {
            Some(address) => {
                check_address("--compat-queue", address)?;
                Some(address.clone())
            }
            None => None,
        },
        compat_city: match &args.compat_city {
            Some(address) => {
                check_address("--compat-city", address)?;
                Some(address.clone())
            }
            None => None,
        },
        mqtt: mqtt::settings(args)?,
        advertised_address: args.advertised_address.clone(),
        identity,
        cluster,
        broker,
    })
}

fn http_settings(args: &BrokerArgs) -> Result<Option<http::HttpSettings>, UsageError> {
    let Some(listen) = &args.http else {
        return Ok(None);
    };
    check_address("--http", listen)?;
    if let Some(origin) = &args.http_cors_origin {
        citystream_http::check_cors_origin(origin)
            .map_err(|error| UsageError(format!("--http-cors-origin: {error}")))?;
    }
    if args.http_body_bytes_max == 0 {
        return usage("--http-body-bytes-max must be at least 1");
    }
    if let Some(control) = &args.demo_control
        && !control.starts_with("http://")
    {
        return usage(format!("--demo-control {control:?} is not an http:// URL"));
    }
    let config = citystream_http::HttpConfig {
        cors_origin: args.http_cors_origin.clone(),
        body_bytes_max: args.http_body_bytes_max,
        demo_control: args.demo_control.clone(),
        ..citystream_http::HttpConfig::default()
    };
    Ok(Some(http::HttpSettings {
        listen: listen.clone(),
        config,
    }))
}

fn node_identity(args: &BrokerArgs) -> Result<NodeIdentity, UsageError> {
    if let Err(error) = citystream_membership::node_info::validate_cluster_id(&args.cluster_id) {
        return usage(format!("--cluster-id: {error}"));
    }
    Ok(NodeIdentity {
        node_id: args.node_id,
        cluster_id: args.cluster_id.clone(),
    })
}

/// The cluster flags, with `--peers` checked against this node's address.
fn cluster_settings(args: &BrokerArgs) -> Result<cluster::ClusterSettings, UsageError> {
    let own_address = args.advertised_address.as_deref().unwrap_or(&args.listen);
    let peers = match &args.peers {
        Some(text) => cluster::parse_peers(text, args.node_id, own_address)?,
        None => Vec::new(),
    };
    if let Some(join) = &args.join {
        check_address("--join", join)?;
    }
    if args.gossip_port == Some(0) {
        return usage("--gossip-port must be a port number above 0 (omit it for the native port)");
    }
    if args.heartbeat_ms == 0 || args.election_timeout_ms < 2 * args.heartbeat_ms {
        return usage(format!(
            "--election-timeout-ms ({}) must be at least twice --heartbeat-ms ({}), which must be above 0",
            args.election_timeout_ms, args.heartbeat_ms
        ));
    }
    if let Some(rate) = args.snapshot_transfer_bytes_per_sec
        && rate < SNAPSHOT_TRANSFER_BYTES_PER_SEC_MIN
    {
        return usage(format!(
            "--snapshot-transfer-bytes-per-sec must be at least {SNAPSHOT_TRANSFER_BYTES_PER_SEC_MIN} \
             (got {rate}; omit it for no cap)"
        ));
    }
    Ok(cluster::ClusterSettings {
        peers,
        join: args.join.clone(),
        discover: args.discover,
        gossip_port: args.gossip_port,
        snapshot_transfer_bytes_per_sec: args.snapshot_transfer_bytes_per_sec,
        timing: Timing {
            heartbeat_ms: args.heartbeat_ms,
            election_min_ms: args.election_timeout_ms,
            election_max_ms: 2 * args.election_timeout_ms,
        },
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
fn is_host_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

fn check_address(flag: &str, address: &str) -> Result<(), UsageError> {
    if is_host_port(address) {
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

/// The parenthesis of the ready line: storage, and in cluster mode the
/// cluster and gossip address.
fn describe_node(
    config: &BrokerConfig,
    identity: &NodeIdentity,
    gossip: Option<std::net::SocketAddr>,
) -> String {
    let storage = describe_storage(config);
    match gossip {
        Some(gossip) => format!(
            "{storage}; cluster {}, gossip udp {gossip}",
            identity.cluster_id
        ),
        None => storage,
    }
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
        shutdown.cancel();
        tracing::info!("shutting down (signal received; send it again to exit at once)");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        // Not `eprintln!`: it panics when stderr is gone, and then nothing exits.
        let _ = writeln!(
            std::io::stderr(),
            "second signal: exiting without a clean shutdown"
        );
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
            "--retention-check-interval-ms",
            "500",
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
        assert_eq!(broker.retention_check_interval_ms, 500);
        assert_eq!(
            describe_storage(broker),
            "data dir /tmp/d, fsync interval 20ms"
        );
    }

    /// MQTT flags become the MQTT server's configuration.
    #[test]
    fn mqtt_flags_become_configuration() {
        let settings = settings(&[
            "--in-memory",
            "--default-partitions",
            "3",
            "--mqtt",
            "127.0.0.1:1883",
            "--mqtt-map",
            "city/+/air/#=city.air",
            "--mqtt-deny",
            "secret/#",
        ])
        .unwrap();
        let (listen, config) = settings.mqtt.expect("MQTT is on");
        assert_eq!(listen, "127.0.0.1:1883");
        assert_eq!(config.stream_partitions, 3);
        assert_eq!(config.deny_filters, ["secret/#"]);
        assert_eq!(config.map.stream_topic("city/n/air/1"), "city.air");
        assert_eq!(config.map.stream_topic("home/lamp"), "mqtt.home");
    }

    /// Cluster flags become cluster settings; `--peers` is checked against
    /// the advertised address when one is given.
    #[test]
    fn cluster_flags_become_settings() {
        let standalone = settings(&["--in-memory"]).unwrap();
        assert!(!standalone.cluster.is_cluster_mode());
        assert_eq!(standalone.identity.cluster_id, "citystream");
        let peers = "1=10.0.0.1:9400,2=10.0.0.2:9400";
        let settings = settings(&[
            "--in-memory",
            "--node-id",
            "2",
            "--cluster-id",
            "city-a",
            "--listen",
            "0.0.0.0:9400",
            "--advertised-address",
            "10.0.0.2:9400",
            "--peers",
            peers,
            "--gossip-port",
            "7946",
        ])
        .unwrap();
        assert!(settings.cluster.is_cluster_mode());
        assert_eq!(settings.cluster.peers.len(), 2);
        assert_eq!(settings.cluster.gossip_port, Some(7946));
        assert_eq!(
            settings.identity,
            NodeIdentity {
                node_id: 2,
                cluster_id: "city-a".to_string()
            }
        );
    }

    /// Contradictory or impossible settings are refused with the reason.
    #[test]
    fn bad_settings_are_refused() {
        let cases: [(&[&str], &str); 21] = [
            (&["--in-memory", "--mqtt", "1883"], "--mqtt"),
            (
                &["--in-memory", "--mqtt", "h:1", "--mqtt-map", "city/#"],
                "--mqtt-map",
            ),
            (
                &["--in-memory", "--mqtt", "h:1", "--mqtt-map", "a=bad topic"],
                "--mqtt-map",
            ),
            (
                &["--in-memory", "--mqtt", "h:1", "--mqtt-deny", "a/#/b"],
                "--mqtt-deny",
            ),
            (&["--in-memory", "--compat-queue", "5000"], "--compat-queue"),
            (&["--in-memory", "--http", "localhost"], "--http"),
            (
                &[
                    "--in-memory",
                    "--http",
                    "h:1",
                    "--http-cors-origin",
                    "dash.example",
                ],
                "--http-cors-origin",
            ),
            (
                &["--in-memory", "--http", "h:1", "--http-body-bytes-max", "0"],
                "--http-body-bytes-max",
            ),
            (&["--data-dir", "d", "--in-memory"], "not both"),
            (&["--in-memory", "--cluster-id", "a b"], "--cluster-id"),
            (
                &["--in-memory", "--peers", "2=127.0.0.1:9402"],
                "does not list this node (1)",
            ),
            (&["--in-memory", "--join", "nowhere"], "--join"),
            (
                &["--in-memory", "--join", "h:1", "--gossip-port", "0"],
                "--gossip-port",
            ),
            (&[], "--in-memory"),
            (
                &["--in-memory", "--fsync-interval-ms", "0"],
                "--fsync-interval-ms",
            ),
            (&["--in-memory", "--listen", "localhost"], "--listen"),
            (&["--in-memory", "--listen", "1.2.3.4:99999"], "HOST:PORT"),
            (&["--in-memory", "--default-partitions", "0"], "at least 1"),
            (
                &["--in-memory", "--retention-check-interval-ms", "0"],
                "--retention-check-interval-ms",
            ),
            (
                &["--in-memory", "--compaction-dirty-ratio-min-percent", "0"],
                "--compaction-dirty-ratio-min-percent must be 1-100",
            ),
            (
                &["--in-memory", "--compaction-buffer-bytes", "100"],
                "--compaction-buffer-bytes must be at least",
            ),
        ];
        for (argv, expected) in cases {
            let error = settings(argv).unwrap_err();
            assert!(error.0.contains(expected), "{argv:?}: {}", error.0);
        }
    }
}
