//! A real S3-compatible server for a test: `s3s-fs` (installed by `.ci/run`) on a free
//! loopback port, serving a temporary directory in which each subdirectory is a bucket.
//! Killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "s3key";
pub const SECRET_KEY: &str = "s3secret";

pub struct S3Server {
    child: Child,
    pub root: PathBuf,
    pub endpoint: String,
}

impl S3Server {
    /// Starts the server with the buckets named.
    pub fn start(buckets: &[&str]) -> Self {
        let root = std::env::temp_dir().join(format!(
            "oxbow-s3-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        for b in buckets {
            std::fs::create_dir_all(root.join(b)).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "s3s-fs (cargo install s3s-fs --version 0.14.1 --features binary; .ci/run does)",
            );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Stops the server (a store that becomes unreachable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Files under `path` of the served directory, recursively (each is an object).
    pub fn objects_under(&self, path: &str) -> Vec<String> {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if let Ok(rel) = p.strip_prefix(base) {
                    out.push(rel.display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.join(path), &self.root, &mut out);
        out.sort();
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
