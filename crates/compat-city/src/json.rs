//! JSON text as the original's clients read it (pure): compact, and pure
//! ASCII. They decode the event stream as Latin-1 and split it by lines,
//! so every non-ASCII character is written as a `\uXXXX` escape (a UTF-16
//! surrogate pair above U+FFFF, lowercase hex as Python's `json.dumps`)
//! and no whitespace is left between tokens. Numbers, key order, duplicate
//! keys and existing escapes stay as sent: the text is transcoded, never
//! parsed into values and re-serialized (which would turn `1.0` into `1`
//! or reorder keys).

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;
use serde::de::IgnoredAny;

/// `json` (valid JSON text) compact and ASCII.
pub fn compact_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if !in_string {
            match c {
                ' ' | '\t' | '\n' | '\r' => {}
                '"' => {
                    in_string = true;
                    out.push(c);
                }
                _ => out.push(c),
            }
            continue;
        }
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => in_string = false,
            _ => {}
        }
        push_ascii(&mut out, c);
    }
    out
}

/// A JSON value serialized compact and ASCII.
pub fn to_ascii<T: Serialize + ?Sized>(value: &T) -> String {
    let text = serde_json::to_string(value).expect("answers always serialize");
    match text.is_ascii() {
        true => text,
        false => compact_ascii(&text),
    }
}

/// A stored record value as one line of compact ASCII JSON: a value this
/// listener wrote already is (so it is borrowed as it is); other JSON is
/// transcoded; anything that is not JSON (written natively by someone
/// else) becomes a JSON string of its text.
pub fn value_line(value: &[u8]) -> Cow<'_, str> {
    let Ok(text) = std::str::from_utf8(value) else {
        return Cow::Owned(to_ascii(&String::from_utf8_lossy(value)));
    };
    if serde_json::from_str::<IgnoredAny>(text).is_err() {
        return Cow::Owned(to_ascii(text));
    }
    let one_line = text
        .bytes()
        .all(|b| b.is_ascii() && !matches!(b, b'\n' | b'\r'));
    match one_line {
        true => Cow::Borrowed(text),
        false => Cow::Owned(compact_ascii(text)),
    }
}

fn push_ascii(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c);
        return;
    }
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        write!(out, "\\u{unit:04x}").expect("writing to a String never fails");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Whitespace between tokens goes, inside strings it stays; non-ASCII
    /// becomes escapes (a surrogate pair for an emoji); the rest is as sent.
    #[test]
    fn compacts_and_escapes_exactly() {
        let sent = "{ \"city\" : \"Zürich \\\" x\",\n \"icon\": \"🚦\", \"n\": 1.0, \"b\": [ 1, 2 ], \"a\": 1e3 }";
        assert_eq!(
            compact_ascii(sent),
            r#"{"city":"Z\u00fcrich \" x","icon":"\ud83d\udea6","n":1.0,"b":[1,2],"a":1e3}"#
        );
        let parsed: Value = serde_json::from_str(&compact_ascii(sent)).unwrap();
        assert_eq!(parsed, serde_json::from_str::<Value>(sent).unwrap());
    }

    /// An escaped backslash before a quote ends the string: the whitespace
    /// after it is dropped.
    #[test]
    fn escaped_backslashes_end_strings() {
        assert_eq!(compact_ascii(r#"["a\\" , "b"]"#), r#"["a\\","b"]"#);
        assert_eq!(
            compact_ascii(r#"{"k": "\u00e9 é"}"#),
            r#"{"k":"\u00e9 \u00e9"}"#
        );
    }

    /// Values this listener wrote are borrowed; others come out as one
    /// ASCII line of JSON.
    #[test]
    fn stored_values_become_one_ascii_line() {
        assert!(matches!(
            value_line(br#"{"a":1}"#),
            Cow::Borrowed(r#"{"a":1}"#)
        ));
        assert_eq!(
            value_line("{\n\"a\": \"ü\"}".as_bytes()),
            r#"{"a":"\u00fc"}"#
        );
        assert_eq!(value_line(b"not json\nat all"), r#""not json\nat all""#);
        assert_eq!(value_line(b"\xff"), r#""\ufffd""#);
        assert_eq!(to_ascii("Zürich"), r#""Z\u00fcrich""#);
    }
}
