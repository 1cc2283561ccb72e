//! The Variable Byte Integer of §1.5.5: 7 bits a byte, least significant
//! first, at most 4 bytes, so at most 268,435,455. Decoding rejects a fifth
//! byte and non-minimal forms (a last byte of 0 after a continuation), which
//! the spec forbids senders to produce [MQTT-1.5.5-1]; decision 0015 chose to
//! reject them rather than tolerate them. Used for the remaining length, the
//! property length and the Subscription Identifier.

use crate::wire::Sink;

/// The largest value four bytes can hold.
pub(crate) const MAX_VAR_INT: u32 = 268_435_455;
const MAX_VAR_INT_BYTES: usize = 4;

/// A Variable Byte Integer that cannot be right, however many bytes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Reads a Variable Byte Integer from the start of `buf`: `Ok(None)` if
/// `buf` ends before it does, else the value and how many bytes it took.
pub(crate) fn read_var_int(buf: &[u8]) -> Result<Option<(u32, usize)>, Malformed> {
    let mut value: u32 = 0;
    for (index, &byte) in buf.iter().enumerate() {
        if index == MAX_VAR_INT_BYTES {
            return Err(Malformed);
        }
        value |= u32::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            // A final byte of 0 after a continuation adds nothing: the same
            // value fits in fewer bytes.
            if index > 0 && byte == 0 {
                return Err(Malformed);
            }
            return Ok(Some((value, index + 1)));
        }
    }
    if buf.len() >= MAX_VAR_INT_BYTES {
        return Err(Malformed);
    }
    Ok(None)
}

/// How many bytes `value` takes (callers keep it ≤ [`MAX_VAR_INT`]).
pub(crate) fn var_int_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value` in its minimal form.
pub(crate) fn write_var_int<S: Sink>(sink: &mut S, value: u32) {
    assert!(
        value <= MAX_VAR_INT,
        "variable byte integer {value} too large"
    );
    let mut rest = value;
    loop {
        let mut byte = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest > 0 {
            byte |= 0x80;
        }
        sink.put_u8(byte);
        if rest == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    /// The boundary values of Table 1-1, byte for byte, both ways.
    #[test]
    fn table_1_1_boundaries() {
        let cases: &[(u32, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(value, encoded) in cases {
            let mut out = BytesMut::new();
            write_var_int(&mut out, value);
            assert_eq!(&out[..], encoded, "{value}");
            assert_eq!(var_int_len(value), encoded.len());
            assert_eq!(read_var_int(encoded), Ok(Some((value, encoded.len()))));
            assert_eq!(read_var_int(&encoded[..encoded.len() - 1]), Ok(None));
        }
    }

    /// A fifth byte and non-minimal forms are malformed.
    #[test]
    fn rejects_long_and_non_minimal() {
        assert_eq!(
            read_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(Malformed)
        );
        assert_eq!(read_var_int(&[0x80, 0x80, 0x80, 0x80]), Err(Malformed));
        assert_eq!(read_var_int(&[0x80, 0x00]), Err(Malformed));
        assert_eq!(read_var_int(&[0xFF, 0x80, 0x00]), Err(Malformed));
    }
}
