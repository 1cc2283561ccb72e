//! Where MQTT messages live in the log (decision 0016): the stream topic of
//! an MQTT topic name, and the stream topics a subscription's filter has to
//! read. Pure: no I/O; the caller passes the existing topics.
//!
//! A [`TopicMap`] is an ordered list of rules `FILTER=STREAM_TOPIC` (the
//! first rule whose filter matches a name wins) and a default for names no
//! rule matches: the prefix (`mqtt.`) followed by the name's first level,
//! with every character a stream topic name cannot hold replaced by `_`
//! (`city/north/air/7` → `mqtt.city`). The record key is always the full
//! MQTT topic name, so two first levels that map to one stream topic stay
//! apart for subscribers, and one device's messages keep their order (one
//! key, one partition).

use citystream_mqtt_codec::{topic_matches, validate_topic_filter};

/// Longest stream topic name (the broker's rule).
const STREAM_TOPIC_CHARS_MAX: usize = 249;

/// A mapping rule or prefix that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("mapping {0:?} is not FILTER=TOPIC")]
    NotARule(String),
    #[error("mapping filter {filter:?} is not a valid MQTT topic filter")]
    BadFilter { filter: String },
    #[error(
        "stream topic {0:?}: names are 1-249 characters of ASCII letters, digits, '.', '_' and '-', not starting with '__'"
    )]
    BadStreamTopic(String),
}

/// One rule: names matching `filter` are stored in `stream_topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    pub filter: String,
    pub stream_topic: String,
}

impl TopicRule {
    /// Parses `FILTER=TOPIC` (as given to `--mqtt-map`).
    pub fn parse(text: &str) -> Result<TopicRule, MappingError> {
        let (filter, stream_topic) = text
            .split_once('=')
            .ok_or_else(|| MappingError::NotARule(text.to_owned()))?;
        if validate_topic_filter(filter).is_err() || filter.starts_with("$share/") {
            return Err(MappingError::BadFilter {
                filter: filter.to_owned(),
            });
        }
        check_stream_topic(stream_topic)?;
        Ok(TopicRule {
            filter: filter.to_owned(),
            stream_topic: stream_topic.to_owned(),
        })
    }
}

/// The rules and the default prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMap {
    rules: Vec<TopicRule>,
    prefix: String,
}

impl Default for TopicMap {
    fn default() -> Self {
        TopicMap {
            rules: Vec::new(),
            prefix: "mqtt.".to_owned(),
        }
    }
}

impl TopicMap {
    /// A map with `rules` (first match wins) before the default `prefix`.
    pub fn new(rules: Vec<TopicRule>, prefix: &str) -> Result<TopicMap, MappingError> {
        check_stream_topic(&format!("{prefix}x"))?;
        Ok(TopicMap {
            rules,
            prefix: prefix.to_owned(),
        })
    }

    /// The stream topic that stores messages published to `name` (a valid
    /// MQTT topic name).
    pub fn stream_topic(&self, name: &str) -> String {
        match self
            .rules
            .iter()
            .find(|rule| topic_matches(&rule.filter, name))
        {
            Some(rule) => rule.stream_topic.clone(),
            None => self.default_topic(name.split('/').next().unwrap_or_default()),
        }
    }

    /// The stream topics that can hold names matching `filter` (a valid,
    /// non-shared filter). `existing` lists the stream topics there are: a
    /// filter whose first level is a wildcard reads every default-mapped
    /// one among them.
    pub fn stream_topics_for(&self, filter: &str, existing: &[String]) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        let mut add = |topic: String| {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        };
        for rule in &self.rules {
            if filters_overlap(&rule.filter, filter) {
                add(rule.stream_topic.clone());
            }
        }
        let first = filter.split('/').next().unwrap_or_default();
        if first == "+" || first == "#" {
            for topic in existing {
                if topic.starts_with(&self.prefix) && topic.len() > self.prefix.len() {
                    add(topic.clone());
                }
            }
        } else {
            add(self.default_topic(first));
        }
        topics
    }

    /// Whether records of `stream_topic` can be MQTT messages (a rule's
    /// topic or a default-mapped one).
    pub fn is_mapped(&self, stream_topic: &str) -> bool {
        stream_topic.starts_with(&self.prefix)
            || self
                .rules
                .iter()
                .any(|rule| rule.stream_topic == stream_topic)
    }

    fn default_topic(&self, first_level: &str) -> String {
        let room = STREAM_TOPIC_CHARS_MAX.saturating_sub(self.prefix.len());
        let mut topic =
            String::with_capacity(self.prefix.len() + first_level.len().min(room).max(1));
        topic.push_str(&self.prefix);
        for c in first_level.chars().take(room) {
            topic.push(match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
                _ => '_',
            });
        }
        if topic.len() == self.prefix.len() {
            topic.push('_');
        }
        topic
    }
}

/// Whether some topic name matches both filters.
pub fn filters_overlap(a: &str, b: &str) -> bool {
    let (a_levels, b_levels): (Vec<&str>, Vec<&str>) =
        (a.split('/').collect(), b.split('/').collect());
    // Names starting with '$' are matched by no filter that starts with a
    // wildcard [MQTT-4.7.2-1].
    let wildcard = |level: &str| level == "+" || level == "#";
    let dollar = |level: &str| level.starts_with('$');
    if (wildcard(a_levels[0]) && dollar(b_levels[0]))
        || (wildcard(b_levels[0]) && dollar(a_levels[0]))
    {
        return false;
    }
    let mut index = 0;
    loop {
        match (a_levels.get(index), b_levels.get(index)) {
            (Some(&"#"), _) | (_, Some(&"#")) => return true,
            (None, None) => return true,
            // "a/#" also matches "a": one filter ended, the other ends in '#'.
            (None, Some(_)) => return b_levels[index..] == ["#"],
            (Some(_), None) => return a_levels[index..] == ["#"],
            (Some(x), Some(y)) if *x == "+" || *y == "+" || x == y => index += 1,
            _ => return false,
        }
    }
}

fn check_stream_topic(name: &str) -> Result<(), MappingError> {
    let allowed = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    let ok = !name.is_empty()
        && name.len() <= STREAM_TOPIC_CHARS_MAX
        && name.bytes().all(allowed)
        && name != "."
        && name != ".."
        && !name.starts_with("__");
    if ok {
        Ok(())
    } else {
        Err(MappingError::BadStreamTopic(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn city_map() -> TopicMap {
        let rules = vec![
            TopicRule::parse("city/+/air/#=city.air").unwrap(),
            TopicRule::parse("city/+/traffic/#=city.traffic").unwrap(),
        ];
        TopicMap::new(rules, "mqtt.").unwrap()
    }

    /// A name goes to the first rule that matches it, else to the prefix
    /// plus its first level, made a valid stream topic name.
    #[test]
    fn names_map_to_rules_then_to_their_first_level() {
        let map = city_map();
        assert_eq!(map.stream_topic("city/north/air/7"), "city.air");
        assert_eq!(map.stream_topic("city/north/traffic/2"), "city.traffic");
        assert_eq!(map.stream_topic("city/north/weather"), "mqtt.city");
        assert_eq!(map.stream_topic("home"), "mqtt.home");
        assert_eq!(map.stream_topic("Häuser straße/1"), "mqtt.H_user_stra_e");
        assert_eq!(map.stream_topic("/leading/slash"), "mqtt._");
        let long = "x".repeat(400);
        assert_eq!(map.stream_topic(&long).len(), STREAM_TOPIC_CHARS_MAX);
    }

    /// A filter reads the rule topics it overlaps and its first level's
    /// default topic; a wildcard first level reads every default topic.
    #[test]
    fn filters_read_the_topics_that_can_hold_their_names() {
        let map = city_map();
        let existing = vec![
            "mqtt.city".to_owned(),
            "mqtt.home".to_owned(),
            "orders".to_owned(),
        ];
        assert_eq!(
            map.stream_topics_for("city/#", &existing),
            ["city.air", "city.traffic", "mqtt.city"]
        );
        assert_eq!(
            map.stream_topics_for("city/+/air/7", &existing),
            ["city.air", "mqtt.city"]
        );
        assert_eq!(
            map.stream_topics_for("city/x/weather", &existing),
            ["mqtt.city"]
        );
        assert_eq!(
            map.stream_topics_for("+/+/air/#", &existing),
            ["city.air", "mqtt.city", "mqtt.home"]
        );
        assert_eq!(map.stream_topics_for("home/lamp", &existing), ["mqtt.home"]);
    }

    /// Overlap follows the matching rules, '#' covering its parent level
    /// and wildcards never reaching '$' names.
    #[test]
    fn overlap_of_filters() {
        assert!(filters_overlap("a/+/c", "a/b/#"));
        assert!(filters_overlap("a/#", "a"));
        assert!(filters_overlap("#", "x/y"));
        assert!(!filters_overlap("a/+/c", "a/b/d"));
        assert!(!filters_overlap("a/b", "a/b/c"));
        assert!(!filters_overlap("#", "$SYS/x"));
        assert!(!filters_overlap("+/x", "$SYS/x"));
        assert!(filters_overlap("$SYS/#", "$SYS/x"));
    }

    /// Bad rules and prefixes are refused with what is wrong.
    #[test]
    fn bad_rules_are_refused() {
        assert_eq!(
            TopicRule::parse("city/#"),
            Err(MappingError::NotARule("city/#".to_owned()))
        );
        assert!(matches!(
            TopicRule::parse("city/#/x=t"),
            Err(MappingError::BadFilter { .. })
        ));
        assert!(matches!(
            TopicRule::parse("$share/g/a=t"),
            Err(MappingError::BadFilter { .. })
        ));
        assert!(matches!(
            TopicRule::parse("a=bad topic"),
            Err(MappingError::BadStreamTopic(_))
        ));
        assert!(matches!(
            TopicRule::parse("a=__internal"),
            Err(MappingError::BadStreamTopic(_))
        ));
        assert!(TopicMap::new(Vec::new(), "bad prefix/").is_err());
    }
}
