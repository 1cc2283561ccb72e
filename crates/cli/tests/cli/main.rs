//! Real-process tests of the `citystream` binary: each test starts its own
//! broker child on a free port (see `harness`) and drives the CLI against it.

mod bench_failover;
mod broker;
mod cluster;
mod compat_city;
mod compat_queue;
mod compose;
mod demo;
mod failover;
mod group;
mod group_cluster;
mod harness;
mod help;
mod mqtt;
mod mqtt_cluster;
mod netns;
mod ordered_produce;
mod produce_consume;
mod sim;
mod sim_mqtt_failover;
mod sse_failover;
mod test_cluster;
mod topic;
mod webhook_failover;
mod workload;
