//! `PeerNetwork::call` against a real `PeerServer` on loopback: the
//! router's answer comes back, a router's error comes back with its code
//! and message, a router without `call` refuses, calls run concurrently
//! (a slow one does not hold up a fast one), and a dead or silent peer is
//! a link error within the caller's timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use citystream_peer::{
    CallError, ErrorCode, GroupId, GroupRouter, LinkConfig, LinkError, PeerNetwork, RaftHandle,
    RemoteError, serve,
};
use futures::future::{BoxFuture, FutureExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Upper bound of every wait here.
const WAIT: Duration = Duration::from_secs(5);
/// How long the echo router holds a call whose payload is [`SLOW`].
const SLOW_CALL: Duration = Duration::from_millis(800);
const SLOW: &[u8] = b"slow";
const FAIL: &[u8] = b"fail";

/// Hosts no group; echoes calls back reversed, slowly for [`SLOW`], and
/// fails [`FAIL`].
struct Echo;

impl GroupRouter for Echo {
    fn raft(&self, _group: GroupId) -> Option<RaftHandle> {
        None
    }

    fn call(&self, payload: Bytes) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
        async move {
            if payload == FAIL {
                return Err(RemoteError {
                    code: ErrorCode::CallFailed,
                    message: "told to fail".into(),
                });
            }
            if payload == SLOW {
                tokio::time::sleep(SLOW_CALL).await;
            }
            Ok(payload.iter().rev().copied().collect())
        }
        .boxed()
    }
}

/// A router that keeps the default `call`.
struct NoCalls;

impl GroupRouter for NoCalls {
    fn raft(&self, _group: GroupId) -> Option<RaftHandle> {
        None
    }
}

struct Peer {
    addr: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Peer {
    async fn start(router: Arc<dyn GroupRouter>) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, router, shutdown.clone()));
        Peer {
            addr,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(WAIT, self.task).await;
        stopped.expect("server stops").expect("task");
    }
}

/// The router's answer comes back; its error comes back with its code and
/// message, as a `Remote` error.
#[tokio::test]
async fn call_returns_the_answer_or_the_remote_error() {
    let peer = Peer::start(Arc::new(Echo)).await;
    let network = PeerNetwork::new(1, LinkConfig::default());
    let payload = Bytes::from_static(b"abc");
    let answer = network.call(2, &peer.addr, payload, WAIT).await;
    assert_eq!(answer.expect("answered"), Bytes::from_static(b"cba"));

    let failed = network.call(2, &peer.addr, Bytes::from_static(FAIL), WAIT);
    let error = failed.await.unwrap_err();
    let remote = error.remote().expect("a remote error");
    assert_eq!(remote.code, ErrorCode::CallFailed);
    assert_eq!(remote.message, "told to fail");
    network.shutdown().await;
    peer.stop().await;
}

/// A broker whose router does not serve calls answers `Unsupported`.
#[tokio::test]
async fn default_router_refuses_calls() {
    let peer = Peer::start(Arc::new(NoCalls)).await;
    let network = PeerNetwork::new(1, LinkConfig::default());
    let error = network
        .call(2, &peer.addr, Bytes::from_static(b"x"), WAIT)
        .await
        .unwrap_err();
    let remote = error.remote().expect("a remote error");
    assert_eq!(remote.code, ErrorCode::Unsupported);
    assert_eq!(remote.message, "calls are not served here");
    network.shutdown().await;
    peer.stop().await;
}

/// A slow call and a fast one on the same link: the fast one is answered
/// while the slow one is still running, and the slow one still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_concurrently() {
    let peer = Peer::start(Arc::new(Echo)).await;
    let network = PeerNetwork::new(1, LinkConfig::default());
    let slow = {
        let (network, addr) = (network.clone(), peer.addr.clone());
        tokio::spawn(async move {
            let answer = network.call(2, &addr, Bytes::from_static(SLOW), WAIT).await;
            (answer, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let fast = network.call(2, &peer.addr, Bytes::from_static(b"ab"), WAIT);
    assert_eq!(fast.await.expect("answered"), Bytes::from_static(b"ba"));
    let fast_done = Instant::now();
    assert!(fast_done - started < SLOW_CALL / 2, "not held up");
    let (slow_answer, slow_done) = slow.await.expect("task");
    assert_eq!(slow_answer.expect("answered"), Bytes::from_static(b"wols"));
    assert!(slow_done > fast_done);
    network.shutdown().await;
    peer.stop().await;
}

/// A call to an address where no one listens fails as a link error well
/// within its timeout, and a call the peer holds longer than the timeout
/// fails as `Timeout` once it has passed.
#[tokio::test]
async fn dead_or_slow_peer_is_a_link_error_within_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let network = PeerNetwork::new(1, LinkConfig::default());
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let error = network
        .call(2, &dead, Bytes::from_static(b"x"), timeout)
        .await
        .unwrap_err();
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
    assert!(
        matches!(error, CallError::Link(LinkError::Unreachable { .. })),
        "{error}"
    );

    let peer = Peer::start(Arc::new(Echo)).await;
    let timeout = SLOW_CALL / 4;
    let started = Instant::now();
    let error = network
        .call(3, &peer.addr, Bytes::from_static(SLOW), timeout)
        .await
        .unwrap_err();
    assert!(started.elapsed() >= timeout);
    assert!(
        matches!(error, CallError::Link(LinkError::Timeout(_))),
        "{error}"
    );
    network.shutdown().await;
    peer.stop().await;
}
