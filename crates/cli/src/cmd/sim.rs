//! `citystream sim`: runs the smart-city roles against a cluster: the
//! `publishers` (crate `sim`: a seeded city publishing to the city topics,
//! or `--replay` of a CSV file) and the subscribers (crate `subscribers`:
//! `monitor`, `traffic`, `public`, `analytics`, `archiver`, each its own
//! consumer group), all by default or those `--only` names. Every flag is
//! checked, and a replay file read whole, before connecting, so a bad flag
//! or file sends nothing and exits with 2.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use citystream_mqtt_client::QoS;
use citystream_sim::{
    CityConfig, Pace, REPLAY_TOPIC_DEFAULT, ReplayColumns, ReplayFile, SimConfig, SimError,
    SimStats, SimStatsSnapshot, Via, run_publishers, run_replay,
};
use citystream_subscribers::{SubscriberConfig, SubscriberStats};
use tokio_util::sync::CancellationToken;

use super::{BROKER_ADDRESS_DEFAULT, ConnectArgs};
use crate::output::UsageError;

const EXAMPLES: &str = "\
Examples:
  # The default city (4 districts, 3 stations of each kind per district) in real time
  citystream sim

  # A simulated day in 24 minutes, for a demo
  citystream sim --speed 60 --districts 6

  # Load: 50,000 readings per second in total, for one minute
  citystream sim --rate 50000 --duration 60

  # Replay a CSV file keyed by its sensor column, at 10x its own timestamps
  citystream sim --replay readings.csv --key-column sensor_id --time-column timestamp --speed 10

  # The sensors speak MQTT to a 3-node cluster (QoS 1; they move to another node if theirs dies)
  citystream sim --only publishers --via mqtt --mqtt node1:1883,node2:1883,node3:1883

  # Only the environmental monitor and the archiver (each resumes where it stopped)
  citystream sim --only monitor,archiver --archive-dir ./archive

Readings go to city.air, city.traffic, city.weather and city.buildings (created with 3
partitions if missing); the subscribers write city.alerts, city.advisories, city.latest,
city.analytics and per-station CSV files, as docs/city-data.md describes. A summary line goes to stderr every
5 s; Ctrl-C (or --duration) stops, flushes and prints the totals on stdout.";

/// Simulated seconds per real second unless --speed says otherwise.
const SPEED_DEFAULT: f64 = 1.0;
/// How often the summary line is printed.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// One role of the city simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The stations publishing readings (or a replayed CSV file).
    Publishers,
    /// The environmental monitor (alerts).
    Monitor,
    /// The traffic manager (advisories).
    Traffic,
    /// The public interface (latest reading per station).
    Public,
    /// Windowed statistics and forecasts.
    Analytics,
    /// Per-station CSV files.
    Archiver,
}

impl Role {
    /// The subscriber this role is, if it is one.
    fn subscriber(self) -> Option<citystream_subscribers::Role> {
        use citystream_subscribers::Role as S;
        match self {
            Role::Publishers => None,
            Role::Monitor => Some(S::Monitor),
            Role::Traffic => Some(S::Traffic),
            Role::Public => Some(S::Public),
            Role::Analytics => Some(S::Analytics),
            Role::Archiver => Some(S::Archiver),
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct SimArgs {
    /// Address of a broker's native listener (any node of the cluster).
    #[arg(
        long,
        visible_alias = "bootstrap",
        env = "CITYSTREAM_BROKER",
        default_value = BROKER_ADDRESS_DEFAULT,
        value_name = "HOST:PORT"
    )]
    broker: String,
    /// Districts of the city (1 to 16: north, south, east, west, harbor, old-town, ...).
    #[arg(long, default_value_t = 4, value_name = "N")]
    districts: usize,
    /// Air, traffic and building stations per district, each (weather: one per district).
    #[arg(long, default_value_t = 3, value_name = "N")]
    stations: usize,
    /// Seed of the city: the same seed gives the same stations and readings.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Simulated seconds per real second (a reading per station every 10 simulated
    /// seconds); with --replay and --time-column, how much faster than recorded
    /// [default: 1].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    speed: Option<f64>,
    /// Send N readings (or replayed rows) per second in total instead, simulated time
    /// advancing with them.
    #[arg(long, value_name = "N", conflicts_with = "time_column")]
    rate: Option<u32>,
    /// Stop after this many seconds [default: run until Ctrl-C, or a replay's end].
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Simulated time of the first readings, ms since the Unix epoch [default: now].
    #[arg(long, value_name = "MS")]
    start_ms: Option<i64>,
    /// Publish the rows of this CSV file (header row first) instead of simulating.
    #[arg(
        long,
        value_name = "FILE.csv",
        requires = "key_column",
        conflicts_with_all = ["districts", "stations", "seed", "start_ms"]
    )]
    replay: Option<PathBuf>,
    /// Topic the replayed rows go to (created with 3 partitions if missing).
    #[arg(long, default_value = REPLAY_TOPIC_DEFAULT, value_name = "TOPIC")]
    replay_topic: String,
    /// With --replay: the column whose value keys each record.
    #[arg(long, value_name = "COLUMN", requires = "replay")]
    key_column: Option<String>,
    /// With --replay: pace the rows by this column's times (epoch s or ms, or RFC 3339),
    /// scaled by --speed [default: --rate, else as fast as possible].
    #[arg(long, value_name = "COLUMN", requires = "replay")]
    time_column: Option<String>,
    /// Run only these roles (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "ROLES")]
    only: Vec<Role>,
    /// Where the archiver writes its per-station CSV files.
    #[arg(long, default_value = "city-archive", value_name = "DIR")]
    archive_dir: PathBuf,
    /// How the simulated sensors publish: the native protocol, or MQTT 5 (each reading a
    /// PUBLISH to its key city/<district>/<kind>/<station>; the broker's --mqtt-map decides
    /// its stream topic).
    #[arg(long, value_enum, default_value = "native", conflicts_with = "replay")]
    via: ViaArg,
    /// With --via mqtt: the MQTT listeners of the cluster's nodes (repeatable or
    /// comma-separated). The sensors connect to the first that accepts with a persistent
    /// session; when its node goes away they reconnect to the next and send every reading
    /// not acknowledged yet again, so none is lost.
    #[arg(
        long,
        default_value = "127.0.0.1:1883",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    mqtt: Vec<String>,
    /// With --via mqtt: the QoS of the publishes (1: at least once, 2: exactly once; both
    /// acknowledged once a quorum has them).
    #[arg(long, default_value_t = 1, value_name = "QOS")]
    qos: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ViaArg {
    Native,
    Mqtt,
}

/// What this run does, checked before connecting.
enum Plan {
    Simulate(SimConfig),
    Replay { file: ReplayFile, pace: Pace },
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let roles = roles(&args.only);
    let duration = check_duration(args.duration)?;
    let publishes = roles.contains(&Role::Publishers);
    let plan = if publishes { Some(plan(&args)?) } else { None };
    let client = ConnectArgs {
        broker: args.broker.clone(),
    }
    .connect("sim")
    .await?;
    let stats = Arc::new(SimStats::default());
    let subscriber_stats = Arc::new(SubscriberStats::default());
    let stop = stop_token(duration);
    let summary = tokio::spawn(print_summaries(
        stats.clone(),
        subscriber_stats.clone(),
        stop.clone(),
    ));
    let mut subscribers = tokio::task::JoinSet::new();
    for role in roles.iter().filter_map(|role| role.subscriber()) {
        let config = SubscriberConfig::new(args.archive_dir.clone());
        let run = citystream_subscribers::run(
            role,
            client.clone(),
            config,
            subscriber_stats.clone(),
            stop.clone(),
        );
        subscribers.spawn(async move {
            let outcome = run.await;
            if let Err(error) = &outcome {
                eprintln!("sim: the {role} subscriber stopped: {error}");
            }
            outcome
        });
    }
    let result = match plan {
        Some(plan) => {
            eprintln!("{}; Ctrl-C stops", describe(&plan, &args));
            match plan {
                Plan::Simulate(config) => {
                    run_publishers(client, config, stats.clone(), stop.clone()).await
                }
                Plan::Replay { file, pace } => {
                    let topic = &args.replay_topic;
                    run_replay(client, file, topic, pace, stats.clone(), stop.clone()).await
                }
            }
        }
        None => {
            eprintln!("subscribers running against {}; Ctrl-C stops", args.broker);
            stop.cancelled().await;
            Ok(())
        }
    };
    // When the publishers end (a replay's end, --duration), so does the rest.
    stop.cancel();
    let mut subscriber_failure = None;
    while let Some(done) = subscribers.join_next().await {
        if let Ok(Err(error)) = done {
            subscriber_failure = Some(error);
        }
    }
    let _ = summary.await;
    result.map_err(|error| match error {
        SimError::InvalidConfig(message) => anyhow::Error::new(UsageError(message)),
        other => anyhow::Error::new(other),
    })?;
    if let Some(error) = subscriber_failure {
        return Err(error.into());
    }
    match publishes {
        true => report_totals(&stats),
        false => Ok(()),
    }
}

/// The roles to run: those named, or all of them.
fn roles(only: &[Role]) -> Vec<Role> {
    use clap::ValueEnum as _;
    match only.is_empty() {
        true => Role::value_variants().to_vec(),
        false => only.to_vec(),
    }
}

fn check_duration(seconds: Option<f64>) -> Result<Option<Duration>, UsageError> {
    match seconds {
        None => Ok(None),
        Some(seconds) if seconds > 0.0 && seconds < 1e9 => {
            Ok(Some(Duration::from_secs_f64(seconds)))
        }
        Some(seconds) => Err(UsageError(format!(
            "--duration must be a number of seconds above 0, not {seconds}"
        ))),
    }
}

/// Checks the flags (and reads a replay file whole) into a plan.
fn plan(args: &SimArgs) -> Result<Plan, UsageError> {
    let speed = args.speed.unwrap_or(SPEED_DEFAULT);
    let pace = match (args.rate, &args.replay, &args.time_column) {
        (Some(rate), _, _) => Pace::Rate(rate),
        (None, Some(_), None) if args.speed.is_some() => Err(UsageError(
            "--speed paces a replay by its --time-column; without one, use --rate".to_owned(),
        ))?,
        (None, Some(_), None) => Pace::Unpaced,
        (None, _, _) => Pace::Speed(speed),
    };
    // --speed is checked even when --rate paces the run: a bad flag is a bad flag.
    Pace::Speed(speed)
        .validate()
        .map_err(|m| UsageError(format!("--{m}")))?;
    pace.validate().map_err(|m| UsageError(format!("--{m}")))?;
    if let Some(path) = &args.replay {
        let columns = ReplayColumns {
            key: args
                .key_column
                .clone()
                .expect("clap requires --key-column with --replay"),
            time: args.time_column.clone(),
        };
        let file = ReplayFile::load(path, &columns)
            .map_err(|error| UsageError(format!("{}; nothing was sent", error_chain(&error))))?;
        return Ok(Plan::Replay { file, pace });
    }
    let city = CityConfig {
        districts: args.districts,
        stations_per_kind: args.stations,
        seed: args.seed,
    };
    let via = match args.via {
        ViaArg::Native => Via::Native,
        ViaArg::Mqtt => {
            let qos = match args.qos {
                1 => QoS::AtLeastOnce,
                2 => QoS::ExactlyOnce,
                other => Err(UsageError(format!(
                    "--qos must be 1 or 2 (acknowledged readings), not {other}"
                )))?,
            };
            for address in &args.mqtt {
                if address
                    .rsplit_once(':')
                    .is_none_or(|(_, port)| port.parse::<u16>().is_err())
                {
                    Err(UsageError(format!("--mqtt {address:?} is not HOST:PORT")))?;
                }
            }
            Via::Mqtt {
                addresses: args.mqtt.clone(),
                qos,
            }
        }
    };
    let mut config = SimConfig {
        pace,
        via,
        ..SimConfig::new(city)
    };
    if let Some(start_ms) = args.start_ms {
        config.start_ms = start_ms;
    }
    config.validate().map_err(UsageError)?;
    Ok(Plan::Simulate(config))
}

/// An error and its causes joined by `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

fn describe(plan: &Plan, args: &SimArgs) -> String {
    let pace = |pace: &Pace| match pace {
        Pace::Speed(speed) => format!("at speed {speed}"),
        Pace::Rate(rate) => format!("at {rate} per second"),
        Pace::Unpaced => "as fast as possible".to_owned(),
    };
    match plan {
        Plan::Simulate(config) => format!(
            "publishing {} districts x {} stations per kind (seed {}) {} to {}",
            config.city.districts,
            config.city.stations_per_kind,
            config.city.seed,
            pace(&config.pace),
            match &config.via {
                Via::Native => args.broker.clone(),
                Via::Mqtt { addresses, qos } => {
                    format!("mqtt://{} at QoS {}", addresses.join(","), *qos as u8)
                }
            }
        ),
        Plan::Replay {
            file,
            pace: file_pace,
        } => format!(
            "replaying {} rows of {} to {} {} on {}",
            file.rows(),
            file.path.display(),
            args.replay_topic,
            pace(file_pace),
            args.broker
        ),
    }
}

/// Cancelled by the first Ctrl-C, or after `duration`.
fn stop_token(duration: Option<Duration>) -> CancellationToken {
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        let deadline = async {
            match duration {
                Some(duration) => tokio::time::sleep(duration).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = deadline => {}
            _ = cancel.cancelled() => {}
        }
        cancel.cancel();
    });
    stop
}

/// A line on stderr every [`SUMMARY_EVERY`] until `stop`.
async fn print_summaries(
    stats: Arc<SimStats>,
    subscribers: Arc<SubscriberStats>,
    stop: CancellationToken,
) {
    let mut last = (Instant::now(), SimStatsSnapshot::default());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SUMMARY_EVERY) => {}
        }
        let now = (Instant::now(), stats.snapshot());
        let per_second = (now.1.sent - last.1.sent) as f64 / (now.0 - last.0).as_secs_f64();
        let read = subscribers.snapshot();
        eprintln!(
            "{}; subscribers: {} readings, {} alerts, {} advisories, {} summaries, {} rows archived",
            summary_line(per_second, &now.1),
            read.readings,
            read.alerts,
            read.advisories,
            read.summaries,
            read.rows
        );
        last = now;
    }
}

fn summary_line(per_second: f64, totals: &SimStatsSnapshot) -> String {
    format!(
        "sim: {per_second:.0} readings/s, {} sent, {} acknowledged, {} failed, {} alarms",
        totals.sent, totals.acknowledged, totals.failed, totals.alarms
    )
}

/// Totals on stdout; an error (exit 1) if any reading was not written.
fn report_totals(stats: &SimStats) -> anyhow::Result<()> {
    let totals = stats.snapshot();
    println!(
        "published {} readings: {} acknowledged, {} failed, {} alarms",
        totals.sent, totals.acknowledged, totals.failed, totals.alarms
    );
    if totals.failed > 0 {
        let last_error = stats.last_error().unwrap_or_default();
        bail!(
            "{} readings were not written (last error: {last_error})",
            totals.failed
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(flags: &[&str]) -> Result<SimArgs, clap::Error> {
        let argv = std::iter::once("sim").chain(flags.iter().copied());
        Command::try_parse_from(argv).map(|command| command.sim)
    }

    /// Bad numbers are usage errors caught before connecting.
    #[test]
    fn bad_flags_are_refused() {
        for flags in [
            &["--districts", "0"][..],
            &["--districts", "17"],
            &["--stations", "0"],
            &["--speed", "0"],
            &["--speed", "-2"],
            &["--rate", "0"],
        ] {
            let args = parse(flags).unwrap();
            assert!(plan(&args).is_err(), "{flags:?} was accepted");
        }
        assert!(check_duration(Some(0.0)).is_err());
        assert!(plan(&parse(&[]).unwrap()).is_ok());
    }

    /// Unknown roles are refused by the parser; no --only means every role.
    #[test]
    fn roles_parse_and_default_to_all() {
        assert!(parse(&["--only", "mayor"]).is_err());
        let args = parse(&["--only", "publishers,monitor,archiver"]).unwrap();
        assert_eq!(
            roles(&args.only),
            vec![Role::Publishers, Role::Monitor, Role::Archiver]
        );
        let all = roles(&parse(&[]).unwrap().only);
        assert_eq!(all.len(), 6);
        let subscribers: Vec<_> = all.iter().filter_map(|r| r.subscriber()).collect();
        assert_eq!(subscribers, citystream_subscribers::Role::ALL.to_vec());
    }

    /// A missing replay file is a usage error that says nothing was sent;
    /// --replay needs --key-column.
    #[test]
    fn replay_needs_a_readable_file_and_a_key() {
        assert!(parse(&["--replay", "x.csv"]).is_err());
        let args = parse(&["--replay", "/nonexistent/x.csv", "--key-column", "k"]).unwrap();
        let error = plan(&args).err().unwrap();
        assert!(
            error.0.contains("/nonexistent/x.csv") && error.0.contains("nothing was sent"),
            "{error}"
        );
        assert!(parse(&["--key-column", "k"]).is_err());
        let args = parse(&["--replay", "x.csv", "--key-column", "k", "--speed", "2"]).unwrap();
        let error = plan(&args).err().unwrap();
        assert!(error.0.contains("--time-column"), "{error}");
    }

    /// MQTT listeners come repeated or comma-separated (one still works),
    /// at QoS 1 by default; a bad address or QoS is refused up front.
    #[test]
    fn mqtt_listeners_are_a_list_and_qos_defaults_to_1() {
        let via = |flags: &[&str]| match plan(&parse(flags).unwrap()) {
            Ok(Plan::Simulate(config)) => Ok(config.via),
            Ok(Plan::Replay { .. }) => panic!("not a replay"),
            Err(error) => Err(error.0),
        };
        let mqtt = |addresses: &[&str], qos| Via::Mqtt {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            qos,
        };
        assert_eq!(
            via(&["--via", "mqtt"]),
            Ok(mqtt(&["127.0.0.1:1883"], QoS::AtLeastOnce))
        );
        let three = ["a:1", "b:2", "c:3"];
        let listed = via(&["--via", "mqtt", "--mqtt", "a:1,b:2", "--mqtt", "c:3"]);
        assert_eq!(listed, Ok(mqtt(&three, QoS::AtLeastOnce)));
        let exactly_once = via(&["--via", "mqtt", "--mqtt", "a:1", "--qos", "2"]);
        assert_eq!(exactly_once, Ok(mqtt(&["a:1"], QoS::ExactlyOnce)));
        let bad = via(&["--via", "mqtt", "--mqtt", "a:1,b"]).unwrap_err();
        assert!(bad.contains("\"b\""), "{bad}");
        assert!(via(&["--via", "mqtt", "--qos", "0"]).is_err());
    }
}
