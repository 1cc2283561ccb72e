//! Topic name and topic filter syntax (§4.7, both versions) and shared
//! subscriptions (`$share/{group}/{filter}`, §4.8.2), as pure functions on
//! `&str`: the decoder calls them, and the broker's subscription matcher
//! calls [`topic_matches`]. UTF-8 well-formedness is the caller's (a `&str`
//! already is); this module checks what is left: emptiness, length, U+0000
//! and wildcard placement. It knows nothing of `$SYS` or other reserved
//! prefixes beyond the matching rule [MQTT-4.7.2-1].

/// The largest topic (a UTF-8 string with a 16-bit length prefix, §1.5.4).
const MAX_TOPIC_BYTES: usize = 65_535;
const SHARE_PREFIX: &str = "$share/";

/// Why a topic name or filter is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Topic names and filters are at least one character [MQTT-4.7.3-1].
    #[error("topic is empty")]
    Empty,
    #[error("topic is {length_bytes} bytes, more than 65535")]
    TooLong { length_bytes: usize },
    /// U+0000 is never allowed in a string [MQTT-4.7.3-2].
    #[error("topic contains U+0000")]
    NullChar,
    /// A topic name (as opposed to a filter) has no wildcards [MQTT-3.3.2-2].
    #[error("topic name contains a wildcard")]
    WildcardInName,
    /// `#` must be the last character, alone in its level [MQTT-4.7.1-1].
    #[error("'#' is not alone in the last level")]
    MisplacedMultiLevelWildcard,
    /// `+` must occupy a whole level [MQTT-4.7.1-2].
    #[error("'+' is not alone in its level")]
    MisplacedSingleLevelWildcard,
    /// A ShareName is non-empty and has no `/`, `+` or `#` [MQTT-4.8.2-1, 4.8.2-2].
    #[error("invalid share name")]
    InvalidShareName,
    /// `$share/{name}` must be followed by `/` and a topic filter [MQTT-4.8.2-2].
    #[error("shared subscription without a topic filter")]
    MissingSharedFilter,
}

/// The parts of a shared subscription's filter `$share/{group}/{filter}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong {
            length_bytes: topic.len(),
        });
    }
    if topic.contains('\0') {
        return Err(TopicError::NullChar);
    }
    Ok(())
}

/// Checks a topic name (PUBLISH, Will): non-empty, ≤ 65,535 bytes, no U+0000,
/// no `+` or `#`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong {
            length_bytes: name.len(),
        });
    }
    // One pass over the bytes (every publish is checked): the characters
    // looked for are ASCII, and no byte of a multi-byte UTF-8 character is.
    let mut wildcard = false;
    for &byte in name.as_bytes() {
        match byte {
            0 => return Err(TopicError::NullChar),
            b'+' | b'#' => wildcard = true,
            _ => {}
        }
    }
    match wildcard {
        true => Err(TopicError::WildcardInName),
        false => Ok(()),
    }
}

/// Checks a topic filter (SUBSCRIBE, UNSUBSCRIBE), including the
/// `$share/{group}/{filter}` form (via [`parse_shared`]).
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    match parse_shared(filter)? {
        Some(_) => Ok(()),
        None => validate_plain_filter(filter),
    }
}

/// Wildcard placement in a filter that is not `$share/`.
fn validate_plain_filter(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        if level.contains('#') && (level != "#" || !is_last) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Splits `$share/{group}/{filter}`; `Ok(None)` if `filter` does not start
/// with `$share/`. The inner filter is validated as a plain filter.
pub fn parse_shared(filter: &str) -> Result<Option<SharedFilter<'_>>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        return Ok(None);
    };
    let Some((group, inner)) = rest.split_once('/') else {
        // "$share/group" alone: the name must be followed by "/" and a filter.
        return Err(if rest.is_empty() || rest.contains(['+', '#']) {
            TopicError::InvalidShareName
        } else {
            TopicError::MissingSharedFilter
        });
    };
    if group.is_empty() || group.contains(['+', '#']) {
        return Err(TopicError::InvalidShareName);
    }
    if inner.is_empty() {
        return Err(TopicError::MissingSharedFilter);
    }
    validate_plain_filter(inner)?;
    Ok(Some(SharedFilter {
        group,
        filter: inner,
    }))
}

/// Whether `filter` matches topic `name` (§4.7): `+` matches exactly one
/// level, `#` this level and all below, including the parent ("a/#" matches
/// "a"); a filter starting with a wildcard never matches a name starting with
/// `$` [MQTT-4.7.2-1]. Both are assumed valid; pass the inner filter of a
/// shared subscription, not the `$share/` form.
pub fn topic_matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    // Split as bytes: every delivery matches its subscriptions, and '/'
    // is ASCII (no byte of a multi-byte UTF-8 character).
    let mut filter_levels = filter.as_bytes().split(|&byte| byte == b'/');
    let mut name_levels = name.as_bytes().split(|&byte| byte == b'/');
    loop {
        match (filter_levels.next(), name_levels.next()) {
            (Some(b"#"), _) => return true,
            (Some(b"+"), Some(_)) => {}
            (Some(filter_level), Some(name_level)) if filter_level == name_level => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The §4.7 examples: wildcard placement accepted and refused.
    #[test]
    fn filter_syntax_follows_the_spec_examples() {
        for good in [
            "#",
            "+",
            "sport/#",
            "sport/tennis/+",
            "+/tennis/#",
            "/+",
            "+/+",
            "a//b",
        ] {
            assert_eq!(validate_topic_filter(good), Ok(()), "{good}");
        }
        let bad = [
            ("sport/tennis#", TopicError::MisplacedMultiLevelWildcard),
            (
                "sport/tennis/#/ranking",
                TopicError::MisplacedMultiLevelWildcard,
            ),
            ("sport+", TopicError::MisplacedSingleLevelWildcard),
            ("", TopicError::Empty),
            ("a\0b", TopicError::NullChar),
        ];
        for (filter, error) in bad {
            assert_eq!(validate_topic_filter(filter), Err(error), "{filter}");
        }
    }

    /// Topic names refuse wildcards and emptiness but accept spaces and `$`.
    #[test]
    fn name_syntax() {
        assert_eq!(validate_topic_name("$SYS/a b/"), Ok(()));
        assert_eq!(validate_topic_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("#"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        let long = "x".repeat(MAX_TOPIC_BYTES + 1);
        assert!(matches!(
            validate_topic_name(&long),
            Err(TopicError::TooLong { .. })
        ));
    }

    /// `$share/{group}/{filter}` splits, and bad share names are refused.
    #[test]
    fn shared_filters() {
        assert_eq!(
            parse_shared("$share/g1/a/+"),
            Ok(Some(SharedFilter {
                group: "g1",
                filter: "a/+"
            }))
        );
        assert_eq!(parse_shared("$SYS/x"), Ok(None));
        assert_eq!(parse_shared("$share//a"), Err(TopicError::InvalidShareName));
        assert_eq!(
            parse_shared("$share/g+/a"),
            Err(TopicError::InvalidShareName)
        );
        assert_eq!(
            parse_shared("$share/g"),
            Err(TopicError::MissingSharedFilter)
        );
        assert_eq!(
            parse_shared("$share/g/"),
            Err(TopicError::MissingSharedFilter)
        );
        assert_eq!(
            validate_topic_filter("$share/g/a#"),
            Err(TopicError::MisplacedMultiLevelWildcard)
        );
    }

    /// Matching per §4.7.1 and the `$` rule of §4.7.2.
    #[test]
    fn matching() {
        let cases = [
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            ("sport/#", "sport", true),
            ("#", "a/b/c", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("#", "$SYS/x", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("$SYS/#", "$SYS/monitor/Clients", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/b", "a/b/c", false),
        ];
        for (filter, name, expected) in cases {
            assert_eq!(topic_matches(filter, name), expected, "{filter} vs {name}");
        }
    }
}
