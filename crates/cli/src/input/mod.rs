//! Turning `produce` input text into records, before anything is sent:
//! `lines` (one value per line), `csv` (each row a JSON object keyed by the
//! header row) and `producer-log` (tab-separated time, message, tag, topic).
//! Pure: no I/O, so a bad file is refused whole, with its line number.

mod csv;
mod producer_log;

use std::fmt::Write as _;

/// How `produce` reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One record per line; the line is the value.
    Lines,
    /// RFC 4180 CSV with a header row; each row becomes a JSON object.
    Csv,
    /// `time<TAB>message<TAB>tag<TAB>topic`, routed by the topic column.
    ProducerLog,
}

/// A record parsed from input, not yet addressed to a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// 1-based line the record starts on (for error messages).
    pub line: usize,
    /// Set by formats that route per record (producer-log).
    pub topic: Option<String>,
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    pub timestamp_ms: Option<i64>,
}

impl InputRecord {
    fn value_only(line: usize, value: String) -> InputRecord {
        InputRecord {
            line,
            topic: None,
            key: None,
            value,
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }
}

/// Input that cannot be turned into records; nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct InputError {
    pub line: usize,
    pub message: String,
}

impl InputError {
    pub fn new(line: usize, message: impl Into<String>) -> InputError {
        InputError {
            line,
            message: message.into(),
        }
    }
}

/// Options that change how rows become records.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// CSV column whose value becomes the record key.
    pub key_column: Option<String>,
    /// `lines`: each line is `KEY<separator>VALUE` (split at the first one).
    pub key_separator: Option<String>,
}

/// Parses the whole input in `format`.
pub fn parse(
    format: InputFormat,
    text: &str,
    options: &ParseOptions,
) -> Result<Vec<InputRecord>, InputError> {
    match format {
        InputFormat::Lines => parse_lines(text, options.key_separator.as_deref()),
        InputFormat::Csv => parse_csv(text, options.key_column.as_deref()),
        InputFormat::ProducerLog => producer_log::parse(text),
    }
}

/// Every line is a record, empty lines included (as empty values).
fn parse_lines(text: &str, key_separator: Option<&str>) -> Result<Vec<InputRecord>, InputError> {
    text.lines()
        .enumerate()
        .map(|(index, line)| parse_line(index + 1, line.to_string(), key_separator))
        .collect()
}

/// One `lines` record: the line is the value, or with a key separator,
/// `KEY<separator>VALUE` split at the first separator (a line without one
/// is refused).
pub fn parse_line(
    number: usize,
    line: String,
    key_separator: Option<&str>,
) -> Result<InputRecord, InputError> {
    let Some(separator) = key_separator else {
        return Ok(InputRecord::value_only(number, line));
    };
    let Some((key, value)) = line.split_once(separator) else {
        return Err(InputError::new(
            number,
            format!("no key separator {separator:?} in the line"),
        ));
    };
    let mut record = InputRecord::value_only(number, value.to_string());
    record.key = Some(key.to_string());
    Ok(record)
}

/// The first row names the columns; every other row must have as many
/// fields and becomes `{"column": "field", ...}` in header order (all
/// values are JSON strings: CSV has no types, and "007" must stay "007").
fn parse_csv(text: &str, key_column: Option<&str>) -> Result<Vec<InputRecord>, InputError> {
    let mut rows = csv::parse_rows(text)?.into_iter();
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    check_header(&header.fields, header.line)?;
    let key_index = match key_column {
        Some(name) => Some(
            header
                .fields
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| {
                    InputError::new(header.line, format!("the header has no column {name:?}"))
                })?,
        ),
        None => None,
    };
    let mut records = Vec::new();
    for row in rows {
        if row.fields.len() != header.fields.len() {
            return Err(InputError::new(
                row.line,
                format!(
                    "expected {} fields as in the header, found {}",
                    header.fields.len(),
                    row.fields.len()
                ),
            ));
        }
        let mut record =
            InputRecord::value_only(row.line, json_object(&header.fields, &row.fields));
        record.key = key_index.map(|index| row.fields[index].clone());
        records.push(record);
    }
    Ok(records)
}

fn check_header(columns: &[String], line: usize) -> Result<(), InputError> {
    for (index, column) in columns.iter().enumerate() {
        if columns[..index].contains(column) {
            return Err(InputError::new(
                line,
                format!("the header names column {column:?} twice"),
            ));
        }
    }
    Ok(())
}

/// A JSON object with keys in the given order (serde_json's map would sort).
fn json_object(keys: &[String], values: &[String]) -> String {
    let mut object = String::from("{");
    for (index, (key, value)) in keys.iter().zip(values).enumerate() {
        if index > 0 {
            object.push(',');
        }
        let key = serde_json::to_string(key).expect("a string serializes");
        let value = serde_json::to_string(value).expect("a string serializes");
        let _ = write!(object, "{key}:{value}");
    }
    object.push('}');
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines keep their order and empty lines; CRLF endings are stripped.
    #[test]
    fn lines_become_values() {
        let records = parse(InputFormat::Lines, "a\r\n\nb\n", &ParseOptions::default()).unwrap();
        let values: Vec<&str> = records.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, vec!["a", "", "b"]);
        assert_eq!(records[2].line, 3);
    }

    /// With a key separator each line splits at the first one into key and
    /// value; a line without it is refused with its number.
    #[test]
    fn keyed_lines_split_at_the_first_separator() {
        let options = ParseOptions {
            key_separator: Some(",".to_owned()),
            ..ParseOptions::default()
        };
        let records = parse(InputFormat::Lines, "k1,a,b\n,empty key\n", &options).unwrap();
        let pairs: Vec<(Option<&str>, &str)> = records
            .iter()
            .map(|r| (r.key.as_deref(), r.value.as_str()))
            .collect();
        assert_eq!(pairs, vec![(Some("k1"), "a,b"), (Some(""), "empty key")]);
        let error = parse(InputFormat::Lines, "k,v\nno separator\n", &options).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("key separator"), "{error}");
    }

    /// CSV rows become JSON objects in header order; quoting is honoured.
    #[test]
    fn csv_rows_become_json_objects() {
        let text = "sensor,pm25,note\ns1,12,\"ok, fine\"\ns2,007,\n";
        let records = parse(InputFormat::Csv, text, &ParseOptions::default()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].value,
            r#"{"sensor":"s1","pm25":"12","note":"ok, fine"}"#
        );
        assert_eq!(
            records[1].value,
            r#"{"sensor":"s2","pm25":"007","note":""}"#
        );
        assert_eq!(records[1].line, 3);
        assert_eq!(records[0].key, None);
    }

    /// `key_column` picks the key; an unknown column is refused.
    #[test]
    fn csv_key_column_sets_the_key() {
        let options = ParseOptions {
            key_column: Some("sensor".into()),
            ..ParseOptions::default()
        };
        let records = parse(InputFormat::Csv, "sensor,v\ns9,1\n", &options).unwrap();
        assert_eq!(records[0].key.as_deref(), Some("s9"));
        let options = ParseOptions {
            key_column: Some("nope".into()),
            ..ParseOptions::default()
        };
        assert!(parse(InputFormat::Csv, "sensor,v\ns9,1\n", &options).is_err());
    }

    /// A row with the wrong number of fields fails with its line number.
    #[test]
    fn csv_wrong_column_count_names_the_line() {
        let text = "a,b\n1,2\n3\n4,5\n";
        let error = parse(InputFormat::Csv, text, &ParseOptions::default()).unwrap_err();
        assert_eq!(error.line, 3);
        assert_eq!(
            error.to_string(),
            "line 3: expected 2 fields as in the header, found 1"
        );
    }

    /// Duplicate header names would make ambiguous objects; refused.
    #[test]
    fn csv_duplicate_header_is_refused() {
        let error = parse(InputFormat::Csv, "a,a\n1,2\n", &ParseOptions::default()).unwrap_err();
        assert_eq!(error.line, 1);
    }
}
