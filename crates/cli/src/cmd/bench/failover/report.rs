//! What `bench failover` prints: a line per trial as it ends, then either a
//! readable summary (failover times, and the loss, order and duplicate
//! verdicts of `verify`) or one JSON object (`--json`). It renders; the
//! caller decides the exit status.

use std::time::Duration;

use serde_json::json;

use super::local_cluster::NODE_COUNT;
use super::trial::TrialResult;
use super::verify::{Duplicate, OrderViolation, Placed, Verification};
use super::{FailoverArgs, TRIAL_SEQUENCE_SHIFT};

pub struct FailoverReport {
    pub trials: Vec<TrialResult>,
    pub failed_sends: u64,
    pub last_send_error: Option<String>,
    pub verification: Verification,
}

pub fn trial_line(number: u32, trial: &TrialResult) -> String {
    format!(
        "  trial {number:>3}: killed leader {}, node {} acknowledged after {:>8.1} ms; node {} caught up in {} ms",
        trial.killed_leader,
        trial.new_leader,
        millis(trial.failover),
        trial.killed_leader,
        trial.catch_up.as_millis()
    )
}

/// Failover times in ms: min, median, p90, max (nearest rank).
fn failover_stats(trials: &[TrialResult]) -> [f64; 4] {
    assert!(!trials.is_empty(), "statistics of no trials");
    let mut sorted: Vec<f64> = trials.iter().map(|trial| millis(trial.failover)).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = |quantile: f64| {
        let index = (quantile * sorted.len() as f64).ceil() as usize;
        sorted[index.clamp(1, sorted.len()) - 1]
    };
    [sorted[0], rank(0.5), rank(0.9), sorted[sorted.len() - 1]]
}

pub fn summary(report: &FailoverReport) -> String {
    let [min, median, p90, max] = failover_stats(&report.trials);
    let mut text = format!(
        "  failover    min {min:.1} ms  median {median:.1} ms  p90 {p90:.1} ms  max {max:.1} ms  \
         ({} trials, kill -> first ack)\n",
        report.trials.len(),
    );
    text.push_str(&verdict_lines(&report.verification));
    if report.failed_sends > 0 {
        text.push_str(&format!(
            "  not acked   {} sends failed (last error: {})\n",
            report.failed_sends,
            report.last_send_error.as_deref().unwrap_or("none")
        ));
    }
    text
}

/// The `lost`, `order` and `duplicates` lines, with examples of failures.
fn verdict_lines(verification: &Verification) -> String {
    let lost = if verification.lost == 0 {
        format!(
            "none: all {} acknowledged records are at their offsets ({} records in the log)",
            verification.acknowledged, verification.log_records
        )
    } else {
        format!(
            "{} of {} acknowledged records MISSING ({} records in the log), e.g. {}",
            verification.lost,
            verification.acknowledged,
            verification.log_records,
            listed(&verification.lost_examples, placed_text)
        )
    };
    let order = if verification.order_violations == 0 {
        "kept: acknowledged offsets rise in send order".to_string()
    } else {
        format!(
            "{} VIOLATIONS (a record sent later at an offset not above the one before), e.g. {}",
            verification.order_violations,
            listed(&verification.order_examples, violation_text)
        )
    };
    let duplicates = if verification.duplicates == 0 {
        "none: no record is in the log twice".to_string()
    } else {
        format!(
            "{} records written TWICE, e.g. {}",
            verification.duplicates,
            listed(&verification.duplicate_examples, duplicate_text)
        )
    };
    format!("  lost        {lost}\n  order       {order}\n  duplicates  {duplicates}\n")
}

fn listed<T>(examples: &[T], text: fn(&T) -> String) -> String {
    examples.iter().map(text).collect::<Vec<_>>().join("; ")
}

/// A probe sequence number as `trial:index` (see `TRIAL_SEQUENCE_SHIFT`).
fn sequence_text(sequence: u64) -> String {
    let index_mask = (1u64 << TRIAL_SEQUENCE_SHIFT) - 1;
    format!(
        "{}:{}",
        sequence >> TRIAL_SEQUENCE_SHIFT,
        sequence & index_mask
    )
}

fn placed_text(record: &Placed) -> String {
    format!(
        "record {} at offset {}",
        sequence_text(record.sequence),
        record.offset
    )
}

fn violation_text(violation: &OrderViolation) -> String {
    format!(
        "{} after {}",
        placed_text(&violation.later),
        placed_text(&violation.earlier)
    )
}

fn duplicate_text(duplicate: &Duplicate) -> String {
    format!(
        "record {} at offsets {} and {}",
        sequence_text(duplicate.sequence),
        duplicate.first_offset,
        duplicate.offset
    )
}

pub fn report_json(args: &FailoverArgs, report: &FailoverReport) -> serde_json::Value {
    let [min, median, p90, max] = failover_stats(&report.trials);
    let trials: Vec<serde_json::Value> = report
        .trials
        .iter()
        .map(|trial| {
            json!({
                "killed_leader": trial.killed_leader,
                "new_leader": trial.new_leader,
                "failover_ms": millis(trial.failover),
                "catch_up_ms": millis(trial.catch_up),
            })
        })
        .collect();
    let verification = &report.verification;
    json!({
        "mode": "failover",
        "settings": {
            "nodes": NODE_COUNT,
            "heartbeat_ms": args.heartbeat_ms,
            "election_timeout_ms": args.election_timeout_ms,
            "fsync": args.fsync,
            "rate": args.rate,
            "retry_backoff_max_ms": args.retry_backoff_max_ms,
            "acks": "quorum",
            "idempotent": true,
        },
        "trials": trials,
        "failover_ms": {"min": min, "median": median, "p90": p90, "max": max},
        "failed_sends": report.failed_sends,
        "loss": {
            "acknowledged": verification.acknowledged,
            "lost": verification.lost,
            "log_records": verification.log_records,
            "examples": verification.lost_examples.iter().map(placed_json).collect::<Vec<_>>(),
        },
        "order_violations": verification.order_violations,
        "order_violation_examples": verification.order_examples.iter().map(|violation| json!({
            "earlier": placed_json(&violation.earlier),
            "later": placed_json(&violation.later),
        })).collect::<Vec<_>>(),
        "duplicates": verification.duplicates,
        "duplicate_examples": verification.duplicate_examples.iter().map(|duplicate| json!({
            "sequence": duplicate.sequence,
            "first_offset": duplicate.first_offset,
            "offset": duplicate.offset,
        })).collect::<Vec<_>>(),
        "passed": verification.passed(),
    })
}

fn placed_json(record: &Placed) -> serde_json::Value {
    json!({"sequence": record.sequence, "offset": record.offset})
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verification: Verification) -> FailoverReport {
        let trial = TrialResult {
            killed_leader: 1,
            new_leader: 2,
            failover: Duration::from_millis(1_000),
            catch_up: Duration::from_millis(500),
        };
        FailoverReport {
            trials: vec![trial],
            failed_sends: 0,
            last_send_error: None,
            verification,
        }
    }

    /// A clean check reads as such: nothing lost, order kept, no duplicates.
    #[test]
    fn summary_of_a_clean_check() {
        let text = summary(&report(Verification {
            acknowledged: 10,
            log_records: 10,
            ..Verification::default()
        }));
        assert!(text.contains("median 1000.0 ms"), "{text}");
        assert!(text.contains("lost        none: all 10"), "{text}");
        assert!(text.contains("order       kept"), "{text}");
        assert!(text.contains("duplicates  none"), "{text}");
    }

    /// Failures are counted and named as trial:index with their offsets.
    #[test]
    fn summary_names_failures() {
        let first = Placed {
            sequence: (1 << TRIAL_SEQUENCE_SHIFT) + 4,
            offset: 9,
        };
        let second = Placed {
            sequence: (1 << TRIAL_SEQUENCE_SHIFT) + 5,
            offset: 8,
        };
        let text = summary(&report(Verification {
            acknowledged: 2,
            log_records: 3,
            order_violations: 1,
            order_examples: vec![OrderViolation {
                earlier: first,
                later: second,
            }],
            duplicates: 1,
            duplicate_examples: vec![Duplicate {
                sequence: second.sequence,
                first_offset: 8,
                offset: 10,
            }],
            ..Verification::default()
        }));
        assert!(
            text.contains("1 VIOLATIONS (a record sent later at an offset not above the one before), e.g. record 1:5 at offset 8 after record 1:4 at offset 9"),
            "{text}"
        );
        assert!(
            text.contains("1 records written TWICE, e.g. record 1:5 at offsets 8 and 10"),
            "{text}"
        );
    }
}
