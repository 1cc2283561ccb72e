//! `GET /metrics`: the Prometheus text of the process's recorder, with the
//! broker's records in per topic, native request latencies, HTTP request
//! latencies by route and status, and open SSE streams; a process without a
//! recorder answers 404.

mod common;

use common::{Api, bounded};
use reqwest::StatusCode;
use serde_json::json;

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// After producing over HTTP, the counters and histograms show it.
#[tokio::test]
async fn metrics_show_records_requests_and_streams() {
    bounded(async {
        let handle = citystream_http::install_recorder().expect("the only recorder of this test binary");
        let api = Api::start_with_metrics(handle).await;
        api.create_topic("metered", 1).await;
        let records = json!([{"value": "a"}, {"value": "b"}, {"value": "c"}]);
        let (status, _) = api.post_json("/api/topics/metered/records", records).await;
        assert_eq!(status, StatusCode::OK);
        let commit = json!({"topic": "metered", "partition": 0, "offset": 1});
        let committed = api.http.post(api.url("/api/groups/lagging/offsets")).json(&commit).send().await.unwrap();
        assert_eq!(committed.status(), StatusCode::NO_CONTENT);
        let stream = api.http.get(api.url("/api/topics/metered/stream")).send().await.unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        // The stream's task starts right after its answer: poll a little.
        let mut text = String::new();
        for _ in 0..100 {
            let response = api.http.get(api.url("/metrics")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(content_type.starts_with("text/plain"), "{content_type}");
            text = response.text().await.unwrap();
            let lag = sample(&text, "citystream_group_lag_offsets{group=\"lagging\"");
            if sample(&text, "citystream_sse_clients") == Some(1.0) && lag.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(sample(&text, "citystream_records_in_total{topic=\"metered\"}"), Some(3.0), "{text}");
        assert!(sample(&text, "citystream_bytes_in_total{topic=\"metered\"}").is_some_and(|b| b > 0.0));
        assert!(text.contains("citystream_request_seconds_bucket{api=\"Produce\""), "{text}");
        let produce_route = "citystream_http_request_seconds_count{route=\"/api/topics/{topic}/records\",method=\"POST\",status=\"200\"}";
        assert_eq!(sample(&text, produce_route), Some(1.0), "{text}");
        assert_eq!(sample(&text, "citystream_sse_clients"), Some(1.0), "{text}");
        let lag = "citystream_group_lag_offsets{group=\"lagging\",topic=\"metered\",partition=\"0\"}";
        assert_eq!(sample(&text, lag), Some(2.0), "3 records, committed at 1: {text}");
        let http_connections = sample(&text, "citystream_connections{listener=\"http\"}");
        assert!(http_connections.is_some_and(|n| n >= 1.0), "{text}");
        drop(stream);
    })
    .await;
}

/// Without a recorder, `/metrics` says so.
#[tokio::test]
async fn no_recorder_no_metrics() {
    bounded(async {
        let api = Api::start().await;
        let (status, body) = api.get("/metrics").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    })
    .await;
}
