//! The data representations of §1.5: big-endian integers, UTF-8 strings and
//! binary data with 16-bit length prefixes, string pairs. [`Reader`] reads
//! them from one complete packet body (or property list), checking every
//! length against what is left, so a complete frame never "needs more
//! bytes"; strings come out as [`ByteStr`] sharing the frame's memory.
//! [`Sink`] lets one writing routine either write or only count bytes, so
//! `encoded_len` is exact by construction. Packet layouts live in `packet/`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::byte_str::ByteStr;
use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::varint::{self, MAX_VAR_INT};

/// Reads fields from the front of a complete packet body.
pub(crate) struct Reader {
    bytes: Bytes,
}

impl Reader {
    pub(crate) fn new(bytes: Bytes) -> Reader {
        Reader { bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn need(&self, count: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError::Truncated { field });
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(1, field)?;
        Ok(self.bytes.get_u8())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(2, field)?;
        Ok(self.bytes.get_u16())
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(4, field)?;
        Ok(self.bytes.get_u32())
    }

    pub(crate) fn var_int(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match varint::read_var_int(&self.bytes) {
            Ok(Some((value, length))) => {
                self.bytes.advance(length);
                Ok(value)
            }
            Ok(None) => Err(DecodeError::Truncated { field }),
            Err(varint::Malformed) => Err(DecodeError::MalformedVarInt { field }),
        }
    }

    /// The next `count` bytes, sharing memory with the frame.
    pub(crate) fn take(&mut self, count: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        self.need(count, field)?;
        Ok(self.bytes.split_to(count))
    }

    /// Everything left (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.bytes)
    }

    /// Binary Data (§1.5.6): u16 length, then that many bytes.
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let length = self.u16(field)?;
        self.take(usize::from(length), field)
    }

    /// A UTF-8 Encoded String (§1.5.4): well-formed UTF-8 without
    /// surrogates [MQTT-1.5.4-1] (Rust's UTF-8 check refuses encoded
    /// surrogates) and without U+0000 [MQTT-1.5.4-2]. A leading BOM is kept
    /// [MQTT-1.5.4-3].
    pub(crate) fn string(&mut self, field: &'static str) -> Result<ByteStr, DecodeError> {
        let bytes = self.binary(field)?;
        // U+0000 is the single byte 0x00 in UTF-8 and 0x00 occurs in no other
        // encoding, so a byte scan is exact.
        if bytes.contains(&0) {
            return Err(DecodeError::NullChar { field });
        }
        ByteStr::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// A UTF-8 String Pair (§1.5.7): both strings follow the string rules
    /// [MQTT-1.5.7-1].
    pub(crate) fn string_pair(
        &mut self,
        field: &'static str,
    ) -> Result<(ByteStr, ByteStr), DecodeError> {
        Ok((self.string(field)?, self.string(field)?))
    }

    /// Ends a packet: anything left over is malformed.
    pub(crate) fn finish(self, packet_type: PacketType) -> Result<(), DecodeError> {
        if !self.bytes.is_empty() {
            return Err(DecodeError::TrailingBytes {
                packet_type,
                count: self.bytes.len(),
            });
        }
        Ok(())
    }
}

/// Where encoded bytes go: a buffer, or a [`Counter`] that only measures.
pub(crate) trait Sink {
    fn put_slice(&mut self, bytes: &[u8]);

    fn put_u8(&mut self, byte: u8) {
        self.put_slice(&[byte]);
    }
}

impl Sink for BytesMut {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_u8(&mut self, byte: u8) {
        BufMut::put_u8(self, byte);
    }
}

/// A sink that counts bytes instead of storing them.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    pub(crate) bytes: usize,
}

impl Sink for Counter {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len();
    }

    fn put_u8(&mut self, _byte: u8) {
        self.bytes += 1;
    }
}

pub(crate) fn put_u16<S: Sink>(sink: &mut S, value: u16) {
    sink.put_slice(&value.to_be_bytes());
}

pub(crate) fn put_u32<S: Sink>(sink: &mut S, value: u32) {
    sink.put_slice(&value.to_be_bytes());
}

/// Writes a length that must fit a Variable Byte Integer (a property list
/// length; the remaining length is checked by the caller the same way).
pub(crate) fn put_length<S: Sink>(sink: &mut S, length_bytes: usize) -> Result<(), EncodeError> {
    let value = u32::try_from(length_bytes)
        .ok()
        .filter(|&value| value <= MAX_VAR_INT)
        .ok_or(EncodeError::RemainingLengthOverflow {
            remaining_bytes: length_bytes,
        })?;
    varint::write_var_int(sink, value);
    Ok(())
}

/// Binary Data: u16 length and the bytes.
pub(crate) fn put_binary<S: Sink>(
    sink: &mut S,
    bytes: &[u8],
    field: &'static str,
) -> Result<(), EncodeError> {
    let length = u16::try_from(bytes.len()).map_err(|_| EncodeError::StringTooLong {
        field,
        length_bytes: bytes.len(),
    })?;
    put_u16(sink, length);
    sink.put_slice(bytes);
    Ok(())
}

/// A UTF-8 string; U+0000 is refused so we never send what we would reject.
pub(crate) fn put_string<S: Sink>(
    sink: &mut S,
    text: &str,
    field: &'static str,
) -> Result<(), EncodeError> {
    if text.as_bytes().contains(&0) {
        return Err(EncodeError::NullChar { field });
    }
    put_binary(sink, text.as_bytes(), field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A string whose length runs past the body is Truncated, never a panic.
    #[test]
    fn string_length_past_end_is_truncated() {
        let mut reader = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a', b'b']));
        assert_eq!(
            reader.string("topic"),
            Err(DecodeError::Truncated { field: "topic" })
        );
    }

    /// An encoded surrogate (ED A0 80) and U+0000 are refused; a BOM is kept.
    #[test]
    fn string_rules() {
        let mut surrogate = Reader::new(Bytes::from_static(&[0x00, 0x03, 0xED, 0xA0, 0x80]));
        assert_eq!(
            surrogate.string("s"),
            Err(DecodeError::InvalidUtf8 { field: "s" })
        );
        let mut null = Reader::new(Bytes::from_static(&[0x00, 0x01, 0x00]));
        assert_eq!(null.string("s"), Err(DecodeError::NullChar { field: "s" }));
        let mut bom = Reader::new(Bytes::from_static(&[0x00, 0x04, 0xEF, 0xBB, 0xBF, b'a']));
        assert_eq!(bom.string("s").unwrap(), "\u{FEFF}a");
    }

    /// The counter measures exactly what the buffer receives.
    #[test]
    fn counter_matches_buffer() {
        let mut counter = Counter::default();
        let mut buffer = BytesMut::new();
        put_string(&mut counter, "héllo", "s").unwrap();
        put_string(&mut buffer, "héllo", "s").unwrap();
        put_u32(&mut counter, 7);
        put_u32(&mut buffer, 7);
        assert_eq!(counter.bytes, buffer.len());
        assert_eq!(&buffer[..], b"\x00\x06h\xc3\xa9llo\x00\x00\x00\x07");
    }
}
