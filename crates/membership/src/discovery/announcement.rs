//! The multicast discovery payload: "node `node_id` of cluster `cluster_id` gossips at
//! `gossip_addr`". Pure codec, no sockets.
//!
//! Layout, version 1 (little-endian, at most [`ANNOUNCEMENT_BYTES_MAX`] bytes):
//!
//! ```text
//! offset  size   field
//! 0       6      magic "CSDISC"
//! 6       1      version = 1
//! 7       4      node_id (u32)
//! 11      1      address family: 4 or 6
//! 12      4|16   IP address (network order, as in the address' octets)
//! +0      2      gossip port (u16)
//! +2      1      cluster_id length n (1..=128)
//! +3      n      cluster_id (UTF-8, printable ASCII)
//! ```
//!
//! An unspecified IP (`0.0.0.0`) means "the address this datagram came from"; the
//! receiver substitutes it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::node_info::{CLUSTER_ID_BYTES_MAX, NodeId, validate_cluster_id};

pub const MAGIC: &[u8; 6] = b"CSDISC";
pub const VERSION: u8 = 1;
/// Largest encoded announcement (IPv6 address and longest cluster id).
pub const ANNOUNCEMENT_BYTES_MAX: usize = 6 + 1 + 4 + 1 + 16 + 2 + 1 + CLUSTER_ID_BYTES_MAX;

const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

/// One node's announcement of where it gossips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub cluster_id: String,
    pub node_id: NodeId,
    pub gossip_addr: SocketAddr,
}

/// Why a datagram is not a valid announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnouncementError {
    #[error("datagram ends before field {0}")]
    Truncated(&'static str),
    #[error("not a citystream discovery datagram")]
    BadMagic,
    #[error("unsupported announcement version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown address family {0}")]
    BadFamily(u8),
    #[error("invalid cluster id")]
    BadClusterId,
    #[error("{0} bytes after the end of the announcement")]
    TrailingBytes(usize),
}

impl Announcement {
    /// Encodes; the cluster id must already be valid (checked when discovery starts).
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            validate_cluster_id(&self.cluster_id).is_ok(),
            "invalid cluster id"
        );
        let mut out = Vec::with_capacity(ANNOUNCEMENT_BYTES_MAX);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.node_id.0.to_le_bytes());
        match self.gossip_addr.ip() {
            IpAddr::V4(ip) => {
                out.push(FAMILY_V4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(FAMILY_V6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.gossip_addr.port().to_le_bytes());
        out.push(self.cluster_id.len() as u8);
        out.extend_from_slice(self.cluster_id.as_bytes());
        out
    }

    /// Decodes one datagram, refusing anything malformed or with trailing bytes.
    pub fn decode(datagram: &[u8]) -> Result<Announcement, AnnouncementError> {
        let mut reader = Reader { rest: datagram };
        if reader.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(AnnouncementError::BadMagic);
        }
        let version = reader.take(1, "version")?[0];
        if version != VERSION {
            return Err(AnnouncementError::UnsupportedVersion(version));
        }
        let node_id = u32::from_le_bytes(reader.array("node_id")?);
        let ip = match reader.take(1, "family")?[0] {
            FAMILY_V4 => IpAddr::V4(Ipv4Addr::from(reader.array::<4>("ip")?)),
            FAMILY_V6 => IpAddr::V6(Ipv6Addr::from(reader.array::<16>("ip")?)),
            other => return Err(AnnouncementError::BadFamily(other)),
        };
        let port = u16::from_le_bytes(reader.array("port")?);
        let cluster_len = usize::from(reader.take(1, "cluster_id length")?[0]);
        let cluster_bytes = reader.take(cluster_len, "cluster_id")?;
        let cluster_id = std::str::from_utf8(cluster_bytes)
            .ok()
            .filter(|id| validate_cluster_id(id).is_ok())
            .ok_or(AnnouncementError::BadClusterId)?;
        if !reader.rest.is_empty() {
            return Err(AnnouncementError::TrailingBytes(reader.rest.len()));
        }
        Ok(Announcement {
            cluster_id: cluster_id.to_string(),
            node_id: NodeId(node_id),
            gossip_addr: SocketAddr::new(ip, port),
        })
    }

    /// The gossip address to contact, with an unspecified IP replaced by `source`'s.
    pub fn resolved_gossip_addr(&self, source: SocketAddr) -> SocketAddr {
        if self.gossip_addr.ip().is_unspecified() {
            SocketAddr::new(source.ip(), self.gossip_addr.port())
        } else {
            self.gossip_addr
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], AnnouncementError> {
        if self.rest.len() < len {
            return Err(AnnouncementError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], AnnouncementError> {
        let bytes = self.take(N, field)?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announcement {
        Announcement {
            cluster_id: "city".into(),
            node_id: NodeId(0x0102_0304),
            gossip_addr: "10.1.2.3:7946".parse().unwrap(),
        }
    }

    /// The encoding is exactly the documented byte layout.
    #[test]
    fn exact_bytes() {
        let expected: Vec<u8> = [
            &b"CSDISC"[..],
            &[1],
            &[4, 3, 2, 1],
            &[4],
            &[10, 1, 2, 3],
            &7946u16.to_le_bytes(),
            &[4],
            b"city",
        ]
        .concat();
        assert_eq!(sample().encode(), expected);
    }

    /// IPv4 and IPv6 announcements decode to what was encoded.
    #[test]
    fn round_trips() {
        let mut v6 = sample();
        v6.gossip_addr = "[fd00::7]:9".parse().unwrap();
        v6.cluster_id = "x".repeat(CLUSTER_ID_BYTES_MAX);
        for announcement in [sample(), v6] {
            let bytes = announcement.encode();
            assert!(bytes.len() <= ANNOUNCEMENT_BYTES_MAX);
            assert_eq!(Announcement::decode(&bytes), Ok(announcement));
        }
    }

    /// Every truncation of a valid datagram is refused, never a panic.
    #[test]
    fn truncations_are_refused() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Announcement::decode(&bytes[..len]).is_err(), "length {len}");
        }
    }

    /// Wrong magic, version, family, cluster id or trailing bytes are each refused.
    #[test]
    fn malformed_fields_are_refused() {
        let bytes = sample().encode();
        let with = |index: usize, value: u8| {
            let mut copy = bytes.clone();
            copy[index] = value;
            Announcement::decode(&copy)
        };
        assert_eq!(with(0, b'X'), Err(AnnouncementError::BadMagic));
        assert_eq!(with(6, 2), Err(AnnouncementError::UnsupportedVersion(2)));
        assert_eq!(with(11, 5), Err(AnnouncementError::BadFamily(5)));
        assert_eq!(
            with(bytes.len() - 1, b' '),
            Err(AnnouncementError::BadClusterId)
        );
        assert_eq!(with(18, 0), Err(AnnouncementError::BadClusterId));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Announcement::decode(&longer),
            Err(AnnouncementError::TrailingBytes(1))
        );
    }

    /// An unspecified announced IP is replaced by the sender's.
    #[test]
    fn unspecified_ip_takes_the_source() {
        let mut announcement = sample();
        announcement.gossip_addr = "0.0.0.0:7946".parse().unwrap();
        let source = "192.0.2.9:9477".parse().unwrap();
        assert_eq!(
            announcement.resolved_gossip_addr(source),
            "192.0.2.9:7946".parse().unwrap()
        );
        assert_eq!(sample().resolved_gossip_addr(source), sample().gossip_addr);
    }
}
