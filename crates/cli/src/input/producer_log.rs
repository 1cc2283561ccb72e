//! The producer-log format: one record per line,
//! `time<TAB>message<TAB>tag<TAB>topic`. `time` is the record timestamp
//! (RFC 3339 or epoch ms), `message` the value, `tag` the key and a `tag`
//! header (both omitted when the tag is empty), `topic` where the record
//! goes. The message may itself contain tabs: time is the first field and
//! tag and topic the last two. Blank lines and a first line that is the
//! header `time<TAB>message<TAB>tag<TAB>topic` are skipped.

use super::{InputError, InputRecord};
use crate::timestamp::parse_timestamp_ms;

/// Parses every line; the first bad line fails the whole input.
pub fn parse(text: &str) -> Result<Vec<InputRecord>, InputError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() || (line_number == 1 && is_header(line)) {
            continue;
        }
        records.push(parse_line(line, line_number)?);
    }
    Ok(records)
}

fn is_header(line: &str) -> bool {
    line.split('\t').next().map(str::trim) == Some("time")
}

fn parse_line(line: &str, line_number: usize) -> Result<InputRecord, InputError> {
    let field_count = line.split('\t').count();
    let (time, rest) = line.split_once('\t').unwrap_or((line, ""));
    let mut from_right = rest.rsplitn(3, '\t');
    let (Some(topic), Some(tag), Some(message)) =
        (from_right.next(), from_right.next(), from_right.next())
    else {
        return Err(InputError::new(
            line_number,
            format!(
                "expected 4 tab-separated fields (time, message, tag, topic), found {field_count}"
            ),
        ));
    };
    let timestamp_ms =
        parse_timestamp_ms(time).map_err(|message| InputError::new(line_number, message))?;
    let topic = topic.trim();
    if topic.is_empty() {
        return Err(InputError::new(line_number, "the topic field is empty"));
    }
    let (key, headers) = if tag.is_empty() {
        (None, Vec::new())
    } else {
        (
            Some(tag.to_string()),
            vec![("tag".to_string(), tag.to_string())],
        )
    };
    Ok(InputRecord {
        line: line_number,
        topic: Some(topic.to_string()),
        key,
        value: message.to_string(),
        headers,
        timestamp_ms: Some(timestamp_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed line maps time, message, tag and topic as documented.
    #[test]
    fn maps_fields_to_record() {
        let records = parse("2024-05-01T12:00:00Z\tPM2.5 high\tair\tcity.alerts\n").unwrap();
        assert_eq!(
            records,
            vec![InputRecord {
                line: 1,
                topic: Some("city.alerts".into()),
                key: Some("air".into()),
                value: "PM2.5 high".into(),
                headers: vec![("tag".into(), "air".into())],
                timestamp_ms: Some(1_714_564_800_000),
            }]
        );
    }

    /// Tabs inside the message survive; an empty tag gives no key or header.
    #[test]
    fn message_may_contain_tabs_and_tag_may_be_empty() {
        let records = parse("1000\ta\tb\t\tlogs").unwrap();
        assert_eq!(records[0].value, "a\tb");
        assert_eq!(records[0].key, None);
        assert!(records[0].headers.is_empty());
        assert_eq!(records[0].timestamp_ms, Some(1000));
    }

    /// The header line and blank lines are skipped; line numbers stay true.
    #[test]
    fn skips_header_and_blank_lines() {
        let text = "time\tmessage\ttag\ttopic\n\n5\tm\tt\tx\n";
        let records = parse(text).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].line, 3);
    }

    /// Too few fields, a bad time or an empty topic name the line.
    #[test]
    fn bad_lines_name_their_line_number() {
        let error = parse("1\ta\tb\tt\n2\tonly-two").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("found 2"), "{}", error.message);
        let error = parse("soon\tm\tt\tx").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("RFC 3339"));
        let error = parse("1\tm\tt\t ").unwrap_err();
        assert!(error.message.contains("topic"));
    }
}
