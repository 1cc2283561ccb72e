//! The routes: each reads its request with `params` (anything unreadable
//! is the original's 500 "check params"), calls the node's [`Queue`] and
//! answers with a [`Reply`]. Extractor rejections are taken as `Result`s
//! so that axum's own 4xx answers never reach a client.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use bytes::Bytes;

use crate::params;
use crate::queue::Queue;
use crate::reply::Reply;

pub type Body = Result<Bytes, BytesRejection>;
pub type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// `POST /topics {"topic_name":T}`.
pub async fn create_topic(State(queue): State<Arc<Queue>>, body: Body) -> Reply {
    let Some(name) = body.ok().and_then(|b| params::topic_name(&b)) else {
        return Reply::malformed();
    };
    let created = queue.create_topic(&name).await;
    created
        .map(|()| Reply::success_value("message", &format!("Topic:{name} created successfully")))
        .into()
}

/// `GET /topics`.
pub async fn list_topics(State(queue): State<Arc<Queue>>) -> Reply {
    match queue.list_topics().await {
        Ok(names) if names.is_empty() => Reply::refused("No Topic found"),
        listed => listed
            .map(|names| {
                let names: Vec<&str> = names.iter().map(|name| &**name).collect();
                Reply::success_value("message", &names)
            })
            .into(),
    }
}

/// `POST /producer/register {"topic":T}`.
pub async fn register_producer(State(queue): State<Arc<Queue>>, body: Body) -> Reply {
    let Some(topic) = body.ok().and_then(|b| params::register_topic(&b)) else {
        return Reply::malformed();
    };
    let registered = queue.register_producer(&topic).await;
    registered
        .map(|id| Reply::success_value("producer_id", &id))
        .into()
}

/// `POST /consumer/register {"topic":T}`.
pub async fn register_consumer(State(queue): State<Arc<Queue>>, body: Body) -> Reply {
    let Some(topic) = body.ok().and_then(|b| params::register_topic(&b)) else {
        return Reply::malformed();
    };
    let registered = queue.register_consumer(&topic).await;
    registered
        .map(|id| Reply::success_value("consumer_id", &id))
        .into()
}

/// `POST /producer/produce {"topic":T,"producer_id":P,"message":M}`.
pub async fn produce(State(queue): State<Arc<Queue>>, body: Body) -> Reply {
    let Some(request) = body.ok().and_then(|b| params::produce(&b)) else {
        return Reply::malformed();
    };
    let produced = queue
        .produce(&request.topic, request.producer, request.message)
        .await;
    produced.map(|()| Reply::success()).into()
}

/// `GET /consumer/consume?topic=T&consumer_id=C`.
pub async fn consume(State(queue): State<Arc<Queue>>, query: Pairs) -> Reply {
    let Some((topic, consumer)) = query.ok().and_then(|q| params::consumer_query(&q.0)) else {
        return Reply::malformed();
    };
    let consumed = queue.consume(&topic, consumer).await;
    consumed
        .map(|message| Reply::success_with("message", &message))
        .into()
}

/// `GET /size?topic=T&consumer_id=C`.
pub async fn size(State(queue): State<Arc<Queue>>, query: Pairs) -> Reply {
    let Some((topic, consumer)) = query.ok().and_then(|q| params::consumer_query(&q.0)) else {
        return Reply::malformed();
    };
    let size = queue.size(&topic, consumer).await;
    size.map(|size| Reply::success_value("size", &size)).into()
}

/// Unknown paths and wrong methods.
pub async fn malformed() -> Reply {
    Reply::malformed()
}
