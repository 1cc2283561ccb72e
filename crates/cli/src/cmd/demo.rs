//! `citystream demo`: a 3-node cluster (child processes of this binary),
//! the city topics (replication 3), the simulation and its subscribers, and
//! the console on every node's HTTP port, with one command. It prints the
//! console's address, a one-line status every few seconds, and on Ctrl-C
//! stops everything. The simulated sensors publish over MQTT to the
//! nodes' listeners by default (the device path end to end), surviving
//! the Cluster page's stop button; `--sensors native` uses the native
//! producer instead. With `--data-dir` a later run resumes where this one
//! stopped; without, the data lives in a temporary directory removed at the
//! end.

mod control;
mod nodes;

use std::net::{TcpListener as StdTcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use citystream_client::{Client, ClientConfig, ErrorCode, TopicConfig};
use citystream_protocol::NodeState;
use citystream_sim::{CityConfig, Pace, SimConfig, SimStats, Via, run_publishers};
use citystream_subscribers::{SubscriberConfig, SubscriberStats};
use clap::Args;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::nodes::{Node, NodeSpec};
use crate::output::UsageError;

const EXAMPLES: &str = "\
Examples:
  citystream demo                          # console at http://127.0.0.1:6001
  citystream demo --data-dir ./city        # keep the data; a second run resumes
  citystream demo --http-port 7001 --native-port 9501
  citystream demo --speed 10               # the city's clock ten times faster
  citystream demo --sensors native         # the simulated sensors use the native protocol
  citystream demo --no-sim                 # the cluster and the console only

Every node also serves MQTT (node N on --mqtt-port + N - 1), storing the city's
sensor topics city/<district>/<kind>/<station> in the stream topics city.<kind>:
  mosquitto_sub -p 1883 -t 'city/+/air/#' -v";

/// Where the brokers store MQTT topic names of the city's sensors: the
/// stream topics the subscribers read.
const CITY_MQTT_MAP: [&str; 4] = [
    "city/+/air/#=city.air",
    "city/+/traffic/#=city.traffic",
    "city/+/weather/#=city.weather",
    "city/+/buildings/#=city.buildings",
];

/// The city topics the demo creates (3 partitions, replication 3).
const CITY_TOPICS: [&str; 8] = [
    "city.air",
    "city.traffic",
    "city.weather",
    "city.buildings",
    "city.alerts",
    "city.advisories",
    "city.latest",
    "city.analytics",
];
const CITY_PARTITIONS: u32 = 3;
/// How long the cluster may take to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(5);
const CLUSTER_ID: &str = "citystream-demo";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct DemoArgs {
    /// Keep the nodes' data here (a later run resumes) [default: a temporary directory,
    /// removed at the end].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Broker nodes to run.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub nodes: u32,
    /// HTTP port of node 1 (the console); node N gets this + N - 1.
    #[arg(long, default_value_t = 6001, value_name = "PORT")]
    pub http_port: u16,
    /// Native-protocol port of node 1; node N gets this + N - 1 (gossip uses the same
    /// numbers over UDP).
    #[arg(long, default_value_t = 9401, value_name = "PORT")]
    pub native_port: u16,
    /// Simulated seconds per real second of the city's clock (at 1, each of
    /// the 40 stations reads every 10 s; 10 is livelier and costs about
    /// twice the CPU, BENCHMARKS.md).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub speed: f64,
    /// Run the cluster and the console only: no simulation, no subscribers.
    #[arg(long)]
    pub no_sim: bool,
    /// MQTT port of node 1; node N gets this + N - 1.
    #[arg(long, default_value_t = 1883, value_name = "PORT")]
    pub mqtt_port: u16,
    /// How the simulated sensors publish: over MQTT (QoS 1, a persistent session on the
    /// first node that accepts; when the Cluster page stops that node they reconnect to
    /// another and send what was not acknowledged again), or the native protocol.
    #[arg(long, value_enum, default_value = "mqtt")]
    pub sensors: Sensors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sensors {
    Native,
    Mqtt,
}

/// Checked settings.
struct Demo {
    dir: PathBuf,
    /// Remove `dir` at the end (it was made for this run).
    temporary: bool,
    specs: Vec<NodeSpec>,
    speed: f64,
    simulate: bool,
    sensors: Sensors,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let control = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen for the demo's control API")?;
    let control_url = format!("http://{}", control.local_addr()?);
    let demo = plan(&args, &control_url)?;
    check_ports(&demo.specs)?;
    let outcome = run_demo(&demo, control).await;
    if demo.temporary {
        let _ = std::fs::remove_dir_all(&demo.dir);
    }
    outcome
}

async fn run_demo(demo: &Demo, control: tokio::net::TcpListener) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let nodes: control::Nodes = Arc::new(Mutex::new(
        demo.specs.iter().cloned().map(Node::new).collect(),
    ));
    let started = start_nodes(&nodes).await;
    if let Err(error) = started {
        stop_nodes(&nodes).await;
        return Err(error);
    }
    let control_task = control::spawn(control, nodes.clone(), stop.clone());
    let outcome = serve(demo, &stop).await;
    stop.cancel();
    let _ = control_task.await;
    stop_nodes(&nodes).await;
    match &outcome {
        Ok(()) => println!("demo: stopped; every node shut down"),
        Err(_) => eprintln!("demo: stopping after an error; every node shut down"),
    }
    outcome
}

/// From formed cluster to Ctrl-C: topics, the city, the status line.
async fn serve(demo: &Demo, stop: &CancellationToken) -> anyhow::Result<()> {
    let client = connect(&demo.specs).await?;
    wait_for_cluster(&client, demo.specs.len()).await?;
    create_topics(&client, demo.specs.len()).await?;
    let mut city = tokio::task::JoinSet::new();
    let city_stats = CityStats::default();
    if demo.simulate {
        start_city(&mut city, &client, demo, &city_stats, stop);
    }
    let console = format!("http://{}", demo.specs[0].http);
    println!("demo: console at {console}  (every node serves it: {})", {
        let others: Vec<String> = demo.specs[1..]
            .iter()
            .map(|s| format!("http://{}", s.http))
            .collect();
        others.join(", ")
    });
    let mqtt: Vec<&str> = demo.specs.iter().map(|s| s.mqtt.as_str()).collect();
    println!(
        "demo: MQTT on {} (the sensors' topics city/<district>/<kind>/<station>; WebSocket at /mqtt){}",
        mqtt.join(", "),
        match (demo.simulate, demo.sensors) {
            (false, _) => "",
            (true, Sensors::Mqtt) => "; the simulated sensors publish over MQTT",
            (true, Sensors::Native) => "; the simulated sensors publish over the native protocol",
        }
    );
    println!(
        "demo: data in {}{}; node logs {}/node-N.log; Ctrl-C stops everything",
        demo.dir.display(),
        if demo.temporary {
            " (removed at the end)"
        } else {
            ""
        },
        demo.dir.display()
    );
    let mut status = StatusLine::default();
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.tick().await;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot watch Ctrl-C")?;
                println!("demo: Ctrl-C: stopping");
                break;
            }
            _ = terminate.recv() => {
                println!("demo: SIGTERM: stopping");
                break;
            }
            _ = tick.tick() => println!("{}", status.sample(&client, &city_stats).await),
            Some(done) = city.join_next() => {
                if let Ok(Err(error)) = done {
                    eprintln!("demo: a city worker failed: {error:#}");
                }
            }
        }
    }
    stop.cancel();
    while city.join_next().await.is_some() {}
    Ok(())
}

/// What the city's workers count, for the status line.
#[derive(Default)]
struct CityStats {
    sim: Arc<SimStats>,
    subscribers: Arc<SubscriberStats>,
}

/// Starts the simulation (at the demo's speed) and every subscriber (the
/// archiver writing under the demo's directory) as tasks of `city`.
fn start_city(
    city: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    client: &Client,
    demo: &Demo,
    stats: &CityStats,
    stop: &CancellationToken,
) {
    let via = match demo.sensors {
        Sensors::Native => Via::Native,
        Sensors::Mqtt => Via::Mqtt {
            addresses: demo.specs.iter().map(|spec| spec.mqtt.clone()).collect(),
            qos: citystream_mqtt_client::QoS::AtLeastOnce,
        },
    };
    let config = SimConfig {
        pace: Pace::Speed(demo.speed),
        via,
        ..SimConfig::new(CityConfig::default())
    };
    let publish = run_publishers(client.clone(), config, stats.sim.clone(), stop.clone());
    city.spawn(async move { publish.await.context("the city's publishers") });
    for role in citystream_subscribers::Role::ALL {
        let config = SubscriberConfig::new(demo.dir.join("archive"));
        let run = citystream_subscribers::run(
            role,
            client.clone(),
            config,
            stats.subscribers.clone(),
            stop.clone(),
        );
        city.spawn(async move { run.await.with_context(|| format!("the {role} subscriber")) });
    }
}

fn plan(args: &DemoArgs, control_url: &str) -> Result<Demo, UsageError> {
    if !(1..=9).contains(&args.nodes) {
        return Err(UsageError(format!(
            "--nodes {} is not between 1 and 9",
            args.nodes
        )));
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(UsageError(format!(
            "--speed {} must be above 0",
            args.speed
        )));
    }
    let last = |base: u16, flag: &str| {
        base.checked_add(args.nodes as u16 - 1)
            .filter(|_| base > 0)
            .ok_or_else(|| {
                UsageError(format!(
                    "{flag} {base}: the ports of {} nodes do not fit",
                    args.nodes
                ))
            })
    };
    last(args.http_port, "--http-port")?;
    last(args.native_port, "--native-port")?;
    last(args.mqtt_port, "--mqtt-port")?;
    let (dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let unique = format!("citystream-demo-{}", std::process::id());
            (std::env::temp_dir().join(unique), true)
        }
    };
    let natives: Vec<String> = (0..args.nodes)
        .map(|i| format!("127.0.0.1:{}", args.native_port + i as u16))
        .collect();
    let peers: Vec<String> = (1..)
        .zip(&natives)
        .map(|(id, a)| format!("{id}={a}"))
        .collect();
    let specs = (1..=args.nodes)
        .map(|node_id| {
            let native = natives[node_id as usize - 1].clone();
            let http = format!("127.0.0.1:{}", args.http_port + node_id as u16 - 1);
            let mqtt = format!("127.0.0.1:{}", args.mqtt_port + node_id as u16 - 1);
            let data_dir = dir.join(format!("node-{node_id}"));
            let mut flags = vec![
                "--node-id".to_owned(),
                node_id.to_string(),
                "--data-dir".to_owned(),
                data_dir.display().to_string(),
                "--listen".to_owned(),
                native.clone(),
                "--http".to_owned(),
                http.clone(),
                "--demo-control".to_owned(),
                control_url.to_owned(),
                // The console follows a stopped node to another one: another origin.
                "--http-cors-origin".to_owned(),
                "*".to_owned(),
                "--mqtt".to_owned(),
                mqtt.clone(),
            ];
            for rule in CITY_MQTT_MAP {
                flags.extend(["--mqtt-map".to_owned(), rule.to_owned()]);
            }
            if args.nodes > 1 {
                flags.extend([
                    "--cluster-id".to_owned(),
                    CLUSTER_ID.to_owned(),
                    "--peers".to_owned(),
                    peers.join(","),
                ]);
            }
            NodeSpec {
                node_id,
                native,
                http,
                mqtt,
                log: dir.join(format!("node-{node_id}.log")),
                data_dir,
                flags,
            }
        })
        .collect();
    Ok(Demo {
        dir,
        temporary,
        specs,
        speed: args.speed,
        simulate: !args.no_sim,
        sensors: args.sensors,
    })
}

/// Refuses to start when a port a node needs is taken, naming it.
fn check_ports(specs: &[NodeSpec]) -> anyhow::Result<()> {
    for spec in specs {
        let listeners = [
            ("native", &spec.native),
            ("HTTP", &spec.http),
            ("MQTT", &spec.mqtt),
        ];
        for (what, address) in listeners {
            StdTcpListener::bind(address).map_err(|error| {
                UsageError(format!(
                    "port {address} ({what} listener of node {}) is taken: {error}; stop what uses it or pick other ports (--http-port, --native-port, --mqtt-port)",
                    spec.node_id
                ))
            })?;
        }
        if specs.len() > 1 {
            UdpSocket::bind(&spec.native).map_err(|error| {
                UsageError(format!(
                    "UDP port {} (gossip of node {}) is taken: {error}; pick other ports with --native-port",
                    spec.native, spec.node_id
                ))
            })?;
        }
    }
    Ok(())
}

async fn start_nodes(nodes: &control::Nodes) -> anyhow::Result<()> {
    let mut nodes = nodes.lock().await;
    for node in nodes.iter_mut() {
        eprintln!(
            "demo: starting node {} (log {})",
            node.spec.node_id,
            node.spec.log.display()
        );
        node.start().await?;
    }
    Ok(())
}

async fn stop_nodes(nodes: &control::Nodes) {
    let mut nodes = nodes.lock().await;
    let stops = nodes.iter_mut().map(Node::stop);
    futures::future::join_all(stops).await;
}

async fn connect(specs: &[NodeSpec]) -> anyhow::Result<Client> {
    let mut config = ClientConfig::new(specs[0].native.clone());
    config.bootstrap = specs.iter().map(|s| s.native.clone()).collect();
    config.client_id = "citystream-demo".to_owned();
    Client::connect(config)
        .await
        .context("cannot connect to the demo's nodes")
}

/// Waits, with a spinner, until every node is alive and a metadata leader
/// is known.
async fn wait_for_cluster(client: &Client, count: usize) -> anyhow::Result<()> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let admin = client.admin();
    loop {
        let (alive, leader) = match admin.cluster_status().await {
            Ok(status) => (
                status
                    .nodes
                    .iter()
                    .filter(|n| n.state == NodeState::Alive)
                    .count(),
                status
                    .metadata_leader
                    .or((count == 1).then_some(status.node_id)),
            ),
            Err(_) => (0, None),
        };
        spinner.set_message(format!("the cluster forms: {alive}/{count} nodes alive"));
        if alive.max(1) >= count && leader.is_some() {
            spinner.finish_and_clear();
            eprintln!(
                "demo: {count} nodes up, metadata leader node {}",
                leader.unwrap_or(0)
            );
            return Ok(());
        }
        if started.elapsed() > FORM_TIMEOUT {
            spinner.finish_and_clear();
            anyhow::bail!(
                "the cluster did not form within {} s ({alive}/{count} nodes alive); see the node logs",
                FORM_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_topics(client: &Client, nodes: usize) -> anyhow::Result<()> {
    let admin = client.admin();
    let config = TopicConfig {
        replication: nodes.min(3) as u16,
        ..TopicConfig::default()
    };
    for topic in CITY_TOPICS {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            match admin
                .create_topic(topic, CITY_PARTITIONS, config.clone())
                .await
            {
                Ok(_) => break,
                Err(error) if error.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => break,
                Err(error) if error.is_retriable() && Instant::now() < deadline => {
                    tracing::debug!(%error, topic, "topic creation retried");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error).context(format!("cannot create {topic}")),
            }
        }
    }
    Ok(())
}

/// The one-line status: nodes up, readings/s into the city, partition
/// leaders of city.air, alerts and advisories.
#[derive(Default)]
struct StatusLine {
    last: Option<(Instant, u64)>,
}

impl StatusLine {
    async fn sample(&mut self, client: &Client, stats: &CityStats) -> String {
        let admin = client.admin();
        let (alive, total) = match admin.cluster_status().await {
            Ok(status) => (
                status
                    .nodes
                    .iter()
                    .filter(|n| n.state == NodeState::Alive)
                    .count(),
                status.nodes.len(),
            ),
            Err(_) => (0, 0),
        };
        let leaders = match client.metadata(Some(vec!["city.air".to_owned()])).await {
            Ok(metadata) => metadata
                .topics
                .iter()
                .flat_map(|topic| topic.partitions.iter().map(|p| p.leader.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            Err(_) => "-".to_owned(),
        };
        let sim = stats.sim.snapshot();
        let read = stats.subscribers.snapshot();
        let now = Instant::now();
        let rate = match self.last {
            Some((then, before)) => {
                sim.acknowledged.saturating_sub(before) as f64
                    / now.duration_since(then).as_secs_f64()
            }
            None => 0.0,
        };
        self.last = Some((now, sim.acknowledged));
        format!(
            "demo: {alive}/{total} nodes alive · {rate:.1} readings/s ({} written, {} failed) · city.air leaders {leaders} · {} alerts, {} advisories",
            sim.acknowledged, sim.failed, read.alerts, read.advisories
        )
    }
}
