//! Request handlers, one file per resource. Each turns a decoded request into
//! broker calls and a response body; none touches sockets or framing.

pub(crate) mod cluster;
pub(crate) mod coordinator;
pub(crate) mod data;
pub(crate) mod group;
pub(crate) mod handshake;
pub(crate) mod producer;
pub(crate) mod replicated;
pub(crate) mod topic;
pub(crate) mod versions;
