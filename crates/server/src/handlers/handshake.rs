//! The connection handshake: protocol version negotiation and the limits a
//! client must respect. Whether a connection is handshaken is connection
//! state, kept by `connection.rs`, not here.

use citystream_protocol::{ApiError, ErrorCode, HelloRequest, HelloResponse, PROTOCOL_VERSION};

use crate::server::Shared;

/// Oldest protocol version this build still speaks.
const PROTOCOL_VERSION_MIN: u16 = 1;

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
