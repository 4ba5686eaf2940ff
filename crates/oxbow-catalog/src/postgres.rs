//! The catalog of a cluster: the same tables as the embedded catalog, in PostgreSQL, shared by
//! every node. Each table keeps its records cached in memory like the embedded one, but other
//! nodes write too, so every write also sends `NOTIFY oxbow_catalog` (delivered at commit) and
//! each node LISTENs: a notification evicts the record from every node's cache and is passed
//! on to the server ([`Catalog::changes`]), which drops its key and authorization caches. While
//! the listening connection is down, nothing is cached (a missed notification could leave a
//! stale record) and the server is told everything may have changed.
//!
//! A small pool of connections of its own (no pool crate): each connection sits behind an
//! async mutex and is reconnected when found closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Client, Config, Connection, Socket};

use crate::postgres_tls::{PgTls, PgTlsStream};
use crate::postgres_url::CatalogUrl;

use crate::{Catalog, CatalogChange, CatalogError, Resource, Table, Update};

/// The channel every node's writes are announced on.
const CHANNEL: &str = "oxbow_catalog";

/// Connections per node unless told otherwise: enough for the catalog's short statements.
const DEFAULT_CONNECTIONS: usize = 8;

/// How a node connects to the PostgreSQL catalog, besides its URL.
#[derive(Clone)]
pub struct PostgresOptions {
    /// Verifies the server's certificate when the URL asks for TLS (built from
    /// [`CatalogUrl::tls`]'s files by the caller, which knows the system's roots).
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// Statements a node runs at once, each on its own connection (the change listener
    /// holds one more): every node's share of the server's `max_connections`.
    pub connections: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            tls: None,
            connections: DEFAULT_CONNECTIONS,
        }
    }
}

/// Records a table keeps in memory at most; past it the cache starts over.
const CACHE_MAX: usize = 100_000;

/// How long to wait before connecting the listener again.
const RECONNECT: Duration = Duration::from_secs(1);

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> CatalogError {
    CatalogError::Storage(Box::new(e))
}

fn decode<T: Resource>(doc: &str) -> Result<T, CatalogError> {
    serde_json::from_str(doc).map_err(storage)
}

fn encode<T: Resource>(record: &T) -> Result<String, CatalogError> {
    serde_json::to_string(record).map_err(storage)
}

/// The announcement of a write to `key` of `table`.
fn payload(table: &str, key: &str) -> String {
    format!("{table}\n{key}")
}

struct Pool {
    config: Config,
    /// A connector when the URL asks for TLS.
    tls: PgTls,
    conns: Vec<tokio::sync::Mutex<Option<Client>>>,
    next: AtomicUsize,
}

impl Pool {
    /// A connection of the pool, connected.
    async fn get(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Client>, CatalogError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        let mut guard = match (0..n).find_map(|i| self.conns[(start + i) % n].try_lock().ok()) {
            Some(g) => g,
            None => self.conns[start % n].lock().await,
        };
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(connect(&self.config, &self.tls).await?);
        }
        tokio::sync::MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| CatalogError::Storage("no catalog connection".into()))
    }
}

async fn connect(config: &Config, tls: &PgTls) -> Result<Client, CatalogError> {
    let (client, connection) = config.connect(tls.clone()).await.map_err(storage)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "catalog connection to PostgreSQL ended");
        }
    });
    Ok(client)
}

/// What a table's cache offers the listener.
trait Evict: Send + Sync {
    fn evict(&self, key: &str);
    fn clear(&self);
}

struct RecordCache<T> {
    records: HashMap<String, Option<T>>,
    /// Counts writes and evictions: a read that missed caches what it read only if none
    /// happened in between.
    changes: u64,
}

impl<T: Clone> RecordCache<T> {
    fn put(&mut self, key: &str, record: Option<T>) {
        if self.records.len() >= CACHE_MAX {
            self.records.clear();
        }
        self.records.insert(key.to_string(), record);
    }
}

type SharedCache<T> = Arc<Mutex<RecordCache<T>>>;

fn lock<T>(m: &Mutex<RecordCache<T>>) -> MutexGuard<'_, RecordCache<T>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Resource> Evict for Mutex<RecordCache<T>> {
    fn evict(&self, key: &str) {
        let mut c = lock(self);
        c.changes += 1;
        c.records.remove(key);
    }
    fn clear(&self) {
        let mut c = lock(self);
        c.changes += 1;
        c.records.clear();
    }
}

struct Shared {
    pool: Pool,
    /// Whether the listener is connected: only then may records be cached.
    listening: AtomicBool,
    caches: HashMap<&'static str, Arc<dyn Evict>>,
    changes: broadcast::Sender<CatalogChange>,
}

impl Shared {
    fn clear_all(&self) {
        for c in self.caches.values() {
            c.clear();
        }
        let _ = self.changes.send(CatalogChange {
            table: None,
            key: None,
        });
    }

    fn announced(&self, payload: &str) {
        let Some((table, key)) = payload.split_once('\n') else {
            return;
        };
        if let Some(c) = self.caches.get(table) {
            c.evict(key);
        }
        let _ = self.changes.send(CatalogChange {
            table: Some(table.to_string()),
            key: Some(key.to_string()),
        });
    }
}

/// Keeps a LISTEN connection up for as long as the catalog lives.
async fn listen(shared: std::sync::Weak<Shared>, config: Config, tls: PgTls) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        match config.connect(tls.clone()).await {
            Ok((client, connection)) => follow(s, client, connection).await,
            Err(e) => tracing::warn!(error = %e, "cannot connect the catalog listener"),
        }
        let Some(s) = shared.upgrade() else { return };
        if s.listening.swap(false, Ordering::SeqCst) {
            tracing::warn!("catalog listener lost; caching stops until it is back");
        }
        s.clear_all();
        drop(s);
        tokio::time::sleep(RECONNECT).await;
    }
}

/// LISTENs on one connection and evicts what other nodes announce, until it fails.
async fn follow(s: Arc<Shared>, client: Client, mut connection: Connection<Socket, PgTlsStream>) {
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let weak = Arc::downgrade(&s);
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => match weak.upgrade() {
                    Some(s) => s.announced(n.payload()),
                    None => break,
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "catalog listener connection failed");
                    break;
                }
            }
        }
        let _ = done_tx.send(());
    });
    match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
        Ok(()) => {
            // Anything cached before may have missed a change.
            s.clear_all();
            s.listening.store(true, Ordering::SeqCst);
            tracing::debug!("listening for catalog changes");
            drop(s);
            let _ = (&mut done_rx).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "LISTEN failed");
            driver.abort();
        }
    }
    drop(client);
}

macro_rules! postgres_catalog {
    ($($name:ident: $record:ty,)*) => {
        /// The PostgreSQL catalog; open with [`PostgresCatalog::connect`].
        pub struct PostgresCatalog {
            shared: Arc<Shared>,
            $($name: PgTable<$record>,)*
        }

        /// Each table's cache, registered for the listener's evictions.
        struct Caches {
            $($name: SharedCache<$record>,)*
        }

        impl Caches {
            fn new(registry: &mut HashMap<&'static str, Arc<dyn Evict>>) -> Self {
                Self { $($name: cache(registry),)* }
            }
        }

        impl PostgresCatalog {
            fn with_tables(shared: Arc<Shared>, caches: Caches) -> Self {
                Self {
                    $($name: PgTable { shared: Arc::clone(&shared), cache: caches.$name },)*
                    shared,
                }
            }
        }

        impl Catalog for PostgresCatalog {
            $(fn $name(&self) -> &dyn Table<$record> {
                &self.$name
            })*

            fn changes(&self) -> Option<broadcast::Receiver<CatalogChange>> {
                Some(self.shared.changes.subscribe())
            }
        }
    };
}
crate::with_tables!(postgres_catalog);

fn cache<T: Resource>(registry: &mut HashMap<&'static str, Arc<dyn Evict>>) -> SharedCache<T> {
    let c = Arc::new(Mutex::new(RecordCache {
        records: HashMap::new(),
        changes: 0,
    }));
    registry.insert(T::TABLE, c.clone());
    c
}

/// Schema migrations, applied in order under an advisory lock (nodes may start together);
/// `oxbow_schema` records how many have run. Never edit a released entry: append one.
fn migrations() -> Vec<String> {
    let tables: String = crate::TABLE_NAMES
        .iter()
        .map(|t| {
            format!("CREATE TABLE IF NOT EXISTS {t} (name TEXT COLLATE \"C\" PRIMARY KEY, doc TEXT NOT NULL);\n")
        })
        .collect();
    vec![tables]
}

/// An arbitrary constant naming the migration lock.
const MIGRATION_LOCK: i64 = 0x6f78_626f_775f_6d67;

async fn migrate(client: &mut Client) -> Result<(), CatalogError> {
    let tx = client.transaction().await.map_err(storage)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(storage)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS oxbow_schema (version INTEGER NOT NULL)")
        .await
        .map_err(storage)?;
    let applied: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM oxbow_schema",
            &[],
        )
        .await
        .map_err(storage)?
        .get(0);
    for (i, sql) in migrations().iter().enumerate().skip(applied as usize) {
        tx.batch_execute(sql).await.map_err(storage)?;
        tx.execute(
            "INSERT INTO oxbow_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await
        .map_err(storage)?;
        tracing::info!(version = i + 1, "PostgreSQL catalog schema migrated");
    }
    tx.commit().await.map_err(storage)
}

impl PostgresCatalog {
    /// Connects to `url` (`postgres://user:password@host:port/database`), applies the
    /// schema migrations and starts listening for other nodes' changes. Without TLS: a URL
    /// with `sslmode=require` is refused (see [`PostgresCatalog::connect_with`]).
    pub async fn connect(url: &str) -> Result<Self, CatalogError> {
        Self::connect_with(&CatalogUrl::parse(url)?, PostgresOptions::default()).await
    }

    /// [`PostgresCatalog::connect`], over TLS when the URL says `sslmode=require`,
    /// `verify-ca` or `verify-full` (other modes connect without TLS; see
    /// [`CatalogUrl::parse`]), with at most `options.connections` connections at once.
    pub async fn connect_with(
        url: &CatalogUrl,
        options: PostgresOptions,
    ) -> Result<Self, CatalogError> {
        let pool_size = options.connections.max(1);
        let tls = match (url.tls(), options.tls) {
            (None, _) => PgTls(None),
            (Some(_), Some(tls)) => PgTls(Some(tls)),
            (Some(_), None) => {
                return Err(CatalogError::Storage(
                    "sslmode=require: no TLS roots to verify PostgreSQL's certificate with".into(),
                ))
            }
        };
        let config = url.config.clone();
        let mut first = connect(&config, &tls).await?;
        migrate(&mut first).await?;
        let mut conns = Vec::with_capacity(pool_size);
        conns.push(tokio::sync::Mutex::new(Some(first)));
        for _ in 1..pool_size {
            conns.push(tokio::sync::Mutex::new(None));
        }
        let mut registry: HashMap<&'static str, Arc<dyn Evict>> = HashMap::new();
        let caches = Caches::new(&mut registry);
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            pool: Pool {
                config: config.clone(),
                tls: tls.clone(),
                conns,
                next: AtomicUsize::new(0),
            },
            listening: AtomicBool::new(false),
            caches: registry,
            changes,
        });
        tokio::spawn(listen(Arc::downgrade(&shared), config, tls));
        Ok(Self::with_tables(shared, caches))
    }

    /// Whether the change listener is connected (records are cached only then).
    pub fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::SeqCst)
    }
}

/// Announces the write to `key` of `table` (delivered to every node at commit) and commits.
async fn announce_and_commit(
    tx: tokio_postgres::Transaction<'_>,
    table: &str,
    key: &str,
) -> Result<(), CatalogError> {
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &payload(table, key)],
    )
    .await
    .map_err(storage)?;
    tx.commit().await.map_err(storage)
}

struct PgTable<T> {
    shared: Arc<Shared>,
    cache: SharedCache<T>,
}

impl<T: Resource> PgTable<T> {
    /// Records what this node just committed (its own notification evicts it again later,
    /// which costs one read).
    fn wrote(&self, key: &str, record: Option<T>) {
        let mut c = lock(&self.cache);
        c.changes += 1;
        if self.shared.listening.load(Ordering::SeqCst) {
            c.put(key, record);
        }
    }
}

#[async_trait]
impl<T: Resource> Table<T> for PgTable<T> {
    async fn insert(&self, record: T, limit: u64) -> Result<(), CatalogError> {
        let table = T::TABLE;
        let key = record.key().to_string();
        let doc = encode(&record)?;
        {
            let mut client = self.shared.pool.get().await?;
            let tx = client.transaction().await.map_err(storage)?;
            let before: Option<i64> = if limit == u64::MAX {
                None
            } else {
                // One inserter per table at a time, so the count holds until commit.
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    &[&format!("oxbow:{table}")],
                )
                .await
                .map_err(storage)?;
                Some(
                    tx.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                        .await
                        .map_err(storage)?
                        .get(0),
                )
            };
            let inserted = tx
                .execute(
                    &format!(
                        "INSERT INTO {table} (name, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                    ),
                    &[&key, &doc],
                )
                .await
                .map_err(storage)?;
            if inserted == 0 {
                return Err(CatalogError::Exists);
            }
            if before.is_some_and(|n| n as u64 >= limit) {
                return Err(CatalogError::LimitExceeded);
            }
            announce_and_commit(tx, table, &key).await?;
        }
        self.wrote(&key, Some(record));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<T>, CatalogError> {
        let listening = self.shared.listening.load(Ordering::SeqCst);
        let changes = {
            let c = lock(&self.cache);
            if listening {
                if let Some(hit) = c.records.get(key) {
                    return Ok(hit.clone());
                }
            }
            c.changes
        };
        let doc: Option<String> = {
            let client = self.shared.pool.get().await?;
            client
                .query_opt(
                    &format!("SELECT doc FROM {} WHERE name = $1", T::TABLE),
                    &[&key],
                )
                .await
                .map_err(storage)?
                .map(|row| row.get(0))
        };
        let record: Option<T> = doc.map(|d| decode(&d)).transpose()?;
        let mut c = lock(&self.cache);
        if c.changes == changes && self.shared.listening.load(Ordering::SeqCst) {
            c.put(key, record.clone());
        }
        Ok(record)
    }

    async fn list(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, CatalogError> {
        let client = self.shared.pool.get().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!(
                    "SELECT doc FROM {} WHERE name > $1 AND starts_with(name, $2) \
                     ORDER BY name LIMIT $3",
                    T::TABLE
                ),
                &[&after.unwrap_or(""), &prefix.unwrap_or(""), &limit],
            )
            .await
            .map_err(storage)?;
        rows.iter().map(|r| decode(r.get::<_, &str>(0))).collect()
    }

    async fn update(&self, key: &str, change: Update<T>) -> Result<T, CatalogError> {
        let table = T::TABLE;
        let record = {
            let mut client = self.shared.pool.get().await?;
            let tx = client.transaction().await.map_err(storage)?;
            let doc: String = tx
                .query_opt(
                    &format!("SELECT doc FROM {table} WHERE name = $1 FOR UPDATE"),
                    &[&key],
                )
                .await
                .map_err(storage)?
                .ok_or(CatalogError::NotFound)?
                .get(0);
            let mut record: T = decode(&doc)?;
            change(&mut record).map_err(CatalogError::Rejected)?;
            tx.execute(
                &format!("UPDATE {table} SET doc = $2 WHERE name = $1"),
                &[&key, &encode(&record)?],
            )
            .await
            .map_err(storage)?;
            announce_and_commit(tx, table, key).await?;
            record
        };
        self.wrote(key, Some(record.clone()));
        Ok(record)
    }

    async fn remove(&self, key: &str) -> Result<(), CatalogError> {
        let table = T::TABLE;
        {
            let mut client = self.shared.pool.get().await?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute(&format!("DELETE FROM {table} WHERE name = $1"), &[&key])
                .await
                .map_err(storage)?;
            announce_and_commit(tx, table, key).await?;
        }
        self.wrote(key, None);
        Ok(())
    }
}
