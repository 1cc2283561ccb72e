//! Primitive wire encoding: a [`Writer`] appending fixed-width little-endian
//! values to a `BytesMut`, a [`Reader`] consuming them from a `Bytes`, and the
//! [`Encode`]/[`Decode`] traits every message body implements.
//!
//! ```text
//! u8 u16 u32 u64 i64   fixed width, little-endian
//! bool                 u8: 0 | 1
//! string               u16 byte_len | UTF-8 bytes
//! bytes                u32 byte_len | raw bytes (decoded zero-copy: a slice of the frame)
//! Option<T>            u8 0 (None) | u8 1 + T
//! Vec<T>               u32 count | T * count
//! ```
//!
//! Decode errors carry the path of the field being read (`partitions[0].topic`),
//! built only on the error path so the happy path pays nothing. This file does
//! not know about frames or api keys; see `envelope.rs` for those.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::ErrorCode;

/// Longest string the wire can carry (its length is a `u16`).
pub const STRING_BYTES_MAX: usize = u16::MAX as usize;

/// Most `Vec` slots reserved before any element is decoded: a peer's count
/// must not make us allocate memory its bytes do not back.
const PREALLOCATED_ITEMS_MAX: usize = 1024;

/// A value with a wire layout.
pub(crate) trait Encode {
    fn encode(&self, w: &mut Writer<'_>);
}

/// A value that can be read back from its wire layout.
pub(crate) trait Decode: Sized {
    /// Fewest bytes one value occupies; lets `Vec<T>` refuse a count that the
    /// remaining bytes cannot hold. Must never overstate.
    const WIRE_BYTES_MIN: usize = 1;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;
}

// ---- writer -------------------------------------------------------------------

/// Appends wire values to a buffer. Encoding is infallible: values that the
/// wire cannot represent are caller bugs and trip an assertion. It carries
/// the protocol version of the frame, for the few layouts that differ.
pub(crate) struct Writer<'a> {
    out: &'a mut BytesMut,
    version: u16,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut BytesMut, version: u16) -> Writer<'a> {
        Writer { out, version }
    }

    /// The protocol version being written.
    pub(crate) fn version(&self) -> u16 {
        self.version
    }

    pub(crate) fn put<T: Encode + ?Sized>(&mut self, value: &T) {
        value.encode(self);
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.out.put_u8(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.out.put_u16_le(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.out.put_u32_le(value);
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.out.put_u64_le(value);
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.out.put_i64_le(value);
    }

    /// A name or id: longer than [`STRING_BYTES_MAX`] is a caller bug.
    pub(crate) fn string(&mut self, value: &str) {
        assert!(
            value.len() <= STRING_BYTES_MAX,
            "string of {} bytes exceeds the wire limit of {STRING_BYTES_MAX}",
            value.len()
        );
        self.u16(value.len() as u16);
        self.out.put_slice(value.as_bytes());
    }

    /// Human-readable text (error messages): cut at a char boundary rather
    /// than refused, because a long message must never stop an answer.
    pub(crate) fn message(&mut self, value: &str) {
        self.string(truncate_at_char_boundary(value, STRING_BYTES_MAX));
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.u32(wire_len_u32(value.len(), "bytes field"));
        self.out.put_slice(value);
    }

    pub(crate) fn count(&mut self, count: usize) {
        self.u32(wire_len_u32(count, "list"));
    }
}

fn wire_len_u32(len: usize, what: &str) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| panic!("{what} of length {len} exceeds u32"))
}

fn truncate_at_char_boundary(value: &str, bytes_max: usize) -> &str {
    if value.len() <= bytes_max {
        return value;
    }
    let mut end = bytes_max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

// ---- reader -------------------------------------------------------------------

/// Consumes wire values from a frame body. `bytes` fields are slices of the
/// original buffer, never copies. Like [`Writer`], it knows the version.
pub(crate) struct Reader {
    buf: Bytes,
    version: u16,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, version: u16) -> Reader {
        Reader { buf, version }
    }

    /// The protocol version being read.
    pub(crate) fn version(&self) -> u16 {
        self.version
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Reads one named field; a failure inside it is reported under `field`.
    pub(crate) fn read<T: Decode>(&mut self, field: &'static str) -> Result<T, DecodeError> {
        T::decode(self).map_err(|error| error.in_field(field))
    }

    /// Takes the next `len` bytes without copying.
    pub(crate) fn take(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        self.ensure(len)?;
        Ok(self.buf.split_to(len))
    }

    fn ensure(&self, len: usize) -> Result<(), DecodeError> {
        if self.buf.len() < len {
            return Err(DecodeError::new(DecodeErrorKind::Truncated {
                needed: len,
                remaining: self.buf.len(),
            }));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.ensure(1)?;
        Ok(self.buf.get_u8())
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.ensure(2)?;
        Ok(self.buf.get_u16_le())
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.ensure(4)?;
        Ok(self.buf.get_u32_le())
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.ensure(8)?;
        Ok(self.buf.get_u64_le())
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.ensure(8)?;
        Ok(self.buf.get_i64_le())
    }

    /// Reads a `u8` tag; callers map it to a variant or [`DecodeError::bad_tag`].
    pub(crate) fn tag(&mut self) -> Result<u8, DecodeError> {
        self.u8()
    }

    /// Refuses bytes left over after a complete body.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            count => Err(DecodeError::new(DecodeErrorKind::TrailingBytes { count })),
        }
    }
}

// ---- errors -------------------------------------------------------------------

/// Why a body could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    kind: DecodeErrorKind,
    /// Innermost segment first; reversed when displayed.
    path_reversed: Vec<PathSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DecodeErrorKind {
    Truncated { needed: usize, remaining: usize },
    InvalidUtf8,
    BadTag { tag: u8 },
    CountTooLarge { count: u32, remaining: usize },
    TrailingBytes { count: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathSegment {
    Field(&'static str),
    Index(u32),
}

impl DecodeError {
    fn new(kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            kind,
            path_reversed: Vec::new(),
        }
    }

    pub(crate) fn bad_tag(tag: u8) -> DecodeError {
        DecodeError::new(DecodeErrorKind::BadTag { tag })
    }

    fn in_field(mut self, field: &'static str) -> DecodeError {
        self.path_reversed.push(PathSegment::Field(field));
        self
    }

    fn at_index(mut self, index: u32) -> DecodeError {
        self.path_reversed.push(PathSegment::Index(index));
        self
    }

    fn path(&self) -> String {
        let mut path = String::new();
        for segment in self.path_reversed.iter().rev() {
            match segment {
                PathSegment::Field(name) if path.is_empty() => path.push_str(name),
                PathSegment::Field(name) => {
                    path.push('.');
                    path.push_str(name);
                }
                PathSegment::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        path
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        match &self.kind {
            DecodeErrorKind::Truncated { needed, remaining } => write!(
                f,
                "truncated reading {path} (needs {needed} bytes, {remaining} left)"
            ),
            DecodeErrorKind::InvalidUtf8 => write!(f, "invalid UTF-8 in {path}"),
            DecodeErrorKind::BadTag { tag } => write!(f, "bad tag {tag} for {path}"),
            DecodeErrorKind::CountTooLarge { count, remaining } => write!(
                f,
                "{path} claims {count} items, more than the {remaining} bytes left can hold"
            ),
            DecodeErrorKind::TrailingBytes { count } => {
                write!(f, "{count} trailing bytes after the body")
            }
        }
    }
}

// ---- primitive impls ------------------------------------------------------------

macro_rules! fixed_width {
    ($($ty:ty => $write:ident, $read:ident, $width:expr;)*) => {$(
        impl Encode for $ty {
            fn encode(&self, w: &mut Writer<'_>) {
                w.$write(*self);
            }
        }

        impl Decode for $ty {
            const WIRE_BYTES_MIN: usize = $width;

            fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
                r.$read()
            }
        }
    )*};
}

fixed_width! {
    u8 => u8, u8, 1;
    u16 => u16, u16, 2;
    u32 => u32, u32, 4;
    u64 => u64, u64, 8;
    i64 => i64, i64, 8;
}

impl Encode for bool {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::bad_tag(tag)),
        }
    }
}

impl Encode for ErrorCode {
    fn encode(&self, w: &mut Writer<'_>) {
        w.u16(self.0);
    }
}

impl Decode for ErrorCode {
    const WIRE_BYTES_MIN: usize = 2;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        r.u16().map(ErrorCode)
    }
}

impl Encode for String {
    fn encode(&self, w: &mut Writer<'_>) {
        w.string(self);
    }
}

impl Decode for String {
    const WIRE_BYTES_MIN: usize = 2;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let len = r.u16()?;
        let raw = r.take(usize::from(len))?;
        match std::str::from_utf8(&raw) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(DecodeError::new(DecodeErrorKind::InvalidUtf8)),
        }
    }
}

impl Encode for Bytes {
    fn encode(&self, w: &mut Writer<'_>) {
        w.bytes(self);
    }
}

impl Decode for Bytes {
    const WIRE_BYTES_MIN: usize = 4;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let len = r.u32()?;
        r.take(len as usize)
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, w: &mut Writer<'_>) {
        match self {
            None => w.u8(0),
            Some(value) => {
                w.u8(1);
                value.encode(w);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            tag => Err(DecodeError::bad_tag(tag)),
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.count(self.len());
        for item in self {
            item.encode(w);
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    const WIRE_BYTES_MIN: usize = 4;

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        // Every element consumes input, so the loop below ends within the frame.
        const { assert!(T::WIRE_BYTES_MIN > 0, "Vec<T> needs T to occupy bytes") };
        let count = r.u32()?;
        let remaining = r.remaining();
        if (count as usize).saturating_mul(T::WIRE_BYTES_MIN) > remaining {
            return Err(DecodeError::new(DecodeErrorKind::CountTooLarge {
                count,
                remaining,
            }));
        }
        let mut items = Vec::with_capacity((count as usize).min(PREALLOCATED_ITEMS_MAX));
        for index in 0..count {
            items.push(T::decode(r).map_err(|error| error.at_index(index))?);
        }
        Ok(items)
    }
}

/// Implements [`Encode`] and [`Decode`] for a struct whose wire layout is its
/// fields in the listed order, each in its own layout. Listing the order once
/// keeps encode and decode symmetric by construction.
macro_rules! wire_struct {
    ($name:ident {}) => {
        impl $crate::wire::Encode for $name {
            fn encode(&self, _: &mut $crate::wire::Writer<'_>) {}
        }

        impl $crate::wire::Decode for $name {
            const WIRE_BYTES_MIN: usize = 0;

            fn decode(_: &mut $crate::wire::Reader) -> Result<Self, $crate::wire::DecodeError> {
                Ok($name {})
            }
        }
    };
    ($name:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::wire::Encode for $name {
            fn encode(&self, w: &mut $crate::wire::Writer<'_>) {
                $( w.put(&self.$field); )+
            }
        }

        impl $crate::wire::Decode for $name {
            fn decode(r: &mut $crate::wire::Reader) -> Result<Self, $crate::wire::DecodeError> {
                // Struct expressions evaluate their fields in source order,
                // so this reads the fields in the listed wire order.
                Ok($name {
                    $( $field: r.read(stringify!($field))?, )+
                })
            }
        }
    };
}

pub(crate) use wire_struct;
