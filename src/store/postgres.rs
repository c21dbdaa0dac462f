//! The PostgreSQL store, for production: several instances share one database. Same
//! contract as the SQLite store (the same test suite runs on both); migrations take
//! PostgreSQL's advisory lock, so instances starting together migrate once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

use super::rows::*;
use super::{CallRecord, CallWrite, NewClosure, StepRecord, Store, StoreError, StoredCalendar};
use crate::enquiries::{Enquiry, NewEnquiry, Reference};
use crate::flows::Answers;
use crate::hours::Closure;

/// `ignore_missing`: during a rolling upgrade an older instance must keep working against a
/// database a newer one has already migrated (migrations are additive).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// A read-only replica for list and statistics reads (the primary when none).
    read: Option<PgPool>,
    /// Seals callers' numbers and recording references (`crate::crypto`).
    keys: std::sync::Arc<crate::crypto::Keyring>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and runs any pending migrations, under the keys
    /// `keys` decide; values still in plain text are sealed.
    pub async fn connect(url: &str, keys: &super::KeyOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let ring = super::sealing::resolve(url, keys, || Self::any_sealed(&pool)).await?;
        let store = Self {
            pool,
            read: None,
            keys: std::sync::Arc::new(ring),
        };
        store.start_sealing(keys.tolerate_unknown_keys).await?;
        Ok(store)
    }

    /// Reads lists and statistics from a standby at `url` (never migrated: it follows the primary).
    pub async fn with_read_replica(mut self, url: &str) -> Result<Self, StoreError> {
        let read = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        self.read = Some(read);
        Ok(self)
    }

    fn reader(&self) -> &PgPool {
        self.read.as_ref().unwrap_or(&self.pool)
    }
}

super::sql::sql_store!(PostgresStore, sqlx::Postgres, " FOR UPDATE SKIP LOCKED");
super::dashboard::dashboard_sql!(PostgresStore);
super::stats::stats_sql!(PostgresStore);
super::messages::messages_sql!(PostgresStore);
super::retention::retention_sql!(PostgresStore);
super::sealing::sealing_sql!(PostgresStore, sqlx::Postgres);
