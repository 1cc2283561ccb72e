//! Restarts: every role resumes from its group's committed offsets, and
//! after a crash between writing outputs and committing (simulated by
//! committing older offsets while it is stopped) it writes none of them
//! twice, while its windows and episodes carry over (replay). The
//! archiver also cuts a torn last line.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use citystream_subscribers::Role;
use common::*;
use serde_json::{Value, json};

fn air(station: &str, ts_ms: i64, pm25: f64) -> Value {
    let values = json!({"pm25": pm25, "pm10": 20.0, "no2": 20.0, "o3": 30.0, "co": 0.3, "aqi": 40});
    reading(station, ts_ms, values, json!({"category": "Good"}))
}

fn traffic(station: &str, ts_ms: i64, congestion: f64, incident: Option<&str>) -> Value {
    let values =
        json!({"vehicles_per_min": 30.0, "mean_speed_kmh": 20.0, "congestion": congestion});
    let labels = match incident {
        Some(incident) => json!({"level": "heavy", "incident": incident}),
        None => json!({"level": "heavy"}),
    };
    reading(station, ts_ms, values, labels)
}

fn weather(station: &str, ts_ms: i64, wind: f64) -> Value {
    let values = json!({"temperature_c": 12.0, "wind_speed_ms": wind, "precipitation_mm_h": 0.0});
    reading(station, ts_ms, values, json!({"description": "clear"}))
}

/// A day in a small city: two air stations with exceedances spanning
/// minutes, a windy weather station, a congested intersection with an
/// incident, and a building; readings every 20 s of simulated time.
fn city(from_step: i64, steps: i64) -> Vec<Value> {
    let mut readings = Vec::new();
    for step in from_step..from_step + steps {
        let ts = step * 20_000;
        let pm25 = [10.0, 40.0, 60.0, 20.0, 70.0, 12.0][(step % 6) as usize];
        readings.push(air("north-air-1", ts, pm25));
        readings.push(air("south-air-2", ts, 100.0 - pm25));
        readings.push(weather(
            "harbor-weather-1",
            ts,
            if step % 4 == 3 { 25.0 } else { 5.0 },
        ));
        let incident = (step % 5 == 2).then_some("breakdown");
        readings.push(traffic(
            "east-traffic-1",
            ts,
            [0.9, 0.85, 0.95, 0.3][(step % 4) as usize],
            incident,
        ));
        let values = json!({"temperature_c": 21.0, "humidity_pct": 40.0, "pressure_hpa": 1010.0, "sequence": step});
        readings.push(reading("north-buildings-1", ts, values, json!({})));
    }
    readings
}

/// Runs `role` until it has processed everything published, then stops it.
async fn run_to_end(
    broker: &TestBroker,
    role: Role,
    dir: &Path,
) -> citystream_subscribers::StatsSnapshot {
    let client = broker.client().await;
    let running = Running::start(broker, role, config(dir)).await;
    wait_caught_up(&client, role).await;
    running.stop().await.snapshot()
}

/// Every value of the role's output topic, as bytes, in topic order.
async fn outputs(broker: &TestBroker, role: Role) -> Vec<Vec<u8>> {
    let client = broker.client().await;
    let topic = role.output().unwrap();
    read_topic(&client, topic)
        .await
        .into_iter()
        .map(|r| r.value.to_vec())
        .collect()
}

fn assert_no_duplicates(role: Role, outputs: &[Vec<u8>]) {
    let distinct: BTreeSet<&Vec<u8>> = outputs.iter().collect();
    assert_eq!(
        distinct.len(),
        outputs.len(),
        "{role} wrote an output twice"
    );
}

/// For every role with an output topic: after a crash between output and
/// commit (offsets rewound to 0, then to the middle) a restart writes
/// nothing new; after one that wrote only part of the outputs, it writes
/// only the rest; and the outputs are those of a run without restarts.
#[tokio::test]
async fn a_crash_before_commit_writes_no_output_twice() {
    bounded(async {
        for role in [Role::Monitor, Role::Traffic, Role::Public, Role::Analytics] {
            let broker = TestBroker::start().await;
            let client = broker.client().await;
            let dir = tempfile::tempdir().unwrap();
            publish(&client, &city(0, 12)).await;
            let first = run_to_end(&broker, role, dir.path()).await;
            let before = outputs(&broker, role).await;
            assert!(first.outputs > 0, "{role} wrote nothing");
            assert_eq!(first.outputs as usize, before.len());

            for rewound_to in [0, 5] {
                rewind(&client, role, rewound_to).await;
                let again = run_to_end(&broker, role, dir.path()).await;
                assert_eq!(
                    again.outputs, 0,
                    "{role} after a rewind to {rewound_to}: {again:?}"
                );
                assert!(again.duplicates_skipped > 0, "{role}: {again:?}");
                assert_eq!(outputs(&broker, role).await, before, "{role}");
            }

            // A crash that wrote some of a run's outputs: the readings
            // before it are replayed with new ones; only the new outputs go out.
            publish(&client, &city(12, 6)).await;
            rewind(&client, role, 0).await;
            let last = run_to_end(&broker, role, dir.path()).await;
            assert_eq!(
                last.duplicates_skipped as usize,
                before.len(),
                "{role}: {last:?}"
            );
            let after = outputs(&broker, role).await;
            assert_eq!(after.len(), before.len() + last.outputs as usize, "{role}");
            assert!(after.len() > before.len(), "{role} wrote nothing new");
            assert_no_duplicates(role, &after);

            // The same readings through one run that never stopped.
            let fresh = TestBroker::start().await;
            let fresh_client = fresh.client().await;
            publish(&fresh_client, &city(0, 18)).await;
            run_to_end(&fresh, role, dir.path()).await;
            let mut expected = outputs(&fresh, role).await;
            let mut actual = after.clone();
            expected.sort();
            actual.sort();
            // city.latest republishes readings as read: identical; the
            // others name sources, which are identical offsets too.
            assert_eq!(actual, expected, "{role} differs from an uninterrupted run");
        }
    })
    .await;
}

/// A clean restart resumes after the committed offsets: the second run
/// processes only the new readings.
#[tokio::test]
async fn a_restart_resumes_from_committed_offsets() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        publish(&client, &city(0, 4)).await;
        let first = run_to_end(&broker, Role::Traffic, dir.path()).await;
        assert_eq!(first.readings, 4);
        publish(&client, &city(4, 3)).await;
        let second = run_to_end(&broker, Role::Traffic, dir.path()).await;
        assert_eq!((second.readings, second.duplicates_skipped), (3, 0));
        assert_no_duplicates(Role::Traffic, &outputs(&broker, Role::Traffic).await);
    })
    .await;
}

/// An exceedance that spans a restart is not alerted again: the monitor
/// replays the readings before its committed offset to rebuild episodes.
#[tokio::test]
async fn episodes_carry_over_a_restart() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        let station = "west-air-1";
        let first: Vec<Value> = [10.0, 40.0, 41.0]
            .iter()
            .enumerate()
            .map(|(i, v)| air(station, i as i64, *v))
            .collect();
        publish(&client, &first).await;
        run_to_end(&broker, Role::Monitor, dir.path()).await;
        let second: Vec<Value> = [42.0, 43.0, 60.0]
            .iter()
            .enumerate()
            .map(|(i, v)| air(station, 3 + i as i64, *v))
            .collect();
        publish(&client, &second).await;
        let stats = run_to_end(&broker, Role::Monitor, dir.path()).await;
        assert_eq!(stats.replayed, 3);
        let severities: Vec<Value> = read_values(&client, "city.alerts")
            .await
            .iter()
            .map(|a| a["severity"].clone())
            .collect();
        assert_eq!(severities, [json!("warning"), json!("critical")]);
    })
    .await;
}

/// A minute split by a restart is still summarized whole.
#[tokio::test]
async fn windows_carry_over_a_restart() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        publish(
            &client,
            &[air("west-air-2", 0, 10.0), air("west-air-2", 10_000, 20.0)],
        )
        .await;
        run_to_end(&broker, Role::Analytics, dir.path()).await;
        publish(
            &client,
            &[
                air("west-air-2", 20_000, 30.0),
                air("west-air-2", 60_000, 1.0),
            ],
        )
        .await;
        run_to_end(&broker, Role::Analytics, dir.path()).await;
        let records = read_topic(&client, "city.analytics").await;
        let pm25: Vec<Value> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(b"west-air-2/pm25"))
            .map(|r| serde_json::from_slice(&r.value).unwrap())
            .collect();
        assert_eq!(pm25.len(), 1);
        assert_eq!(
            (pm25[0]["count"].as_u64(), pm25[0]["mean"].as_f64()),
            (Some(3), Some(20.0))
        );
    })
    .await;
}

/// The archiver: after a crash that tore its last line and lost the
/// commit, the files hold exactly one row per reading.
#[tokio::test]
async fn the_archive_survives_a_torn_line_and_a_lost_commit() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        publish(&client, &city(0, 6)).await;
        run_to_end(&broker, Role::Archiver, dir.path()).await;
        let files = archive(dir.path());
        assert_eq!(files.len(), 5);

        let path = dir.path().join("north-air-1.csv");
        let mut torn = std::fs::read_to_string(&path).unwrap();
        torn.push_str("120000,north-air-1,40,0.");
        std::fs::write(&path, torn).unwrap();
        let header_only = dir.path().join("south-air-2.csv");
        std::fs::write(&header_only, "timestamp,station,aqi").unwrap();
        rewind(&client, Role::Archiver, 0).await;
        let again = run_to_end(&broker, Role::Archiver, dir.path()).await;
        assert_eq!(again.rows, 6, "south-air-2 written again: {again:?}");
        assert_eq!(archive(dir.path()), files);

        publish(&client, &city(6, 2)).await;
        run_to_end(&broker, Role::Archiver, dir.path()).await;
        let after = archive(dir.path());
        for (station, content) in &after {
            let rows = content.lines().count() - 1;
            assert_eq!(rows, 8, "{station}: {content}");
            assert!(
                content.starts_with(&files[station]),
                "{station} was rewritten"
            );
        }
    })
    .await;
}

/// Station → file content of an archive directory.
fn archive(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let station = path.file_stem().unwrap().to_string_lossy().into_owned();
            (station, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}
