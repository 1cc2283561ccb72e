//! Topic and group name rules. A topic name becomes a directory name, so the
//! rules keep it portable and unambiguous on every filesystem; this module
//! owns only the rules, not where names are used.

use crate::BrokerError;

/// Longest topic name, in characters (as Kafka: leaves room in a 255-byte
/// filename for suffixes).
pub const TOPIC_NAME_CHARS_MAX: usize = 249;

/// Prefix reserved for topics the broker creates for itself.
pub const INTERNAL_TOPIC_PREFIX: &str = "__";

/// Longest consumer group name, in bytes.
pub const GROUP_NAME_BYTES_MAX: usize = 255;

/// The rule stated to users whose topic name breaks it.
pub const TOPIC_NAME_RULE: &str =
    "topic names are 1-249 characters of ASCII letters, digits, '.', '_' and '-'";
const DOTS_RULE: &str = "topic names '.' and '..' are not allowed";
const INTERNAL_RULE: &str =
    "topic names starting with '__' are reserved for the broker's internal topics";

/// Checks a name a user asks to create or write to: the character rule,
/// no `.`/`..`, and no internal `__` prefix.
pub fn validate_user_topic_name(name: &str) -> Result<(), BrokerError> {
    validate_topic_name(name)?;
    if is_internal_topic(name) {
        return Err(invalid(name, INTERNAL_RULE));
    }
    Ok(())
}

/// Checks the character rule and `.`/`..` only (internal names pass).
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let allowed = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    if name.is_empty() || name.len() > TOPIC_NAME_CHARS_MAX || !name.bytes().all(allowed) {
        return Err(invalid(name, TOPIC_NAME_RULE));
    }
    if name == "." || name == ".." {
        return Err(invalid(name, DOTS_RULE));
    }
    Ok(())
}

/// True for names in the broker's reserved `__` namespace.
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with(INTERNAL_TOPIC_PREFIX)
}

/// Group names are opaque to the broker but bounded, and never empty.
pub fn validate_group_name(group: &str) -> Result<(), BrokerError> {
    if group.is_empty() || group.len() > GROUP_NAME_BYTES_MAX {
        return Err(BrokerError::InvalidRequest(format!(
            "group names are 1-{GROUP_NAME_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

fn invalid(name: &str, rule: &'static str) -> BrokerError {
    // Echo at most a bounded prefix of a hostile name back to the user.
    let shown: String = name.chars().take(TOPIC_NAME_CHARS_MAX + 1).collect();
    BrokerError::InvalidTopicName { name: shown, rule }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name in the table is accepted or refused as the rule says.
    #[test]
    fn topic_name_table() {
        let long_ok = "a".repeat(249);
        let long_bad = "a".repeat(250);
        let cases: &[(&str, bool)] = &[
            ("orders", true),
            ("city.air-quality_v2", true),
            ("A-Z.0-9_", true),
            (&long_ok, true),
            ("...", true),
            (".hidden", true),
            ("", false),
            (&long_bad, false),
            ("with space", false),
            ("a/b", false),
            ("a\\b", false),
            ("caf\u{e9}", false),
            ("\u{1F600}", false),
            ("tab\t", false),
            ("nul\0", false),
            ("colon:", false),
            (".", false),
            ("..", false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_user_topic_name(name).is_ok(), *ok, "{name:?}");
        }
    }

    /// A refused name carries the rule in its message, so users learn it.
    #[test]
    fn refusal_states_the_rule() {
        let message = validate_user_topic_name("bad name")
            .unwrap_err()
            .to_string();
        assert!(message.contains(TOPIC_NAME_RULE), "{message}");
        let message = validate_user_topic_name("..").unwrap_err().to_string();
        assert!(message.contains("'..'"), "{message}");
    }

    /// `__` names are valid internally but refused to users with their own rule.
    #[test]
    fn internal_prefix_is_reserved() {
        assert!(validate_topic_name("__consumer_offsets").is_ok());
        let err = validate_user_topic_name("__consumer_offsets").unwrap_err();
        assert!(matches!(err, BrokerError::InvalidTopicName { rule, .. } if rule == INTERNAL_RULE));
        assert!(validate_user_topic_name("_single").is_ok());
    }

    /// Group names must be non-empty and bounded.
    #[test]
    fn group_name_bounds() {
        assert!(validate_group_name("g").is_ok());
        assert!(validate_group_name("").is_err());
        assert!(validate_group_name(&"g".repeat(256)).is_err());
    }
}
