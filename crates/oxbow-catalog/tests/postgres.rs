//! The PostgreSQL catalog against a real PostgreSQL server (started privately for each test):
//! the same table semantics as the embedded catalog, and what a cluster adds — a record one
//! node changes is seen changed by another node that had it cached, within a second, and that
//! node is told; a table limit holds across nodes inserting at once.

#[path = "../../../tests/support/postgres.rs"]
mod pg;

use std::time::{Duration, Instant};

use oxbow_catalog::{AccessKey, Catalog, CatalogChange, CatalogError, PostgresCatalog};

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
