//! The embedded SQLite store (WAL journal, busy timeout) used by default.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::rows::*;
use super::{CallRecord, CallWrite, NewClosure, StepRecord, Store, StoreError, StoredCalendar};
use crate::enquiries::{Enquiry, NewEnquiry, Reference};
use crate::flows::Answers;
use crate::hours::Closure;

/// `ignore_missing`: during a rolling upgrade an older instance must keep working against a
/// database a newer one has already migrated (migrations are additive).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Writes (and the reads that go with them): one connection. SQLite takes one writer at
    /// a time; with several connections a second writer waits in SQLite's busy handler,
    /// which sleeps in steps of up to 100 ms. Here it waits its turn in the pool instead.
    pool: SqlitePool,
    /// Lists and statistics: several connections, reading beside the writer (WAL).
    read: SqlitePool,
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
            .foreign_keys(true)
            // A multi-row insert's statement journal in memory, not a temporary file
            // opened and deleted for every statement.
            .pragma("temp_store", "memory")
            // Checkpoints are made in the background (`checkpoints`), off the writer's
            // path; the writer only checkpoints itself if the WAL grows past this
            // many pages (80 MiB), and the WAL file is cut back to 64 MiB after.
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
            .pragma("journal_size_limit", (64 * 1024 * 1024).to_string());
        // An in-memory database exists per connection: keep exactly one, for ever, for
        // reads and writes alike.
        let single = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(Duration::from_secs(5))
        };
        let pool = single().connect_with(options.clone()).await?;
        MIGRATOR.run(&pool).await?;
        let read = if memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?
        };
        if !memory {
            tokio::spawn(checkpoints(read.clone()));
        }
        let ring = super::sealing::resolve(url, keys, || Self::any_sealed(&pool)).await?;
        let store = Self {
            pool,
            read,
            keys: std::sync::Arc::new(ring),
        };
        store.start_sealing(keys.tolerate_unknown_keys).await?;
        Ok(store)
    }
}

/// Pages in the WAL past which the writer checkpoints itself ([`checkpoints`] keeps it
/// well below this).
const WRITER_CHECKPOINT_PAGES: u32 = 20_000;
/// How often the WAL is checkpointed in the background.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the WAL's committed pages into the database file every [`CHECKPOINT_EVERY`], on a
/// reading connection (a passive checkpoint waits for nobody and holds up nobody), so the
/// batched writer never pays for a checkpoint in the middle of a surge: a page rewritten by
/// many batches in a second is copied once. Ends when the pool is closed.
async fn checkpoints(read: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if read.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&read)
            .await
        {
            tracing::warn!(error = %e, "background WAL checkpoint failed; the writer checkpoints past its limit");
        }
    }
}

impl SqliteStore {
    /// Reads that need not follow the writer.
    fn reader(&self) -> &SqlitePool {
        &self.read
    }
}

// SQLite serialises writers, so the claim's conditional update needs no row lock.
super::sql::sql_store!(SqliteStore, sqlx::Sqlite, "");
super::dashboard::dashboard_sql!(SqliteStore);
super::stats::stats_sql!(SqliteStore);
super::messages::messages_sql!(SqliteStore);
super::retention::retention_sql!(SqliteStore);
super::sealing::sealing_sql!(SqliteStore, sqlx::Sqlite);
