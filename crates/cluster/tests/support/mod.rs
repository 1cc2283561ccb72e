//! Test support: an in-process network and a metadata-group harness.

pub mod group;

pub mod network {
    //! citystream-raft's in-process network ([`citystream_raft::testing`])
    //! for the metadata group.
    pub type Router = citystream_raft::testing::Router<citystream_cluster::MetadataStateMachine>;
}
