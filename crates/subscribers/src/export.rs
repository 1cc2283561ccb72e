//! The pure half of `GET /api/city/stations/{id}/export.csv` (the handler
//! and its reads are the http crate's `city.rs`): which topic and key hold
//! a station's readings (from its id `<district>-<kind>-<n>`), the
//! `from`/`to` parameters (ms since the epoch, or RFC 3339), and which
//! records of the station's partition become rows (the archiver's rows,
//! `archive/csv.rs`). `from` is inclusive, `to` exclusive, both compared
//! with the reading's `ts_ms`.

use crate::archive::csv::csv_row;
use crate::contract::{Kind, StationId};
use crate::reading::Reading;

/// Where a station's readings are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTarget {
    pub station: String,
    pub kind: Kind,
    pub topic: &'static str,
    /// `city/<district>/<kind>/<station>`: the records to keep, and the
    /// partition (`partition_for_key`).
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("malformed station id {0:?}: expected <district>-<kind>-<n>, e.g. north-air-3")]
    Malformed(String),
    #[error("no kind {kind:?} of station (air, traffic, weather, buildings) in {station:?}")]
    UnknownKind { station: String, kind: String },
}

impl ExportTarget {
    pub fn of(station: &str) -> Result<ExportTarget, TargetError> {
        let id = StationId::parse(station).ok_or_else(|| TargetError::Malformed(station.into()))?;
        let kind = Kind::parse(id.kind).ok_or_else(|| TargetError::UnknownKind {
            station: station.to_owned(),
            kind: id.kind.to_owned(),
        })?;
        Ok(ExportTarget {
            station: station.to_owned(),
            kind,
            topic: kind.topic(),
            key: id.key(station),
        })
    }

    /// The row of a record of the station's partition, if it is one of
    /// this station's readings within `range`.
    pub fn row(
        &self,
        range: &TimeRange,
        key: Option<&[u8]>,
        value: &[u8],
        offset: u64,
    ) -> Option<String> {
        if key != Some(self.key.as_bytes()) {
            return None;
        }
        let reading = Reading::parse(value).ok()?;
        let ours = reading.station == self.station && range.contains(reading.ts_ms);
        ours.then(|| csv_row(&reading, offset))
    }
}

/// `from` ≤ ts < `to`; a missing bound does not limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, ts_ms: i64) -> bool {
        self.from_ms.is_none_or(|from| ts_ms >= from) && self.to_ms.is_none_or(|to| ts_ms < to)
    }
}

/// A time parameter: milliseconds since the Unix epoch (`1796580563199`)
/// or an RFC 3339 time (`2026-12-06T18:09:23.199Z`, `...+02:00`).
pub fn parse_time_ms(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("{text:?} is out of range"));
    }
    parse_rfc3339_ms(text).ok_or_else(|| {
        format!("{text:?} is neither milliseconds since the epoch nor an RFC 3339 time")
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, to ms (fraction truncated).
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 20 || separators.iter().any(|(at, sep)| bytes[*at] != *sep) {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    let (fraction_ms, zone) = fraction(&text[19..])?;
    let offset_minutes = zone_offset_minutes(zone)?;
    let days = days_from_civil(year, month, day);
    let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + fraction_ms)
}

/// The milliseconds of an optional `.fraction`, and what follows it.
fn fraction(text: &str) -> Option<(i64, &str)> {
    let Some(rest) = text.strip_prefix('.') else {
        return Some((0, text));
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let ms_digits: String = rest[..digits].chars().chain("00".chars()).take(3).collect();
    Some((ms_digits.parse().ok()?, &rest[digits..]))
}

/// `Z` → 0, `+02:00` → 120, `-05:30` → -330.
fn zone_offset_minutes(zone: &str) -> Option<i64> {
    if zone == "Z" || zone == "z" {
        return Some(0);
    }
    let bytes = zone.as_bytes();
    if bytes.len() != 6 || bytes[3] != b':' {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let part = |range: std::ops::Range<usize>| -> Option<i64> {
        let text = &zone[range];
        text.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| text.parse().ok())?
    };
    let (hours, minutes) = (part(1..3)?, part(4..6)?);
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds and RFC 3339 times (UTC, offsets, fractions) agree.
    #[test]
    fn times_parse() {
        assert_eq!(parse_time_ms("1796580563199"), Ok(1_796_580_563_199));
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_time_ms("2026-12-06T18:09:23.199Z"),
            Ok(1_796_580_563_199)
        );
        assert_eq!(
            parse_time_ms("2026-12-06t18:09:23.1999z"),
            Ok(1_796_580_563_199)
        );
        assert_eq!(
            parse_time_ms("2026-12-06T20:09:23.199+02:00"),
            Ok(1_796_580_563_199)
        );
        assert_eq!(
            parse_time_ms("2000-02-29T12:30:00-05:30"),
            Ok(951_847_200_000)
        );
        assert_eq!(parse_time_ms("1969-12-31T23:59:59.5Z"), Ok(-500));
    }

    /// Anything else is refused with a message.
    #[test]
    fn bad_times_are_refused() {
        for text in [
            "",
            "yesterday",
            "2026-12-06",
            "2026-12-06T18:09:23",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-06T24:00:00Z",
            "2026-12-06T18:09:23.Z",
            "2026-12-06T18:09:23+2:00",
            "99999999999999999999",
        ] {
            assert!(parse_time_ms(text).is_err(), "{text:?} was accepted");
        }
    }

    /// A station id gives its topic and key; malformed ids and unknown
    /// kinds are told apart.
    #[test]
    fn targets_from_station_ids() {
        let target = ExportTarget::of("north-air-3").unwrap();
        assert_eq!(
            (target.topic, target.key.as_str()),
            ("city.air", "city/north/air/north-air-3")
        );
        assert!(matches!(
            ExportTarget::of("north-air"),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            ExportTarget::of("north-noise-1"),
            Err(TargetError::UnknownKind { .. })
        ));
    }

    /// Only the station's own readings within the range become rows.
    #[test]
    fn rows_are_filtered_by_key_and_time() {
        let target = ExportTarget::of("north-air-3").unwrap();
        let range = TimeRange {
            from_ms: Some(10),
            to_ms: Some(20),
        };
        let reading = |ts: i64| {
            format!(
                r#"{{"station":"north-air-3","district":"north","kind":"air","ts_ms":{ts},"values":{{"aqi":5}}}}"#
            )
        };
        let key = Some(target.key.as_bytes());
        assert!(target.row(&range, key, reading(10).as_bytes(), 1).is_some());
        assert!(target.row(&range, key, reading(9).as_bytes(), 1).is_none());
        assert!(target.row(&range, key, reading(20).as_bytes(), 1).is_none());
        assert!(
            target
                .row(
                    &range,
                    Some(b"city/north/air/north-air-4"),
                    reading(15).as_bytes(),
                    1
                )
                .is_none()
        );
        assert!(target.row(&range, key, b"garbage", 1).is_none());
        let row = target
            .row(&TimeRange::default(), key, reading(15).as_bytes(), 7)
            .unwrap();
        assert_eq!(row, "15,north-air-3,5,,,,,,,,7\n");
    }
}
