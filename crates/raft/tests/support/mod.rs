//! Test support shared by the cluster tests: an in-process network and a
//! cluster harness.

pub mod cluster;

pub mod network {
    //! The crate's in-process network ([`citystream_raft::testing`]) for
    //! partition groups.
    pub type Router = citystream_raft::testing::Router<citystream_raft::PartitionStateMachine>;
}
