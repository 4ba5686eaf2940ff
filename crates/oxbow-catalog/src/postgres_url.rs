//! The catalog URL as libpq's users write it. tokio-postgres knows `sslmode` `disable`,
//! `prefer` and `require` only, and none of libpq's certificate files, so a URL written for
//! psql (`?sslmode=verify-full&sslrootcert=ca.pem`) would be refused, or a client certificate
//! silently go unused. Those parameters are taken out here and become what the TLS connector
//! needs; every other part goes to tokio-postgres as written.

use std::path::PathBuf;

use tokio_postgres::config::SslMode;
use tokio_postgres::Config;

use crate::CatalogError;

/// What a catalog URL asks of TLS: the certificate files it names, and how much of the
/// server's certificate to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTls {
    /// `sslrootcert`: trusted besides the system's roots and `--catalog-ca`.
    pub root_cert: Option<PathBuf>,
    /// `sslcert` and `sslkey`: the client certificate the node presents.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Whether the certificate must name the URL's host (`require`, `verify-full`), or only
    /// chain to a trusted root (`verify-ca`: a server reached by an address its certificate
    /// does not name).
    pub check_host_name: bool,
}

impl CatalogTls {
    /// TLS with the host name checked, and no files besides the system's roots and
    /// `--catalog-ca`.
    pub fn checked() -> Self {
        Self {
            root_cert: None,
            client_identity: None,
            check_host_name: true,
        }
    }
}

/// A parsed catalog URL: the connection settings, and whether (and with which files) to
/// connect over TLS.
#[derive(Debug, Clone)]
pub struct CatalogUrl {
    pub(crate) config: Config,
    tls: Option<CatalogTls>,
}

impl CatalogUrl {
    /// `sslmode=require`, `verify-ca` and `verify-full` connect over TLS and always verify
    /// that the server's certificate chains to a trusted root, and but for `verify-ca` that it
    /// names the host (`require` is checked as `verify-full`, not left unchecked as libpq
    /// leaves it: a catalog holds every credential of the deployment). `disable`, `allow`,
    /// `prefer` or none connect without TLS (`prefer` would otherwise fail against the
    /// self-signed certificate many installations enable by default). A URL in libpq's
    /// key=value form goes to tokio-postgres unchanged.
    pub fn parse(url: &str) -> Result<Self, CatalogError> {
        let invalid = |why: String| CatalogError::Storage(format!("catalog URL: {why}").into());
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let (base, query) = match url.split_once('?') {
            Some((base, query)) if is_url => (base, query),
            _ => {
                let mut config: Config = url
                    .parse()
                    .map_err(|e| CatalogError::Storage(Box::new(e)))?;
                let tls = (config.get_ssl_mode() == SslMode::Require).then(CatalogTls::checked);
                if tls.is_none() {
                    config.ssl_mode(SslMode::Disable);
                }
                return Ok(Self { config, tls });
            }
        };
        let (mut mode, mut root_cert, mut cert, mut key) = (None, None, None, None);
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded =
                || percent_decode(value).ok_or_else(|| invalid(format!("{name}: bad %-escape")));
            match name {
                "sslmode" => mode = Some(decoded()?),
                "sslrootcert" => root_cert = Some(PathBuf::from(decoded()?)),
                "sslcert" => cert = Some(PathBuf::from(decoded()?)),
                "sslkey" => key = Some(PathBuf::from(decoded()?)),
                _ => rest.push(pair),
            }
        }
        let (tls, check_host_name) = match mode.as_deref() {
            None | Some("disable" | "allow" | "prefer") => (false, true),
            Some("require" | "verify-full") => (true, true),
            Some("verify-ca") => (true, false),
            Some(other) => return Err(invalid(format!("unknown sslmode {other:?}"))),
        };
        if !tls && (root_cert.is_some() || cert.is_some() || key.is_some()) {
            return Err(invalid(
                "sslrootcert, sslcert and sslkey need sslmode=require, verify-ca or verify-full"
                    .into(),
            ));
        }
        let client_identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(invalid("sslcert and sslkey go together".into())),
        };
        let passed = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config: Config = passed
            .parse()
            .map_err(|e| CatalogError::Storage(Box::new(e)))?;
        config.ssl_mode(if tls {
            SslMode::Require
        } else {
            SslMode::Disable
        });
        let tls = tls.then_some(CatalogTls {
            root_cert,
            client_identity,
            check_host_name,
        });
        Ok(Self { config, tls })
    }

    /// What to build the TLS connector from, when the URL asks for TLS.
    pub fn tls(&self) -> Option<&CatalogTls> {
        self.tls.as_ref()
    }
}

/// `%XX` escapes of a query value (`+` is left alone, as libpq leaves it).
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(url: &str) -> Option<CatalogTls> {
        CatalogUrl::parse(url).unwrap().tls().cloned()
    }

    #[test]
    fn libpq_tls_modes_and_files_become_the_connectors_settings() {
        let url = "postgres://oxbow@db:5432/kvs?sslmode=verify-full&sslrootcert=/etc/ca%20dir/ca.pem&sslcert=/c.pem&sslkey=/c.key&application_name=node1";
        let parsed = CatalogUrl::parse(url).unwrap();
        assert_eq!(
            parsed.tls(),
            Some(&CatalogTls {
                root_cert: Some("/etc/ca dir/ca.pem".into()),
                client_identity: Some(("/c.pem".into(), "/c.key".into())),
                check_host_name: true,
            })
        );
        assert_eq!(parsed.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(parsed.config.get_dbname(), Some("kvs"));
        assert_eq!(parsed.config.get_application_name(), Some("node1"));
        for (mode, check_host_name) in [
            ("require", true),
            ("verify-ca", false),
            ("verify-full", true),
        ] {
            let url = format!("postgres://db/kvs?sslmode={mode}");
            let expected = CatalogTls {
                check_host_name,
                ..CatalogTls::checked()
            };
            assert_eq!(files(&url), Some(expected), "{mode}");
        }
    }

    #[test]
    fn no_tls_unless_asked_and_certificate_files_without_tls_are_refused() {
        for url in [
            "postgres://db/kvs",
            "postgres://db/kvs?sslmode=prefer",
            "postgresql://db/kvs?sslmode=disable",
            "postgres://db/kvs?sslmode=allow&connect_timeout=5",
            "host=db dbname=kvs",
        ] {
            let parsed = CatalogUrl::parse(url).unwrap();
            assert_eq!(parsed.tls(), None, "{url}");
            assert_eq!(parsed.config.get_ssl_mode(), SslMode::Disable, "{url}");
        }
        assert_eq!(
            files("host=db dbname=kvs sslmode=require"),
            Some(CatalogTls::checked())
        );
        for (url, why) in [
            ("postgres://db/kvs?sslrootcert=/ca.pem", "need sslmode"),
            (
                "postgres://db/kvs?sslmode=prefer&sslcert=/c.pem&sslkey=/c.key",
                "need sslmode",
            ),
            (
                "postgres://db/kvs?sslmode=require&sslcert=/c.pem",
                "go together",
            ),
            (
                "postgres://db/kvs?sslmode=require&sslkey=/c.key",
                "go together",
            ),
            ("postgres://db/kvs?sslmode=verify", "unknown sslmode"),
            (
                "postgres://db/kvs?sslmode=require&sslrootcert=%zz",
                "bad %-escape",
            ),
        ] {
            let err = CatalogUrl::parse(url).expect_err(url);
            let err = std::error::Error::source(&err).unwrap().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
