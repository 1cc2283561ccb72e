//! A small RFC 4180 CSV reader: comma-separated fields, `"`-quoted fields
//! that may hold commas, quotes (doubled) and line breaks, `\n` or `\r\n`
//! record ends, blank lines skipped. It is deliberately lenient in one way:
//! a `"` inside an unquoted field is kept literally. It only splits text
//! into rows; turning rows into records is `input::parse_csv`'s job.

use super::InputError;

/// One CSV record and the (1-based) line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Splits the whole text into rows, or names the line of the first error.
pub fn parse_rows(text: &str) -> Result<Vec<CsvRow>, InputError> {
    let mut reader = Reader {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row()? {
        rows.push(row);
    }
    Ok(rows)
}

struct Reader<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// Line of the next unread character.
    line: usize,
}

impl Reader<'_> {
    fn next_row(&mut self) -> Result<Option<CsvRow>, InputError> {
        while self.chars.peek().is_some() {
            let line = self.line;
            let (fields, any_quoted) = self.read_fields(line)?;
            let blank = fields.len() == 1 && fields[0].is_empty() && !any_quoted;
            if !blank {
                return Ok(Some(CsvRow { line, fields }));
            }
        }
        Ok(None)
    }

    /// Reads fields up to and including the end of the record.
    fn read_fields(&mut self, start_line: usize) -> Result<(Vec<String>, bool), InputError> {
        let mut fields = Vec::new();
        let mut any_quoted = false;
        loop {
            let (field, quoted) = self.read_field(start_line)?;
            fields.push(field);
            any_quoted |= quoted;
            match self.chars.next() {
                Some(',') => continue,
                Some('\r') => {
                    if self.chars.peek() == Some(&'\n') {
                        self.chars.next();
                    }
                    self.line += 1;
                }
                Some('\n') => self.line += 1,
                None => {}
                Some(other) => unreachable!("a field ends only at , or a line end, not {other:?}"),
            }
            return Ok((fields, any_quoted));
        }
    }

    /// Reads one field, leaving the separator or line end unread.
    fn read_field(&mut self, start_line: usize) -> Result<(String, bool), InputError> {
        if self.chars.peek() == Some(&'"') {
            self.chars.next();
            return Ok((self.read_quoted(start_line)?, true));
        }
        let mut field = String::new();
        while let Some(&c) = self.chars.peek() {
            if matches!(c, ',' | '\r' | '\n') {
                break;
            }
            field.push(c);
            self.chars.next();
        }
        Ok((field, false))
    }

    fn read_quoted(&mut self, start_line: usize) -> Result<String, InputError> {
        let mut field = String::new();
        loop {
            match self.chars.next() {
                None => {
                    return Err(InputError::new(
                        start_line,
                        "a quoted field is never closed (missing '\"')",
                    ));
                }
                Some('"') if self.chars.peek() == Some(&'"') => {
                    self.chars.next();
                    field.push('"');
                }
                Some('"') => return self.after_closing_quote(field),
                Some('\n') => {
                    self.line += 1;
                    field.push('\n');
                }
                Some(c) => field.push(c),
            }
        }
    }

    fn after_closing_quote(&mut self, field: String) -> Result<String, InputError> {
        match self.chars.peek() {
            None | Some(',' | '\r' | '\n') => Ok(field),
            Some(other) => Err(InputError::new(
                self.line,
                format!("unexpected {other:?} after a closing quote (expected , or a line end)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse_rows(text)
            .unwrap()
            .into_iter()
            .map(|row| row.fields)
            .collect()
    }

    /// Plain rows split on commas; a final line without a newline counts.
    #[test]
    fn splits_plain_rows() {
        assert_eq!(
            fields("a,b\n1,2\r\n3,\n,4"),
            vec![vec!["a", "b"], vec!["1", "2"], vec!["3", ""], vec!["", "4"]]
        );
    }

    /// Quoted fields keep commas, doubled quotes and line breaks.
    #[test]
    fn quoted_fields_keep_special_characters() {
        assert_eq!(
            fields("\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\n"),
            vec![vec!["a,b", "say \"hi\"", "two\nlines"]]
        );
    }

    /// Rows remember the line they start on, counting multi-line fields.
    #[test]
    fn rows_know_their_line() {
        let rows = parse_rows("h\n\n\"x\ny\"\nz\n").unwrap();
        let lines: Vec<usize> = rows.iter().map(|row| row.line).collect();
        assert_eq!(lines, vec![1, 3, 5]);
    }

    /// A quoted empty field is a row, an empty line is not.
    #[test]
    fn blank_lines_are_skipped_but_quoted_empty_is_kept() {
        assert_eq!(fields("\n\n\"\"\n"), vec![vec![""]]);
    }

    /// Broken quoting names the line where it went wrong.
    #[test]
    fn broken_quotes_name_the_line() {
        let error = parse_rows("a\n\"open\n").unwrap_err();
        assert_eq!(error.line, 2);
        let error = parse_rows("a\nb\n\"x\"y\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.message.contains("closing quote"));
    }
}
