//! [`QueueError`]: why a queue operation did not succeed, and so which of
//! the two answers the original broker's clients know it gets: 400 with
//! the original's message, or 500.

use citystream_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The request is well formed but refused; the text is the original
    /// broker's message, which clients match (400).
    #[error("{0}")]
    Refused(String),
    /// The request is malformed (or a message too large to store): the
    /// original's "check params" answer (500).
    #[error("malformed request")]
    Malformed,
    /// The broker refused or could not be reached (500).
    #[error("broker: {0}")]
    Broker(#[from] ClientError),
    /// The broker did not answer in time, or lost a race too often (500).
    #[error("{0}")]
    Unavailable(String),
}

impl QueueError {
    pub fn refused(message: impl Into<String>) -> QueueError {
        QueueError::Refused(message.into())
    }
}
