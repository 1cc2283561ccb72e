//! The publisher's errors. Settings problems ([`SimError::InvalidConfig`])
//! are the caller's to fix (the CLI exits with 2 for them); the others come
//! from the cluster. Failed deliveries are not errors of the run: they are
//! counted in `SimStats` and the run goes on.

use citystream_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    InvalidConfig(String),
    #[error("cannot create topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot start the producer")]
    Producer(#[source] ClientError),
    /// None of the MQTT listeners (comma-separated) accepted.
    #[error("cannot connect to the MQTT listeners {addresses}: {message}")]
    Mqtt { addresses: String, message: String },
}
