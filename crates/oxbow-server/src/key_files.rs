//! The server's secret keys as files of its data directory (a single node's; a cluster keeps
//! its shared keys in the catalog): hex, readable by the server's user only, replaced whole.

/// A key kept in the data directory, so what it sealed outlives a restart; created on first
/// start.
pub fn load_or_create_key(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(key) = hex::decode(text.trim()) {
            if key.len() >= 32 {
                return Ok(key);
            }
        }
    }
    let key: [u8; 32] = rand::random();
    write_key(path, &key)?;
    Ok(key.to_vec())
}

/// Writes `key` (hex, readable by this user only) in place of `path`'s, all or nothing.
pub fn write_key(path: &std::path::Path, key: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(hex::encode(key).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
