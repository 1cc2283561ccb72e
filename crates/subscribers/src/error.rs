//! [`SubscriberError`]: why a role stopped. Broker trouble the client
//! cannot retry away, and archive files that cannot be written or that
//! belong to something else. Malformed readings are not errors: they are
//! counted and skipped.

use std::path::PathBuf;

use citystream_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("archive {}: {source}", path.display())]
    Archive {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("archive {} starts with {found:?}, not the header {expected:?}; move it away", path.display())]
    ArchiveHeader {
        path: PathBuf,
        found: String,
        expected: String,
    },
}
