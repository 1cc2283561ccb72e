//! The connection handshake: protocol version negotiation and the limits a
//! client must respect. Whether a connection is handshaken is connection
//! state, kept by `connection.rs`, not here.

use citystream_protocol::{
    ApiError, ErrorCode, HelloRequest, HelloResponse, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN,
};

use crate::server::Shared;

pub(crate) fn hello(shared: &Shared, request: &HelloRequest) -> Result<HelloResponse, ApiError> {
    let version = negotiate(request.version_min, request.version_max).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UNSUPPORTED_VERSION,
            format!(
                "no common protocol version: the client speaks {}..={}, this broker {}..={}",
                request.version_min, request.version_max, PROTOCOL_VERSION_MIN, PROTOCOL_VERSION
            ),
        )
    })?;
    let broker = shared.broker.config();
    tracing::debug!(client_id = %request.client_id, version, "handshake complete");
    Ok(HelloResponse {
        version,
        node_id: broker.node_id,
        cluster_id: shared.config.cluster_id.clone(),
        frame_bytes_max: shared.config.frame_bytes_max,
        record_bytes_max: broker.record_bytes_max,
    })
}

/// The newest version both sides speak, if any.
fn negotiate(client_min: u16, client_max: u16) -> Option<u16> {
    let version = client_max.min(PROTOCOL_VERSION);
    (version >= client_min && version >= PROTOCOL_VERSION_MIN).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest version both ranges hold wins; disjoint ranges have none.
    #[test]
    fn negotiate_picks_the_newest_common_version() {
        assert_eq!(negotiate(1, 1), Some(1));
        assert_eq!(negotiate(1, 2), Some(2));
        assert_eq!(negotiate(1, 9), Some(PROTOCOL_VERSION));
        assert_eq!(negotiate(2, 2), Some(2));
        assert_eq!(negotiate(PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 3), None);
        assert_eq!(negotiate(0, 0), None);
    }
}
