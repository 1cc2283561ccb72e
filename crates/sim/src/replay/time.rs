//! Reading a CSV time column as ms since the Unix epoch: a number (ms; a
//! value below 10^11, i.e. before 1973 as ms, is taken as seconds, which
//! covers epoch seconds until the year 5138), or an RFC 3339 time
//! (`2026-03-01T08:00:00Z`, `2026-03-01 08:00:00.250+01:00`).

/// Numbers below this are epoch seconds, at or above it epoch ms.
const SECONDS_BELOW: f64 = 1e11;

/// The time `text` names, or `None` if it is neither form.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(number) = text.parse::<f64>() {
        if !number.is_finite() {
            return None;
        }
        let ms = if number.abs() < SECONDS_BELOW {
            number * 1000.0
        } else {
            number
        };
        return Some(ms.round() as i64);
    }
    parse_rfc3339_ms(text)
}

/// `YYYY-MM-DD(T| )hh:mm:ss(.fraction)?(Z|±hh:mm)`.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let (fraction_ms, zone) = split_fraction(&text[19..])?;
    let offset_minutes = zone_offset_minutes(zone)?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + fraction_ms)
}

/// `.250Z` -> (250, "Z"); no fraction -> (0, rest).
fn split_fraction(rest: &str) -> Option<(i64, &str)> {
    let Some(fraction) = rest.strip_prefix('.') else {
        return Some((0, rest));
    };
    let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
    Some((padded.parse().ok()?, &fraction[digits..]))
}

fn zone_offset_minutes(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
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

    /// Epoch ms, epoch seconds and RFC 3339 times (with fractions and
    /// offsets) all give ms since the epoch.
    #[test]
    fn times_parse() {
        assert_eq!(parse_time_ms("1796580563199"), Some(1_796_580_563_199));
        assert_eq!(parse_time_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time_ms("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time_ms("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(
            parse_time_ms("2024-02-29 12:30:15.25+01:00"),
            Some(1_709_206_215_250)
        );
        assert_eq!(parse_time_ms("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    /// Anything else is refused.
    #[test]
    fn non_times_are_refused() {
        for text in [
            "",
            "abc",
            "NaN",
            "inf",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+0100",
        ] {
            assert_eq!(parse_time_ms(text), None, "{text}");
        }
    }
}
