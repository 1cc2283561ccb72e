//! Test support shared by the cluster tests: an in-process network and a
//! cluster harness.

pub mod cluster;
pub mod network;
