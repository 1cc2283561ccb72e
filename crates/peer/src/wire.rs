//! Fixed-width little-endian primitives shared by the frame and message
//! codecs: a [`Reader`] that checks every length before it reads, and
//! `put_*` helpers over `BytesMut`. Pure: no I/O, no allocation beyond the
//! output buffer. Byte slices are split off the input `Bytes` (zero-copy).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why bytes are not a frame or message this version can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input is truncated: needed {needed} bytes, {available} left")]
    Truncated { needed: usize, available: usize },
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    #[error("unknown {field} tag {value}")]
    UnknownTag { field: &'static str, value: u64 },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
}

/// A cursor over received bytes; every read checks the length first.
pub struct Reader {
    input: Bytes,
}

impl Reader {
    pub fn new(input: Bytes) -> Reader {
        Reader { input }
    }

    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &[u8] {
        &self.input
    }

    fn need(&self, needed: usize) -> Result<(), DecodeError> {
        match self.input.len() >= needed {
            true => Ok(()),
            false => Err(DecodeError::Truncated {
                needed,
                available: self.input.len(),
            }),
        }
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.input.get_u8())
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.input.get_u16_le())
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.input.get_u32_le())
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        Ok(self.input.get_u64_le())
    }

    /// A 0/1 byte as a bool; any other value is corrupt input.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::UnknownTag {
                field,
                value: value.into(),
            }),
        }
    }

    /// The next `len` bytes, sharing the input's buffer.
    pub fn bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        self.need(len)?;
        Ok(self.input.split_to(len))
    }

    /// Succeeds only if the whole input was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.input.len() {
            0 => Ok(()),
            trailing => Err(DecodeError::Trailing(trailing)),
        }
    }
}

pub fn put_bool(out: &mut BytesMut, value: bool) {
    out.put_u8(u8::from(value));
}

/// A `u16` length prefix and the bytes; panics past `u16::MAX` (callers
/// bound their inputs first).
pub fn put_short_bytes(out: &mut BytesMut, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).expect("short field fits a u16 length");
    out.put_u16_le(len);
    out.put_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads past the end report how much was needed instead of panicking,
    /// and trailing bytes are refused.
    #[test]
    fn reader_checks_lengths() {
        let mut reader = Reader::new(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(
            reader.u32(),
            Err(DecodeError::Truncated {
                needed: 4,
                available: 3
            })
        );
        assert_eq!(reader.u16(), Ok(0x0201));
        assert_eq!(reader.finish(), Err(DecodeError::Trailing(1)));
        let mut reader = Reader::new(Bytes::from_static(&[2]));
        assert!(matches!(
            reader.bool("flag"),
            Err(DecodeError::UnknownTag { value: 2, .. })
        ));
    }
}
