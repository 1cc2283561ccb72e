//! `citystream sim` against a real broker: a short, fast simulated city
//! with every role; every reading acknowledged, the subscribers' outputs
//! there (the latest view, per-station CSV files), and a second run of the
//! subscribers alone writes no output twice.

use crate::harness::TestBroker;

/// Records in every partition of `topic`, read back with the CLI.
fn records(broker: &TestBroker, topic: &str) -> usize {
    let out = broker.run(&["consume", topic, "--from-beginning", "--format", "json"]);
    out.lines().filter(|line| !line.trim().is_empty()).count()
}

#[test]
fn a_fast_city_publishes_and_its_subscribers_write_their_outputs_once() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&data.path().join("broker"));
    let archive = data.path().join("archive");
    let archive_flag = archive.to_str().unwrap();
    let out = broker.run(&[
        "sim",
        "--duration",
        "4",
        "--speed",
        "600",
        "--districts",
        "2",
        "--stations",
        "1",
        "--archive-dir",
        archive_flag,
    ]);
    let totals = out
        .lines()
        .find(|l| l.starts_with("published "))
        .expect(&out);
    let sent: u64 = totals.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(sent > 0, "{totals}");
    assert!(
        totals.contains(&format!("{sent} acknowledged, 0 failed")),
        "{totals}"
    );
    let readings: usize = ["city.air", "city.traffic", "city.weather", "city.buildings"]
        .iter()
        .map(|topic| records(&broker, topic))
        .sum();
    assert_eq!(readings as u64, sent, "every reading is in the log once");
    // 2 districts x (1 air + 1 traffic + 1 buildings + 1 weather) stations.
    let files: Vec<_> = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 8, "{files:?}");
    assert!(records(&broker, "city.analytics") > 0);
    // The subscribers alone again: they resume from their committed
    // offsets and finish what the first run left (it stopped with the
    // publishers), writing no output twice: the public interface has then
    // written exactly one latest-reading record per reading.
    broker.run(&[
        "sim",
        "--only",
        "public",
        "--duration",
        "3",
        "--archive-dir",
        archive_flag,
    ]);
    let out = broker.run(&[
        "consume",
        "city.latest",
        "--from-beginning",
        "--format",
        "json",
    ]);
    let sources: Vec<String> = out
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["headers"]["source"].as_str().expect(line).to_owned()
        })
        .collect();
    let distinct: std::collections::BTreeSet<&String> = sources.iter().collect();
    assert_eq!(distinct.len(), sources.len(), "no reading's output twice");
    assert_eq!(sources.len(), readings, "every reading's output once");
}

/// `sim --via mqtt`: the sensors publish over MQTT 5 to their station
/// topics, the broker's `--mqtt-map` stores them in the city topics, and
/// every reading is acknowledged and in the log once, keyed by its topic
/// name, alarms with their priority user property as a header.
#[test]
fn the_sensors_publish_over_mqtt_into_the_city_topics() {
    let map = [
        "city/+/air/#=city.air",
        "city/+/traffic/#=city.traffic",
        "city/+/weather/#=city.weather",
        "city/+/buildings/#=city.buildings",
    ];
    let mut flags = vec!["--in-memory", "--mqtt", "127.0.0.1:0"];
    for rule in &map {
        flags.extend(["--mqtt-map", rule]);
    }
    let broker = TestBroker::start_with(&flags, &[]);
    let mqtt = crate::harness::listener_address(&broker.ready_line, "mqtt on ");
    let out = broker.run(&[
        "sim",
        "--via",
        "mqtt",
        "--mqtt",
        &mqtt,
        "--only",
        "publishers",
        "--rate",
        "400",
        "--duration",
        "2",
    ]);
    let totals = out
        .lines()
        .find(|l| l.starts_with("published "))
        .expect(&out);
    let sent: u64 = totals.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        sent > 0 && totals.contains(&format!("{sent} acknowledged, 0 failed")),
        "{totals}"
    );
    let mut readings = 0u64;
    for topic in ["city.air", "city.traffic", "city.weather", "city.buildings"] {
        let kind = topic.trim_start_matches("city.");
        let out = broker.run(&["consume", topic, "--from-beginning", "--format", "json"]);
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = record["key"].as_str().unwrap();
            assert!(
                key.starts_with("city/") && key.split('/').nth(2) == Some(kind),
                "{key} in {topic}"
            );
            assert_eq!(record["headers"]["$mqtt.qos"], "1", "{record}");
            assert!(record["headers"]["priority"].is_string(), "{record}");
            readings += 1;
        }
    }
    assert_eq!(readings, sent, "every reading is in the log once");
}
