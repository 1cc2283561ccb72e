//! The asset files as they are on disk, for the tests to compare with what
//! the router serves and to read as text.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};

pub fn assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// Every file under assets/, as a path relative to it with `/` separators, sorted.
pub fn asset_files() -> Vec<String> {
    let mut files = Vec::new();
    let mut folders = vec![assets_dir()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(assets_dir()).unwrap();
                let parts: Vec<_> = relative.iter().map(|p| p.to_str().unwrap()).collect();
                files.push(parts.join("/"));
            }
        }
    }
    files.sort();
    files
}

pub fn read_asset(path: &str) -> Vec<u8> {
    std::fs::read(assets_dir().join(path)).unwrap()
}

pub fn read_text(path: &str) -> String {
    String::from_utf8(read_asset(path)).unwrap_or_else(|_| panic!("{path} is not UTF-8"))
}

/// The JavaScript modules, relative to assets/.
pub fn js_files() -> Vec<String> {
    asset_files()
        .into_iter()
        .filter(|path| path.ends_with(".js"))
        .collect()
}

/// `node` if it is on the PATH and runs.
pub fn node() -> Option<String> {
    let output = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
