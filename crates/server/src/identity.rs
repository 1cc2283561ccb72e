//! Node identity on disk: `DATA_DIR/node.json` says which node of which
//! cluster a data directory belongs to, so a disk is never started as
//! another node (0005 §6: a node that came back under another id, or with a
//! wiped log under its old one, breaks Raft's assumptions).
//!
//! ```text
//! { "format": 1, "node_id": 3, "cluster_id": "city-a" }      (pretty-printed)
//! ```
//!
//! Written once, on the first start, atomically (temp file, fsync, rename,
//! fsync of the directory) through the broker's small-file helpers; never
//! rewritten. An in-memory broker keeps its identity in memory only. This
//! module decides nothing about membership: it only refuses a mismatch.
//!
//! It lives in the server crate because the server is the composition root
//! that owns the disk at start-up; the broker domain does not know about
//! clusters, and gossip (`citystream-membership`) only carries hints.

use std::path::{Path, PathBuf};

use citystream_broker::BrokerError;
use citystream_broker::data_dir::{read_json, write_json};
use serde::{Deserialize, Serialize};

/// File name of the identity inside the data directory.
pub const IDENTITY_FILE: &str = "node.json";
/// Version of the file layout this build writes and reads.
pub const IDENTITY_FORMAT: u32 = 1;

/// Which node of which cluster this process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub node_id: u32,
    pub cluster_id: String,
}

/// What `node.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct IdentityFile {
    format: u32,
    node_id: u32,
    cluster_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The data directory belongs to another node or cluster.
    #[error(
        "data dir {} belongs to node {} of cluster '{}'; refusing to start as node {} of cluster '{}'",
        dir.display(), stored.node_id, stored.cluster_id, wanted.node_id, wanted.cluster_id
    )]
    Mismatch {
        dir: PathBuf,
        stored: NodeIdentity,
        wanted: NodeIdentity,
    },
    /// `node.json` was written by a newer build.
    #[error("{} has format {format}; this build reads format {IDENTITY_FORMAT}", path.display())]
    UnsupportedFormat { path: PathBuf, format: u32 },
    /// The file could not be read, parsed or written.
    #[error("node identity: {0}")]
    Storage(#[from] BrokerError),
}

impl NodeIdentity {
    /// Checks `self` against the identity stored in `data_dir`, writing it
    /// there if there is none yet. `None` (in memory) accepts `self` as is.
    pub fn load_or_create(self, data_dir: Option<&Path>) -> Result<NodeIdentity, IdentityError> {
        let Some(dir) = data_dir else {
            return Ok(self);
        };
        let path = dir.join(IDENTITY_FILE);
        let Some(stored) = read_json::<IdentityFile>(&path)? else {
            write_json(&path, &IdentityFile::new(&self))?;
            tracing::info!(node = self.node_id, cluster = %self.cluster_id,
                path = %path.display(), "node identity written");
            return Ok(self);
        };
        if stored.format != IDENTITY_FORMAT {
            return Err(IdentityError::UnsupportedFormat {
                path,
                format: stored.format,
            });
        }
        let stored = NodeIdentity {
            node_id: stored.node_id,
            cluster_id: stored.cluster_id,
        };
        if stored != self {
            return Err(IdentityError::Mismatch {
                dir: dir.to_owned(),
                stored,
                wanted: self,
            });
        }
        Ok(self)
    }
}

impl IdentityFile {
    fn new(identity: &NodeIdentity) -> IdentityFile {
        IdentityFile {
            format: IDENTITY_FORMAT,
            node_id: identity.node_id,
            cluster_id: identity.cluster_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(node_id: u32, cluster_id: &str) -> NodeIdentity {
        NodeIdentity {
            node_id,
            cluster_id: cluster_id.to_string(),
        }
    }

    fn stored_json(dir: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join(IDENTITY_FILE)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// A fresh data dir gets `node.json` with exactly the given identity.
    #[test]
    fn fresh_dir_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let accepted = identity(3, "city-a")
            .load_or_create(Some(dir.path()))
            .unwrap();
        assert_eq!(accepted, identity(3, "city-a"));
        assert_eq!(
            stored_json(dir.path()),
            serde_json::json!({"format": 1, "node_id": 3, "cluster_id": "city-a"})
        );
        assert!(!dir.path().join("node.json.tmp").exists());
    }

    /// The same identity starts again on a stamped dir.
    #[test]
    fn matching_identity_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        identity(3, "city-a")
            .load_or_create(Some(dir.path()))
            .unwrap();
        let again = identity(3, "city-a").load_or_create(Some(dir.path()));
        assert_eq!(again.unwrap(), identity(3, "city-a"));
    }

    /// Another node id or cluster id is refused with both identities named,
    /// and the file is left as it was.
    #[test]
    fn mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        identity(3, "city-a")
            .load_or_create(Some(dir.path()))
            .unwrap();
        for wanted in [identity(2, "city-a"), identity(3, "city-b")] {
            let error = wanted.clone().load_or_create(Some(dir.path())).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, IdentityError::Mismatch { .. }), "{message}");
            let expected = format!(
                "data dir {} belongs to node 3 of cluster 'city-a'; refusing to start as node {} of cluster '{}'",
                dir.path().display(),
                wanted.node_id,
                wanted.cluster_id
            );
            assert_eq!(message, expected);
        }
        assert_eq!(stored_json(dir.path())["node_id"], 3);
    }

    /// A file from a newer format, or garbage, is an error, not a silent overwrite.
    #[test]
    fn unreadable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        std::fs::write(&path, r#"{"format":2,"node_id":1,"cluster_id":"c"}"#).unwrap();
        let error = identity(1, "c").load_or_create(Some(dir.path()));
        assert!(matches!(
            error,
            Err(IdentityError::UnsupportedFormat { format: 2, .. })
        ));
        std::fs::write(&path, "not json").unwrap();
        let error = identity(1, "c").load_or_create(Some(dir.path()));
        assert!(matches!(error, Err(IdentityError::Storage(_))));
    }

    /// In memory, any identity is accepted and nothing is written.
    #[test]
    fn in_memory_keeps_identity_in_memory() {
        assert_eq!(
            identity(9, "x").load_or_create(None).unwrap(),
            identity(9, "x")
        );
    }
}
