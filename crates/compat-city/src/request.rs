//! What `/publish`, `/subscribe` and `/unsubscribe` read from their JSON
//! bodies (pure). A body must be one JSON object (whatever its content
//! type); anything else is refused with a message saying why, before
//! anything is written. Fields are as lenient as the original's Python
//! where that is harmless (an empty topic is a missing one, an unknown
//! priority is low) and strict where a guess would store the wrong thing
//! (a topic or URL that is not a string).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json::compact_ascii;

/// Why a body was refused; the text is the answer's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Refusal {
    fn new(message: impl Into<String>) -> Refusal {
        Refusal(message.into())
    }
}

/// A message's priority, kept as the record header `priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    High,
    Low,
}

impl Priority {
    pub fn header_value(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Low => "low",
        }
    }

    /// `0` (any number equal to zero, as Python's `==` compares) or
    /// `"high"` is high; anything else, or nothing, is low.
    fn of(raw: Option<&RawValue>) -> Priority {
        let high = match raw.map(|raw| serde_json::from_str::<Value>(raw.get())) {
            Some(Ok(Value::Number(number))) => number.as_f64() == Some(0.0),
            Some(Ok(Value::String(text))) => text == "high",
            _ => false,
        };
        match high {
            true => Priority::High,
            false => Priority::Low,
        }
    }
}

/// `POST /publish`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub priority: Priority,
    /// The whole object as posted, compact ASCII JSON: the record's value.
    pub object: String,
}

pub fn publish(body: &[u8]) -> Result<Publish, Refusal> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        topic: Option<&'a RawValue>,
        #[serde(borrow)]
        priority: Option<&'a RawValue>,
    }
    let text = object_text(body)?;
    let fields: Body<'_> = serde_json::from_str(text).map_err(invalid_json)?;
    let topic = string_field("topic", fields.topic)?
        .filter(|topic| !topic.is_empty())
        .ok_or_else(|| Refusal::new("No topic specified"))?;
    Ok(Publish {
        topic,
        priority: Priority::of(fields.priority),
        object: compact_ascii(text),
    })
}

/// How a subscriber is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The subscriber reads `GET /stream/<topic>` itself; the subscription
    /// is only recorded.
    Sse,
    /// Each message is POSTed to the URL (a citystream webhook).
    Webhook,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sse => "sse",
            Mode::Webhook => "webhook",
        }
    }
}

/// `POST /subscribe` and `POST /unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: String,
    pub mode: Mode,
    /// Always present for a webhook.
    pub url: Option<String>,
}

/// Checks in the original's order: topic, mode (default `sse`), then the
/// URL a webhook needs.
pub fn subscription(body: &[u8]) -> Result<Subscription, Refusal> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        topic: Option<&'a RawValue>,
        #[serde(borrow)]
        mode: Option<&'a RawValue>,
        #[serde(borrow)]
        url: Option<&'a RawValue>,
    }
    let text = object_text(body)?;
    let fields: Body<'_> = serde_json::from_str(text).map_err(invalid_json)?;
    let topic = string_field("topic", fields.topic)?
        .filter(|topic| !topic.is_empty())
        .ok_or_else(|| Refusal::new("Missing topic"))?;
    let mode = mode(fields.mode)?;
    let url = string_field("url", fields.url)?;
    if mode == Mode::Webhook && url.as_deref().is_none_or(str::is_empty) {
        return Err(Refusal::new("Missing URL for webhook subscription"));
    }
    Ok(Subscription { topic, mode, url })
}

fn mode(raw: Option<&RawValue>) -> Result<Mode, Refusal> {
    let Some(raw) = raw else {
        return Ok(Mode::Sse);
    };
    match serde_json::from_str::<String>(raw.get()).as_deref() {
        Ok("sse") => Ok(Mode::Sse),
        Ok("webhook") => Ok(Mode::Webhook),
        Ok(other) => Err(Refusal::new(format!(
            "Unsupported subscription mode: {other}"
        ))),
        Err(_) => Err(Refusal::new(format!(
            "Unsupported subscription mode: {}",
            raw.get()
        ))),
    }
}

/// The body as UTF-8 text, if it is a JSON object (serde would also read
/// a struct from an array of its fields).
fn object_text(body: &[u8]) -> Result<&str, Refusal> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Refusal::new("Invalid JSON body: it is not UTF-8"))?;
    match text.trim_start().chars().next() {
        Some('{') => Ok(text),
        Some(_) => match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Err(Refusal::new("Invalid JSON body: expected a JSON object")),
            Err(error) => Err(invalid_json(error)),
        },
        None => Err(Refusal::new("Invalid JSON body: the body is empty")),
    }
}

fn invalid_json(error: serde_json::Error) -> Refusal {
    Refusal::new(format!("Invalid JSON body: {error}"))
}

/// A field that must be a string when given (`null` is not given).
fn string_field(name: &str, raw: Option<&RawValue>) -> Result<Option<String>, Refusal> {
    raw.map(|raw| serde_json::from_str::<String>(raw.get()))
        .transpose()
        .map_err(|_| Refusal::new(format!("Invalid JSON body: '{name}' must be a string")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored object is the whole body, compact ASCII, as sent.
    #[test]
    fn publish_keeps_the_whole_object() {
        let body = "{ \"topic\": \"air\", \"data\": {\"pm25\": 12.0, \"city\": \"Zürich\"}, \"priority\": \"high\" }";
        let publish = publish(body.as_bytes()).unwrap();
        assert_eq!(publish.topic, "air");
        assert_eq!(publish.priority, Priority::High);
        assert_eq!(
            publish.object,
            r#"{"topic":"air","data":{"pm25":12.0,"city":"Z\u00fcrich"},"priority":"high"}"#
        );
    }

    /// 0 and "high" are high; anything else, or nothing, is low.
    #[test]
    fn priorities() {
        let cases = [
            (r#""priority":0,"#, Priority::High),
            (r#""priority":0.0,"#, Priority::High),
            (r#""priority":"high","#, Priority::High),
            (r#""priority":1,"#, Priority::Low),
            (r#""priority":2,"#, Priority::Low),
            (r#""priority":"low","#, Priority::Low),
            (r#""priority":"HIGH","#, Priority::Low),
            (r#""priority":null,"#, Priority::Low),
            (r#""priority":[0],"#, Priority::Low),
            ("", Priority::Low),
        ];
        for (field, expected) in cases {
            let body = format!(r#"{{{field}"topic":"t"}}"#);
            assert_eq!(
                publish(body.as_bytes()).unwrap().priority,
                expected,
                "{body}"
            );
        }
    }

    /// Refusals name what is wrong.
    #[test]
    fn publish_refusals() {
        let refused = |body: &str| publish(body.as_bytes()).unwrap_err().0;
        assert_eq!(refused(r#"{"data":{}}"#), "No topic specified");
        assert_eq!(refused(r#"{"topic":""}"#), "No topic specified");
        assert_eq!(refused(r#"{"topic":null}"#), "No topic specified");
        assert_eq!(
            refused(r#"{"topic":5}"#),
            "Invalid JSON body: 'topic' must be a string"
        );
        assert_eq!(
            refused(r#"["t"]"#),
            "Invalid JSON body: expected a JSON object"
        );
        assert_eq!(refused(""), "Invalid JSON body: the body is empty");
        assert!(refused("{nope").starts_with("Invalid JSON body: key must be a string"));
        assert!(refused("nope").starts_with("Invalid JSON body: expected ident"));
        assert!(refused(r#"{"topic":"a"} x"#).starts_with("Invalid JSON body: trailing"));
        assert!(refused(r#"{"topic":"a","topic":"b"}"#).contains("duplicate field"));
        assert_eq!(
            publish(b"{\"topic\":\"\xff\"}").unwrap_err().0,
            "Invalid JSON body: it is not UTF-8"
        );
    }

    /// Mode defaults to sse; a webhook needs a URL; checks come in order.
    #[test]
    fn subscriptions() {
        let read = |body: &str| subscription(body.as_bytes());
        assert_eq!(
            read(r#"{"topic":"t"}"#),
            Ok(Subscription {
                topic: "t".to_owned(),
                mode: Mode::Sse,
                url: None
            })
        );
        let hook = read(r#"{"topic":"t","mode":"webhook","url":"http://h/x"}"#).unwrap();
        assert_eq!(
            (hook.mode, hook.url.as_deref()),
            (Mode::Webhook, Some("http://h/x"))
        );
        let refused = |body: &str| read(body).unwrap_err().0;
        assert_eq!(refused(r#"{"mode":"carrier pigeon"}"#), "Missing topic");
        assert_eq!(
            refused(r#"{"topic":"t","mode":"carrier pigeon"}"#),
            "Unsupported subscription mode: carrier pigeon"
        );
        assert_eq!(
            refused(r#"{"topic":"t","mode":7}"#),
            "Unsupported subscription mode: 7"
        );
        assert_eq!(
            refused(r#"{"topic":"t","mode":"webhook"}"#),
            "Missing URL for webhook subscription"
        );
        assert_eq!(
            refused(r#"{"topic":"t","mode":"webhook","url":""}"#),
            "Missing URL for webhook subscription"
        );
        assert_eq!(
            refused(r#"{"topic":"t","url":["x"]}"#),
            "Invalid JSON body: 'url' must be a string"
        );
    }
}
