//! Test support: an in-process network and a metadata-group harness.

pub mod group;
pub mod network;
