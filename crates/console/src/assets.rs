//! The embedded assets: one table of every file under `assets/`, its
//! bytes taken by `include_bytes!` at compile time, its content type from
//! its extension and an `ETag` from a hash of its bytes. A file added to
//! `assets/` must be added to [`ASSETS`] too (a test walks the folder and
//! fails on any file the table misses).

use std::sync::OnceLock;

/// One embedded file, named by its path under `assets/` (as served under
/// `/console/`).
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(Asset { path: $path, bytes: include_bytes!(concat!("../assets/", $path)) }),*]
    };
}

/// Every asset. `index.html` is also served at `/`.
pub static ASSETS: &[Asset] = embed![
    "index.html",
    "favicon.svg",
    "css/console.css",
    "js/main.js",
    "js/api.js",
    "js/nodes.js",
    "js/dom.js",
    "js/format.js",
    "js/log-buffer.js",
    "js/record-item.js",
    "js/publish-body.js",
    "js/topic-stream.js",
    "js/chart-math.js",
    "js/svg.js",
    "js/city-model.js",
    "js/pages/stream.js",
    "js/pages/publish.js",
    "js/pages/consume.js",
    "js/pages/cluster.js",
    "js/pages/cluster-rates.js",
    "js/pages/city.js",
    "js/pages/city-chart.js",
    "js/pages/city-alerts.js",
];

/// The asset at `path` (relative to `/console/`), if embedded.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

impl Asset {
    /// The `Content-Type` for the file's extension.
    pub fn content_type(&self) -> &'static str {
        let extension = self.path.rsplit_once('.').map_or("", |(_, ext)| ext);
        match extension {
            "html" => "text/html; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "svg" => "image/svg+xml",
            "json" => "application/json",
            "png" => "image/png",
            _ => "application/octet-stream",
        }
    }

    /// A strong `ETag` (quoted) naming this version of the bytes.
    pub fn etag(&self) -> &'static str {
        static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
        let etags = ETAGS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|asset| format!("\"{:016x}\"", fnv1a(asset.bytes)))
                .collect()
        });
        let index = ASSETS
            .iter()
            .position(|asset| std::ptr::eq(asset, self))
            .expect("every Asset is an entry of ASSETS");
        &etags[index]
    }
}

/// 64-bit FNV-1a: enough to tell two versions of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths are unique, so `find` can never hide an entry behind another.
    #[test]
    fn asset_paths_are_unique() {
        let mut paths: Vec<&str> = ASSETS.iter().map(|asset| asset.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
    }

    /// The etag follows the bytes (FNV-1a's published test vector).
    #[test]
    fn etag_hash_matches_the_reference() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let page = find("index.html").unwrap();
        assert_eq!(page.etag(), page.etag());
        assert_eq!(page.etag().len(), 18);
    }
}
