//! [`ByteStr`]: an immutable string backed by `Bytes`, so topic names and
//! other strings decoded from a frame share the frame's memory instead of
//! being copied. It only guarantees valid UTF-8; the MQTT rules on top
//! (no U+0000, length ≤ 65,535 bytes) are checked by `wire.rs` on decode and
//! encode, and topic syntax by `topic.rs`.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::Bytes;

/// A UTF-8 string backed by [`Bytes`] (cheap to clone and slice, zero-copy
/// from the frame it was decoded from).
#[derive(Clone, Default)]
pub struct ByteStr(Bytes);

impl ByteStr {
    /// The empty string.
    pub const fn new() -> ByteStr {
        ByteStr(Bytes::new())
    }

    /// Wraps `bytes` after checking they are UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<ByteStr, Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(ByteStr(bytes))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either validates the bytes
        // (`from_utf8`) or takes them from a `str`/`String`, and the bytes
        // are immutable afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for ByteStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ByteStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Hash, Eq and Ord all follow `str`, so `Borrow<str>` lets maps keyed by
/// `ByteStr` be looked up with a `&str`.
impl Borrow<str> for ByteStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for ByteStr {
    fn from(text: &'static str) -> ByteStr {
        ByteStr(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for ByteStr {
    fn from(text: String) -> ByteStr {
        ByteStr(Bytes::from(text))
    }
}

impl From<ByteStr> for Bytes {
    fn from(text: ByteStr) -> Bytes {
        text.0
    }
}

impl PartialEq for ByteStr {
    fn eq(&self, other: &ByteStr) -> bool {
        self.0 == other.0
    }
}

impl Eq for ByteStr {}

impl PartialEq<str> for ByteStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ByteStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for ByteStr {
    fn partial_cmp(&self, other: &ByteStr) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByteStr {
    fn cmp(&self, other: &ByteStr) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for ByteStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for ByteStr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), formatter)
    }
}

impl fmt::Display for ByteStr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), formatter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Invalid UTF-8 is refused, valid bytes are kept without copying.
    #[test]
    fn from_utf8_validates_and_shares() {
        assert!(ByteStr::from_utf8(Bytes::from_static(&[0xff])).is_err());
        let bytes = Bytes::from_static(b"a/b");
        let text = ByteStr::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.as_bytes().as_ptr(), bytes.as_ptr());
        assert_eq!(text, "a/b");
    }

    /// A set of `ByteStr` can be queried with a `&str` (Borrow is consistent).
    #[test]
    fn borrow_str_lookup() {
        let set: HashSet<ByteStr> = [ByteStr::from("x"), ByteStr::from(String::from("y"))].into();
        assert!(set.contains("x") && set.contains("y") && !set.contains("z"));
    }
}
