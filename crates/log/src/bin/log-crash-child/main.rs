//! `log-crash-child DIR`: appends the crash test's workload to the log in
//! DIR with `fsync = always`, printing `BASE LAST` for each append once it
//! returned (acknowledged). It is meant to be killed with SIGKILL; it stops
//! by itself after `APPENDS_MAX` appends.

mod workload;

use std::io::Write;

use citystream_log::{FsyncPolicy, LogConfig, PartitionLog, Term};

/// Upper bound on appends per run (the test kills the child long before).
const APPENDS_MAX: usize = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: log-crash-child DIR")?;
    let config = LogConfig {
        segment_bytes_max: 256 * 1024,
        index_interval_bytes: 4096,
        fsync: FsyncPolicy::Always,
        retention_ms: None,
        retention_bytes: None,
        segment_roll_ms: None,
        compacted: false,
        compaction_lag_ms: 0,
        tombstone_retention_ms: 86_400_000,
    };
    let mut log = PartitionLog::open(dir, config)?;
    let mut stdout = std::io::stdout().lock();
    for _ in 0..APPENDS_MAX {
        let base_offset = log.next_offset().0;
        let mut batch = workload::batch_for(base_offset);
        let info = log.append(&mut batch, Term(workload::term_for(base_offset)))?;
        writeln!(stdout, "{} {}", info.base_offset, info.last_offset)?;
        stdout.flush()?;
    }
    Ok(())
}
