//! Each role against an in-memory broker: hand-made readings in, exactly
//! the outputs `docs/city-data.md` describes out (alerts, advisories,
//! latest readings, window summaries, CSV files), each naming its source.

mod common;

use citystream_subscribers::{Role, SOURCE_HEADER};
use common::*;
use serde_json::{Value, json};

fn air(station: &str, ts_ms: i64, pm25: f64) -> Value {
    let values = json!({"pm25": pm25, "pm10": 20.0, "no2": 20.0, "o3": 30.0, "co": 0.3, "aqi": 40});
    reading(
        station,
        ts_ms,
        values,
        json!({"category": "Good", "dominant": "pm25"}),
    )
}

fn weather(station: &str, ts_ms: i64, wind: f64, rain: f64) -> Value {
    let values = json!({"temperature_c": 12.0, "humidity_pct": 80.0, "pressure_hpa": 1000.0,
        "wind_speed_ms": wind, "wind_dir_deg": 270.0, "precipitation_mm_h": rain});
    reading(station, ts_ms, values, json!({"description": "rain"}))
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

/// (station, metric, severity, rule, source offset) of each alert, sorted.
fn alert_summary(alerts: &[Value]) -> Vec<(String, String, String, String, u64)> {
    let mut seen: Vec<_> = alerts
        .iter()
        .map(|a| {
            let text = |field: &str| a[field].as_str().unwrap().to_owned();
            let offset = a["source"]["offset"].as_u64().unwrap();
            (
                text("station"),
                text("metric"),
                text("severity"),
                text("rule"),
                offset,
            )
        })
        .collect();
    seen.sort();
    seen
}

/// The monitor alerts on entering an exceedance and on its rise, not on
/// each reading of it, for air and weather, keyed by the reading's key.
#[tokio::test]
async fn the_monitor_writes_threshold_alerts() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        let pm25 = [10.0, 40.0, 41.0, 60.0, 45.0, 10.0, 70.0];
        let mut readings: Vec<Value> = pm25
            .iter()
            .enumerate()
            .map(|(i, v)| air("north-air-1", i as i64 * 1_000, *v))
            .collect();
        readings.push(weather("harbor-weather-1", 0, 5.0, 0.0));
        readings.push(weather("harbor-weather-1", 1_000, 25.0, 12.0));
        let written = publish(&client, &readings).await;
        let running = Running::start(&broker, Role::Monitor, config(dir.path())).await;
        wait_caught_up(&client, Role::Monitor).await;
        let stats = running.stop().await;

        let records = read_topic(&client, "city.alerts").await;
        let alerts: Vec<Value> = records
            .iter()
            .map(|r| serde_json::from_slice(&r.value).unwrap())
            .collect();
        let air_offset = |i: usize| written[i].2;
        let weather_offset = written[8].2;
        let mut expected = vec![
            ("north-air-1", "pm25", "warning", air_offset(1)),
            ("north-air-1", "pm25", "critical", air_offset(3)),
            ("north-air-1", "pm25", "critical", air_offset(6)),
            (
                "harbor-weather-1",
                "wind_speed_ms",
                "critical",
                weather_offset,
            ),
            (
                "harbor-weather-1",
                "precipitation_mm_h",
                "critical",
                weather_offset,
            ),
        ]
        .into_iter()
        .map(|(s, m, sev, o)| {
            (
                s.to_owned(),
                m.to_owned(),
                sev.to_owned(),
                "threshold".to_owned(),
                o,
            )
        })
        .collect::<Vec<_>>();
        expected.sort();
        assert_eq!(alert_summary(&alerts), expected);
        for record in &records {
            let alert: Value = serde_json::from_slice(&record.value).unwrap();
            let key = format!(
                "city/{}/{}/{}",
                alert["district"].as_str().unwrap(),
                alert["kind"].as_str().unwrap(),
                alert["station"].as_str().unwrap()
            );
            assert_eq!(record.key.as_deref(), Some(key.as_bytes()));
            assert!(
                record
                    .headers
                    .iter()
                    .any(|(name, _)| &**name == SOURCE_HEADER)
            );
        }
        let pm25_critical = alerts
            .iter()
            .find(|a| a["severity"] == "critical" && a["metric"] == "pm25")
            .unwrap();
        assert_eq!(pm25_critical["reason"], "PM2.5 60 ug/m3 above 55.4");
        assert_eq!(pm25_critical["source"]["topic"], "city.air");
        let stats = stats.snapshot();
        assert_eq!((stats.readings, stats.alerts, stats.outputs), (9, 5, 5));
    })
    .await;
}

/// The traffic manager advises congestion after three congested readings,
/// incidents when they appear, and clears both.
#[tokio::test]
async fn the_traffic_manager_writes_advisories() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        let readings = [
            traffic("east-traffic-1", 0, 0.9, None),
            traffic("east-traffic-1", 1_000, 0.85, Some("collision")),
            traffic("east-traffic-1", 2_000, 0.95, Some("collision")),
            traffic("east-traffic-1", 3_000, 0.4, None),
        ];
        let written = publish(&client, &readings).await;
        let running = Running::start(&broker, Role::Traffic, config(dir.path())).await;
        wait_caught_up(&client, Role::Traffic).await;
        running.stop().await;

        let advisories = read_values(&client, "city.advisories").await;
        let seen: Vec<(String, String, u64)> = advisories
            .iter()
            .map(|a| {
                (
                    a["advice"].as_str().unwrap().to_owned(),
                    a["severity"].as_str().unwrap().to_owned(),
                    a["source"]["offset"].as_u64().unwrap(),
                )
            })
            .collect();
        let offset = |i: usize| written[i].2;
        let expected = [
            ("incident", "critical", offset(1)),
            ("congestion", "warning", offset(2)),
            ("cleared", "info", offset(3)),
            ("cleared", "info", offset(3)),
        ];
        let expected: Vec<(String, String, u64)> = expected
            .iter()
            .map(|(a, s, o)| (a.to_string(), s.to_string(), *o))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(advisories[0]["kind"], "traffic");
        assert_eq!(advisories[0]["reason"], "collision reported");
    })
    .await;
}

/// The public interface republishes every reading keyed by station, as
/// read, with its source; the newest per station is its latest.
#[tokio::test]
async fn the_public_interface_writes_latest_readings() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        let readings = [
            air("north-air-1", 0, 10.0),
            traffic("east-traffic-1", 0, 0.2, None),
            air("north-air-1", 1_000, 11.0),
            weather("harbor-weather-1", 0, 3.0, 0.0),
        ];
        let written = publish(&client, &readings).await;
        let running = Running::start(&broker, Role::Public, config(dir.path())).await;
        wait_caught_up(&client, Role::Public).await;
        running.stop().await;

        let records = read_topic(&client, "city.latest").await;
        assert_eq!(records.len(), 4);
        for record in &records {
            let value: Value = serde_json::from_slice(&record.value).unwrap();
            let index = readings
                .iter()
                .position(|r| *r == value)
                .expect("a published reading");
            assert_eq!(
                record.key.as_deref(),
                Some(value["station"].as_str().unwrap().as_bytes())
            );
            let (_, source) = record
                .headers
                .iter()
                .find(|(name, _)| &**name == SOURCE_HEADER)
                .unwrap();
            let source: Value = serde_json::from_slice(source).unwrap();
            let (topic, partition, offset) = &written[index];
            assert_eq!(
                source,
                json!({"topic": topic, "partition": partition, "offset": offset})
            );
            assert!(
                record
                    .headers
                    .iter()
                    .any(|(name, value)| &**name == "priority" && value == "low")
            );
        }
    })
    .await;
}

/// Analytics summarizes each closed minute per station and metric, with
/// the window's last reading as source and a forecast five minutes ahead.
#[tokio::test]
async fn analytics_writes_window_summaries() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        let minute = 60_000;
        let readings = [
            air("north-air-1", 0, 10.0),
            air("north-air-1", 30_000, 20.0),
            air("north-air-1", minute, 30.0),
            air("north-air-1", minute + 1, 40.0),
            air("north-air-1", 2 * minute + 5, 1.0),
        ];
        let written = publish(&client, &readings).await;
        let running = Running::start(&broker, Role::Analytics, config(dir.path())).await;
        wait_caught_up(&client, Role::Analytics).await;
        running.stop().await;

        let records = read_topic(&client, "city.analytics").await;
        let pm25: Vec<Value> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(b"north-air-1/pm25"))
            .map(|r| serde_json::from_slice(&r.value).unwrap())
            .collect();
        assert_eq!(records.len(), 12, "two windows of six metrics");
        assert_eq!(pm25.len(), 2);
        let first = &pm25[0];
        assert_eq!(
            (first["window_start_ms"].as_i64(), first["count"].as_u64()),
            (Some(0), Some(2))
        );
        assert_eq!(
            (
                first["mean"].as_f64(),
                first["min"].as_f64(),
                first["max"].as_f64()
            ),
            (Some(15.0), Some(10.0), Some(20.0))
        );
        assert_eq!(first["source"]["offset"].as_u64(), Some(written[1].2));
        let second = &pm25[1];
        assert_eq!(
            (second["window_start_ms"].as_i64(), second["mean"].as_f64()),
            (Some(minute), Some(35.0))
        );
        assert_eq!(second["source"]["offset"].as_u64(), Some(written[3].2));
        // Two window means, 15 then 35: the trend is 20 a window.
        assert_eq!(second["forecast"]["horizon_ms"], 300_000);
        assert_eq!(
            second["forecast"]["value"].as_f64(),
            Some(35.0 + 5.0 * 20.0)
        );
    })
    .await;
}

/// The archiver writes one CSV per station: the header, then one row per
/// reading in partition order, the source offset last.
#[tokio::test]
async fn the_archiver_writes_csv_files() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        let building = |sequence: f64, ts: i64| {
            let values = json!({"temperature_c": 21.5, "humidity_pct": 40.0, "pressure_hpa": 1013.2, "sequence": sequence});
            reading("north-buildings-1", ts, values, json!({}))
        };
        let readings = [
            building(1.0, 100),
            air("north-air-1", 100, 12.5),
            building(2.0, 200),
            traffic("east-traffic-1", 100, 0.5, Some("roadworks")),
        ];
        let written = publish(&client, &readings).await;
        let running = Running::start(&broker, Role::Archiver, config(dir.path())).await;
        wait_caught_up(&client, Role::Archiver).await;
        let stats = running.stop().await;

        let file = |station: &str| std::fs::read_to_string(dir.path().join(format!("{station}.csv"))).unwrap();
        let offset = |i: usize| written[i].2;
        assert_eq!(
            file("north-buildings-1"),
            format!(
                "sequence,timestamp,sensor_id,temperature_c,humidity_pct,pressure_hpa,offset\n\
                 1,100,north-buildings-1,21.5,40,1013.2,{}\n\
                 2,200,north-buildings-1,21.5,40,1013.2,{}\n",
                offset(0),
                offset(2)
            )
        );
        assert_eq!(
            file("north-air-1"),
            format!(
                "timestamp,station,aqi,co,no2,o3,pm10,pm25,category,dominant,offset\n\
                 100,north-air-1,40,0.3,20,30,20,12.5,Good,pm25,{}\n",
                offset(1)
            )
        );
        assert_eq!(
            file("east-traffic-1"),
            format!(
                "timestamp,station,congestion,mean_speed_kmh,vehicles_per_min,incident,level,offset\n\
                 100,east-traffic-1,0.5,20,30,roadworks,heavy,{}\n",
                offset(3)
            )
        );
        assert_eq!(stats.snapshot().rows, 4);
    })
    .await;
}

/// A subscriber started before any publisher creates the topics and
/// waits; readings published later are processed.
#[tokio::test]
async fn a_subscriber_started_first_waits_for_readings() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        let running = Running::start(&broker, Role::Monitor, config(dir.path())).await;
        for topic in ["city.air", "city.weather", "city.alerts"] {
            while client.partition_count(topic).await.unwrap().is_none() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert_eq!(
                client.partition_count(topic).await.unwrap(),
                Some(3),
                "{topic}"
            );
        }
        publish(&client, &[air("north-air-2", 0, 99.0)]).await;
        wait_caught_up(&client, Role::Monitor).await;
        running.stop().await;
        let alerts = read_values(&client, "city.alerts").await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["severity"], "critical");
    })
    .await;
}

/// A record that is not a reading is counted and skipped; the readings
/// around it are processed.
#[tokio::test]
async fn records_that_are_not_readings_are_skipped() {
    bounded(async {
        let broker = TestBroker::start().await;
        let client = broker.client().await;
        let dir = tempfile::tempdir().unwrap();
        publish(&client, &[air("north-air-1", 0, 99.0)]).await;
        let producer = client.producer(Default::default()).unwrap();
        for value in [
            &b"not json"[..],
            br#"{"station":"../../etc","district":"x","kind":"air","ts_ms":1}"#,
        ] {
            let record = citystream_client::ProducerRecord::new("city.air", value.to_vec())
                .with_key("city/north/air/north-air-1");
            producer.send(record).await.unwrap().await.unwrap();
        }
        publish(
            &client,
            &[air("north-air-1", 1, 10.0), air("north-air-1", 2, 99.0)],
        )
        .await;
        let running = Running::start(&broker, Role::Archiver, config(dir.path())).await;
        wait_caught_up(&client, Role::Archiver).await;
        let stats = running.stop().await.snapshot();
        assert_eq!((stats.readings, stats.rows, stats.malformed), (3, 3, 2));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    })
    .await;
}
