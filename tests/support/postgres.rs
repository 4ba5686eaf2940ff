//! A private PostgreSQL server for a test: `initdb` into a temporary directory and `postgres`
//! on a free loopback port, from Debian's packages (`/usr/lib/postgresql/<version>/bin`, or
//! `OXBOW_TEST_PG_BIN`). PostgreSQL refuses to run as root, so as root it runs as the
//! `postgres` user the package creates. Killed and removed on drop.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PgServer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OXBOW_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|d| d.join("initdb").exists())
        .expect("PostgreSQL server binaries (Debian: apt-get install postgresql)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program` from the PostgreSQL binaries, as the `postgres` user when we are root
/// (`setpriv` execs it, so the child we hold is PostgreSQL itself).
fn pg_command(program: &str) -> Command {
    let path = bin_dir().join(program);
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgServer {
    pub fn start() -> Self {
        Self::start_with(None, None)
    }

    /// A server that takes TCP connections only over TLS, with this certificate and key
    /// (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem)), None)
    }

    /// [`PgServer::start_tls`], and every TCP client must also present a certificate signed
    /// by `client_ca_pem`.
    pub fn start_mutual_tls(cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem)), Some(client_ca_pem))
    }

    fn start_with(tls: Option<(&str, &str)>, client_ca: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "oxbow-pg-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ free_port() as u128
        ));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {} to postgres", dir.display());
        }
        let out = pg_command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "oxbow",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut settings = vec![
            "listen_addresses=127.0.0.1".to_string(),
            "fsync=off".to_string(),
            "max_connections=200".to_string(),
        ];
        if let Some((cert, key)) = tls {
            let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&cert_path, cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            // TCP only over TLS; the socket in `dir` stays open for local tools.
            let hba = match client_ca {
                None => "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
                Some(_) => {
                    "local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-ca\n"
                }
            };
            std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
            if let Some(client_ca) = client_ca {
                let ca_path = dir.join("client-ca.crt");
                std::fs::write(&ca_path, client_ca).unwrap();
                settings.push(format!("ssl_ca_file={}", ca_path.display()));
            }
            // PostgreSQL wants its key private to the user it runs as.
            let mut chmod = Command::new("chmod");
            let ok = chmod.arg("600").arg(&key_path).status().unwrap().success();
            assert!(ok, "chmod the key");
            if is_root() {
                for p in [&cert_path, &key_path, &data.join("pg_hba.conf")] {
                    let ok = Command::new("chown")
                        .arg("postgres:")
                        .arg(p)
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok, "chown {}", p.display());
                }
            }
            settings.push("ssl=on".to_string());
            settings.push(format!("ssl_cert_file={}", cert_path.display()));
            settings.push(format!("ssl_key_file={}", key_path.display()));
        }
        let port = free_port();
        let mut postgres = pg_command("postgres");
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir);
        for setting in &settings {
            postgres.args(["-c", setting]);
        }
        let child = postgres
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        let server = PgServer { child, dir, port };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // Over the socket: TCP may want a client certificate.
            let ready = Command::new(bin_dir().join("pg_isready"))
                .args(["-q", "-p", &self.port.to_string(), "-h"])
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL did not become ready on port {}", self.port);
    }

    /// What psql prints for `sql` run in the `postgres` database (unaligned, no headers).
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(bin_dir().join("psql"))
            .args(["-qtA", "-p", &self.port.to_string(), "-U", "oxbow", "-h"])
            .arg(&self.dir)
            .args(["-d", "postgres", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The URL of a fresh database `name` on this server.
    pub fn database(&self, name: &str) -> String {
        self.sql(&format!("CREATE DATABASE {name}"));
        format!("postgres://oxbow@127.0.0.1:{}/{name}", self.port)
    }
}

/// A CA named `ca_name` and a certificate for 127.0.0.1 it signed, for [`PgServer::start_tls`]:
/// (the CA, the certificate's PEM, its key's PEM).
pub fn tls_identity(ca_name: &str) -> (rcgen::Certificate, String, String) {
    let ca = TestCa::new(ca_name);
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    (ca.cert, cert, key)
}

/// A certificate authority that issues certificates for tests.
pub struct TestCa {
    pub cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A certificate for `names` (the server's host, or any name for a client) and its key,
    /// as PEM.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
