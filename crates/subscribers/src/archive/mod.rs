//! The archiver's logic (every reading in, one CSV row per reading in
//! `<archive_dir>/<station>.csv`): the row shape (`csv.rs`, shared with
//! the http crate's export), and how a file left by a crash is read back
//! ([`check_head`], [`recover_rows`]): a torn last line is cut, and the
//! last complete row's offset tells where the archive stands. The files
//! themselves are `files.rs` (the only I/O here).

pub mod csv;
pub mod files;

use crate::output::{Input, Output, Process};
use csv::{csv_row, row_offset};

#[derive(Debug, Default)]
pub struct Archiver;

impl Process for Archiver {
    fn process(&mut self, input: &Input<'_>) -> Vec<Output> {
        vec![Output::Row {
            station: input.reading.station.clone(),
            kind: input.reading.kind,
            line: csv_row(input.reading, input.source.offset),
            source: input.source.clone(),
        }]
    }
}

/// What the start of an archive file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// It starts with the expected header.
    Header,
    /// It is empty or holds part of the header (a crash while creating
    /// it): write the header afresh.
    Torn,
    /// It starts with another line (another kind, or not an archive).
    Other(String),
}

/// Judges a file of `file_bytes` bytes whose first bytes (up to the
/// header's length) are `head`.
pub fn check_head(head: &[u8], file_bytes: u64, header: &str) -> Head {
    if head == header.as_bytes() {
        return Head::Header;
    }
    if file_bytes < header.len() as u64 && header.as_bytes().starts_with(head) {
        return Head::Torn;
    }
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    Head::Other(String::from_utf8_lossy(first_line).into_owned())
}

/// What to keep of the rows after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rows {
    /// Bytes of the given tail to keep (the rest is a torn row).
    pub keep_bytes: usize,
    /// The offset in the last row kept; `None`: no rows.
    pub last_offset: Option<u64>,
}

/// Physical lines one row may span (line breaks inside quoted labels); a
/// longer row is taken for a torn one, cut, and archived again.
const ROW_LINES_MAX: usize = 16;

/// Finds the last complete row of `fields` fields in `tail`, the last
/// bytes of the rows (`whole`: all of them), cutting whatever follows it
/// (an unterminated line, or one torn inside a quoted line break).
/// `None`: `tail` is not `whole` and too short to tell: look further back.
pub fn recover_rows(tail: &[u8], whole: bool, fields: usize) -> Option<Rows> {
    let mut end = tail.len();
    loop {
        if end == 0 {
            let empty = Rows {
                keep_bytes: 0,
                last_offset: None,
            };
            return whole.then_some(empty);
        }
        if tail[end - 1] != b'\n' {
            end = line_start(tail, end, whole)?;
            continue;
        }
        if let Some(offset) = row_ending_at(tail, end, whole, fields)? {
            return Some(Rows {
                keep_bytes: end,
                last_offset: Some(offset),
            });
        }
        end = line_start(tail, end - 1, whole)?;
    }
}

/// Where the line holding byte `end - 1` starts: after the last line
/// break before `end` (0 if there is none and `tail` is `whole`).
fn line_start(tail: &[u8], end: usize, whole: bool) -> Option<usize> {
    match tail[..end].iter().rposition(|b| *b == b'\n') {
        Some(newline) => Some(newline + 1),
        None => whole.then_some(0),
    }
}

/// The offset of a complete row ending at `end` (just after its line
/// break), trying rows of one line, then two, ... `Some(None)`: no row
/// ends there; `None`: `tail` is too short to tell.
fn row_ending_at(tail: &[u8], end: usize, whole: bool, fields: usize) -> Option<Option<u64>> {
    let mut start = end - 1;
    for _ in 0..ROW_LINES_MAX {
        start = line_start(tail, start, whole)?;
        if let Some(offset) = row_offset(&tail[start..end - 1], fields) {
            return Some(Some(offset));
        }
        if start == 0 {
            return Some(None);
        }
        start -= 1;
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "a,b,offset\n";

    /// A complete file keeps everything; its last row's offset is found.
    #[test]
    fn a_complete_file_is_kept() {
        let rows = b"x,1,10\ny,2,11\n";
        let found = recover_rows(rows, true, 3).unwrap();
        assert_eq!(
            found,
            Rows {
                keep_bytes: rows.len(),
                last_offset: Some(11)
            }
        );
    }

    /// A torn last row is cut: unterminated (even if it parses), or torn
    /// after a line break inside a quoted field.
    #[test]
    fn a_torn_row_is_cut() {
        let kept = Rows {
            keep_bytes: b"x,1,10\n".len(),
            last_offset: Some(10),
        };
        for rows in [
            &b"x,1,10\ny,2"[..],
            b"x,1,10\n\"y\n",
            b"x,1,10\n\"y\nz\n",
            b"x,1,10\ny,2,1",
        ] {
            let found = recover_rows(rows, true, 3).unwrap();
            assert_eq!(found, kept, "{:?}", String::from_utf8_lossy(rows));
        }
    }

    /// A row with quoted line breaks is one row.
    #[test]
    fn a_quoted_line_break_is_part_of_its_row() {
        let rows = b"x,1,10\n\"y\nz\n\",2,11\n";
        let found = recover_rows(rows, true, 3).unwrap();
        assert_eq!(
            found,
            Rows {
                keep_bytes: rows.len(),
                last_offset: Some(11)
            }
        );
        let torn = b"x,1,10\n\"y\nz\n";
        let found = recover_rows(torn, true, 3).unwrap();
        assert_eq!(
            found,
            Rows {
                keep_bytes: 7,
                last_offset: Some(10)
            }
        );
    }

    /// Only a header, or only a torn first row: no rows.
    #[test]
    fn no_rows() {
        assert_eq!(
            recover_rows(b"", true, 3),
            Some(Rows {
                keep_bytes: 0,
                last_offset: None
            })
        );
        assert_eq!(
            recover_rows(b"x,1", true, 3),
            Some(Rows {
                keep_bytes: 0,
                last_offset: None
            })
        );
    }

    /// A tail that starts mid-row and holds no complete row asks for more.
    #[test]
    fn a_partial_tail_asks_for_more() {
        assert_eq!(recover_rows(b"1,10\ny,2", false, 3), None);
        let found = recover_rows(b"1,10\ny,2,11\nz", false, 3).unwrap();
        assert_eq!(
            found,
            Rows {
                keep_bytes: 12,
                last_offset: Some(11)
            }
        );
    }

    /// The head: the header, a torn header, or something else.
    #[test]
    fn heads() {
        assert_eq!(check_head(HEADER.as_bytes(), 100, HEADER), Head::Header);
        assert_eq!(check_head(b"", 0, HEADER), Head::Torn);
        assert_eq!(check_head(b"a,b,of", 6, HEADER), Head::Torn);
        assert_eq!(
            check_head(b"q,r\nxyz", 100, HEADER),
            Head::Other("q,r".into())
        );
    }
}
