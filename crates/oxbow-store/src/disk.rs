//! The few file operations whose outcome decides durability, behind one seam: writing record
//! bytes, `fdatasync`, making a directory entry durable, and asking how much room is left.
//! [`RealDisk`] does them; tests put a disk that runs out of space or loses power in its place
//! and check that nothing acknowledged as durable is lost.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where the local backend's durability-relevant I/O goes.
pub trait Disk: Send + Sync + 'static {
    /// Writes all of `buf` at `offset` of `file` (`path` names it).
    fn write_at(&self, path: &Path, file: &File, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes the file's written bytes durable (`fdatasync`).
    fn sync_data(&self, path: &Path, file: &File) -> io::Result<()>;

    /// Makes the entries of `dir` durable: a created or removed file survives a power cut
    /// only once its directory has been synced.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Bytes still available to unprivileged writers on the filesystem holding `dir`.
    fn available_bytes(&self, dir: &Path) -> io::Result<u64>;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealDisk;

impl Disk for RealDisk {
    fn write_at(&self, _path: &Path, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    fn sync_data(&self, _path: &Path, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn available_bytes(&self, dir: &Path) -> io::Result<u64> {
        let s = rustix::fs::statvfs(dir)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }
}
