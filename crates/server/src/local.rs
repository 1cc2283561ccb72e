//! The node's door for clients in its own process (decision 0021): the
//! node's transports (HTTP, SSE, MQTT, the compatibility APIs) hand it
//! decoded requests and get decoded responses back, with no socket, frame
//! or copy in between. A request is applied as a connection's reader
//! applies it (`connection.rs`): in the order of submission, a produce or
//! anything else that does not wait applied before `submit` returns, a
//! long poll or a join left to the answer's future; and the answer is
//! tracked by the server's shutdown drain like a connection's.

use std::sync::{Arc, Weak};

use citystream_protocol::Request;
use citystream_protocol::local::{LocalAnswer, LocalBroker, LocalSubmit};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connection::{serve_request, waits};
use crate::server::Shared;

/// A handle on the server of this process, usable once it serves; cheap
/// to clone. Give it to [`crate::ServeOptions::local`], and, once
/// [`Local::ready`], to a client as its `LocalBroker`.
#[derive(Clone)]
pub struct Local {
    serving: watch::Sender<Option<Serving>>,
}

impl LocalBroker for Local {
    /// 0 until the server serves.
    fn node_id(&self) -> u32 {
        self.serving.borrow().as_ref().map_or(0, |s| s.node_id)
    }

    fn submit(&self, request: Request) -> LocalSubmit<'_> {
        Box::pin(self.apply(request))
    }
}

/// What a serving server lends its local clients.
#[derive(Clone)]
struct Serving {
    node_id: u32,
    shared: Weak<Shared>,
    stop: CancellationToken,
}

impl Default for Local {
    fn default() -> Local {
        Local {
            serving: watch::Sender::new(None),
        }
    }
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("serving", &self.serving.borrow().is_some())
            .finish()
    }
}

impl Local {
    pub fn new() -> Local {
        Local::default()
    }

    /// Waits until the server serves.
    pub async fn ready(&self) {
        let mut serving = self.serving.subscribe();
        let _ = serving.wait_for(Option::is_some).await;
    }

    /// Applies `request` (see the module doc) and returns the wait for its
    /// answer; `None` once the server has stopped (or before it serves).
    async fn apply(&self, request: Request) -> Option<LocalAnswer> {
        let serving = self.serving.borrow().clone()?;
        if serving.stop.is_cancelled() {
            return None;
        }
        let shared = serving.shared.upgrade()?;
        let stop = serving.stop;
        if waits(&request) {
            let tasks = shared.tasks.clone();
            let answer = async move { serve_request(&shared, &stop, request).await };
            return Some(Box::pin(tasks.track_future(answer)));
        }
        let request = match (request, &shared.node) {
            (Request::Produce(produce), Some(node)) => {
                let acked =
                    crate::handlers::replicated::submit_produce(&shared, node, produce).await;
                return Some(Box::pin(shared.tasks.track_future(acked)));
            }
            (request, _) => request,
        };
        let outcome = serve_request(&shared, &stop, request).await;
        Some(Box::pin(std::future::ready(outcome)))
    }

    /// Called by the server once it serves; `stop` ends local service.
    pub(crate) fn serve(&self, shared: &Arc<Shared>, stop: CancellationToken) {
        self.serving.send_replace(Some(Serving {
            node_id: shared.broker.config().node_id,
            shared: Arc::downgrade(shared),
            stop,
        }));
    }
}
