//! `/api/city/*` against a real broker: the latest reading of each
//! station folded from `city.latest` (empty city, newest per station,
//! filters, new records seen on the next request, the same answer from
//! another node, and end to end behind the public-interface subscriber),
//! and a station's CSV export, the same rows the archiver writes, with
//! time ranges and every refusal.

mod common;

use std::sync::Arc;

use citystream_client::{Client, ClientConfig, ProducerConfig, ProducerRecord};
use citystream_subscribers::{Role, SubscriberConfig, SubscriberStats};
use common::{Api, assert_error, bounded};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn reading(station: &str, ts_ms: i64, pm25: f64) -> Value {
    let mut parts = station.split('-');
    let district = parts.next().unwrap();
    let kind = parts.next().unwrap();
    json!({"station": station, "district": district, "kind": kind, "ts_ms": ts_ms, "lamport": 1,
        "values": {"pm25": pm25, "aqi": 30}, "units": {"pm25": "ug/m3"}, "labels": {"category": "Good"}})
}

async fn client(api: &Api) -> Client {
    Client::connect(ClientConfig::new(api.native.clone()))
        .await
        .unwrap()
}

/// Writes `records` (key, JSON value) to `topic`; returns their offsets.
async fn write(client: &Client, topic: &str, records: &[(String, Value)]) -> Vec<u64> {
    let producer = client.producer(ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for (key, value) in records {
        let record =
            ProducerRecord::new(topic, serde_json::to_vec(value).unwrap()).with_key(key.clone());
        deliveries.push(producer.send(record).await.unwrap());
    }
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.unwrap().offset);
    }
    offsets
}

/// Latest records keyed by station, as the public interface writes them.
fn latest(readings: &[Value]) -> Vec<(String, Value)> {
    readings
        .iter()
        .map(|r| (r["station"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// Input records keyed as the publishers key them.
fn published(readings: &[Value]) -> Vec<(String, Value)> {
    readings
        .iter()
        .map(|r| {
            let key = format!(
                "city/{}/{}/{}",
                r["district"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                r["station"].as_str().unwrap()
            );
            (key, r.clone())
        })
        .collect()
}

fn stations(body: &Value) -> Vec<(String, i64)> {
    body["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["station"].as_str().unwrap().to_owned(),
                r["ts_ms"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Before anything is written the city is empty, not an error.
#[tokio::test]
async fn an_empty_city_has_no_stations() {
    bounded(async {
        let api = Api::start().await;
        let (status, body) = api.get("/api/city/latest").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"stations": []})));
        let (status, body) = api.get("/api/city/latest/north-air-1").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "UNKNOWN_STATION");
        api.create_topic("city.latest", 3).await;
        let (status, body) = api.get("/api/city/latest").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"stations": []})));
    })
    .await;
}

/// The newest record per station wins; kind and district filter; a record
/// written after a request shows in the next; another node answers the same.
#[tokio::test]
async fn latest_readings_per_station() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("city.latest", 3).await;
        let client = client(&api).await;
        let readings = [
            reading("north-air-1", 1, 10.0),
            reading("north-traffic-1", 1, 0.0),
            reading("north-air-1", 2, 11.0),
            reading("south-air-1", 1, 12.0),
        ];
        write(&client, "city.latest", &latest(&readings)).await;
        let (status, body) = api.get("/api/city/latest").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let all = [
            ("north-air-1", 2),
            ("north-traffic-1", 1),
            ("south-air-1", 1),
        ];
        let all: Vec<(String, i64)> = all.iter().map(|(s, t)| (s.to_string(), *t)).collect();
        assert_eq!(stations(&body), all);
        assert_eq!(body["stations"][0], readings[2], "the reading as written");

        let (_, air) = api.get("/api/city/latest?kind=air").await;
        assert_eq!(stations(&air).len(), 2);
        let (_, north) = api.get("/api/city/latest?district=north").await;
        assert_eq!(stations(&north).len(), 2);
        let (_, both) = api.get("/api/city/latest?kind=air&district=north").await;
        assert_eq!(stations(&both), vec![("north-air-1".to_owned(), 2)]);
        let (status, body) = api.get("/api/city/latest?kind=noise").await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");

        write(
            &client,
            "city.latest",
            &latest(&[reading("north-air-1", 3, 50.0)]),
        )
        .await;
        let (status, one) = api.get("/api/city/latest/north-air-1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["ts_ms"], 3);
        let other = api.another_listener().await;
        let answer = api
            .http
            .get(format!("{other}/api/city/latest"))
            .send()
            .await
            .unwrap();
        let (status, body) = common::answer(answer).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(stations(&body)[0], ("north-air-1".to_owned(), 3));
    })
    .await;
}

/// End to end: readings published to the input topics reach
/// `/api/city/latest` through the public-interface subscriber.
#[tokio::test]
async fn the_public_subscriber_feeds_latest() {
    bounded(async {
        let api = Api::start().await;
        let client = client(&api).await;
        for topic in ["city.air", "city.traffic", "city.weather", "city.buildings"] {
            api.create_topic(topic, 3).await;
        }
        write(
            &client,
            "city.air",
            &published(&[
                reading("north-air-1", 1, 5.0),
                reading("north-air-1", 2, 6.0),
            ]),
        )
        .await;
        let stop = CancellationToken::new();
        let stats = Arc::new(SubscriberStats::default());
        let config = SubscriberConfig {
            poll_timeout_ms: 100,
            ..SubscriberConfig::default()
        };
        let public = tokio::spawn(citystream_subscribers::run(
            Role::Public,
            client.clone(),
            config,
            stats.clone(),
            stop.clone(),
        ));
        loop {
            let (status, body) = api.get("/api/city/latest/north-air-1").await;
            if status == StatusCode::OK && body["ts_ms"] == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        stop.cancel();
        public.await.unwrap().unwrap();
    })
    .await;
}

/// The export holds the station's rows only, in log order, offset last,
/// exactly as the archiver writes its file; from/to narrow it.
#[tokio::test]
async fn a_station_exports_its_rows_as_csv() {
    bounded(async {
        let api = Api::start().await;
        let client = client(&api).await;
        for topic in ["city.air", "city.traffic", "city.weather", "city.buildings"] {
            api.create_topic(topic, 3).await;
        }
        let readings = [
            reading("north-air-1", 1_000, 10.5),
            reading("north-air-2", 1_000, 99.0),
            reading("north-air-1", 2_000, 11.0),
            reading("north-air-1", 3_000, 12.0),
        ];
        let offsets = write(&client, "city.air", &published(&readings)).await;
        let header = "timestamp,station,aqi,co,no2,o3,pm10,pm25,category,dominant,offset\n";
        let row = |ts: i64, pm25: &str, offset: u64| {
            format!("{ts},north-air-1,30,,,,,{pm25},Good,,{offset}\n")
        };
        let expected = format!(
            "{header}{}{}{}",
            row(1_000, "10.5", offsets[0]),
            row(2_000, "11", offsets[2]),
            row(3_000, "12", offsets[3])
        );

        let response = api
            .http
            .get(api.url("/api/city/stations/north-air-1/export.csv"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/csv; charset=utf-8"
        );
        assert_eq!(response.text().await.unwrap(), expected);

        let archived = archive_of(&client, "north-air-1").await;
        assert_eq!(archived, expected, "the archiver writes the same rows");

        let narrowed = format!("{header}{}", row(2_000, "11", offsets[2]));
        for query in [
            "from=2000&to=3000",
            "from=1970-01-01T00:00:02Z&to=1970-01-01T00:00:02.999Z",
            "from=1970-01-01T01:00:01.5%2B01:00&to=3000",
        ] {
            let path = format!("/api/city/stations/north-air-1/export.csv?{query}");
            let body = api
                .http
                .get(api.url(&path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, narrowed, "{query}");
        }
    })
    .await;
}

/// Runs the archiver over the broker into a fresh directory until
/// `station`'s file has a row for each of its readings; returns the file.
async fn archive_of(client: &Client, station: &str) -> String {
    let dir = std::env::temp_dir().join(format!("citystream-city-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let stop = CancellationToken::new();
    let stats = Arc::new(SubscriberStats::default());
    let config = SubscriberConfig {
        poll_timeout_ms: 100,
        ..SubscriberConfig::new(&dir)
    };
    let archiver = tokio::spawn(citystream_subscribers::run(
        Role::Archiver,
        client.clone(),
        config,
        stats.clone(),
        stop.clone(),
    ));
    let path = dir.join(format!("{station}.csv"));
    while stats.snapshot().rows < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.cancel();
    archiver.await.unwrap().unwrap();
    let file = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    file
}

/// Malformed ids and times are 400, unknown kinds, topics and stations 404.
#[tokio::test]
async fn exports_refuse_what_is_not_a_station() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("city.air", 3).await;
        let cases = [
            (
                "/api/city/stations/north-air/export.csv",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/city/stations/north-air-1/export.csv?from=yesterday",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/city/stations/north-noise-1/export.csv",
                StatusCode::NOT_FOUND,
                "UNKNOWN_STATION",
            ),
            (
                "/api/city/stations/north-weather-1/export.csv",
                StatusCode::NOT_FOUND,
                "UNKNOWN_TOPIC",
            ),
            (
                "/api/city/stations/north-air-1/export.csv",
                StatusCode::NOT_FOUND,
                "UNKNOWN_STATION",
            ),
        ];
        for (path, status, code) in cases {
            let (got, body) = api.get(path).await;
            assert_error(got, &body, status, code);
        }
    })
    .await;
}
