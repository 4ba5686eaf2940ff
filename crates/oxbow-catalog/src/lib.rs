//! Oxbow's metadata catalog: streams, signaling channels, access keys and identities, each a table of
//! JSON documents keyed by name. The [`Catalog`] trait is what the server sees; [`SqliteCatalog`]
//! is the embedded backend (one file in the data directory). A PostgreSQL backend for cluster
//! mode implements the same two traits.
//!
//! The catalog does no validation of its own beyond uniqueness and count limits: the API
//! rules live in the server, which hands read-modify-write closures to [`Table::update`] so
//! that every change is atomic whatever the backend.

#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod conformance;
pub mod iam;
pub mod model;
mod postgres;
mod postgres_tls;
mod postgres_url;
mod sqlite;

use async_trait::async_trait;

pub use iam::{
    CameraOwnerRecord, CertificateRecord, CertificateStatus, IotPolicyRecord, LeaseRecord,
    PolicyRecord, RevocationRecord, RoleAliasRecord, RoleRecord, SecretRecord, ThingRecord,
    ThingTypeRecord, UserRecord, SESSION_ISSUED_TO, SESSION_ROLE_ID,
};
pub use model::{AccessKey, ChannelRecord, EdgeRecord, Lifecycle, Status, StreamRecord};
pub use postgres::{PostgresCatalog, PostgresOptions};
pub use postgres_url::{CatalogTls, CatalogUrl};
pub use sqlite::SqliteCatalog;

/// A record kind the catalog can store.
pub trait Resource:
    serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
    /// The table the records live in.
    const TABLE: &'static str;
    /// The unique key.
    fn key(&self) -> &str;
}

/// Why an update closure refused a change: the caller's own error, handed back untouched in
/// [`CatalogError::Rejected`] (the catalog knows nothing of API errors).
pub type Rejection = Box<dyn std::error::Error + Send + Sync>;

/// A change applied atomically to one record; returning an error leaves the record untouched.
pub type Update<T> = Box<dyn FnOnce(&mut T) -> Result<(), Rejection> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("a record with this key already exists")]
    Exists,
    #[error("the table already holds its maximum number of records")]
    LimitExceeded,
    #[error("no record with this key")]
    NotFound,
    /// The update closure refused the change.
    #[error("the change was refused: {0}")]
    Rejected(Rejection),
    /// The backend failed (I/O, a busy database, a record that no longer decodes).
    #[error("catalog storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One table of records of kind `T`.
#[async_trait]
pub trait Table<T: Resource>: Send + Sync {
    /// Inserts a new record, failing if the key exists or the table holds `limit` records.
    async fn insert(&self, record: T, limit: u64) -> Result<(), CatalogError>;
    async fn get(&self, key: &str) -> Result<Option<T>, CatalogError>;
    /// Records in key order whose key starts with `prefix` and sorts after `after`.
    async fn list(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, CatalogError>;
    /// Applies `change` to the record atomically and returns the new record.
    async fn update(&self, key: &str, change: Update<T>) -> Result<T, CatalogError>;
    /// Removes the record; removing a missing record is not an error.
    async fn remove(&self, key: &str) -> Result<(), CatalogError>;
}

/// Every table of the catalog, once: each backend and the trait are made from this list
/// (`with_tables!(some_macro)` calls `some_macro! { name: Record, … }`), so a table added here
/// reaches them all.
macro_rules! with_tables {
    ($callback:ident) => {
        $callback! {
            streams: crate::StreamRecord,
            channels: crate::ChannelRecord,
            access_keys: crate::AccessKey,
            users: crate::UserRecord,
            roles: crate::RoleRecord,
            policies: crate::PolicyRecord,
            role_aliases: crate::RoleAliasRecord,
            things: crate::ThingRecord,
            certificates: crate::CertificateRecord,
            camera_owners: crate::CameraOwnerRecord,
            thing_types: crate::ThingTypeRecord,
            iot_policies: crate::IotPolicyRecord,
            revocations: crate::RevocationRecord,
            server_secrets: crate::SecretRecord,
            leases: crate::LeaseRecord,
        }
    };
}
pub(crate) use with_tables;

macro_rules! declare_catalog {
    ($($name:ident: $record:ty,)*) => {
        /// Everything the control plane stores.
        pub trait Catalog: Send + Sync {
            $(fn $name(&self) -> &dyn Table<$record>;)*

            /// Changes other nodes made (a cluster's catalog announces every write), for the
            /// caches a node keeps beside the catalog's own; `None` for a catalog only this
            /// process writes.
            fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<CatalogChange>> {
                None
            }
        }

        /// The name of every table.
        pub(crate) const TABLE_NAMES: &[&str] = &[$(<$record as Resource>::TABLE,)*];
    };
}
with_tables!(declare_catalog);

/// A write somewhere in the cluster: to `key` of `table`, or (both `None`) possibly to
/// anything, when announcements may have been missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogChange {
    pub table: Option<String>,
    pub key: Option<String>,
}
