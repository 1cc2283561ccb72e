//! [`MembershipConfig`]: identity, gossip addresses, seeds and the timing that makes
//! joins and failures visible within a few seconds, with validation and the mapping onto
//! chitchat's own configuration. No I/O.
//!
//! Timing (defaults): each node gossips every `gossip_interval_ms` (200 ms) with up to
//! three peers, so a peer's heartbeat reaches us several times per interval. chitchat's
//! detector declares a node dead when the silence exceeds `phi_threshold` times the mean
//! observed heartbeat interval (its "phi" is silence / mean). The mean is smoothed with a
//! prior of five samples of `gossip_interval_ms`, so a new peer is judged against about
//! 200 ms; with `phi_threshold` = 16 the silence before "dead" is about 1.6–3.2 s, plus up
//! to one interval until the next liveness pass. `docs/decisions/0006` has the figures
//! measured in the tests.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::{ChitchatConfig, ChitchatId, FailureDetectorConfig, ProtocolVersion};

use crate::error::MembershipError;
use crate::node_info::{NodeId, validate_cluster_id};

/// Default gossip round period.
pub const GOSSIP_INTERVAL_MS_DEFAULT: u64 = 200;
/// Default phi threshold (silence / mean heartbeat interval) above which a node is dead.
pub const PHI_THRESHOLD_DEFAULT: f64 = 16.0;
/// Default silence after which a live member is shown as `Suspect`.
pub const SUSPECT_AFTER_MS_DEFAULT: u64 = 1_000;
/// Default time a dead member stays listed (as `Dead`) before it is forgotten.
pub const DEAD_NODE_GRACE_MS_DEFAULT: u64 = 5 * 60 * 1_000;
/// How long a deleted key's tombstone is kept for peers that missed the deletion.
pub const TOMBSTONE_GRACE_MS: u64 = 10 * 60 * 1_000;
/// Heartbeat intervals the detector averages over.
pub const DETECTOR_SAMPLES_MAX: usize = 200;
/// Longer heartbeat gaps than this are not counted in the detector's mean (a pause of
/// the whole process should not teach it to wait longer).
pub const DETECTOR_INTERVAL_MS_MAX: u64 = 2_000;
/// Most seed addresses accepted in a configuration.
pub const SEEDS_MAX: usize = 256;
/// Shortest and longest accepted gossip interval.
pub const GOSSIP_INTERVAL_MS_RANGE: (u64, u64) = (10, 10_000);

/// How a node takes part in gossip.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipConfig {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// Distinguishes runs of the same node; milliseconds since the Unix epoch at start
    /// by default. Must grow from one run to the next.
    pub generation: u64,
    /// Where to bind the gossip UDP socket; port 0 picks a free port.
    pub gossip_listen: SocketAddr,
    /// Address peers should gossip to. `None`: the bound address (the listen IP must then
    /// be specific). A port of 0 is replaced by the bound port.
    pub gossip_advertise: Option<SocketAddr>,
    /// Addresses to contact first; more can be added later with `Membership::add_seed`.
    pub seeds: Vec<SocketAddr>,
    pub gossip_interval_ms: u64,
    pub phi_threshold: f64,
    pub suspect_after_ms: u64,
    pub dead_node_grace_ms: u64,
}

impl MembershipConfig {
    /// A configuration with the default timing and the current time as generation.
    pub fn new(
        node_id: NodeId,
        cluster_id: impl Into<String>,
        gossip_listen: SocketAddr,
    ) -> MembershipConfig {
        MembershipConfig {
            node_id,
            cluster_id: cluster_id.into(),
            generation: unix_time_ms(),
            gossip_listen,
            gossip_advertise: None,
            seeds: Vec::new(),
            gossip_interval_ms: GOSSIP_INTERVAL_MS_DEFAULT,
            phi_threshold: PHI_THRESHOLD_DEFAULT,
            suspect_after_ms: SUSPECT_AFTER_MS_DEFAULT,
            dead_node_grace_ms: DEAD_NODE_GRACE_MS_DEFAULT,
        }
    }

    /// Checks every field; called by `Membership::start` before binding anything.
    pub fn validate(&self) -> Result<(), MembershipError> {
        validate_cluster_id(&self.cluster_id).map_err(|error| invalid(error.to_string()))?;
        let (interval_min, interval_max) = GOSSIP_INTERVAL_MS_RANGE;
        if !(interval_min..=interval_max).contains(&self.gossip_interval_ms) {
            return Err(invalid(format!(
                "gossip_interval_ms {} is outside {interval_min}..={interval_max}",
                self.gossip_interval_ms
            )));
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold >= 1.0) {
            return Err(invalid(format!(
                "phi_threshold {} must be a number >= 1",
                self.phi_threshold
            )));
        }
        if self.suspect_after_ms < self.gossip_interval_ms {
            return Err(invalid(format!(
                "suspect_after_ms {} is shorter than gossip_interval_ms {}",
                self.suspect_after_ms, self.gossip_interval_ms
            )));
        }
        if self.seeds.len() > SEEDS_MAX {
            return Err(invalid(format!("more than {SEEDS_MAX} seeds")));
        }
        Ok(())
    }

    /// The address peers should use, given the address the socket was bound to.
    pub fn advertise_addr(&self, bound: SocketAddr) -> Result<SocketAddr, MembershipError> {
        let mut advertise = self.gossip_advertise.unwrap_or(bound);
        if advertise.port() == 0 {
            advertise.set_port(bound.port());
        }
        if advertise.ip().is_unspecified() {
            return Err(invalid(format!(
                "gossip address {advertise} cannot be advertised; set gossip_advertise"
            )));
        }
        Ok(advertise)
    }

    pub fn gossip_interval(&self) -> Duration {
        Duration::from_millis(self.gossip_interval_ms)
    }

    pub fn suspect_after(&self) -> Duration {
        Duration::from_millis(self.suspect_after_ms)
    }

    /// chitchat's configuration for this node, advertising `advertise`.
    pub fn to_chitchat(&self, advertise: SocketAddr, bound: SocketAddr) -> ChitchatConfig {
        let chitchat_id = ChitchatId::new(self.node_id.to_string(), self.generation, advertise);
        ChitchatConfig {
            chitchat_id,
            cluster_id: self.cluster_id.clone(),
            gossip_interval: self.gossip_interval(),
            listen_addr: bound,
            seed_nodes: self.seeds.iter().map(SocketAddr::to_string).collect(),
            failure_detector_config: self.failure_detector(),
            marked_for_deletion_grace_period: Duration::from_millis(TOMBSTONE_GRACE_MS),
            catchup_callback: None,
            extra_liveness_predicate: None,
            // V1 compresses digests but older peers cannot read it; all nodes run V0
            // until a rolling upgrade story exists.
            protocol_version: ProtocolVersion::V0,
        }
    }

    fn failure_detector(&self) -> FailureDetectorConfig {
        FailureDetectorConfig::new(
            self.phi_threshold,
            DETECTOR_SAMPLES_MAX,
            Duration::from_millis(DETECTOR_INTERVAL_MS_MAX),
            self.gossip_interval(),
            Duration::from_millis(self.dead_node_grace_ms),
        )
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

fn invalid(reason: String) -> MembershipError {
    MembershipError::InvalidConfig { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MembershipConfig {
        MembershipConfig::new(NodeId(1), "c", "127.0.0.1:0".parse().unwrap())
    }

    /// The defaults validate and map onto chitchat with the node id as gossip id.
    #[test]
    fn defaults_are_valid() {
        let config = config();
        config.validate().unwrap();
        let bound: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let chitchat = config.to_chitchat(bound, bound);
        assert_eq!(&*chitchat.chitchat_id.node_id, "1");
        assert_eq!(chitchat.chitchat_id.generation_id, config.generation);
        assert_eq!(chitchat.failure_detector_config.phi_threshold, 16.0);
    }

    /// Out-of-range timing and bad cluster ids are refused with a reason.
    #[test]
    fn refuses_bad_values() {
        let mut bad = config();
        bad.gossip_interval_ms = 0;
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.phi_threshold = f64::NAN;
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.suspect_after_ms = 10;
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.cluster_id = String::new();
        assert!(bad.validate().is_err());
    }

    /// The advertised address takes the bound port when none is given, and an
    /// unspecified IP is refused.
    #[test]
    fn advertise_address_rules() {
        let mut config = config();
        let bound: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(config.advertise_addr(bound).unwrap(), bound);
        config.gossip_advertise = Some("10.0.0.5:0".parse().unwrap());
        assert_eq!(
            config.advertise_addr(bound).unwrap(),
            "10.0.0.5:4000".parse().unwrap()
        );
        config.gossip_advertise = None;
        assert!(
            config
                .advertise_addr("0.0.0.0:4000".parse().unwrap())
                .is_err()
        );
    }
}
