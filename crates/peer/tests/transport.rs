//! The peer transport's error mapping and batching, against a real
//! `PeerServer` or a raw socket: an unknown group and a dead peer are
//! `Unreachable`, a silent peer is a `Timeout` within the RPC's TTL, a link
//! reconnects when the peer comes back, and requests queued together leave
//! in fewer writes than frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use citystream_peer::{
    GroupId, GroupRouter, LinkConfig, PeerClient, PeerNetwork, RaftHandle, serve,
};
use citystream_raft::{PeerAddr, Tc};
use openraft::error::RPCError;
use openraft::network::RPCOption;
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{RaftNetworkFactory, RaftNetworkV2, Vote};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Upper bound of every wait here.
const WAIT: Duration = Duration::from_secs(5);
const TTL: Duration = Duration::from_millis(200);

/// A broker that hosts no group at all.
struct NoGroups;

impl GroupRouter for NoGroups {
    fn raft(&self, _group: GroupId) -> Option<RaftHandle> {
        None
    }
}

async fn client(network: &PeerNetwork, addr: String) -> PeerClient {
    let mut factory = network.factory(GroupId(9));
    factory.new_client(2, &PeerAddr { peer: addr }).await
}

async fn vote(client: &mut PeerClient) -> Result<VoteResponse<Tc>, RPCError<Tc>> {
    let request = VoteRequest::new(Vote::new(1, 1), None);
    let call = client.vote(request, RPCOption::new(TTL));
    tokio::time::timeout(WAIT, call)
        .await
        .expect("bounded by the TTL")
}

/// A listener that accepts and reads everything but never answers.
async fn silent_peer() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut sink = vec![0; 64 * 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    (addr, task)
}

/// A request for a group the peer does not host comes back as an error
/// frame, which the client reports as `Unreachable`.
#[tokio::test]
async fn unknown_group_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, Arc::new(NoGroups), shutdown.clone()));
    let network = PeerNetwork::new(1, LinkConfig::default());
    let mut client = client(&network, addr).await;
    let error = vote(&mut client).await.unwrap_err();
    assert!(matches!(error, RPCError::Unreachable(_)), "{error}");
    assert!(error.to_string().contains("UnknownGroup"), "{error}");
    network.shutdown().await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, server)
        .await
        .expect("server stops")
        .expect("task");
}

/// A peer that never answers yields `Timeout` once the RPC's hard TTL has
/// passed, not before.
#[tokio::test]
async fn silent_peer_times_out_at_the_ttl() {
    let (addr, peer) = silent_peer().await;
    let network = PeerNetwork::new(1, LinkConfig::default());
    let mut client = client(&network, addr).await;
    let started = Instant::now();
    let error = vote(&mut client).await.unwrap_err();
    assert!(matches!(error, RPCError::Timeout(_)), "{error}");
    assert!(started.elapsed() >= TTL);
    network.shutdown().await;
    peer.abort();
}

/// A peer that is down fails requests at once as `Unreachable`; once it
/// listens again, the link reconnects and the request gets its answer.
#[tokio::test]
async fn dead_peer_is_unreachable_then_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let network = PeerNetwork::new(1, LinkConfig::default());
    let mut client = client(&network, addr.to_string()).await;
    let started = Instant::now();
    let error = vote(&mut client).await.unwrap_err();
    assert!(matches!(error, RPCError::Unreachable(_)), "{error}");
    assert!(started.elapsed() < TTL, "failed fast, not at the TTL");

    let listener = TcpListener::bind(addr).await.expect("rebind the same port");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, Arc::new(NoGroups), shutdown.clone()));
    let reconnected = tokio::time::timeout(WAIT, async {
        // Ends once a request reaches the server (it answers UnknownGroup).
        loop {
            let error = vote(&mut client).await.unwrap_err();
            if error.to_string().contains("UnknownGroup") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    reconnected
        .await
        .expect("the link reconnects within the backoff cap");
    network.shutdown().await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, server)
        .await
        .expect("server stops")
        .expect("task");
}

/// Requests of many groups queued while the link connects leave in fewer
/// writes than frames: the writer coalesces what is queued.
#[tokio::test]
async fn queued_frames_are_coalesced() {
    const GROUPS: u64 = 50;
    let (addr, peer) = silent_peer().await;
    let network = PeerNetwork::new(1, LinkConfig::default());
    let mut calls = tokio::task::JoinSet::new();
    for group in 0..GROUPS {
        let mut factory = network.factory(GroupId(group));
        let mut client = factory
            .new_client(2, &PeerAddr { peer: addr.clone() })
            .await;
        calls.spawn(async move { vote(&mut client).await });
    }
    while let Some(result) = calls.join_next().await {
        let error = result.expect("task").unwrap_err();
        assert!(matches!(error, RPCError::Timeout(_)), "{error}");
    }
    let stats = network.link_stats()[&2];
    assert_eq!(stats.connects, 1, "one connection for all groups");
    assert_eq!(stats.frames, GROUPS);
    assert!(stats.writes < stats.frames, "{stats:?}");
    network.shutdown().await;
    peer.abort();
}
