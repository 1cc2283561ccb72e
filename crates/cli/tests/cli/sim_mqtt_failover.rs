//! `citystream sim --via mqtt` against a 3-node cluster of real processes,
//! given all three MQTT listeners: the node its sensors are connected to
//! (the first listed) is SIGKILLed mid-run; they reconnect to another node
//! and send again what was not acknowledged, and when the sim is stopped
//! every reading it reports acknowledged is in the log, in each sensor's
//! order (at QoS 2 also exactly once).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{COMMAND_TIMEOUT, binary, listener_address};
use crate::test_cluster::{CONVERGE_TIMEOUT, TestCluster};

const READING_TOPICS: [&str; 4] = ["city.air", "city.traffic", "city.weather", "city.buildings"];
/// How long the sensors publish before, and after, the kill.
const PUBLISH_BEFORE_KILL: Duration = Duration::from_secs(3);
const PUBLISH_AFTER_KILL: Duration = Duration::from_secs(5);

fn city_cluster() -> TestCluster {
    let mut flags = vec!["--mqtt", "127.0.0.1:0"];
    for rule in [
        "city/+/air/#=city.air",
        "city/+/traffic/#=city.traffic",
        "city/+/weather/#=city.weather",
        "city/+/buildings/#=city.buildings",
    ] {
        flags.extend(["--mqtt-map", rule]);
    }
    let cluster = TestCluster::start_with_flags(3, &flags);
    for topic in READING_TOPICS {
        let create = ["topic", "create", topic, "--partitions", "3"];
        cluster
            .broker(2)
            .run(&[&create[..], &["--replication", "3"]].concat());
    }
    cluster
}

/// The sim child process; killed and reaped on drop.
struct Sim {
    child: Child,
}

impl Drop for Sim {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Sim {
    /// Publishers only, at 200 readings/s, to the MQTT listeners in order;
    /// its stderr (with the MQTT client's reconnect logs) into `stderr`.
    fn start(cluster: &TestCluster, qos: &str, stderr: &Path) -> Sim {
        let listeners: Vec<String> = cluster
            .node_ids()
            .map(|node_id| listener_address(&cluster.broker(node_id).ready_line, "mqtt on "))
            .collect();
        let child = Command::new(binary())
            .args(["sim", "--only", "publishers", "--via", "mqtt"])
            .args(["--mqtt", &listeners.join(","), "--qos", qos])
            .args(["--rate", "200", "--broker", &cluster.broker(2).address])
            .env("RUST_LOG", "warn,citystream_mqtt_client=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).expect("sim stderr file"))
            .spawn()
            .expect("spawn citystream sim");
        Sim { child }
    }

    /// SIGINT (as Ctrl-C), then a bounded wait; returns the totals line
    /// (`published N readings: A acknowledged, F failed, ...`).
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let interrupted = Command::new("kill").args(["-INT", &pid]).status();
        assert!(interrupted.expect("run kill").success());
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the sim") {
                break status;
            }
            assert!(Instant::now() < deadline, "the sim did not stop in time");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut stdout = String::new();
        let mut pipe = self.child.stdout.take().expect("piped stdout");
        std::io::Read::read_to_string(&mut pipe, &mut stdout).expect("sim stdout");
        assert!(status.success(), "the sim failed ({status}): {stdout}");
        let totals = stdout.lines().find(|l| l.starts_with("published "));
        totals
            .unwrap_or_else(|| panic!("no totals in {stdout}"))
            .to_owned()
    }
}

/// `(sent, acknowledged, failed)` from the totals line.
fn counts(totals: &str) -> (u64, u64, u64) {
    let words: Vec<&str> = totals.split_whitespace().collect();
    let number = |index: usize| words[index].trim_end_matches(',').parse().expect(totals);
    assert_eq!(
        (words[2], words[4]),
        ("readings:", "acknowledged,"),
        "{totals}"
    );
    (number(1), number(3), number(5))
}

/// One record of a reading topic: where it is and which reading it holds.
struct Stored {
    key: String,
    partition: u64,
    offset: u64,
    ts_ms: i64,
}

/// Every record of the reading topics, read through node `via` once
/// every read succeeds and there are at least `count` (bounded: the
/// partitions node 1 led move to other leaders meanwhile).
fn stored_readings(cluster: &TestCluster, via: u32, count: usize) -> Vec<Stored> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let read: Option<Vec<Vec<Stored>>> = READING_TOPICS
            .iter()
            .map(|topic| read_topic(cluster, via, topic))
            .collect();
        let stored: Vec<Stored> = read.into_iter().flatten().flatten().collect();
        if stored.len() >= count {
            return stored;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} readings in the log",
            stored.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The records of `topic`; `None` if the read failed.
fn read_topic(cluster: &TestCluster, via: u32, topic: &str) -> Option<Vec<Stored>> {
    let args = ["consume", topic, "--from-beginning", "--format", "json"];
    let output = cluster
        .broker(via)
        .command(&args)
        .output()
        .expect("consume");
    if !output.status.success() {
        return None;
    }
    let stored = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect(line);
            let value: serde_json::Value =
                serde_json::from_str(record["value"].as_str().expect(line)).expect(line);
            Stored {
                key: record["key"].as_str().expect(line).to_owned(),
                partition: record["partition"].as_u64().expect(line),
                offset: record["offset"].as_u64().expect(line),
                ts_ms: value["ts_ms"].as_i64().expect(line),
            }
        })
        .collect();
    Some(stored)
}

/// Runs the sim at `qos` across a SIGKILL of node 1 (where it connects
/// first) and checks the log against what it reports; returns the
/// number of readings sent and of records stored.
fn readings_survive_the_kill_of_their_node(qos: &str) -> (u64, usize) {
    let mut cluster = city_cluster();
    let logs = tempfile::tempdir().expect("temp dir for the sim's stderr");
    let stderr = logs.path().join("sim.stderr");
    let sim = Sim::start(&cluster, qos, &stderr);
    std::thread::sleep(PUBLISH_BEFORE_KILL);
    cluster.kill(1);
    std::thread::sleep(PUBLISH_AFTER_KILL);
    let totals = sim.stop();
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    let (sent, acknowledged, failed) = counts(&totals);
    assert!(
        sent > 0 && acknowledged == sent && failed == 0,
        "{totals}\n{log}"
    );
    assert!(
        log.contains("MQTT connection resumed"),
        "the sensors reconnected after the kill: {log}"
    );

    let mut stored = stored_readings(&cluster, 2, sent as usize);
    stored.sort_by_key(|s| (s.key.clone(), s.partition, s.offset));
    let mut distinct = BTreeSet::new();
    let mut last_per_sensor: BTreeMap<&str, i64> = BTreeMap::new();
    for reading in &stored {
        if !distinct.insert((reading.key.as_str(), reading.ts_ms)) {
            continue; // a QoS 1 re-send of a reading stored before
        }
        let last = last_per_sensor.insert(&reading.key, reading.ts_ms);
        assert!(
            last.is_none_or(|last| last < reading.ts_ms),
            "{} out of order: {} after {last:?}",
            reading.key,
            reading.ts_ms
        );
    }
    assert_eq!(
        distinct.len() as u64,
        sent,
        "every acknowledged reading is in the log: {totals}"
    );
    (sent, stored.len())
}

/// QoS 1 (the default): no acknowledged reading is lost and each sensor's
/// readings are in order; a reading sent again may be stored twice.
#[test]
fn mqtt_sensors_lose_no_reading_when_their_node_is_killed() {
    let (sent, stored) = readings_survive_the_kill_of_their_node("1");
    assert!(
        stored as u64 >= sent,
        "{stored} records for {sent} readings"
    );
}

/// QoS 2: the same, and every reading is stored exactly once.
#[test]
fn qos2_mqtt_sensors_store_each_reading_once_across_a_node_kill() {
    let (sent, stored) = readings_survive_the_kill_of_their_node("2");
    assert_eq!(stored as u64, sent, "exactly once");
}
