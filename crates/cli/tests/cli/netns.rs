//! Test hosts in network namespaces, from `scripts/netns-hosts` (a copy of
//! the project's shared `netns-hosts` tool, so a clean clone has it):
//! host `i` has address `10.77.0.i` on a bridge shared with the others, and
//! traffic between two hosts can be cut (silently dropped) and healed.
//! Needs root and iproute2 (nftables for silent drops); [`NetnsHosts::up`]
//! says why it cannot work, so a test can skip. The hosts are deleted on
//! drop, which also kills what still runs in them.

use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::process::Command;

const TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/netns-hosts");

pub struct NetnsHosts {
    prefix: String,
}

impl NetnsHosts {
    /// Creates `count` hosts named after this process (so parallel runs do
    /// not collide); `Err` says why that is not possible here.
    pub fn up(count: u32) -> Result<NetnsHosts, String> {
        if !Path::new(TOOL).exists() {
            return Err(format!("{TOOL} is not installed"));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".to_string());
        }
        // Interface names are at most 15 bytes: "tmp" + prefix + "h" + host.
        let hosts = NetnsHosts {
            prefix: format!("cs{}", std::process::id()),
        };
        hosts.tool(&["up", &count.to_string(), &hosts.prefix])?;
        Ok(hosts)
    }

    /// Host `host`'s address.
    pub fn address(&self, host: u32) -> String {
        format!("10.77.0.{host}")
    }

    /// What runs a program inside host `host`.
    pub fn launcher(&self, host: u32) -> Vec<String> {
        ["ip", "netns", "exec", &self.namespace(host)]
            .map(str::to_string)
            .to_vec()
    }

    /// Moves the calling thread into host `host`'s network namespace: its
    /// sockets, and the threads and processes it starts from now on, are
    /// in that host.
    pub fn enter(&self, host: u32) {
        let path = format!("/var/run/netns/{}", self.namespace(host));
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace file descriptor; only this thread moves.
        let result = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            result,
            0,
            "setns {path}: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Drops all traffic between hosts `a` and `b`, both ways.
    pub fn cut(&self, a: u32, b: u32) {
        self.tool(&["cut", &a.to_string(), &b.to_string()])
            .unwrap_or_else(|error| panic!("{error}"));
    }

    /// Undoes [`NetnsHosts::cut`].
    pub fn heal(&self, a: u32, b: u32) {
        self.tool(&["heal", &a.to_string(), &b.to_string()])
            .unwrap_or_else(|error| panic!("{error}"));
    }

    fn namespace(&self, host: u32) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn tool(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new(TOOL)
            .args(args)
            .env("NETNS_PREFIX", &self.prefix)
            .output()
            .map_err(|e| format!("run {TOOL}: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{TOOL} {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        if let Err(error) = self.tool(&["down", &self.prefix]) {
            eprintln!("{error}");
        }
    }
}
