//! What a stream lets through (pure): a key filter — an MQTT-style topic
//! filter on the key when it holds `+` or `#` (`city/+/air/#`: `+` is one
//! `/`-separated level, a final `#` any number of levels, none included),
//! else a key prefix — and per-key sampling (at most N records per key per
//! second, for dashboards).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Keys whose last delivery a sampler remembers; past it, it forgets all.
const SAMPLED_KEYS_MAX: usize = 65_536;

/// Checks a `key` filter: a `#` only as the whole last level, a `+` only as
/// a whole level.
pub fn check_key_filter(filter: &str) -> Result<(), String> {
    if !is_wildcard(filter) {
        return Ok(());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (index, level) in levels.iter().enumerate() {
        let last = index + 1 == levels.len();
        let bad_hash = level.contains('#') && !(last && *level == "#");
        let bad_plus = level.contains('+') && *level != "+";
        if bad_hash || bad_plus {
            return Err(format!(
                "key filter {filter:?}: '#' must be the whole last level and '+' a whole level"
            ));
        }
    }
    Ok(())
}

fn is_wildcard(filter: &str) -> bool {
    filter.contains('+') || filter.contains('#')
}

/// Whether `key` passes `filter` (checked with [`check_key_filter`]).
pub fn key_matches(filter: &str, key: Option<&[u8]>) -> bool {
    let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
        return false;
    };
    if !is_wildcard(filter) {
        return key.starts_with(filter);
    }
    let mut keys = key.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if keys.next().is_none() {
                    return false;
                }
            }
            exact => {
                if keys.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    keys.next().is_none()
}

/// At most one record per key per interval.
pub struct Sampler {
    interval: Duration,
    last: HashMap<Vec<u8>, Instant>,
}

impl Sampler {
    pub fn new(max_per_key_per_s: u32) -> Sampler {
        Sampler {
            interval: Duration::from_secs(1) / max_per_key_per_s.max(1),
            last: HashMap::new(),
        }
    }

    /// Whether a record with `key` may go at `now` (and notes it if so).
    pub fn admit(&mut self, key: Option<&[u8]>, now: Instant) -> bool {
        let key = key.unwrap_or_default();
        if let Some(last) = self.last.get(key)
            && now.duration_since(*last) < self.interval
        {
            return false;
        }
        if self.last.len() >= SAMPLED_KEYS_MAX {
            self.last.clear();
        }
        self.last.insert(key.to_vec(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MQTT wildcards match levels; a plain filter is a prefix.
    #[test]
    fn filters_match_like_mqtt_or_by_prefix() {
        let cases = [
            ("city/+/air/#", "city/north/air/s1", true),
            ("city/+/air/#", "city/north/air", true),
            ("city/+/air/#", "city/north/traffic/s1", false),
            ("city/+/air", "city/north/air/s1", false),
            ("city/+", "city/north", true),
            ("#", "anything/at/all", true),
            ("city/", "city/north/air", true),
            ("city/", "town/north", false),
        ];
        for (filter, key, expected) in cases {
            assert_eq!(
                key_matches(filter, Some(key.as_bytes())),
                expected,
                "{filter} {key}"
            );
        }
        assert!(
            !key_matches("city", None),
            "a keyless record matches no filter"
        );
    }

    /// Misplaced wildcards are refused.
    #[test]
    fn bad_filters_are_refused() {
        for bad in ["city/#/air", "city/a+", "city/#x"] {
            assert!(check_key_filter(bad).is_err(), "{bad}");
        }
        for good in ["city/+/air/#", "#", "plain-prefix"] {
            assert!(check_key_filter(good).is_ok(), "{good}");
        }
    }

    /// Two records per key per second at most, keys independent.
    #[test]
    fn sampler_limits_each_key() {
        let mut sampler = Sampler::new(2);
        let start = Instant::now();
        assert!(sampler.admit(Some(b"a"), start));
        assert!(!sampler.admit(Some(b"a"), start + Duration::from_millis(100)));
        assert!(sampler.admit(Some(b"b"), start + Duration::from_millis(100)));
        assert!(sampler.admit(Some(b"a"), start + Duration::from_millis(500)));
    }
}
