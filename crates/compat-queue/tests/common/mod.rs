//! Test harness: an in-memory broker on 127.0.0.1:0, queue listeners
//! ("nodes") over it, each with its own native client, and a real HTTP
//! client (reqwest) aimed at them.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::time::Duration;

use citystream_client::{Client, ClientConfig};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use citystream_testkit::{TestBroker, bounded};

/// One queue listener over its own native client.
pub struct Node {
    pub base: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Node {
    pub async fn start(native_address: &str) -> Node {
        let client = Client::connect(ClientConfig::new(native_address))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(citystream_compat_queue::serve(
            listener,
            client,
            shutdown.clone(),
        ));
        Node {
            base,
            http: http_client(),
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::of(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        let request = self.http.post(self.url(path)).json(&body);
        Answer::of(request.send().await.unwrap()).await
    }

    /// POSTs `body` as it is, typed `application/json`.
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> Answer {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        Answer::of(request.send().await.unwrap()).await
    }

    pub async fn create_topic(&self, topic: &str) {
        let answer = self.post("/topics", json!({ "topic_name": topic })).await;
        answer.assert_success();
    }

    pub async fn register_producer(&self, topic: &str) -> u64 {
        let answer = self
            .post("/producer/register", json!({ "topic": topic }))
            .await;
        answer.assert_success();
        answer.body["producer_id"].as_u64().expect("an integer id")
    }

    pub async fn register_consumer(&self, topic: &str) -> u64 {
        let answer = self
            .post("/consumer/register", json!({ "topic": topic }))
            .await;
        answer.assert_success();
        answer.body["consumer_id"].as_u64().expect("an integer id")
    }

    pub async fn produce(&self, topic: &str, producer: u64, message: Value) {
        let body = json!({ "topic": topic, "producer_id": producer, "message": message });
        self.post("/producer/produce", body).await.assert_success();
    }

    pub async fn consume(&self, topic: &str, consumer: u64) -> Answer {
        self.get(&format!(
            "/consumer/consume?topic={topic}&consumer_id={consumer}"
        ))
        .await
    }

    /// The next message; fails the test if there is none.
    pub async fn consume_one(&self, topic: &str, consumer: u64) -> Value {
        let answer = self.consume(topic, consumer).await;
        answer.assert_success();
        answer.body["message"].clone()
    }

    pub async fn size(&self, topic: &str, consumer: u64) -> u64 {
        let answer = self
            .get(&format!("/size?topic={topic}&consumer_id={consumer}"))
            .await;
        answer.assert_success();
        answer.body["size"].as_u64().expect("an integer size")
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub async fn of(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn assert_success(&self) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(self.body["status"], "success", "{}", self.text);
        self.assert_json_with_cors();
    }

    /// 400 `{"status":"failure","message":message}`.
    pub fn assert_refused(&self, message: &str) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text);
        assert_eq!(
            self.body,
            json!({ "status": "failure", "message": message }),
            "{}",
            self.text
        );
        self.assert_json_with_cors();
    }

    /// 500 `{"message":"Internal server Error: check params"}`.
    pub fn assert_malformed(&self) {
        assert_eq!(
            self.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            self.text
        );
        assert_eq!(
            self.body,
            json!({ "message": "Internal server Error: check params" }),
            "{}",
            self.text
        );
        self.assert_json_with_cors();
    }

    pub fn assert_json_with_cors(&self) {
        assert_eq!(self.headers["content-type"], "application/json");
        assert_eq!(self.headers["access-control-allow-origin"], "*");
    }
}

/// An HTTP client; reqwest is built without a TLS provider of its own
/// (the workspace's webhooks install ring's), so install one first.
fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
