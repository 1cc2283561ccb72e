//! What each route reads from a request (pure): the JSON bodies, the
//! query of the consumer routes, ids given as integers or numeric strings,
//! and a message's JSON text kept as sent. Anything that does not parse is
//! `None`, which the routes answer with the original's 500 "check params".

use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A producer or consumer id as the client gave it (any integer: negative
/// or huge ids are simply ids that do not exist), shown as the original
/// shows it in messages (`Producer:7 does not exist`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedId(i128);

impl RequestedId {
    /// The id, if it can name a registration at all.
    pub fn known(self) -> Option<u64> {
        u64::try_from(self.0).ok()
    }

    /// A decimal integer, optionally signed, with surrounding whitespace
    /// (what Python's `int()` takes for these ids).
    pub fn parse(text: &str) -> Option<RequestedId> {
        text.trim().parse::<i128>().ok().map(RequestedId)
    }

    /// A JSON integer or a string holding one.
    fn from_json(value: &Value) -> Option<RequestedId> {
        match value {
            Value::Number(number) => number
                .as_i64()
                .map(i128::from)
                .or_else(|| number.as_u64().map(i128::from))
                .map(RequestedId),
            Value::String(text) => RequestedId::parse(text),
            _ => None,
        }
    }
}

impl fmt::Display for RequestedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `body` if it is a JSON object: serde would also read a struct from an
/// array of its fields, which the original refuses.
fn object(body: &[u8]) -> Option<&[u8]> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    (*first == b'{').then_some(body)
}

/// `POST /topics`: the topic to create.
pub fn topic_name(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        topic_name: String,
    }
    let body: Body = serde_json::from_slice(object(body)?).ok()?;
    Some(body.topic_name)
}

/// `POST /producer/register` and `/consumer/register`: the topic.
pub fn register_topic(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        topic: String,
    }
    let body: Body = serde_json::from_slice(object(body)?).ok()?;
    Some(body.topic)
}

/// `POST /producer/produce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produce {
    pub topic: String,
    pub producer: RequestedId,
    /// The message's JSON text without insignificant whitespace.
    pub message: String,
}

pub fn produce(body: &[u8]) -> Option<Produce> {
    #[derive(Deserialize)]
    struct Body<'a> {
        topic: String,
        producer_id: Value,
        #[serde(borrow)]
        message: &'a RawValue,
    }
    let body: Body<'_> = serde_json::from_slice(object(body)?).ok()?;
    Some(Produce {
        topic: body.topic,
        producer: RequestedId::from_json(&body.producer_id)?,
        message: compact_json(body.message.get()),
    })
}

/// `GET /consumer/consume` and `/size`: `topic` and `consumer_id` (the
/// first of each; others ignored).
pub fn consumer_query(pairs: &[(String, String)]) -> Option<(String, RequestedId)> {
    let first = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, v)| v);
    let topic = first("topic")?.clone();
    let consumer = RequestedId::parse(first("consumer_id")?)?;
    Some((topic, consumer))
}

/// `json` (valid JSON text) without the whitespace between tokens: numbers,
/// strings, key order and duplicate keys stay exactly as sent, which
/// re-serializing a parsed value would not keep (big integers, `1.0`).
pub fn compact_json(json: &str) -> String {
    let mut compact = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        } else if c == '"' {
            in_string = true;
        }
        compact.push(c);
    }
    compact
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whitespace between tokens goes; whitespace and escapes inside strings stay.
    #[test]
    fn compact_json_keeps_strings_and_numbers() {
        let json = "{ \"a b\" : [ 1.0 , 123456789012345678901234567890 ],\n\t\"q\\\" x\": \"\\\\\" , \"z\":null }";
        assert_eq!(
            compact_json(json),
            r#"{"a b":[1.0,123456789012345678901234567890],"q\" x":"\\","z":null}"#
        );
        assert_eq!(compact_json(" \"  \" "), r#""  ""#);
    }

    /// Ids are integers or numeric strings; anything else does not parse.
    #[test]
    fn ids_parse_like_python_int() {
        let id = |json: &str| RequestedId::from_json(&serde_json::from_str(json).unwrap());
        assert_eq!(id("3"), Some(RequestedId(3)));
        assert_eq!(id("\" 12 \""), Some(RequestedId(12)));
        assert_eq!(id("\"-4\""), Some(RequestedId(-4)));
        assert_eq!(
            id("18446744073709551615"),
            Some(RequestedId(u64::MAX.into()))
        );
        for bad in ["1.5", "true", "null", "[1]", "\"x\"", "\"\"", "{}"] {
            assert_eq!(id(bad), None, "{bad}");
        }
        assert_eq!(RequestedId(-4).known(), None);
        assert_eq!(RequestedId(-4).to_string(), "-4");
    }

    /// The produce body needs all three fields with the right types; the
    /// message may be any JSON value, null included.
    #[test]
    fn produce_body() {
        let parsed =
            produce(br#"{"topic":"t","producer_id":"2","message": {"b": 1, "a": [true]}}"#);
        assert_eq!(
            parsed,
            Some(Produce {
                topic: "t".to_owned(),
                producer: RequestedId(2),
                message: r#"{"b":1,"a":[true]}"#.to_owned(),
            })
        );
        let null = produce(br#"{"topic":"t","producer_id":0,"message":null}"#);
        assert_eq!(null.map(|p| p.message), Some("null".to_owned()));
        for bad in [
            &br#"{"topic":"t","producer_id":0}"#[..],
            br#"{"topic":1,"producer_id":0,"message":1}"#,
            br#"{"topic":"t","producer_id":1.5,"message":1}"#,
            br#"["t",0,1]"#,
            br#"  ["t",0,1]"#,
            b"\xff",
        ] {
            assert_eq!(produce(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// Only objects are read, however serde could read the fields.
    #[test]
    fn bodies_are_objects() {
        assert_eq!(topic_name(br#" {"topic_name":"t"}"#), Some("t".to_owned()));
        assert_eq!(topic_name(br#"["t"]"#), None);
        assert_eq!(register_topic(br#"["t"]"#), None);
        assert_eq!(register_topic(b"   "), None);
    }

    /// The consumer query takes the first of each parameter and needs both.
    #[test]
    fn consumer_query_needs_both() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let both = pairs(&[("topic", "t"), ("consumer_id", "1"), ("topic", "u")]);
        assert_eq!(
            consumer_query(&both),
            Some(("t".to_owned(), RequestedId(1)))
        );
        assert_eq!(consumer_query(&pairs(&[("topic", "t")])), None);
        assert_eq!(
            consumer_query(&pairs(&[("topic", "t"), ("consumer_id", "x")])),
            None
        );
    }
}
