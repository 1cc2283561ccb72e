//! [`Written`]: how far each output stream already got, so that a role
//! replaying readings after a restart writes none of its outputs twice.
//!
//! An output stream is every output with one key (`Output::stream_key`)
//! from one input partition. Why that is enough: a stream's readings come
//! from one partition in offset order, so a role (deterministic, see
//! `Process`) produces a stream's outputs in the order of their sources;
//! and a stream lives in one output partition (one key) or one file, where
//! the idempotent producer (or an append-only file) keeps what was written
//! a prefix of what was sent. So what a stream holds is everything up to
//! a mark: the highest source offset written, and how many outputs of
//! that source were written (one reading may give several, e.g. alerts on
//! two metrics). The output with index `i` among those of source `s` in
//! its stream is new iff `s` is past the mark, or `s` is the mark's and
//! `i` is at or past its count. Pure.

use std::collections::HashMap;

use crate::reading::Source;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StreamId {
    key: String,
    topic: String,
    partition: u32,
}

impl StreamId {
    fn of(key: &str, source: &Source) -> StreamId {
        StreamId {
            key: key.to_owned(),
            topic: source.topic.clone(),
            partition: source.partition,
        }
    }
}

/// The last source of a stream that was written, and its output count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    offset: u64,
    count: u32,
}

#[derive(Debug, Default, Clone)]
pub struct Written {
    streams: HashMap<StreamId, Mark>,
}

impl Written {
    /// Notes an output found in the output topic or file (in the order
    /// they were written).
    pub fn note(&mut self, key: &str, source: &Source) {
        let fresh = Mark {
            offset: source.offset,
            count: 1,
        };
        let mark = self
            .streams
            .entry(StreamId::of(key, source))
            .or_insert(Mark {
                offset: source.offset,
                count: 0,
            });
        if mark.offset == source.offset {
            mark.count += 1;
        } else if mark.offset < source.offset {
            *mark = fresh;
        }
    }

    /// Whether the `index`-th output (from 0) of `source` in stream `key`
    /// is new; if so, it is noted as written.
    pub fn admit(&mut self, key: &str, source: &Source, index: u32) -> bool {
        let id = StreamId::of(key, source);
        let new = match self.streams.get(&id) {
            None => true,
            Some(mark) => {
                source.offset > mark.offset || (source.offset == mark.offset && index >= mark.count)
            }
        };
        if new {
            let mark = Mark {
                offset: source.offset,
                count: index + 1,
            };
            self.streams.insert(id, mark);
        }
        new
    }

    pub fn streams(&self) -> usize {
        self.streams.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> Source {
        Source {
            topic: "city.air".into(),
            partition: 0,
            offset,
        }
    }

    /// A replay after a crash between output and commit: what was written
    /// is skipped, the rest (including the second output of a reading
    /// whose first was written) goes out, each once.
    #[test]
    fn a_replay_skips_exactly_what_was_written() {
        let mut written = Written::default();
        // Found in the topic: k1 wrote 3, 5 and the first output of 7.
        for offset in [3, 5, 7] {
            written.note("k1", &at(offset));
        }
        // The replay from offset 4 produces k1: 5, 7 (two outputs), 8.
        let replay = [(5, 0), (7, 0), (7, 1), (8, 0)];
        let admitted: Vec<bool> = replay
            .iter()
            .map(|(offset, index)| written.admit("k1", &at(*offset), *index))
            .collect();
        assert_eq!(admitted, [false, false, true, true]);
        // A second replay of the same readings writes nothing.
        for (offset, index) in replay {
            assert!(!written.admit("k1", &at(offset), index));
        }
    }

    /// Streams are independent: another key, or the same key from another
    /// partition, is not held back by k1's mark.
    #[test]
    fn streams_are_independent() {
        let mut written = Written::default();
        written.note("k1", &at(10));
        assert!(written.admit("k2", &at(4), 0));
        let other_partition = Source {
            partition: 2,
            ..at(4)
        };
        assert!(written.admit("k1", &other_partition, 0));
        assert!(!written.admit("k1", &at(9), 0));
    }

    /// Several outputs of one source are counted as found.
    #[test]
    fn notes_count_outputs_of_one_source() {
        let mut written = Written::default();
        written.note("k", &at(4));
        written.note("k", &at(4));
        assert!(!written.admit("k", &at(4), 1));
        assert!(written.admit("k", &at(4), 2));
        // Found out of order (should not happen): an older source is ignored.
        written.note("k", &at(1));
        assert!(!written.admit("k", &at(4), 2));
    }
}
