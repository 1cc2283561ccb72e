//! Parsing of user-given points in time (`--from-time`, the producer-log
//! time column): epoch milliseconds or an RFC 3339 date-time. Pure; knows
//! nothing of time zones beyond the numeric offset RFC 3339 carries.

use std::time::{SystemTime, UNIX_EPOCH};

/// The accepted forms, for error messages.
pub const TIMESTAMP_FORMS: &str = "expected RFC 3339 (e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.250+02:00) \
     or milliseconds since the Unix epoch";

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Parses epoch milliseconds (`1714564800000`) or RFC 3339
/// (`2024-05-01T12:00:00Z`, fraction and `±HH:MM` offset optional; a space
/// may replace the `T`).
pub fn parse_timestamp_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map_err(|_| format!("{text:?} is out of range"));
    }
    parse_rfc3339_ms(text).ok_or_else(|| format!("bad time {text:?}: {TIMESTAMP_FORMS}"))
}

fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let separators_ok = bytes[4] == b'-' && bytes[7] == b'-' && bytes[13] == b':';
    if !separators_ok || bytes[16] != b':' {
        return None;
    }
    let year = number(&text[0..4])?;
    let month = number(&text[5..7])?;
    let day = number(&text[8..10])?;
    let hour = number(&text[11..13])?;
    let minute = number(&text[14..16])?;
    let second = number(&text[17..19])?;
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    // Second 60 is a leap second; counted as the next second's start.
    if !valid_date || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (fraction_ms, rest) = parse_fraction(&text[19..])?;
    let offset_minutes = parse_offset(rest)?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + fraction_ms)
}

/// `.123456` → (123, rest); no fraction → (0, text).
fn parse_fraction(text: &str) -> Option<(i64, &str)> {
    let Some(after_dot) = text.strip_prefix('.') else {
        return Some((0, text));
    };
    let digit_count = after_dot.bytes().take_while(u8::is_ascii_digit).count();
    if digit_count == 0 {
        return None;
    }
    let mut millis = 0;
    for (index, digit) in after_dot.bytes().take(3).enumerate() {
        if index < digit_count {
            millis = millis * 10 + i64::from(digit - b'0');
        }
    }
    for _ in digit_count..3 {
        millis *= 10;
    }
    Some((millis, &after_dot[digit_count..]))
}

/// `Z` → 0; `+02:00` → 120; `-05:30` → -330 (minutes east of UTC).
fn parse_offset(text: &str) -> Option<i64> {
    if text == "Z" || text == "z" {
        return Some(0);
    }
    let bytes = text.as_bytes();
    if bytes.len() != 6 || bytes[3] != b':' {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = number(&text[1..3])?;
    let minutes = number(&text[4..6])?;
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes))
}

fn number(text: &str) -> Option<i64> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
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
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch milliseconds pass through unchanged, negative ones too.
    #[test]
    fn epoch_milliseconds_are_accepted() {
        assert_eq!(parse_timestamp_ms("1714564800000"), Ok(1_714_564_800_000));
        assert_eq!(parse_timestamp_ms(" 0 "), Ok(0));
        assert_eq!(parse_timestamp_ms("-5"), Ok(-5));
    }

    /// RFC 3339 forms agree with known epoch values.
    #[test]
    fn rfc3339_matches_known_instants() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-05-01T12:00:00Z", 1_714_564_800_000),
            ("2024-05-01T14:00:00+02:00", 1_714_564_800_000),
            ("2024-05-01 12:00:00.5z", 1_714_564_800_500),
            ("2024-05-01T12:00:00.123456Z", 1_714_564_800_123),
            ("2000-02-29T00:00:00-00:30", 951_784_200_000),
            ("1969-12-31T23:59:59Z", -1_000),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_timestamp_ms(text), Ok(expected), "{text}");
        }
    }

    /// Malformed or impossible dates are refused with the accepted forms.
    #[test]
    fn malformed_times_are_rejected() {
        for text in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024-13-01T12:00:00Z",
        ] {
            let error = parse_timestamp_ms(text).unwrap_err();
            assert!(error.contains("RFC 3339"), "{text}: {error}");
        }
    }
}
