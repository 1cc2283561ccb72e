//! A broker in the same process, reached without a socket (decision 0021).
//!
//! A node's own transports (HTTP, SSE, MQTT, the compatibility APIs) are
//! clients of the node (decision 0011). Over loopback TCP every record they
//! write or read was framed, copied into a socket, woken up for, copied out
//! and decoded again, by both ends. A client given a [`LocalBroker`]
//! ([`ClientConfig::local`](crate::ClientConfig::local)) hands the same
//! request values to the broker's dispatcher instead and gets its response
//! values back; everything above the connection (routing, retries, the
//! producer's lanes and order, timeouts) is unchanged, and requests to
//! other nodes still go over TCP.

pub use citystream_protocol::local::{LocalAnswer, LocalBroker, LocalSubmit};

use crate::ClientError;

/// The error of a request to a local broker that has stopped: a transport
/// error, like a connection closed under it.
pub(crate) fn stopped(address: &str) -> ClientError {
    ClientError::Io {
        address: address.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the broker in this process has stopped",
        ),
    }
}
