//! Multicast discovery on the loopback interface (TTL 0, so nothing leaves the host):
//! two nodes without seeds find each other, and other clusters' and one's own
//! announcements are dropped. Where this machine cannot loop multicast back (no
//! multicast route, a sandbox), the tests print why and return without failing.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use citystream_membership::discovery::{Discovery, DiscoveryConfig, feed_membership};
use citystream_membership::{MemberState, Membership, MembershipConfig, NodeId, NodeInfo};
use socket2::{Domain, Protocol, Socket, Type};

const WAIT_MAX: Duration = Duration::from_secs(20);
const PROBE_WAIT: Duration = Duration::from_secs(2);
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A group and port of this test process alone, so parallel runs do not hear each other;
/// the port is below Linux's ephemeral range so no port-0 socket holds it.
fn test_group(salt: u16) -> SocketAddrV4 {
    let pid = std::process::id();
    let last_octet = 20 + (pid % 200) as u8;
    let port = 20_000 + ((pid % 5_000) as u16) * 2 + salt;
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 78, last_octet), port)
}

fn discovery_config(
    cluster: &str,
    node: u32,
    gossip: SocketAddr,
    group: SocketAddrV4,
) -> DiscoveryConfig {
    let mut config = DiscoveryConfig::new(cluster, NodeId(node), gossip);
    config.group = group;
    config.interface = LOOPBACK;
    config.ttl = 0;
    config.announce_interval_ms = 200;
    config
}

/// Why loopback multicast does not work here, or `None` if a probe datagram looped back.
fn multicast_unavailable(group: SocketAddrV4) -> Option<String> {
    let probe = || -> std::io::Result<bool> {
        let receiver = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        receiver.set_reuse_address(true)?;
        receiver.set_reuse_port(true)?;
        receiver.bind(&SocketAddr::from(group).into())?;
        receiver.join_multicast_v4(group.ip(), &LOOPBACK)?;
        receiver.set_read_timeout(Some(PROBE_WAIT))?;
        let receiver: UdpSocket = receiver.into();
        let sender = UdpSocket::bind((LOOPBACK, 0))?;
        sender.set_multicast_loop_v4(true)?;
        sender.set_multicast_ttl_v4(0)?;
        sender.send_to(b"probe", group)?;
        let mut buffer = [0u8; 16];
        Ok(receiver
            .recv_from(&mut buffer)
            .is_ok_and(|(len, _)| &buffer[..len] == b"probe"))
    };
    match probe() {
        Ok(true) => None,
        Ok(false) => Some(format!("a multicast probe to {group} did not loop back")),
        Err(error) => Some(format!(
            "cannot use multicast group {group} on loopback: {error}"
        )),
    }
}

fn skip_if_unavailable(group: SocketAddrV4) -> bool {
    match multicast_unavailable(group) {
        Some(reason) => {
            eprintln!("skipping multicast discovery test: {reason}");
            true
        }
        None => false,
    }
}

/// An announcement reaches another node of the cluster; own and foreign ones do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_are_filtered_by_cluster_and_node() {
    let group = test_group(0);
    if skip_if_unavailable(group) {
        return;
    }
    let gossip_a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let mut listener = Discovery::start(discovery_config(
        "lan",
        2,
        "127.0.0.1:7002".parse().unwrap(),
        group,
    ))
    .unwrap();
    let announcer = Discovery::start(discovery_config("lan", 1, gossip_a, group)).unwrap();
    let foreign = Discovery::start(discovery_config(
        "other",
        3,
        "127.0.0.1:7003".parse().unwrap(),
        group,
    ))
    .unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        let announcement = tokio::time::timeout(WAIT_MAX, listener.recv())
            .await
            .expect("an announcement within the bound")
            .unwrap();
        assert_eq!(announcement.cluster_id, "lan");
        assert_eq!(announcement.node_id, NodeId(1));
        assert_eq!(announcement.gossip_addr, gossip_a);
    }
    eprintln!("five announcements received in {:?}", started.elapsed());
    for discovery in [listener, announcer, foreign] {
        discovery.shutdown().await;
    }
}

/// Two nodes without any seed find each other by multicast and converge by gossip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_joins_nodes_without_seeds() {
    let group = test_group(1);
    if skip_if_unavailable(group) {
        return;
    }
    let mut nodes = Vec::new();
    let mut discoveries = Vec::new();
    for node in [1, 2] {
        let config =
            MembershipConfig::new(NodeId(node), "lan-join", "127.0.0.1:0".parse().unwrap());
        let info = NodeInfo::new(NodeId(node), "lan-join")
            .with_listener("native", format!("127.0.0.{node}:9400"));
        let membership = Membership::start(config, info).await.unwrap();
        let discovery_config =
            discovery_config("lan-join", node, membership.local_gossip_addr(), group);
        discoveries.push(Discovery::start(discovery_config).unwrap());
        nodes.push(membership);
    }
    let both_alive = |membership: &Membership| {
        let members = membership.members();
        members.len() == 2
            && members
                .iter()
                .all(|member| member.state == MemberState::Alive)
    };
    let started = Instant::now();
    let [first_discovery, second_discovery] = &mut discoveries[..] else {
        unreachable!()
    };
    let feeding = async {
        tokio::join!(
            feed_membership(first_discovery, &nodes[0]),
            feed_membership(second_discovery, &nodes[1])
        )
    };
    let converged = async {
        while !nodes.iter().all(both_alive) {
            assert!(
                started.elapsed() < WAIT_MAX,
                "nodes did not find each other"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = feeding => panic!("discovery stopped early"),
        () = converged => eprintln!("discovered and converged in {:?}", started.elapsed()),
    }
    for discovery in discoveries {
        discovery.shutdown().await;
    }
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}
