//! The publishers and the replayer against an in-process broker: what
//! lands in the topics is what `docs/city-data.md` promises.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citystream_client::ConsumerRecord;
use citystream_sim::{
    CITY_TOPICS, CityConfig, Pace, ReplayColumns, ReplayFile, SimConfig, SimStats, run_publishers,
    run_replay,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use common::{TestBroker, bounded, read_topic};

/// 2026-01-05T07:00:00Z: the simulated run starts in the morning rush.
const MORNING_MS: i64 = 1_767_596_400_000;

fn header<'a>(record: &'a ConsumerRecord, name: &str) -> Option<&'a [u8]> {
    let mut values = record.headers.iter().filter(|(n, _)| **n == *name);
    let value = values.next().map(|(_, value)| &value[..]);
    assert!(values.next().is_none(), "one {name} header");
    value
}

/// Whether a reading is an alarm, judged from its JSON alone.
fn is_alarm(reading: &Value) -> bool {
    match reading["kind"].as_str().unwrap() {
        "air" => reading["values"]["aqi"].as_f64().unwrap() > 150.0,
        "traffic" => reading["labels"].get("incident").is_some(),
        "weather" => reading["labels"]["description"] == "storm",
        _ => false,
    }
}

/// Runs the publishers for `real` at `pace`, then stops them.
async fn publish_for(broker: &TestBroker, pace: Pace, real: Duration) -> Arc<SimStats> {
    let config = SimConfig {
        start_ms: MORNING_MS,
        pace,
        ..SimConfig::new(CityConfig::default())
    };
    let stats = Arc::new(SimStats::default());
    let stop = CancellationToken::new();
    let run = tokio::spawn(run_publishers(
        broker.client().await,
        config,
        stats.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(real).await;
    stop.cancel();
    run.await.unwrap().unwrap();
    stats
}

/// Two simulated hours at speed 3,600: every record is keyed
/// `city/<district>/<kind>/<station>` on its kind's topic, carries the
/// right priority, and per station (one partition each) the simulated
/// time and the Lamport counter only grow. Every reading sent was
/// acknowledged and every station published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_readings_follow_the_contract() {
    bounded(async {
        let broker = TestBroker::start().await;
        let stats = publish_for(&broker, Pace::Speed(3_600.0), Duration::from_secs(2)).await;
        let client = broker.client().await;
        let mut last: HashMap<String, (u32, i64, u64)> = HashMap::new();
        let mut total = 0;
        let mut alarms = 0;
        for topic in CITY_TOPICS {
            for record in read_topic(&client, topic).await {
                let reading: Value = serde_json::from_slice(&record.value).unwrap();
                let (station, district, kind) = (
                    reading["station"].as_str().unwrap().to_owned(),
                    reading["district"].as_str().unwrap(),
                    reading["kind"].as_str().unwrap(),
                );
                assert_eq!(topic, format!("city.{kind}"));
                let key = format!("city/{district}/{kind}/{station}");
                assert_eq!(record.key.as_deref(), Some(key.as_bytes()));
                let priority: &[u8] = if is_alarm(&reading) { b"high" } else { b"low" };
                assert_eq!(header(&record, "priority"), Some(priority), "{reading}");
                alarms += u64::from(is_alarm(&reading));
                let ts_ms = reading["ts_ms"].as_i64().unwrap();
                let lamport = reading["lamport"].as_u64().unwrap();
                if let Some((partition, last_ts, last_lamport)) =
                    last.insert(station.clone(), (record.partition, ts_ms, lamport))
                {
                    assert_eq!(
                        partition, record.partition,
                        "{station} stays in one partition"
                    );
                    assert!(
                        ts_ms > last_ts && lamport > last_lamport,
                        "{station} went back"
                    );
                }
                total += 1;
            }
        }
        let stats = stats.snapshot();
        assert_eq!(last.len(), 4 * 10, "every station published");
        assert!(
            total > 40 * 300,
            "only {total} readings in two simulated hours"
        );
        assert_eq!(
            (stats.sent, stats.acknowledged, stats.failed),
            (total, total, 0)
        );
        assert_eq!(stats.alarms, alarms);
        let lamports: HashSet<u64> = last.values().map(|(_, _, lamport)| *lamport).collect();
        assert_eq!(lamports.len(), last.len(), "Lamport counters are unique");
    })
    .await;
}

/// `Rate(n)` sends about n readings a second whatever the simulated
/// clock, without waiting for each acknowledgement. The bound is loose
/// (a debug build on a shared 2-core machine; waiting for each
/// acknowledgement would give a few hundred a second); the measured rate is
/// printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_mode_keeps_its_rate() {
    bounded(async {
        let broker = TestBroker::start().await;
        let started = Instant::now();
        let stats = publish_for(&broker, Pace::Rate(20_000), Duration::from_secs(2)).await;
        let stats = stats.snapshot();
        let per_second = stats.sent as f64 / started.elapsed().as_secs_f64();
        println!("rate mode: {} readings sent, {per_second:.0}/s", stats.sent);
        assert!(
            stats.sent >= 5_000,
            "only {} readings in 2 s at 20,000/s",
            stats.sent
        );
        assert!(
            stats.sent <= 41_000,
            "{} readings: the rate was not kept",
            stats.sent
        );
        assert_eq!((stats.acknowledged, stats.failed), (stats.sent, 0));
    })
    .await;
}

/// A replayed CSV lands on its topic, one record per row keyed by the key
/// column, with Lamport counters 1, 2, 3... and numbers typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_publishes_every_row() {
    bounded(async {
        let broker = TestBroker::start().await;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("buildings.csv");
        let rows = "sequence,timestamp,sensor_id,temperature_c\n\
                    1,1700000000000,b-1,21.5\n2,1700000000100,b-2,20.0\n\
                    3,1700000000200,b-1,21.6\n4,1700000000300,b-2,\"19,9\"\n";
        std::fs::write(&path, rows).unwrap();
        let columns = ReplayColumns {
            key: "sensor_id".to_owned(),
            time: Some("timestamp".to_owned()),
        };
        let file = ReplayFile::load(&path, &columns).unwrap();
        let stats = Arc::new(SimStats::default());
        let client = broker.client().await;
        run_replay(
            client.clone(),
            file,
            "city.replay",
            Pace::Speed(10.0),
            stats.clone(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let mut records = read_topic(&client, "city.replay").await;
        records.sort_by_key(|record| {
            let value: Value = serde_json::from_slice(&record.value).unwrap();
            value["lamport"].as_u64().unwrap()
        });
        let values: Vec<Value> = records
            .iter()
            .map(|r| serde_json::from_slice(&r.value).unwrap())
            .collect();
        assert_eq!(values.len(), 4);
        for (index, (record, value)) in records.iter().zip(&values).enumerate() {
            assert_eq!(value["lamport"], index as u64 + 1);
            assert_eq!(value["sequence"], index as u64 + 1);
            assert_eq!(
                record.key.as_deref(),
                Some(value["sensor_id"].as_str().unwrap().as_bytes())
            );
            assert_eq!(header(record, "priority"), Some(&b"low"[..]));
        }
        assert_eq!(values[0]["temperature_c"], 21.5);
        assert_eq!(values[3]["temperature_c"], "19,9");
        assert_eq!(stats.snapshot().acknowledged, 4);
    })
    .await;
}
