//! A small RFC 4180 reader: comma-separated fields, records ended by CRLF
//! or LF, fields optionally in double quotes, inside which commas, line
//! breaks and doubled quotes (`""`) are data. It reads a whole text at
//! once and knows nothing of headers or types (`replay` does).
//!
//! Beyond the RFC: a leading UTF-8 byte-order mark is skipped, and empty
//! lines between records are skipped rather than read as one-field records.
//! Refused, with the line: a quote inside an unquoted field, text after a
//! closing quote, a quoted field never closed.

/// One record and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    pub line: usize,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

/// Splits `text` into records.
pub fn parse(text: &str) -> Result<Vec<CsvRecord>, CsvError> {
    let mut reader = Reader {
        chars: text
            .strip_prefix('\u{feff}')
            .unwrap_or(text)
            .chars()
            .peekable(),
        line: 1,
    };
    let mut records = Vec::new();
    while reader.chars.peek().is_some() {
        if reader.skip_line_break() {
            continue;
        }
        records.push(reader.record()?);
    }
    Ok(records)
}

struct Reader<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl Reader<'_> {
    /// Consumes one CRLF or LF; false if the next character is neither.
    fn skip_line_break(&mut self) -> bool {
        match self.chars.peek() {
            Some('\n') => {
                self.chars.next();
            }
            Some('\r') => {
                self.chars.next();
                if self.chars.peek() == Some(&'\n') {
                    self.chars.next();
                }
            }
            _ => return false,
        }
        self.line += 1;
        true
    }

    /// One record, up to and including its line break (or the end).
    fn record(&mut self) -> Result<CsvRecord, CsvError> {
        let line = self.line;
        let mut fields = Vec::new();
        loop {
            fields.push(self.field()?);
            match self.chars.peek() {
                Some(',') => {
                    self.chars.next();
                }
                _ => {
                    self.skip_line_break();
                    return Ok(CsvRecord { line, fields });
                }
            }
        }
    }

    /// One field, stopping before the `,` or line break that ends it.
    fn field(&mut self) -> Result<String, CsvError> {
        if self.chars.peek() == Some(&'"') {
            self.chars.next();
            return self.quoted_field();
        }
        let mut field = String::new();
        while let Some(&c) = self.chars.peek() {
            match c {
                ',' | '\n' | '\r' => break,
                '"' => return Err(self.error(
                    "a quote inside an unquoted field (quote the whole field and double the quote)",
                )),
                _ => field.push(c),
            }
            self.chars.next();
        }
        Ok(field)
    }

    /// The rest of a field after its opening quote.
    fn quoted_field(&mut self) -> Result<String, CsvError> {
        let start_line = self.line;
        let mut field = String::new();
        loop {
            match self.chars.next() {
                None => {
                    return Err(CsvError {
                        line: start_line,
                        message: "a quoted field is never closed".to_owned(),
                    });
                }
                Some('"') if self.chars.peek() == Some(&'"') => {
                    self.chars.next();
                    field.push('"');
                }
                Some('"') => break,
                Some(c) => {
                    // A CRLF inside quotes is data, but still a new line of the file.
                    if c == '\n' || (c == '\r' && self.chars.peek() != Some(&'\n')) {
                        self.line += 1;
                    }
                    field.push(c);
                }
            }
        }
        match self.chars.peek() {
            None | Some(',' | '\n' | '\r') => Ok(field),
            Some(_) => Err(self.error("text after the closing quote of a field")),
        }
    }

    fn error(&self, message: &str) -> CsvError {
        CsvError {
            line: self.line,
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text).unwrap().into_iter().map(|r| r.fields).collect()
    }

    /// Plain records split on commas and on LF or CRLF; a last line
    /// without a line break still counts.
    #[test]
    fn plain_records() {
        assert_eq!(
            fields("a,b\r\n1,2\n3,4"),
            vec![vec!["a", "b"], vec!["1", "2"], vec!["3", "4"]]
        );
        assert_eq!(fields("a,,\n"), vec![vec!["a", "", ""]]);
        assert!(parse("").unwrap().is_empty());
    }

    /// Quoted fields keep commas, line breaks and doubled quotes as data.
    #[test]
    fn quoted_fields() {
        let text = "name,note\n\"Smith, J.\",\"said \"\"hi\"\"\nthen left\"\n\"\",x\n";
        assert_eq!(
            fields(text),
            vec![
                vec!["name", "note"],
                vec!["Smith, J.", "said \"hi\"\nthen left"],
                vec!["", "x"],
            ]
        );
    }

    /// Records are numbered by the line they start on, counting line
    /// breaks inside quotes and skipped empty lines.
    #[test]
    fn records_know_their_line() {
        let records = parse("\u{feff}a,b\n\n\"x\ny\",1\r\n2,3\n").unwrap();
        let lines: Vec<usize> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 3, 5]);
        assert_eq!(records[0].fields, vec!["a", "b"]);
    }

    /// Malformed quoting is refused with the line it is on.
    #[test]
    fn bad_quoting_is_refused() {
        let error = parse("a,b\n1,x\"y\n").unwrap_err();
        assert_eq!(error.line, 2);
        let error = parse("a,b\n\"1\"2,3\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("after the closing quote"));
        let error = parse("a\n\"open\n\nstill open").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("never closed"));
    }
}
