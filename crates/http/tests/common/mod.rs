//! Test harness: a broker (in-memory, on 127.0.0.1:0), its HTTP API, and
//! a real HTTP client (reqwest) aimed at it.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use citystream_client::{Client, ClientConfig};
use citystream_http::webhooks::{WebhookConfig, Webhooks};
use citystream_http::{HttpConfig, HttpState};
use citystream_testkit::TestBroker;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A broker, its HTTP API, and an HTTP client aimed at it.
pub struct Api {
    pub base: String,
    /// The broker's native address.
    pub native: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    /// Stops the broker when the API is dropped.
    _broker: TestBroker,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Api {
    pub async fn start() -> Api {
        Api::start_with(HttpConfig::default()).await
    }

    pub async fn start_with(config: HttpConfig) -> Api {
        Api::start_full(config, None, None).await
    }

    /// With a webhook deliverer running (fast backoff, so retries show
    /// within a test's patience).
    pub async fn start_delivering() -> Api {
        let config = WebhookConfig {
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            supervise_every: Duration::from_millis(50),
            read_wait_ms: 200,
            ..WebhookConfig::default()
        };
        Api::start_full(HttpConfig::default(), None, Some(config)).await
    }

    /// With the process's metrics recorder behind `/metrics`.
    pub async fn start_with_metrics(handle: metrics_exporter_prometheus::PrometheusHandle) -> Api {
        let config = HttpConfig {
            group_lag_sample_ms: 100,
            ..HttpConfig::default()
        };
        Api::start_full(config, Some(handle), None).await
    }

    async fn start_full(
        config: HttpConfig,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
        delivery: Option<WebhookConfig>,
    ) -> Api {
        let shutdown = CancellationToken::new();
        let broker = TestBroker::start().await;
        let address = broker.address.clone();
        let client = broker.client().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut state = HttpState::new(client.clone(), config);
        if let Some(handle) = metrics {
            state = state.with_metrics(handle);
        }
        if let Some(delivery) = delivery {
            let webhooks = Webhooks::new(client, delivery);
            webhooks.spawn_delivery(shutdown.clone());
            state = state.with_webhooks(webhooks);
        }
        tokio::spawn(citystream_http::serve(listener, state, shutdown.clone()));
        Api {
            base,
            native: address,
            http: reqwest::Client::new(),
            shutdown,
            _broker: broker,
        }
    }

    /// Another HTTP listener over the same broker, with its own client
    /// (as another node's would be); returns its base URL.
    pub async fn another_listener(&self) -> String {
        let client = Client::connect(ClientConfig::new(self.native.clone()))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = HttpState::new(client, HttpConfig::default());
        tokio::spawn(citystream_http::serve(
            listener,
            state,
            self.shutdown.clone(),
        ));
        base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        answer(response).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    pub async fn create_topic(&self, name: &str, partitions: u32) {
        let body = json!({"name": name, "partitions": partitions});
        let (status, topic) = self.post_json("/api/topics", body).await;
        assert_eq!(status, StatusCode::CREATED, "{topic}");
    }

    /// Every value of partition `partition`, from the start.
    pub async fn values(&self, topic: &str, partition: u32) -> Vec<String> {
        let path = format!("/api/topics/{topic}/records?partition={partition}&limit=10000");
        let (status, read) = self.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{read}");
        read["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = match text.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    };
    (status, body)
}

pub async fn bounded(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test timed out");
}

pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
