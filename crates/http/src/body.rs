//! Produce bodies into records, before anything is sent (pure: a bad body
//! is refused whole and nothing is written). By `Content-Type`:
//!
//! * `application/json`: one record object, or an array of them;
//! * `application/x-ndjson` (or `application/jsonl`): one record object per
//!   non-empty line;
//! * anything else: the raw body is the value of one record (key and
//!   partition from the query string).
//!
//! A record object is `{"value": ..., "key": "...", "headers": {"name":
//! "value"}, "partition": n, "timestamp": ms}`, only `value` required;
//! `headers` may also be a list `[{"name": ..., "value": ...}]`, in order,
//! where a name may repeat. A
//! string value is stored as its UTF-8 bytes; any other JSON value as its
//! compact JSON text (so it reads back as that text), except `null`: a
//! tombstone, which needs a key (and a compacted topic, checked by the
//! caller). `"key_encoding":
//! "base64"` / `"value_encoding": "base64"` carry binary keys and values.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::HttpError;

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    /// Empty for a tombstone.
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    pub partition: Option<u32>,
    pub timestamp_ms: Option<i64>,
    /// `"value": null`: deletes `key` from a compacted topic.
    pub tombstone: bool,
}

/// A record object as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    /// Any JSON value: a string is stored as its text, `null` is a
    /// tombstone (compacted topics only; needs a key), anything else is
    /// stored as compact JSON.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    #[serde(default)]
    pub key: Option<String>,
    /// `base64` if `key` is base64 of binary bytes.
    #[serde(default)]
    pub key_encoding: Option<String>,
    /// `base64` if `value` is a base64 string of binary bytes.
    #[serde(default)]
    pub value_encoding: Option<String>,
    /// `{"name": "value", ...}`, or `[{"name": ..., "value": ...}, ...]`
    /// to repeat a name or keep an order.
    #[serde(default)]
    pub headers: HeadersInput,
    /// Default: by key hash, or spread when keyless.
    #[serde(default)]
    pub partition: Option<u32>,
    /// Milliseconds since the Unix epoch; default: now.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// A record's headers as sent: an object (one value per name), or a list
/// (in order, names may repeat).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum HeadersInput {
    Object(BTreeMap<String, String>),
    List(Vec<HeaderInput>),
}

impl Default for HeadersInput {
    fn default() -> Self {
        HeadersInput::List(Vec::new())
    }
}

/// One header in the list form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderInput {
    pub name: String,
    pub value: String,
}

impl HeadersInput {
    fn into_pairs(self) -> Vec<(String, Bytes)> {
        match self {
            HeadersInput::Object(map) => map
                .into_iter()
                .map(|(name, value)| (name, Bytes::from(value)))
                .collect(),
            HeadersInput::List(list) => list
                .into_iter()
                .map(|header| (header.name, Bytes::from(header.value)))
                .collect(),
        }
    }
}

/// How the body is read (from its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    NdJson,
    Raw,
}

impl BodyKind {
    pub fn of(content_type: Option<&str>) -> BodyKind {
        let essence = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/json") => BodyKind::Json,
            Some("application/x-ndjson" | "application/jsonl" | "application/ndjson") => {
                BodyKind::NdJson
            }
            _ => BodyKind::Raw,
        }
    }
}

/// What a raw body's record gets from the query string.
#[derive(Debug, Clone, Default)]
pub struct RawRecordOptions {
    pub key: Option<String>,
    pub partition: Option<u32>,
}

/// Parses a whole body into at most `records_max` records.
pub fn parse_body(
    kind: BodyKind,
    body: &[u8],
    raw: &RawRecordOptions,
    records_max: usize,
) -> Result<Vec<NewRecord>, HttpError> {
    let records = match kind {
        BodyKind::Raw => vec![NewRecord {
            key: raw.key.clone().map(Bytes::from),
            value: Bytes::copy_from_slice(body),
            headers: Vec::new(),
            partition: raw.partition,
            timestamp_ms: None,
            tombstone: false,
        }],
        BodyKind::Json => parse_json(body, records_max)?,
        BodyKind::NdJson => parse_ndjson(body, records_max)?,
    };
    if records.is_empty() {
        return Err(HttpError::bad_request("the body holds no records"));
    }
    Ok(records)
}

fn parse_json(body: &[u8], records_max: usize) -> Result<Vec<NewRecord>, HttpError> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| HttpError::bad_request(format!("the body is not JSON: {e}")))?;
    let items = match json {
        serde_json::Value::Array(items) => items,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => {
            return Err(HttpError::bad_request(
                "the body must be a record object or an array of them",
            ));
        }
    };
    check_count(items.len(), records_max)?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            record_of_json(item).map_err(|e| HttpError::bad_request(format!("record {index}: {e}")))
        })
        .collect()
}

fn parse_ndjson(body: &[u8], records_max: usize) -> Result<Vec<NewRecord>, HttpError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| HttpError::bad_request("an NDJSON body must be UTF-8"))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .collect();
    check_count(lines.len(), records_max)?;
    lines
        .into_iter()
        .map(|(index, line)| {
            let number = index + 1;
            let item: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| HttpError::bad_request(format!("line {number}: {e}")))?;
            record_of_json(item).map_err(|e| HttpError::bad_request(format!("line {number}: {e}")))
        })
        .collect()
}

fn check_count(count: usize, records_max: usize) -> Result<(), HttpError> {
    if count > records_max {
        return Err(HttpError::too_large(format!(
            "{count} records in one request; at most {records_max}"
        )));
    }
    Ok(())
}

/// A request body that must be one JSON object of type `T` (serde would
/// also read a struct from an array of its fields: `["name", 3]`).
pub fn json_object<T: serde::de::DeserializeOwned>(
    body: Result<axum::Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<T, HttpError> {
    let axum::Json(value) = body?;
    if !value.is_object() {
        return Err(HttpError::bad_request(format!(
            "the body must be a JSON object, not {value}"
        )));
    }
    serde_json::from_value(value).map_err(|e| HttpError::bad_request(e.to_string()))
}

/// A record from one JSON value, which must be an object (serde would
/// also read a struct from an array of its fields).
fn record_of_json(item: serde_json::Value) -> Result<NewRecord, String> {
    if !item.is_object() {
        return Err(format!("a record must be a JSON object, not {item}"));
    }
    let input: RecordInput = serde_json::from_value(item).map_err(|e| e.to_string())?;
    record_of(input)
}

fn record_of(input: RecordInput) -> Result<NewRecord, String> {
    let key = match input.key {
        Some(key) => Some(decode(key, input.key_encoding.as_deref(), "key")?),
        None => None,
    };
    let tombstone = input.value.is_null();
    let value = match input.value {
        serde_json::Value::String(text) => decode(text, input.value_encoding.as_deref(), "value")?,
        serde_json::Value::Null if key.is_none() => {
            return Err("a tombstone (`\"value\": null`) needs a key: it deletes that key".into());
        }
        serde_json::Value::Null if input.value_encoding.is_some() => {
            return Err("value_encoding applies to a string value, not to null".into());
        }
        serde_json::Value::Null => Bytes::new(),
        other if input.value_encoding.is_some() => {
            return Err(format!(
                "value_encoding applies to a string value, not {other}"
            ));
        }
        other => Bytes::from(other.to_string()),
    };
    Ok(NewRecord {
        key,
        value,
        headers: input.headers.into_pairs(),
        partition: input.partition,
        timestamp_ms: input.timestamp,
        tombstone,
    })
}

/// Text as its bytes, or base64-decoded with `encoding = "base64"`.
fn decode(text: String, encoding: Option<&str>, field: &str) -> Result<Bytes, String> {
    match encoding {
        None => Ok(Bytes::from(text)),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(|e| format!("{field} is not valid base64: {e}")),
        Some(other) => Err(format!(
            "{field}_encoding {other:?} is not supported (only \"base64\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> Result<Vec<NewRecord>, HttpError> {
        parse_body(
            BodyKind::Json,
            body.as_bytes(),
            &RawRecordOptions::default(),
            3,
        )
    }

    /// An object, an array and NDJSON all become records; string values are
    /// stored as text, other JSON as compact JSON text.
    #[test]
    fn bodies_become_records() {
        let one = json(r#"{"value":"hi","key":"k","headers":{"h":"v"},"partition":2}"#).unwrap();
        assert_eq!(one[0].value, Bytes::from("hi"));
        assert_eq!(one[0].key, Some(Bytes::from("k")));
        assert_eq!(one[0].headers, vec![("h".to_string(), Bytes::from("v"))]);
        let listed =
            json(r#"{"value":"x","headers":[{"name":"b","value":"1"},{"name":"a","value":"2"},{"name":"b","value":"3"}]}"#)
                .unwrap();
        let pairs: Vec<(&str, &[u8])> = listed[0]
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), &value[..]))
            .collect();
        assert_eq!(
            pairs,
            [("b", &b"1"[..]), ("a", b"2"), ("b", b"3")],
            "in order, repeated"
        );
        assert_eq!(one[0].partition, Some(2));
        let many = json(r#"[{"value":{"pm25": 12}},{"value":7}]"#).unwrap();
        assert_eq!(many[0].value, Bytes::from(r#"{"pm25":12}"#));
        assert_eq!(many[1].value, Bytes::from("7"));
        let lines = "{\"value\":\"a\"}\n\n{\"value\":\"b\"}\n";
        let nd = parse_body(
            BodyKind::NdJson,
            lines.as_bytes(),
            &RawRecordOptions::default(),
            3,
        );
        assert_eq!(nd.unwrap().len(), 2);
        let raw = RawRecordOptions {
            key: Some("k".into()),
            partition: Some(1),
        };
        let one_raw = parse_body(BodyKind::Raw, b"\x00raw", &raw, 3).unwrap();
        assert_eq!(
            (one_raw[0].value.as_ref(), one_raw[0].partition),
            (&b"\x00raw"[..], Some(1))
        );
    }

    /// Base64-encoded keys and values are decoded; a bad encoding is refused.
    #[test]
    fn base64_fields_are_decoded() {
        let records = json(r#"{"value":"AP8=","value_encoding":"base64"}"#).unwrap();
        assert_eq!(records[0].value, Bytes::from_static(&[0, 0xff]));
        assert!(json(r#"{"value":"!!","value_encoding":"base64"}"#).is_err());
        assert!(json(r#"{"value":"x","value_encoding":"hex"}"#).is_err());
    }

    /// `"value": null` with a key is a tombstone (an empty value is not);
    /// without a key it is refused, naming why.
    #[test]
    fn null_value_is_a_tombstone() {
        let records = json(r#"[{"value":null,"key":"k"},{"value":"","key":"k"}]"#).unwrap();
        assert!(records[0].tombstone);
        assert!(records[0].value.is_empty());
        assert!(!records[1].tombstone);
        let error = json(r#"{"value":null}"#).unwrap_err();
        assert!(error.message.contains("needs a key"), "{}", error.message);
    }

    /// Every malformed body is refused with 400, too many records with 413.
    #[test]
    fn bad_bodies_are_refused() {
        let bad = [
            "not json",
            "42",
            "[]",
            r#"{"key":"k"}"#,
            r#"{"value":null}"#,
            r#"{"value":null,"key":"k","value_encoding":"base64"}"#,
            r#"{"value":"x","partition":-1}"#,
            r#"{"value":"x","extra":1}"#,
            r#"[{"value":"x"}, 5]"#,
            r#"[["x", "k"]]"#,
            r#"{"value":"x","headers":{"h":1}}"#,
            r#"{"value":"x","headers":[{"name":"h"}]}"#,
            r#"{"value":"x","headers":[{"name":"h","value":1}]}"#,
            r#"{"value":"x","headers":[{"name":"h","value":"v","x":1}]}"#,
            r#"{"value":"x","headers":"h"}"#,
        ];
        for body in bad {
            let error = json(body).expect_err(body);
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST, "{body}");
        }
        let error = json(r#"[{"value":1},{"value":2},{"value":3},{"value":4}]"#).unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let error = parse_body(
            BodyKind::NdJson,
            b"{\"value\":1}\nnope\n",
            &RawRecordOptions::default(),
            3,
        )
        .unwrap_err();
        assert!(error.message.starts_with("line 2"), "{}", error.message);
    }

    /// The content type picks the parser; parameters and case do not matter.
    #[test]
    fn content_type_picks_the_parser() {
        assert_eq!(
            BodyKind::of(Some("Application/JSON; charset=utf-8")),
            BodyKind::Json
        );
        assert_eq!(BodyKind::of(Some("application/x-ndjson")), BodyKind::NdJson);
        assert_eq!(BodyKind::of(Some("text/plain")), BodyKind::Raw);
        assert_eq!(BodyKind::of(None), BodyKind::Raw);
    }
}
