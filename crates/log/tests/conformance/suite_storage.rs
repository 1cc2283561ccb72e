//! Conformance: the `Storage` trait contract itself, which the log relies on.

use std::io::ErrorKind;

use crate::common::*;

/// Appends are readable at once; reads past the end fail with UnexpectedEof.
pub fn storage_appends_are_readable_at_once(factory: Factory) {
    let fixture = factory();
    let storage = &*fixture.storage;
    let mut file = storage.open("a.log", true).unwrap();
    file.append(b"hello ").unwrap();
    file.append(b"world").unwrap();
    assert_eq!(file.len_bytes().unwrap(), 11);
    let mut buf = [0u8; 5];
    file.read_at(6, &mut buf).unwrap();
    assert_eq!(&buf, b"world");
    let error = file.read_at(7, &mut buf).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
    file.truncate(5).unwrap();
    file.append(b"!").unwrap();
    assert_eq!(file_bytes(storage, "a.log"), b"hello!");
    file.sync().unwrap();
}

/// Opening a missing file without `create` is NotFound; create, list and
/// delete behave like a directory; deleting twice is fine.
pub fn storage_names_behave_like_a_directory(factory: Factory) {
    let fixture = factory();
    let storage = &*fixture.storage;
    let error = storage.open("missing", false).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    storage.open("x", true).unwrap();
    storage.open("y", true).unwrap().append(b"1").unwrap();
    let mut names = storage.list().unwrap();
    names.sort();
    assert_eq!(names, vec!["x", "y"]);
    let reopened = storage.open("y", false).unwrap();
    assert_eq!(reopened.len_bytes().unwrap(), 1);
    storage.delete("x").unwrap();
    storage.delete("x").unwrap();
    assert_eq!(storage.list().unwrap(), vec!["y"]);
    storage.sync_dir().unwrap();
}

/// `write_atomic` replaces a whole small file; `read_whole` reads it back.
pub fn storage_atomic_write_replaces_a_file(factory: Factory) {
    let fixture = factory();
    let storage = &*fixture.storage;
    assert_eq!(storage.read_whole("meta").unwrap(), None);
    storage.write_atomic("meta", b"first version").unwrap();
    storage.write_atomic("meta", b"second").unwrap();
    assert_eq!(
        storage.read_whole("meta").unwrap(),
        Some(b"second".to_vec())
    );
    assert_eq!(storage.list().unwrap(), vec!["meta"]);
}
