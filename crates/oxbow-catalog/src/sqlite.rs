//! The embedded catalog: one SQLite file in WAL mode. Reads go through a small pool of reader
//! connections and never wait for a writer's fsync; writes are serialised on one connection
//! and run on the blocking pool, committed with `synchronous=FULL` so an acknowledged change
//! survives a crash.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::{Catalog, CatalogError, Resource, Table, Update};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
/// Never edit a released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE streams (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE channels (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE access_keys (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
",
    "
    CREATE TABLE users (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE roles (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE policies (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE role_aliases (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE things (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE certificates (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE camera_owners (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
",
    "
    CREATE TABLE thing_types (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE iot_policies (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
",
    "
    CREATE TABLE revocations (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
",
    "
    CREATE TABLE server_secrets (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
",
    "
    CREATE TABLE leases (name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
",
];

const READERS: usize = 4;

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> CatalogError {
    CatalogError::Storage(Box::new(e))
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Db {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl Db {
    /// Runs a query on a reader connection, on a blocking thread: SQLite reads are file
    /// I/O and must not hold an async worker.
    async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, CatalogError> {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let start = db.next_reader.fetch_add(1, Ordering::Relaxed);
            let n = db.readers.len();
            let conn = (0..n)
                .find_map(|i| db.readers[(start + i) % n].try_lock().ok())
                .unwrap_or_else(|| lock(&db.readers[start % n]));
            f(&conn).map_err(storage)
        })
        .await
        .map_err(storage)?
    }

    async fn write<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> Result<R, CatalogError> + Send + 'static,
    ) -> Result<R, CatalogError> {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&mut lock(&db.writer)))
            .await
            .map_err(storage)?
    }
}

macro_rules! sqlite_catalog {
    ($($name:ident: $record:ty,)*) => {
        /// The SQLite-backed catalog.
        pub struct SqliteCatalog {
            $($name: SqliteTable<$record>,)*
        }

        impl SqliteCatalog {
            fn with_tables(db: &Arc<Db>) -> Self {
                Self { $($name: SqliteTable::new(db),)* }
            }
        }

        impl Catalog for SqliteCatalog {
            $(fn $name(&self) -> &dyn Table<$record> {
                &self.$name
            })*
        }
    };
}
crate::with_tables!(sqlite_catalog);

impl SqliteCatalog {
    /// Opens (creating if needed) the catalog file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let mut writer = Connection::open(path).map_err(storage)?;
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
            )
            .map_err(storage)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.execute_batch("PRAGMA busy_timeout=5000;")?;
                Ok(Mutex::new(c))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(storage)?;
        let db = Arc::new(Db {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        });
        Ok(Self::with_tables(&db))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), CatalogError> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(storage)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(storage)?;
        tx.execute_batch(sql).map_err(storage)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(storage)?;
        tx.commit().map_err(storage)?;
        tracing::info!(version = i + 1, "catalog schema migrated");
    }
    Ok(())
}

/// One table, with its records cached in memory. This process is the database's only
/// writer, so the cache is exact: every write updates it while still holding the writer
/// connection, and a read that missed inserts what it read only if no write happened in
/// between. A hit costs no I/O and no thread hop; a miss reads on a blocking thread.
struct SqliteTable<T> {
    db: Arc<Db>,
    cache: Arc<Mutex<RecordCache<T>>>,
}

struct RecordCache<T> {
    /// Key → the record, or `None`: known not to exist.
    records: HashMap<String, Option<T>>,
    /// Bumped by every write, so a read that raced one does not cache what it read.
    writes: u64,
}

/// Records a table keeps in memory at most; past it the cache starts over.
const CACHE_MAX: usize = 100_000;

impl<T: Resource> SqliteTable<T> {
    fn new(db: &Arc<Db>) -> Self {
        Self {
            db: Arc::clone(db),
            cache: Arc::new(Mutex::new(RecordCache {
                records: HashMap::new(),
                writes: 0,
            })),
        }
    }
}

impl<T: Clone> RecordCache<T> {
    /// Called with the writer connection held, after the write committed.
    fn wrote(&mut self, key: &str, record: Option<T>) {
        self.writes += 1;
        self.put(key, record);
    }

    fn put(&mut self, key: &str, record: Option<T>) {
        if self.records.len() >= CACHE_MAX {
            self.records.clear();
        }
        self.records.insert(key.to_string(), record);
    }
}

fn lock_cache<T>(m: &Mutex<RecordCache<T>>) -> MutexGuard<'_, RecordCache<T>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn decode<T: Resource>(doc: &str) -> Result<T, CatalogError> {
    serde_json::from_str(doc).map_err(storage)
}

fn encode<T: Resource>(record: &T) -> Result<String, CatalogError> {
    serde_json::to_string(record).map_err(storage)
}

fn get_in<T: Resource>(conn: &Connection, key: &str) -> Result<Option<T>, CatalogError> {
    let doc: Option<String> = conn
        .query_row(
            &format!("SELECT doc FROM {} WHERE name = ?1", T::TABLE),
            [key],
            |r| r.get(0),
        )
        .optional()
        .map_err(storage)?;
    doc.map(|d| decode(&d)).transpose()
}

#[async_trait]
impl<T: Resource> Table<T> for SqliteTable<T> {
    async fn insert(&self, record: T, limit: u64) -> Result<(), CatalogError> {
        let cache = Arc::clone(&self.cache);
        self.db
            .write(move |conn| {
                let tx = conn.transaction().map_err(storage)?;
                let count: u64 = tx
                    .query_row(&format!("SELECT COUNT(*) FROM {}", T::TABLE), [], |r| {
                        r.get(0)
                    })
                    .map_err(storage)?;
                if get_in::<T>(&tx, record.key())?.is_some() {
                    return Err(CatalogError::Exists);
                }
                if count >= limit {
                    return Err(CatalogError::LimitExceeded);
                }
                tx.execute(
                    &format!("INSERT INTO {} (name, doc) VALUES (?1, ?2)", T::TABLE),
                    params![record.key(), encode(&record)?],
                )
                .map_err(storage)?;
                tx.commit().map_err(storage)?;
                let key = record.key().to_string();
                lock_cache(&cache).wrote(&key, Some(record));
                Ok(())
            })
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<T>, CatalogError> {
        let writes = {
            let cache = lock_cache(&self.cache);
            if let Some(hit) = cache.records.get(key) {
                return Ok(hit.clone());
            }
            cache.writes
        };
        let owned = key.to_string();
        let doc: Option<String> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(&format!("SELECT doc FROM {} WHERE name = ?1", T::TABLE))?
                    .query_row([owned], |r| r.get(0))
                    .optional()
            })
            .await?;
        let record: Option<T> = doc.map(|d| decode(&d)).transpose()?;
        let mut cache = lock_cache(&self.cache);
        if cache.writes == writes {
            cache.put(key, record.clone());
        }
        Ok(record)
    }

    async fn list(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, CatalogError> {
        let prefix = prefix.unwrap_or("").to_string();
        let after = after.unwrap_or("").to_string();
        let docs: Vec<String> = self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT doc FROM {} WHERE name > ?1 AND substr(name, 1, ?2) = ?3 \
                     ORDER BY name LIMIT ?4",
                    T::TABLE
                ))?;
                let rows = stmt.query_map(
                    params![after, prefix.chars().count() as i64, prefix, limit as i64],
                    |r| r.get(0),
                )?;
                rows.collect()
            })
            .await?;
        docs.iter().map(|d| decode(d)).collect()
    }

    async fn update(&self, key: &str, change: Update<T>) -> Result<T, CatalogError> {
        let key = key.to_string();
        let cache = Arc::clone(&self.cache);
        self.db
            .write(move |conn| {
                let tx = conn.transaction().map_err(storage)?;
                let mut record: T = get_in(&tx, &key)?.ok_or(CatalogError::NotFound)?;
                change(&mut record).map_err(CatalogError::Rejected)?;
                tx.execute(
                    &format!("UPDATE {} SET doc = ?2 WHERE name = ?1", T::TABLE),
                    params![key, encode(&record)?],
                )
                .map_err(storage)?;
                tx.commit().map_err(storage)?;
                lock_cache(&cache).wrote(&key, Some(record.clone()));
                Ok(record)
            })
            .await
    }

    async fn remove(&self, key: &str) -> Result<(), CatalogError> {
        let key = key.to_string();
        let cache = Arc::clone(&self.cache);
        self.db
            .write(move |conn| {
                conn.execute(&format!("DELETE FROM {} WHERE name = ?1", T::TABLE), [&key])
                    .map_err(storage)?;
                lock_cache(&cache).wrote(&key, None);
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn behaves_as_every_catalog_and_keeps_it_on_reopen() {
        let dir =
            std::env::temp_dir().join(format!("oxbow-catalog-{}", oxbow_core::ids::version()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("catalog.sqlite");
        let cat = SqliteCatalog::open(&path).unwrap();
        crate::conformance::check_table_semantics(&cat).await;
        drop(cat);
        crate::conformance::check_reopened(&SqliteCatalog::open(&path).unwrap()).await;
    }
}
