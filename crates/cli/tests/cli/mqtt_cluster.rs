//! MQTT on a 3-node cluster of real processes, with Debian's mosquitto
//! clients: a persistent session follows its client to another node when
//! the node it used is SIGKILLed, QoS 1 publishes acknowledged before
//! a partition leader is killed are all in the log, in order, once, and
//! retained messages outlive compaction and a leader kill.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{COMMAND_TIMEOUT, listener_address};
use crate::mqtt::{Subscriber, skip_without_mosquitto};
use crate::ordered_produce::leader;
use crate::test_cluster::{CONVERGE_TIMEOUT, TestCluster};

const V311: &str = "mqttv311";

fn cluster() -> TestCluster {
    TestCluster::start_with_flags(3, &["--mqtt", "127.0.0.1:0", "--default-partitions", "1"])
}

fn mqtt_address(cluster: &TestCluster, node_id: u32) -> String {
    listener_address(&cluster.broker(node_id).ready_line, "mqtt on ")
}

/// Publishes each of `lines` as one QoS 1 message to `topic` through the
/// MQTT listener at `address` (`mosquitto_pub -l`, which exits once every
/// message is acknowledged); retried (bounded) while the cluster settles.
fn publish_lines(address: &str, topic: &str, lines: &[String]) {
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let input = lines.join("\n") + "\n";
    loop {
        let output = assert_cmd::Command::new("mosquitto_pub")
            .args([
                "-h", host, "-p", port, "-V", V311, "-q", "1", "-t", topic, "-l",
            ])
            .write_stdin(input.clone())
            .timeout(COMMAND_TIMEOUT)
            .output()
            .expect("run mosquitto_pub");
        if output.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto_pub -l failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// [`publish_lines`] with RETAIN: each line becomes the retained message
/// of `topic` in turn.
fn publish_retained_lines(address: &str, topic: &str, lines: &[String]) {
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let input = lines.join("\n") + "\n";
    let output = assert_cmd::Command::new("mosquitto_pub")
        .args([
            "-h", host, "-p", port, "-V", V311, "-q", "1", "-r", "-t", topic, "-l",
        ])
        .write_stdin(input)
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run mosquitto_pub");
    assert!(
        output.status.success(),
        "mosquitto_pub -r -l failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const RETAINED_TOPIC: &str = "citystream.mqtt-retained";

/// The (key, value or None for a tombstone) of every record of the
/// retained topic read through node `via` once it holds at most
/// `records_max` records: the partition leader compacted it (bounded).
fn compacted_retained(
    cluster: &TestCluster,
    via: u32,
    records_max: usize,
) -> Vec<(String, Option<String>)> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT * 2;
    loop {
        let output = cluster
            .broker(via)
            .command(&[
                "consume",
                RETAINED_TOPIC,
                "--from-beginning",
                "--format",
                "json",
            ])
            .output()
            .expect("run citystream consume");
        let records: Vec<(String, Option<String>)> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                let json: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
                let key = json["key"].as_str().expect("a topic name").to_owned();
                (key, json["value"].as_str().map(str::to_owned))
            })
            .collect();
        if output.status.success() && !records.is_empty() && records.len() <= records_max {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "the retained topic still holds {} records through node {via}: {}",
            records.len(),
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The newest value of each key in `records`, in key order.
fn newest_per_key(records: &[(String, Option<String>)]) -> Vec<(String, Option<String>)> {
    let newest: std::collections::BTreeMap<_, _> = records.iter().cloned().collect();
    newest.into_iter().collect()
}

/// Retained messages on the cluster: 10 names get 30 retained updates
/// each and one more name is retained then deleted. The retained topic's
/// leader compacts its replica to about one record per name; that leader
/// is SIGKILLed; a subscriber on a surviving node gets exactly the newest
/// retained message of each name, flagged retained, and the new leader's
/// own replica is compacted too, with the same newest record per name.
#[test]
fn retained_messages_survive_compaction_and_a_leader_kill() {
    if skip_without_mosquitto("retained_messages_survive_compaction_and_a_leader_kill") {
        return;
    }
    let mut cluster = TestCluster::start_with_flags(
        3,
        &[
            "--mqtt",
            "127.0.0.1:0",
            "--default-partitions",
            "1",
            "--segment-bytes",
            "4096",
            "--retention-check-interval-ms",
            "200",
            "--compaction-lag-floor-ms",
            "0",
        ],
    );
    let address = mqtt_address(&cluster, 1);
    publish_lines(&address, "city/warmup/temp", &["0".to_owned()]);
    for name in 0..10 {
        publish_retained_lines(&address, &format!("city/n{name}/temp"), &numbered(1..=30));
    }
    publish_retained_lines(&address, "city/gone/temp", &numbered(1..=5));
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let deleted = assert_cmd::Command::new("mosquitto_pub")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-V",
            V311,
            "-q",
            "1",
            "-r",
            "-n",
            "-t",
            "city/gone/temp",
        ])
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run mosquitto_pub");
    assert!(deleted.status.success());
    let expected: Vec<(String, Option<String>)> = (0..10)
        .map(|name| (format!("city/n{name}/temp"), Some("30".to_owned())))
        .chain([("city/gone/temp".to_owned(), None)])
        .collect();
    let mut expected = expected;
    expected.sort();

    let old_leader = leader(&cluster, 1, RETAINED_TOPIC, 0);
    // 306 records were written; compaction leaves about one per name plus
    // what the active segment holds.
    let compacted = compacted_retained(&cluster, old_leader, 120);
    assert_eq!(newest_per_key(&compacted), expected);

    cluster.kill(old_leader);
    let via = (1..=3)
        .find(|&n| n != old_leader)
        .expect("a surviving node");
    let (mut late, granted) =
        Subscriber::start_at(&mqtt_address(&cluster, via), V311, 1, "city/+/temp", &[]);
    assert_eq!(granted, 1);
    let mut received: Vec<(String, String, bool)> = (0..10)
        .map(|_| {
            let message = late.next_message();
            let retained = message["retain"] == serde_json::json!(true)
                || message["retain"] == serde_json::json!(1);
            let topic = message["topic"].as_str().expect("a topic").to_owned();
            (
                topic,
                message["payload"].as_str().expect("text").to_owned(),
                retained,
            )
        })
        .collect();
    received.sort();
    let wanted: Vec<(String, String, bool)> = (0..10)
        .map(|name| (format!("city/n{name}/temp"), "30".to_owned(), true))
        .collect();
    assert_eq!(
        received, wanted,
        "the newest retained message of each name, once"
    );
    late.kill();

    let new_leader = leader(&cluster, via, RETAINED_TOPIC, 0);
    assert_ne!(new_leader, old_leader);
    let compacted = compacted_retained(&cluster, via, 120);
    assert_eq!(
        newest_per_key(&compacted),
        expected,
        "on the new leader's replica too"
    );
}

fn numbered(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

fn payload(message: &serde_json::Value) -> u32 {
    message["payload"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a numbered payload: {message}"))
}

/// A session that is not clean, connected to node 1, got messages 1-50;
/// node 1 is SIGKILLed, 51-100 are published through node 2, and the same
/// client id connecting to node 3 gets every message it had not
/// acknowledged, in order: at most a repeat of the last ones before the
/// kill (QoS 1 is at least once), then 51-100 with no gap.
#[test]
fn a_persistent_session_resumes_on_another_node_after_its_node_is_killed() {
    if skip_without_mosquitto(
        "a_persistent_session_resumes_on_another_node_after_its_node_is_killed",
    ) {
        return;
    }
    let mut cluster = cluster();
    let session = ["-c", "-i", "roaming-truck"];
    let (mut first, granted) =
        Subscriber::start_at(&mqtt_address(&cluster, 1), V311, 1, "fleet/#", &session);
    assert_eq!(granted, 1);
    publish_lines(
        &mqtt_address(&cluster, 2),
        "fleet/truck/7",
        &numbered(1..=50),
    );
    let before: Vec<u32> = (0..50).map(|_| payload(&first.next_message())).collect();
    assert_eq!(before, (1..=50).collect::<Vec<_>>());
    // Give the session's periodic snapshot a chance to hold some of the
    // acknowledgements; correctness does not depend on it.
    std::thread::sleep(Duration::from_millis(600));
    cluster.kill(1);
    first.kill();

    publish_lines(
        &mqtt_address(&cluster, 2),
        "fleet/truck/7",
        &numbered(51..=100),
    );
    let (mut resumed, _) =
        Subscriber::start_at(&mqtt_address(&cluster, 3), V311, 1, "fleet/#", &session);
    let mut after = Vec::new();
    while after.last() != Some(&100) {
        after.push(payload(&resumed.next_message()));
    }
    resumed.kill();
    let first_new = after.iter().position(|&p| p == 51).expect("51 arrives");
    let (repeats, new) = after.split_at(first_new);
    assert_eq!(
        new,
        (51..=100).collect::<Vec<_>>(),
        "what was missed, in order, once"
    );
    assert!(
        repeats.windows(2).all(|w| w[0] < w[1]) && repeats.iter().all(|&p| p <= 50),
        "repeats are earlier messages in order: {repeats:?}"
    );
}

/// A QoS 1 publisher on one node keeps publishing while the leader of the
/// stream partition (another node) is SIGKILLed: mosquitto_pub exits 0
/// (every message acknowledged), and the partition then holds every
/// message once, in publish order.
#[test]
fn qos1_messages_acknowledged_across_a_leader_kill_are_all_in_the_log() {
    if skip_without_mosquitto("qos1_messages_acknowledged_across_a_leader_kill_are_all_in_the_log")
    {
        return;
    }
    const MESSAGES: u32 = 2_000;
    let mut cluster = cluster();
    publish_lines(&mqtt_address(&cluster, 1), "meters/m1", &["0".to_owned()]);
    let old_leader = leader(&cluster, 1, "mqtt.meters", 0);
    let via = if old_leader == 1 { 2 } else { 1 };
    let address = mqtt_address(&cluster, via);
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let mut publisher = Command::new("mosquitto_pub")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-V",
            V311,
            "-q",
            "1",
            "-t",
            "meters/m1",
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mosquitto_pub");
    let mut stdin = publisher.stdin.take().expect("piped stdin");
    for i in 1..=MESSAGES {
        writeln!(stdin, "{i}").expect("feed mosquitto_pub");
        if i == MESSAGES / 2 {
            stdin.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(200));
            cluster.kill(old_leader);
        }
    }
    drop(stdin);
    let deadline = Instant::now() + CONVERGE_TIMEOUT * 3;
    let status = loop {
        if let Some(status) = publisher.try_wait().expect("wait for mosquitto_pub") {
            break status;
        }
        assert!(Instant::now() < deadline, "mosquitto_pub did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "mosquitto_pub failed: {status}");

    let values = read_values(&cluster, via, "mqtt.meters", MESSAGES as usize + 1);
    let expected: Vec<String> = (0..=MESSAGES).map(|i| i.to_string()).collect();
    assert_eq!(values.len(), expected.len(), "every message once");
    assert!(values == expected, "in publish order");
}

/// The values of partition 0 of `topic` read through node `via`, once at
/// least `count` are there (bounded).
fn read_values(cluster: &TestCluster, via: u32, topic: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let output = cluster
            .broker(via)
            .command(&["consume", topic, "--from-beginning", "--format", "json"])
            .output()
            .expect("run citystream consume");
        let values: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                let json: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
                json["value"].as_str().expect("a text value").to_owned()
            })
            .collect();
        if output.status.success() && values.len() >= count {
            return values;
        }
        assert!(
            Instant::now() < deadline,
            "read {} of {count}",
            values.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A client connected to node 1 with a will loses its connection when
/// node 1 is SIGKILLed: another node finds the orphaned session and
/// publishes the will to a subscriber on node 2.
#[test]
fn the_will_of_a_client_whose_node_dies_is_published() {
    if skip_without_mosquitto("the_will_of_a_client_whose_node_dies_is_published") {
        return;
    }
    let mut cluster = cluster();
    sessions_ready(&cluster, &[1, 2]);
    let mut watcher = granted_subscriber(&mqtt_address(&cluster, 2), "status/#");
    let will = [
        "-i",
        "sensor-9",
        "--will-topic",
        "status/sensor-9",
        "--will-payload",
        "offline",
        "--will-qos",
        "1",
    ];
    let (device, _) = Subscriber::start_at(&mqtt_address(&cluster, 1), V311, 0, "unused/#", &will);
    cluster.kill(1);
    let message = watcher.next_message();
    assert_eq!(
        (message["topic"].as_str(), message["payload"].as_str()),
        (Some("status/sensor-9"), Some("offline"))
    );
    device.kill();
    watcher.kill();
}

/// Every connection takes a session: waits (bounded) until `nodes` can,
/// by publishing one message through each.
fn sessions_ready(cluster: &TestCluster, nodes: &[u32]) {
    for &node_id in nodes {
        publish_lines(
            &mqtt_address(cluster, node_id),
            "warmup/1",
            &numbered(1..=1),
        );
    }
}

/// A v3.1.1 subscriber to `filter` at QoS 1 whose SUBACK granted it,
/// started again (bounded) while the cluster settles (creating the
/// filter's stream topic may fail at first).
fn granted_subscriber(address: &str, filter: &str) -> Subscriber {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let (subscriber, granted) = Subscriber::start_at(address, V311, 1, filter, &[]);
        if granted == 1 {
            return subscriber;
        }
        subscriber.kill();
        assert!(Instant::now() < deadline, "SUBACK {granted} for {filter}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A v5 client's will with a 6 s Will Delay waits on node 1 when the
/// client vanishes; node 1 is SIGKILLed during the delay: another node
/// adopts the waiting will and publishes it to a subscriber on node 2,
/// not before the delay has passed.
#[test]
fn a_delayed_will_whose_node_dies_is_published_after_its_delay() {
    if skip_without_mosquitto("a_delayed_will_whose_node_dies_is_published_after_its_delay") {
        return;
    }
    let mut cluster = cluster();
    sessions_ready(&cluster, &[1, 2]);
    let mut watcher = granted_subscriber(&mqtt_address(&cluster, 2), "status/#");
    let will = [
        "-i",
        "sensor-11",
        "-c",
        "-x",
        "60",
        "--will-topic",
        "status/sensor-11",
        "--will-payload",
        "offline",
        "--will-qos",
        "1",
        "-D",
        "will",
        "will-delay-interval",
        "6",
    ];
    let (device, _) =
        Subscriber::start_at(&mqtt_address(&cluster, 1), "mqttv5", 0, "unused/#", &will);
    let vanished = Instant::now();
    device.kill();
    // Node 1 sees the socket close and starts the delay; then it dies.
    std::thread::sleep(Duration::from_secs(1));
    cluster.kill(1);
    let message = watcher.next_message();
    assert_eq!(
        (message["topic"].as_str(), message["payload"].as_str()),
        (Some("status/sensor-11"), Some("offline"))
    );
    assert!(
        vanished.elapsed() >= Duration::from_secs(6),
        "published {:?} after the client vanished",
        vanished.elapsed()
    );
    watcher.kill();
}
