//! The routes: each reads its request with `request` (a body it cannot
//! read is a 400 naming why, and nothing is written), calls the node's
//! [`City`] and answers with a [`Reply`] — except `/stream`, whose answer
//! is the event stream. Extractor rejections are taken as `Result`s so
//! that axum's own plain-text answers never reach a client.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::city::City;
use crate::error::CityError;
use crate::json::{to_ascii, value_line};
use crate::names::native_topic;
use crate::reply::Reply;
use crate::request;
use crate::stream::EventStream;

pub type Body = Result<Bytes, BytesRejection>;
pub type Topic = Result<Path<String>, PathRejection>;

/// `POST /publish {"topic":T,"data":D,"priority":P}`: 200, empty.
pub async fn publish(State(city): State<Arc<City>>, body: Body) -> Reply {
    let message = match body.map(|body| request::publish(&body)) {
        Ok(Ok(message)) => message,
        Ok(Err(refusal)) => return Reply::error(StatusCode::BAD_REQUEST, &refusal.0),
        Err(rejection) => return rejected(rejection),
    };
    city.publish(message).await.map(|()| Reply::empty()).into()
}

/// `POST /subscribe {"topic":T,"mode":M,"url":U}`.
pub async fn subscribe(State(city): State<Arc<City>>, body: Body) -> Reply {
    let subscription = match body.map(|body| request::subscription(&body)) {
        Ok(Ok(subscription)) => subscription,
        Ok(Err(refusal)) => return Reply::error(StatusCode::BAD_REQUEST, &refusal.0),
        Err(rejection) => return rejected(rejection),
    };
    let subscribed = city.subscribe(subscription).await;
    subscribed.map(|message| Reply::message(&message)).into()
}

/// `POST /unsubscribe {"topic":T,"mode":M,"url":U}`.
pub async fn unsubscribe(State(city): State<Arc<City>>, body: Body) -> Reply {
    let subscription = match body.map(|body| request::subscription(&body)) {
        Ok(Ok(subscription)) => subscription,
        Ok(Err(refusal)) => return Reply::error(StatusCode::BAD_REQUEST, &refusal.0),
        Err(rejection) => return rejected(rejection),
    };
    let unsubscribed = city.unsubscribe(subscription).await;
    unsubscribed.map(|message| Reply::message(&message)).into()
}

/// `GET /stream/<topic>`: the topic's new messages as Server-Sent Events.
pub async fn stream(State(city): State<Arc<City>>, topic: Topic) -> Response {
    let topic = match topic {
        Ok(Path(topic)) => topic,
        Err(rejection) => return bad_path(rejection).into_response(),
    };
    let native = match native_topic(&topic) {
        Ok(native) => native,
        Err(too_long) => {
            return Reply::error(StatusCode::BAD_REQUEST, &too_long.message()).into_response();
        }
    };
    let opened = EventStream::open(city.client(), city.tails(), native, city.stop()).await;
    let stream = match opened {
        Ok(stream) => stream,
        Err(error) => return Reply::from(CityError::from(error)).into_response(),
    };
    let headers = [
        // Exactly this: the clients match it, with no charset.
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        // Tells nginx-style proxies not to buffer the stream.
        (
            header::HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        ),
    ];
    (StatusCode::OK, headers, stream.into_body()).into_response()
}

/// `GET /logs/<topic>`: `{"topic":T,"logs":[the last 1000 objects]}`.
pub async fn logs(State(city): State<Arc<City>>, topic: Topic) -> Reply {
    let topic = match topic {
        Ok(Path(topic)) => topic,
        Err(rejection) => return bad_path(rejection),
    };
    let logs = city.logs(&topic).await;
    logs.map(|values| {
        let lines: Vec<_> = values.iter().map(|value| value_line(value)).collect();
        let topic = to_ascii(&topic);
        Reply::json(format!(
            r#"{{"topic":{topic},"logs":[{}]}}"#,
            lines.join(",")
        ))
    })
    .into()
}

/// `GET /get_leader`: `{"leader_id":N}`, the metadata leader's node id.
pub async fn get_leader(State(city): State<Arc<City>>) -> Reply {
    #[derive(Serialize)]
    struct Leader {
        leader_id: u32,
    }
    let leader = city.leader_id().await;
    leader
        .map(|leader_id| Reply::value(&Leader { leader_id }))
        .into()
}

/// `GET /health`: `OK`.
pub async fn health() -> Reply {
    Reply::text("OK")
}

/// `GET /ping`: `{"status":"alive"}`.
pub async fn ping() -> Reply {
    Reply::json(r#"{"status":"alive"}"#.to_owned())
}

/// Unknown paths.
pub async fn not_found() -> Reply {
    Reply::error(StatusCode::NOT_FOUND, "Not found")
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> Reply {
    Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// A body that could not be read (over the size limit, or cut off).
fn rejected(rejection: BytesRejection) -> Reply {
    Reply::error(rejection.status(), &rejection.body_text())
}

/// A path whose topic is not valid percent-encoded UTF-8.
fn bad_path(rejection: PathRejection) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, &rejection.body_text())
}
