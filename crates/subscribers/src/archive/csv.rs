//! The archive's CSV shape, shared by the archiver's files and the http
//! crate's `export.csv`: one header per kind and one row per reading, the
//! reading's source offset last. Building readings keep the sensor
//! network's shape (`sequence,timestamp,sensor_id,temperature_c,
//! humidity_pct,pressure_hpa,offset`); other kinds are
//! `timestamp,station,<value names sorted>,<label names sorted>,offset`
//! with the names the contract lists for the kind (a missing value or
//! label is an empty field, a name the contract does not list is not
//! archived). Timestamps are `ts_ms`; numbers are written in their
//! shortest exact form (`52`, `12.4`). Fields are quoted as RFC 4180
//! says (when they hold a comma, a quote or a line break; quotes doubled).
//! Pure.

use std::borrow::Cow;

use crate::contract::Kind;
use crate::reading::Reading;

const BUILDINGS_HEADER: &str =
    "sequence,timestamp,sensor_id,temperature_c,humidity_pct,pressure_hpa,offset\n";

/// The header line (ending in `\n`) of a kind's archive.
pub fn csv_header(kind: Kind) -> String {
    if kind == Kind::Buildings {
        return BUILDINGS_HEADER.to_owned();
    }
    let mut names = vec!["timestamp".to_owned(), "station".to_owned()];
    names.extend(sorted(kind.value_names()));
    names.extend(sorted(kind.label_names()));
    names.push("offset".to_owned());
    names.join(",") + "\n"
}

/// Fields of a row of a kind's archive.
pub fn csv_field_count(kind: Kind) -> usize {
    match kind {
        Kind::Buildings => 7,
        kind => 3 + kind.value_names().len() + kind.label_names().len(),
    }
}

/// The row (ending in `\n`) of `reading`, read at `offset`.
pub fn csv_row(reading: &Reading, offset: u64) -> String {
    let number = |name: &str| {
        reading
            .value(name)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    let mut fields: Vec<String> = Vec::with_capacity(csv_field_count(reading.kind));
    if reading.kind == Kind::Buildings {
        fields.push(number("sequence"));
        fields.push(reading.ts_ms.to_string());
        fields.push(reading.station.clone());
        for name in ["temperature_c", "humidity_pct", "pressure_hpa"] {
            fields.push(number(name));
        }
    } else {
        fields.push(reading.ts_ms.to_string());
        fields.push(reading.station.clone());
        fields.extend(sorted(reading.kind.value_names()).map(|name| number(&name)));
        let labels = sorted(reading.kind.label_names());
        fields.extend(labels.map(|name| reading.label(&name).unwrap_or_default().to_owned()));
    }
    fields.push(offset.to_string());
    let quoted: Vec<Cow<'_, str>> = fields.iter().map(|field| quote(field)).collect();
    quoted.join(",") + "\n"
}

fn sorted(names: &[&str]) -> impl Iterator<Item = String> + use<> {
    let mut names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    names.sort();
    names.into_iter()
}

/// The field as RFC 4180 writes it.
fn quote(field: &str) -> Cow<'_, str> {
    if !field.contains([',', '"', '\r', '\n']) {
        return Cow::Borrowed(field);
    }
    Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
}

/// The fields of one CSV line (without its line end); `None` when it is
/// not well-formed (an unterminated quote, a stray quote).
pub fn parse_fields(line: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                // Quotes and line breaks belong in quoted fields only.
                if matches!(c, '"' | '\n' | '\r') {
                    return None;
                }
                field.push(c);
            }
        }
        fields.push(field);
        match chars.next() {
            None => return Some(fields),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

/// The offset (last field) of a complete row of `fields` fields.
pub fn row_offset(line: &[u8], fields: usize) -> Option<u64> {
    let parsed = parse_fields(line)?;
    if parsed.len() != fields {
        return None;
    }
    parsed.last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::reading;

    /// Headers: the sensor-network shape for buildings, sorted names otherwise.
    #[test]
    fn headers_per_kind() {
        assert_eq!(csv_header(Kind::Buildings), BUILDINGS_HEADER);
        assert_eq!(
            csv_header(Kind::Air),
            "timestamp,station,aqi,co,no2,o3,pm10,pm25,category,dominant,offset\n"
        );
        assert_eq!(
            csv_header(Kind::Traffic),
            "timestamp,station,congestion,mean_speed_kmh,vehicles_per_min,incident,level,offset\n"
        );
        for kind in Kind::ALL {
            let header = csv_header(kind);
            let fields = parse_fields(header.trim_end().as_bytes()).unwrap();
            assert_eq!(fields.len(), csv_field_count(kind), "{kind:?}");
        }
    }

    /// Rows: numbers in shortest form, missing fields empty, offset last.
    #[test]
    fn rows_per_kind() {
        let building = reading(
            "north-buildings-2",
            1_700,
            &[
                ("sequence", 17.0),
                ("temperature_c", 21.5),
                ("humidity_pct", 40.0),
                ("pressure_hpa", 1013.2),
            ],
            &[],
        );
        assert_eq!(
            csv_row(&building, 9),
            "17,1700,north-buildings-2,21.5,40,1013.2,9\n"
        );
        let traffic = reading(
            "east-traffic-1",
            5,
            &[("congestion", 0.5)],
            &[("level", "moderate")],
        );
        assert_eq!(csv_row(&traffic, 3), "5,east-traffic-1,0.5,,,,moderate,3\n");
    }

    /// A label with a comma, quote or line break is quoted, and parses back.
    #[test]
    fn fields_are_quoted_and_parse_back() {
        let air = reading(
            "north-air-1",
            1,
            &[("aqi", 52.0)],
            &[("category", "Unhealthy, \"very\""), ("dominant", "pm\n25")],
        );
        let row = csv_row(&air, 44);
        assert_eq!(
            row,
            "1,north-air-1,52,,,,,,\"Unhealthy, \"\"very\"\"\",\"pm\n25\",44\n"
        );
        let fields = parse_fields(row.trim_end().as_bytes()).unwrap();
        assert_eq!(fields[8], "Unhealthy, \"very\"");
        assert_eq!(fields[9], "pm\n25");
        assert_eq!(row_offset(row.trim_end().as_bytes(), 11), Some(44));
    }

    /// Malformed lines and short rows give no offset.
    #[test]
    fn malformed_lines_are_refused() {
        assert_eq!(parse_fields(b"a,\"b"), None);
        assert_eq!(parse_fields(b"a,b\"c"), None);
        assert_eq!(parse_fields(b"\"a\"b,c"), None);
        assert_eq!(parse_fields(b"a\nb,c"), None);
        assert_eq!(parse_fields(b""), Some(vec![String::new()]));
        assert_eq!(row_offset(b"1,north-air-1,44", 11), None);
        assert_eq!(row_offset(b"1,2,x", 3), None);
    }
}
