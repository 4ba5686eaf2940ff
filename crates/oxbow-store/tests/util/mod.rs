//! Helpers shared by the store's test files.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use oxbow_store::StreamHeader;

/// A fresh directory under the system temp dir.
pub fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "oxbow-store-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A stream directory's segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

pub fn header() -> StreamHeader {
    StreamHeader {
        ebml: Bytes::from_static(b"EBML"),
        segment_head: Bytes::from_static(b"INFO+TRACKS"),
    }
}
