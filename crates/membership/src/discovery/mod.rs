//! placeholder
pub struct Discovery;
pub struct DiscoveryConfig;
