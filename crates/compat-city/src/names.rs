//! Which citystream topic holds a city topic (pure). The original takes any
//! string as a topic name; citystream names are 1–249 ASCII letters,
//! digits, `.`, `_` and `-`. A city name that is already a valid name of a
//! user topic is used as it is, so `citystream consume traffic` shows the
//! city topic `traffic`; any other name is stored in `city.<lowercase hex
//! of its UTF-8 bytes>`, which is valid and distinct per name.
//!
//! Besides the broker's `__` namespace, names under the prefixes of the
//! listeners' own state (`compat-city.`, `compat-queue.`, `citystream.`)
//! are mapped too: a city topic called `compat-city.subscriptions` or
//! `citystream.webhooks` must not write into a registry.
//!
//! Known collision, accepted: a city topic literally called
//! `city.<hex of another name>` shares that other name's topic.

use std::fmt::Write as _;

/// Longest citystream topic name, in characters (the broker's rule).
pub const TOPIC_NAME_CHARS_MAX: usize = 249;
/// Prefix of the topics of names that are not valid citystream names.
pub const MAPPED_PREFIX: &str = "city.";
/// Longest city name, in UTF-8 bytes, that can be mapped: its hex must fit
/// after [`MAPPED_PREFIX`].
pub const MAPPED_NAME_BYTES_MAX: usize = (TOPIC_NAME_CHARS_MAX - MAPPED_PREFIX.len()) / 2;

/// Prefixes a city topic may not write into as they are.
const RESERVED_PREFIXES: [&str; 4] = ["__", "compat-city.", "compat-queue.", "citystream."];

/// A city name too long to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTooLong {
    pub bytes: usize,
}

impl NameTooLong {
    /// The message the client gets.
    pub fn message(&self) -> String {
        format!(
            "Topic name too long: {} bytes; names that are not citystream topic names (ASCII letters, digits, '.', '_', '-') may have at most {MAPPED_NAME_BYTES_MAX} bytes",
            self.bytes
        )
    }
}

/// The citystream topic of city topic `city`.
pub fn native_topic(city: &str) -> Result<String, NameTooLong> {
    if is_plain_name(city) {
        return Ok(city.to_owned());
    }
    if city.len() > MAPPED_NAME_BYTES_MAX {
        return Err(NameTooLong { bytes: city.len() });
    }
    let mut native = String::with_capacity(MAPPED_PREFIX.len() + 2 * city.len());
    native.push_str(MAPPED_PREFIX);
    for byte in city.bytes() {
        write!(native, "{byte:02x}").expect("writing to a String never fails");
    }
    Ok(native)
}

/// True when `name` is a valid citystream user topic name outside the
/// reserved prefixes.
fn is_plain_name(name: &str) -> bool {
    let allowed = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    !name.is_empty()
        && name.len() <= TOPIC_NAME_CHARS_MAX
        && name.bytes().all(allowed)
        && name != "."
        && name != ".."
        && !RESERVED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Valid user topic names are kept, whatever their case or length.
    #[test]
    fn valid_names_are_kept() {
        let long = "a".repeat(TOPIC_NAME_CHARS_MAX);
        for name in [
            "traffic",
            "Air.Quality_zone-1",
            "city.lights",
            long.as_str(),
        ] {
            assert_eq!(native_topic(name).unwrap(), name);
        }
    }

    /// Everything else becomes `city.` and the lowercase hex of its UTF-8.
    #[test]
    fn other_names_are_hex_encoded() {
        let cases = [
            (
                "air quality/zone 1",
                "city.616972207175616c6974792f7a6f6e652031",
            ),
            ("Zürich", "city.5ac3bc72696368"),
            (".", "city.2e"),
            ("..", "city.2e2e"),
            (
                "__consumer_offsets",
                "city.5f5f636f6e73756d65725f6f666673657473",
            ),
            (
                "compat-city.subscriptions",
                "city.636f6d7061742d636974792e737562736372697074696f6e73",
            ),
            (
                "citystream.webhooks",
                "city.6369747973747265616d2e776562686f6f6b73",
            ),
            (
                "compat-queue.topics",
                "city.636f6d7061742d71756575652e746f70696373",
            ),
        ];
        for (city, native) in cases {
            assert_eq!(native_topic(city).unwrap(), native, "{city:?}");
        }
    }

    /// The mapped name always fits the broker's limit; a longer one is refused.
    #[test]
    fn mapped_names_fit_or_are_refused() {
        let longest = "é".repeat(MAPPED_NAME_BYTES_MAX / 2);
        let native = native_topic(&longest).unwrap();
        assert!(native.len() <= TOPIC_NAME_CHARS_MAX, "{}", native.len());
        let over = format!("{longest} ");
        assert_eq!(
            native_topic(&over),
            Err(NameTooLong {
                bytes: MAPPED_NAME_BYTES_MAX + 1
            })
        );
        let too_long_plain = "a".repeat(TOPIC_NAME_CHARS_MAX + 1);
        assert!(native_topic(&too_long_plain).is_err());
    }
}
