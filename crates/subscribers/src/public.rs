//! The public interface's logic (every reading in, `city.latest` out):
//! each reading is written again keyed by its station, value and headers
//! as read, plus the `source` header; folding the topic (newest record
//! per key wins, `GET /api/city/latest` in the http crate) gives every
//! station's latest reading. Pure.

use crate::output::{Input, Output, Process, SOURCE_HEADER, source_header};

#[derive(Debug, Default)]
pub struct Public;

impl Process for Public {
    fn process(&mut self, input: &Input<'_>) -> Vec<Output> {
        let mut headers: Vec<_> = input
            .headers
            .iter()
            .filter(|(name, _)| &**name != SOURCE_HEADER)
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        headers.push(source_header(input.source));
        vec![Output::Record {
            key: input.reading.station.clone(),
            value: input.value.to_vec(),
            headers,
            source: input.source.clone(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::source_of;
    use crate::testing::{Received, reading};

    /// The reading goes out as read, keyed by station, with its source.
    #[test]
    fn the_reading_is_republished_by_station() {
        let received = Received::at(reading("north-air-3", 5, &[("pm25", 1.0)], &[]), 9);
        let outputs = Public.process(&received.input());
        let [
            Output::Record {
                key,
                value,
                headers,
                source,
            },
        ] = &outputs[..]
        else {
            panic!("one record")
        };
        assert_eq!(key, "north-air-3");
        assert_eq!(value, &received.value);
        let (name, value) = &received.headers[0];
        assert_eq!(
            headers[0],
            (name.to_string(), value.clone()),
            "the priority header is kept"
        );
        assert_eq!(source_of(headers).as_ref(), Some(source));
        assert_eq!(source.offset, 9);
    }
}
