//! The swap manifest (`log-swap`): the one crash-safe step that replaces
//! segments by their `.cleaned` rewrites (decision 0017 §6), and the live
//! log by a staged snapshot prefix (§5, `restore`). The manifest lists the
//! files to delete, the renames to make and, optionally, the new
//! `log-start-offset`; it is written atomically, then applied: deletes
//! first (index files before anything else, so a stale index never points
//! into a rewritten `.log`), then the renames, a directory sync, the log
//! start, and the manifest is deleted last.
//!
//! Every step is idempotent (deleting a missing file succeeds; a rename
//! whose source is gone and whose target exists is done; the log start is
//! a whole-file write), so recovery replays a manifest it finds, whatever
//! step a crash stopped at, and then deletes leftover `.cleaned` files: a
//! crash before the manifest leaves the old segments, one after it the new
//! ones, never a mix of one segment's files. For that, no file is both
//! deleted and a rename target (a replay would delete the renamed file);
//! a rename replaces its target instead.
//!
//! ```text
//!  0       8             12                     ...           ...            len-4
//!  +-------+-------------+----------------------+-------------+--------------+--------+
//!  |magic  |delete_count |delete names          |rename_count |log_start_len |crc32c  |
//!  |8 bytes|u32          |(u16 len + UTF-8) each|u32, then    |u8: 0 or 44,  |u32 over|
//!  |CSSWAP02             |                      |(from, to)   |then the file |[0,len-4)|
//!  +-------+-------------+----------------------+-------------+--------------+--------+
//! ```
//!
//! Version 1 manifests (`CSSWAP01`, no log start) were never written by a
//! released build and are refused like a damaged one.

use citystream_record::crc32c;

use crate::LogError;
use crate::log_start::{self, LogStart};
use crate::segment::io_error;
use crate::storage::Storage;

/// Name of the manifest file in the log's storage.
pub(crate) const SWAP_FILE: &str = "log-swap";
/// Suffix of a segment's rewrite before the swap: `<base>.log.cleaned`.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
const SWAP_MAGIC: &[u8; 8] = b"CSSWAP02";
/// Most names a manifest holds (a bound for decoding).
const SWAP_NAMES_MAX: usize = 1 << 20;

/// What a swap does, in order: delete `deletes`, then rename each pair,
/// then write `log_start` if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SwapManifest {
    pub deletes: Vec<String>,
    pub renames: Vec<(String, String)>,
    pub log_start: Option<LogStart>,
}

impl SwapManifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = SWAP_MAGIC.to_vec();
        out.extend_from_slice(&(self.deletes.len() as u32).to_le_bytes());
        for name in &self.deletes {
            put_name(&mut out, name);
        }
        out.extend_from_slice(&(self.renames.len() as u32).to_le_bytes());
        for (from, to) in &self.renames {
            put_name(&mut out, from);
            put_name(&mut out, to);
        }
        match self.log_start {
            Some(log_start) => {
                let bytes = log_start.to_bytes();
                out.push(u8::try_from(bytes.len()).expect("a log start is short"));
                out.extend_from_slice(&bytes);
            }
            None => out.push(0),
        }
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The manifest in `bytes`, or `None` if they are not one whole,
    /// CRC-checked manifest.
    pub fn decode(bytes: &[u8]) -> Option<SwapManifest> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if u32::from_le_bytes(crc.try_into().ok()?) != crc32c(body) {
            return None;
        }
        let mut rest = body.strip_prefix(SWAP_MAGIC.as_slice())?;
        let delete_count = take_count(&mut rest)?;
        let deletes = (0..delete_count)
            .map(|_| take_name(&mut rest))
            .collect::<Option<Vec<_>>>()?;
        let rename_count = take_count(&mut rest)?;
        let renames = (0..rename_count)
            .map(|_| Some((take_name(&mut rest)?, take_name(&mut rest)?)))
            .collect::<Option<Vec<_>>>()?;
        let (&log_start_len, rest) = rest.split_first()?;
        let log_start = match log_start_len {
            0 if rest.is_empty() => None,
            _ if rest.len() == usize::from(log_start_len) => Some(LogStart::from_bytes(rest)?),
            _ => return None,
        };
        Some(SwapManifest {
            deletes,
            renames,
            log_start,
        })
    }
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    let len = u16::try_from(name.len()).expect("file names are short");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
}

fn take_count(rest: &mut &[u8]) -> Option<usize> {
    let (count, tail) = rest.split_at_checked(4)?;
    *rest = tail;
    let count = u32::from_le_bytes(count.try_into().ok()?) as usize;
    (count <= SWAP_NAMES_MAX).then_some(count)
}

fn take_name(rest: &mut &[u8]) -> Option<String> {
    let (len, tail) = rest.split_at_checked(2)?;
    let len = usize::from(u16::from_le_bytes(len.try_into().ok()?));
    let (name, tail) = tail.split_at_checked(len)?;
    *rest = tail;
    String::from_utf8(name.to_vec()).ok()
}

/// Writes `manifest` (the commit point) and applies it.
pub(crate) fn commit(storage: &dyn Storage, manifest: &SwapManifest) -> Result<(), LogError> {
    for (_, to) in &manifest.renames {
        assert!(
            !manifest.deletes.contains(to),
            "a swap never deletes a rename target ({to})"
        );
    }
    storage
        .write_atomic(SWAP_FILE, &manifest.encode())
        .map_err(io_error(&storage.location(SWAP_FILE)))?;
    apply(storage, manifest)
}

/// Recovery rule 0: replays a manifest left by a crash, then deletes
/// leftover `.cleaned` files. A damaged manifest is an error: guessing
/// could lose a segment.
pub(crate) fn finish_pending(storage: &dyn Storage) -> Result<(), LogError> {
    let path = storage.location(SWAP_FILE);
    if let Some(bytes) = storage.read_whole(SWAP_FILE).map_err(io_error(&path))? {
        let manifest = SwapManifest::decode(&bytes)
            .ok_or_else(|| LogError::Corrupt(format!("{}: bad swap manifest", path.display())))?;
        tracing::info!(
            renames = manifest.renames.len(),
            "finishing an interrupted segment swap"
        );
        apply(storage, &manifest)?;
    }
    let dir = storage.location("");
    for name in storage.list().map_err(io_error(&dir))? {
        if name.ends_with(CLEANED_SUFFIX) {
            storage
                .delete(&name)
                .map_err(io_error(&storage.location(&name)))?;
        }
    }
    Ok(())
}

/// Applies every step of `manifest`, each idempotently, then deletes it.
fn apply(storage: &dyn Storage, manifest: &SwapManifest) -> Result<(), LogError> {
    for name in &manifest.deletes {
        storage
            .delete(name)
            .map_err(io_error(&storage.location(name)))?;
    }
    for (from, to) in &manifest.renames {
        rename_once(storage, from, to)?;
    }
    let dir = storage.location("");
    storage.sync_dir().map_err(io_error(&dir))?;
    if let Some(log_start) = manifest.log_start {
        log_start::write(storage, log_start)?;
    }
    storage
        .delete(SWAP_FILE)
        .map_err(io_error(&storage.location(SWAP_FILE)))?;
    storage.sync_dir().map_err(io_error(&dir))
}

/// Renames `from` to `to`, or does nothing if an earlier attempt did.
fn rename_once(storage: &dyn Storage, from: &str, to: &str) -> Result<(), LogError> {
    match storage.rename(from, to) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            match storage.open(to, false) {
                Ok(_) => Ok(()),
                Err(_) => Err(LogError::Corrupt(format!(
                    "swap manifest renames {from} to {to}, and neither exists"
                ))),
            }
        }
        Err(error) => Err(io_error(&storage.location(from))(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest has the documented bytes, round-trips, and a flipped
    /// byte anywhere or a cut is refused.
    #[test]
    fn round_trip_exact_bytes_and_damage() {
        let log_start = LogStart {
            start_offset: 3,
            clean_end_offset: 9,
            ..LogStart::default()
        };
        let manifest = SwapManifest {
            deletes: vec!["a.index".to_owned()],
            renames: vec![("a.log.cleaned".to_owned(), "a.log".to_owned())],
            log_start: Some(log_start),
        };
        let bytes = manifest.encode();
        let mut expected = b"CSSWAP02".to_vec();
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(&7u16.to_le_bytes());
        expected.extend_from_slice(b"a.index");
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(&13u16.to_le_bytes());
        expected.extend_from_slice(b"a.log.cleaned");
        expected.extend_from_slice(&5u16.to_le_bytes());
        expected.extend_from_slice(b"a.log");
        expected.push(44);
        expected.extend_from_slice(&log_start.to_bytes());
        expected.extend_from_slice(&crc32c(&expected).to_le_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(SwapManifest::decode(&bytes), Some(manifest));
        let without = SwapManifest::default();
        assert_eq!(SwapManifest::decode(&without.encode()), Some(without));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert_eq!(SwapManifest::decode(&bad), None, "byte {i}");
        }
        for len in 0..bytes.len() {
            assert_eq!(SwapManifest::decode(&bytes[..len]), None, "cut at {len}");
        }
    }
}
