//! The embedded SQLite store (WAL journal, busy timeout) used by default.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::rows::*;
use super::{
    CallEnd, CallRecord, NewCall, NewClosure, NewStep, StepRecord, Store, StoreError,
    StoredCalendar,
};
use crate::enquiries::{Enquiry, NewEnquiry, Reference};
use crate::flows::{Answer, Answers};
use crate::hours::Closure;

/// `ignore_missing`: during a rolling upgrade an older instance must keep working against a
/// database a newer one has already migrated (migrations are additive).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Seals callers' numbers and recording references (`crate::crypto`).
    keys: std::sync::Arc<crate::crypto::Keyring>,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://PATH` or `sqlite::memory:`), creating the file and running
    /// migrations, under the keys `keys` decide; values still in plain text are sealed.
    pub async fn connect(url: &str, keys: &super::KeyOptions) -> Result<Self, StoreError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // An in-memory database exists per connection: keep exactly one, for ever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        }
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
        MIGRATOR.run(&pool).await?;
        let ring = super::sealing::resolve(url, keys, || Self::any_sealed(&pool)).await?;
        let store = Self {
            pool,
            keys: std::sync::Arc::new(ring),
        };
        store.start_sealing(keys.tolerate_unknown_keys).await?;
        Ok(store)
    }
}

impl SqliteStore {
    /// One database: reads go where writes go.
    fn reader(&self) -> &SqlitePool {
        &self.pool
    }
}

// SQLite serialises writers, so the claim's conditional update needs no row lock.
super::sql::sql_store!(SqliteStore, sqlx::Sqlite, "");
super::dashboard::dashboard_sql!(SqliteStore);
super::stats::stats_sql!(SqliteStore);
super::messages::messages_sql!(SqliteStore);
super::retention::retention_sql!(SqliteStore);
super::sealing::sealing_sql!(SqliteStore, sqlx::Sqlite);
