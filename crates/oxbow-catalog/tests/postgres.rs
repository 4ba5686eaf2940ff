//! The PostgreSQL catalog against a real PostgreSQL server (started privately for each test):
//! the same table semantics as the embedded catalog, and what a cluster adds — a record one
//! node changes is seen changed by another node that had it cached, within a second, and that
//! node is told; a table limit holds across nodes inserting at once.

#[path = "../../../tests/support/postgres.rs"]
mod pg;

use std::time::{Duration, Instant};

use oxbow_catalog::{
    AccessKey, Catalog, CatalogChange, CatalogError, CatalogUrl, PostgresCatalog, PostgresOptions,
};

fn key(id: &str) -> AccessKey {
    AccessKey::long_term(id, "s", "root", 0)
}

async fn listening(c: &PostgresCatalog) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.is_listening() {
        assert!(
            Instant::now() < deadline,
            "the catalog never started listening"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tables_behave_as_the_embedded_catalog() {
    let server = pg::PgServer::start();
    let url = server.database("semantics");
    let cat = PostgresCatalog::connect(&url).await.unwrap();
    listening(&cat).await;
    oxbow_catalog::conformance::check_table_semantics(&cat).await;
    // Another connection (a restart) reads what was committed.
    drop(cat);
    oxbow_catalog::conformance::check_reopened(&PostgresCatalog::connect(&url).await.unwrap())
        .await;
}

#[tokio::test]
async fn a_change_on_one_node_reaches_the_others_cache_within_a_second() {
    let server = pg::PgServer::start();
    let url = server.database("nodes");
    let a = PostgresCatalog::connect(&url).await.unwrap();
    let b = PostgresCatalog::connect(&url).await.unwrap();
    listening(&a).await;
    listening(&b).await;
    a.access_keys()
        .insert(key("AKIA1"), u64::MAX)
        .await
        .unwrap();
    // B reads it, so B now has it cached.
    assert!(b.access_keys().get("AKIA1").await.unwrap().unwrap().active);
    assert!(b.access_keys().get("AKIA1").await.unwrap().unwrap().active);
    let mut told = b.changes().expect("a cluster catalog announces changes");

    let changed_at = Instant::now();
    a.access_keys()
        .update(
            "AKIA1",
            Box::new(|k| {
                k.active = false;
                Ok(())
            }),
        )
        .await
        .unwrap();
    let deadline = changed_at + Duration::from_secs(1);
    loop {
        if !b.access_keys().get("AKIA1").await.unwrap().unwrap().active {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node B still had the old record after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let change = tokio::time::timeout(Duration::from_secs(1), told.recv())
        .await
        .expect("B is told within a second")
        .unwrap();
    assert_eq!(
        change,
        CatalogChange {
            table: Some("access_keys".into()),
            key: Some("AKIA1".into())
        }
    );
    // Removal too.
    a.access_keys().remove("AKIA1").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    while b.access_keys().get("AKIA1").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "node B still had a removed record after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_table_limit_holds_across_nodes_inserting_at_once() {
    let server = pg::PgServer::start();
    let url = server.database("limits");
    let a = std::sync::Arc::new(PostgresCatalog::connect(&url).await.unwrap());
    let b = std::sync::Arc::new(PostgresCatalog::connect(&url).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            node.access_keys()
                .insert(key(&format!("k{i:02}")), 25)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(CatalogError::LimitExceeded) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 25);
    assert_eq!(
        a.access_keys().list(None, None, 100).await.unwrap().len(),
        25
    );
}

/// An error with its causes, as a log would show it.
fn chain(e: &CatalogError) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

fn over_tls(ca: &rcgen::Certificate) -> PostgresOptions {
    PostgresOptions {
        tls: Some(trusting(ca)),
        ..Default::default()
    }
}

fn trusting(ca: &rcgen::Certificate) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// `sslmode=require` connects over TLS (the only way this server takes TCP connections), both
/// the pool and the change listener, and verifies the server's certificate: a CA it was not
/// signed by is refused, as are a plain connection and a TLS URL given no roots.
#[tokio::test]
async fn sslmode_require_connects_over_verified_tls() {
    let (ca, cert_pem, key_pem) = pg::tls_identity("Catalog CA");
    let server = pg::PgServer::start_tls(&cert_pem, &key_pem);
    let url = server.database("tls");
    let tls_url = format!("{url}?sslmode=require");
    let tls = CatalogUrl::parse(&tls_url).unwrap();

    let cat = PostgresCatalog::connect_with(&tls, over_tls(&ca))
        .await
        .unwrap();
    listening(&cat).await;
    cat.access_keys()
        .insert(key("AKIATLS"), u64::MAX)
        .await
        .unwrap();
    let other = PostgresCatalog::connect_with(&tls, over_tls(&ca))
        .await
        .unwrap();
    assert!(other.access_keys().get("AKIATLS").await.unwrap().is_some());

    let (stranger, _, _) = pg::tls_identity("Another CA");
    let refused = PostgresCatalog::connect_with(&tls, over_tls(&stranger))
        .await
        .err()
        .expect("a certificate from another CA is refused");
    assert!(
        chain(&refused).contains("UnknownIssuer"),
        "{}",
        chain(&refused)
    );

    let plain = PostgresCatalog::connect(&url)
        .await
        .err()
        .expect("TCP needs TLS here");
    assert!(chain(&plain).contains("no encryption"), "{}", chain(&plain));
    let unrooted = PostgresCatalog::connect(&tls_url).await.err().unwrap();
    assert!(
        chain(&unrooted).contains("sslmode=require"),
        "{}",
        chain(&unrooted)
    );
}

/// A node holds at most `connections` connections for its statements (plus its change
/// listener's), however many requests run at once: its share of the server's
/// `max_connections` when many nodes share one PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_holds_no_more_connections_than_it_was_given() {
    let server = pg::PgServer::start();
    let url = server.database("bounded");
    let options = PostgresOptions {
        connections: 2,
        ..Default::default()
    };
    let cat = std::sync::Arc::new(
        PostgresCatalog::connect_with(&CatalogUrl::parse(&url).unwrap(), options)
            .await
            .unwrap(),
    );
    listening(&cat).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let cat = cat.clone();
            tokio::spawn(async move {
                cat.access_keys()
                    .insert(key(&format!("AKIA{i}")), u64::MAX)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let held = server.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'bounded'");
    assert_eq!(held, "3", "two for statements, one listening");
    assert_eq!(
        cat.access_keys().list(None, None, 100).await.unwrap().len(),
        64
    );
}
