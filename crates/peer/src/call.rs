//! The asking side of [`Rpc::Call`], the one request/response between
//! brokers that is not Raft: [`PeerNetwork::call`] sends opaque bytes to a
//! broker over the same link its groups use and waits for the answer.
//! What the bytes mean (a metadata proposal forwarded to the leader, say)
//! is the broker's business; the answering side is `GroupRouter::call`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::frame::{GroupId, RemoteError, Rpc};
use crate::link::LinkError;
use crate::network::PeerNetwork;

/// A call belongs to no group; its envelope says 0, which the far side
/// ignores.
const CALL_GROUP: GroupId = GroupId(0);

/// Why a call got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The far side received the call and refused or failed it (its
    /// router's error, with code and message).
    #[error(transparent)]
    Remote(RemoteError),
    /// The call did not reach the far side, or no answer came back in
    /// time.
    #[error(transparent)]
    Link(LinkError),
}

impl From<LinkError> for CallError {
    fn from(error: LinkError) -> CallError {
        match error {
            LinkError::Remote(remote) => CallError::Remote(remote),
            other => CallError::Link(other),
        }
    }
}

impl CallError {
    /// The far side's error, if it answered with one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            CallError::Remote(remote) => Some(remote),
            CallError::Link(_) => None,
        }
    }
}

impl PeerNetwork {
    /// Sends `payload` to broker `target` at `addr` and waits at most
    /// `timeout` for its answer. The call shares the link to `target` with
    /// every Raft group, so a slow call delays no one else's answers.
    pub async fn call(
        &self,
        target: u64,
        addr: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let link = self.link(target, addr);
        let write = |out: &mut BytesMut| out.extend_from_slice(&payload);
        let answer = link.call(CALL_GROUP, Rpc::Call, write, timeout).await?;
        Ok(answer)
    }
}
