//! What every catalog backend must do alike, as one check both backends' tests run: the
//! embedded SQLite catalog and a cluster's PostgreSQL one must not differ in what the server
//! sees (errors, key order, refused changes, caches that follow writes).

use crate::{AccessKey, Catalog, CatalogError};

fn key(id: &str) -> AccessKey {
    AccessKey::long_term(id, "s", "root", 0)
}

fn ids(v: Vec<AccessKey>) -> Vec<String> {
    v.into_iter().map(|k| k.access_key_id).collect()
}

/// Runs the table semantics on `cat`'s access-key table, which must start empty; leaves
/// `B0`, `a2` (active) and `c` (inactive) in it, for a check after reopening.
pub async fn check_table_semantics(cat: &dyn Catalog) {
    let t = cat.access_keys();
    for id in ["b1", "a1", "a2", "c", "B0"] {
        t.insert(key(id), 10).await.unwrap();
    }
    assert!(matches!(
        t.insert(key("a1"), 10).await,
        Err(CatalogError::Exists)
    ));
    assert!(matches!(
        t.insert(key("z"), 5).await,
        Err(CatalogError::LimitExceeded)
    ));
    // A key that exists is Exists even at the limit.
    assert!(matches!(
        t.insert(key("c"), 5).await,
        Err(CatalogError::Exists)
    ));
    assert!(t.get("z").await.unwrap().is_none());
    assert!(t.get("a1").await.unwrap().unwrap().active);
    // Byte order: upper case before lower case.
    assert_eq!(
        ids(t.list(None, None, 10).await.unwrap()),
        ["B0", "a1", "a2", "b1", "c"]
    );
    assert_eq!(
        ids(t.list(Some("a"), None, 10).await.unwrap()),
        ["a1", "a2"]
    );
    assert_eq!(
        ids(t.list(None, Some("a2"), 10).await.unwrap()),
        ["b1", "c"]
    );
    assert_eq!(ids(t.list(None, None, 2).await.unwrap()), ["B0", "a1"]);
    let changed = t
        .update(
            "c",
            Box::new(|k| {
                k.active = false;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert!(!changed.active);
    let refused = t
        .update(
            "c",
            Box::new(|k| {
                k.active = true;
                Err("refused".into())
            }),
        )
        .await;
    assert!(matches!(refused, Err(CatalogError::Rejected(_))));
    assert!(
        !t.get("c").await.unwrap().unwrap().active,
        "the refused change left no trace"
    );
    assert!(matches!(
        t.update("nope", Box::new(|_| Ok(()))).await,
        Err(CatalogError::NotFound)
    ));
    t.get("b1").await.unwrap().unwrap();
    t.remove("b1").await.unwrap();
    t.remove("b1").await.unwrap();
    assert!(
        t.get("b1").await.unwrap().is_none(),
        "a cached record leaves with its row"
    );
    t.insert(key("z"), 10).await.unwrap();
    assert!(
        t.get("z").await.unwrap().is_some(),
        "a cached absence ends with an insert"
    );
    t.remove("z").await.unwrap();
    t.remove("a1").await.unwrap();
    assert_eq!(
        ids(t.list(None, None, 10).await.unwrap()),
        ["B0", "a2", "c"]
    );
}

/// After [`check_table_semantics`] and a reopen: what it left, read back.
pub async fn check_reopened(cat: &dyn Catalog) {
    let t = cat.access_keys();
    assert_eq!(
        ids(t.list(None, None, 10).await.unwrap()),
        ["B0", "a2", "c"]
    );
    assert!(!t.get("c").await.unwrap().unwrap().active);
    assert!(t.get("b1").await.unwrap().is_none());
}
