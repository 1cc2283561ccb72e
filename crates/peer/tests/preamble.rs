//! The peer preamble on a real socket: a link sends it first, a server
//! closes a connection that starts with anything else and keeps serving
//! peers, and `PeerServer::serve_stream` serves a connection that the
//! caller accepted and told apart by peeking (as the broker's shared
//! native port will).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_peer::{
    CallError, ErrorCode, GroupId, GroupRouter, LinkConfig, PEER_PREAMBLE, PeerNetwork, PeerServer,
    RaftHandle,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Upper bound of every wait here.
const WAIT: Duration = Duration::from_secs(5);

/// Hosts no group and serves no calls (the default `call` refuses).
struct NoGroups;

impl GroupRouter for NoGroups {
    fn raft(&self, _group: GroupId) -> Option<RaftHandle> {
        None
    }
}

/// A call that reaches a `NoGroups` server comes back `Unsupported`: the
/// connection was served.
async fn assert_served(network: &PeerNetwork, addr: &str) {
    let call = network
        .call(2, addr, Bytes::from_static(b"ping"), WAIT)
        .await;
    match call {
        Err(CallError::Remote(remote)) => assert_eq!(remote.code, ErrorCode::Unsupported),
        other => panic!("expected the server's refusal, got {other:?}"),
    }
}

/// Waits until the far side closes `stream` (EOF or reset).
async fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
    match read.expect("closed in time") {
        Ok(_) => assert!(rest.is_empty(), "no answer to a non-peer: {rest:?}"),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

/// A link's first bytes on a new connection are the preamble.
#[tokio::test]
async fn link_sends_the_preamble_first() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let network = PeerNetwork::new(1, LinkConfig::default());
    let call = tokio::spawn({
        let (network, addr) = (network.clone(), addr.clone());
        async move { network.call(2, &addr, Bytes::new(), WAIT).await }
    });
    let (mut stream, _) = listener.accept().await.expect("accept");
    let mut first = [0; 8];
    stream.read_exact(&mut first).await.expect("read");
    assert_eq!(first, PEER_PREAMBLE);
    drop(stream);
    let ended = call.await.expect("task");
    assert!(matches!(ended, Err(CallError::Link(_))), "{ended:?}");
    network.shutdown().await;
}

/// A connection that starts like an HTTP request, and one that sends 3
/// bytes and ends, are closed unanswered; the server still serves a peer
/// afterwards.
#[tokio::test]
async fn wrong_preamble_is_closed_and_the_server_keeps_serving() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = PeerServer::new(Arc::new(NoGroups));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.clone().serve(listener, shutdown.clone()));

    let mut http = TcpStream::connect(&addr).await.expect("connect");
    http.write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    assert_closed(&mut http).await;
    let mut short = TcpStream::connect(&addr).await.expect("connect");
    short.write_all(b"CSP").await.expect("write");
    short.shutdown().await.expect("half close");
    assert_closed(&mut short).await;

    let network = PeerNetwork::new(1, LinkConfig::default());
    assert_served(&network, &addr).await;
    assert_eq!(server.connections_accepted(), 3);
    network.shutdown().await;
    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, task).await;
    stopped.expect("server stops").expect("task");
}

/// An accept loop of the caller's own peeks at the first 8 bytes and hands
/// peer connections to `serve_stream`, closing the others.
#[tokio::test]
async fn serve_stream_serves_a_connection_accepted_elsewhere() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = PeerServer::new(Arc::new(NoGroups));
    let shutdown = CancellationToken::new();
    let accept_loop = tokio::spawn({
        let (server, shutdown) = (server.clone(), shutdown.clone());
        async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut first = [0; 8];
            let peeked = stream.peek(&mut first).await.expect("peek");
            assert_eq!((peeked, first), (8, PEER_PREAMBLE));
            server.serve_stream(stream, shutdown).await;
        }
    });
    let network = PeerNetwork::new(1, LinkConfig::default());
    assert_served(&network, &addr).await;
    assert_eq!(server.connections_accepted(), 1);
    network.shutdown().await;
    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, accept_loop).await;
    stopped.expect("connection ends").expect("task");
}
