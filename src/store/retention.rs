//! What the retention purge needs (issue 7): which enquiries and calls are past the
//! retention period, deleting them a batch per transaction, and the recordings waiting for
//! Twilio to confirm their deletion. One SQL implementation for both backends.
//!
//! What goes, for a cut-off instant: every enquiry that is closed (not `new`, `retry` or
//! `follow-up`) and was closed before it (one closed without a closing time: created before
//! it), with its call-back attempts, notes and texts; the call it came from; and every call
//! without an enquiry that started before it, with its steps and answers. Open enquiries and
//! their calls always stay. The audit log and the statistics roll-ups (`stats_days`) hold no
//! caller's details and are never touched.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;

/// Rows a purge removes (or would), by table. Counts only: never a number or a reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeCounts {
    pub enquiries: u64,
    pub calls: u64,
    pub call_steps: u64,
    pub call_answers: u64,
    pub callback_attempts: u64,
    pub enquiry_notes: u64,
    pub texts_sent: u64,
    /// Recordings at Twilio of the rows removed, queued for deletion there.
    pub recordings: u64,
}

impl PurgeCounts {
    pub fn add(&mut self, other: &PurgeCounts) {
        self.enquiries += other.enquiries;
        self.calls += other.calls;
        self.call_steps += other.call_steps;
        self.call_answers += other.call_answers;
        self.callback_attempts += other.callback_attempts;
        self.enquiry_notes += other.enquiry_notes;
        self.texts_sent += other.texts_sent;
        self.recordings += other.recordings;
    }

    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == PurgeCounts::default()
    }
}

/// What a purge with a given cut-off would remove, without removing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgePreview {
    pub counts: PurgeCounts,
    /// The recordings (Twilio's `RecordingUrl`s) of the enquiries and calls that would go.
    pub recordings: Vec<String>,
    /// Recordings queued by earlier purges that Twilio has not yet confirmed deleted.
    pub recordings_pending: u64,
    /// When the earliest of the calls that would go started (their days' statistics are
    /// rolled up before they go).
    pub oldest_call: Option<DateTime<Utc>>,
}

/// What one batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeBatch {
    pub counts: PurgeCounts,
    /// The batch was full: call again.
    pub more: bool,
}

/// A recording waiting for Twilio to confirm its deletion.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingRecording {
    pub recording_url: String,
    pub queued_at: DateTime<Utc>,
    /// Failed tries so far.
    pub attempts: i64,
}

#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// What [`RetentionStore::purge_batch`] would remove with this cut-off, all batches together.
    async fn purge_preview(&self, cutoff: DateTime<Utc>) -> Result<PurgePreview, StoreError>;
    /// Removes up to `limit` enquiries and up to `limit` calls without an enquiry that are
    /// past `cutoff`, with everything that hangs off them, in one transaction; their
    /// recordings are queued for deletion at Twilio in the same transaction (`at`: when).
    /// Returns what went, and whether there may be more (a full batch).
    async fn purge_batch(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<PurgeBatch, StoreError>;
    /// Recordings still to be deleted at Twilio, longest waiting first.
    async fn pending_recording_deletions(
        &self,
        limit: u32,
    ) -> Result<Vec<PendingRecording>, StoreError>;
    /// Twilio confirmed the recording gone: forget it.
    async fn recording_deletion_done(&self, recording_url: &str) -> Result<(), StoreError>;
    /// A try failed (`error` is a short reason such as `HTTP 503`): kept for the next purge.
    async fn recording_deletion_failed(
        &self,
        recording_url: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
}

/// Enquiries past the retention period (`$1` is the cut-off).
pub(super) fn enquiries_gone() -> String {
    format!(
        "status NOT IN {} AND COALESCE(closed_at, created_at) < $1",
        super::rows::OPEN_STATUSES
    )
}

/// Calls past the retention period: those of enquiries that go, and those without an
/// enquiry that started before the cut-off (`$1`).
pub(super) fn calls_gone() -> String {
    format!(
        "(calls.call_sid IN (SELECT call_sid FROM enquiries WHERE {}) \
         OR (calls.started_at < $1 AND NOT EXISTS (SELECT 1 FROM enquiries e WHERE e.call_sid = calls.call_sid)))",
        enquiries_gone()
    )
}

/// `$first, $first+1, …` for `n` parameters (sqlx binds `$N` by number on SQLite too).
pub(super) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `WHERE` clause finding a queued recording by its lookup hashes under every key
/// (parameters `$first`, …), and the hashes to bind.
pub(super) fn by_recording(
    keys: &crate::crypto::Keyring,
    recording_url: &str,
    first: usize,
) -> (String, Vec<String>) {
    let hashes = keys.lookups(crate::crypto::Kind::Recording, recording_url);
    let clause = format!(
        "WHERE recording_hash IN ({})",
        placeholders(first, hashes.len())
    );
    (clause, hashes)
}

/// Whether a stored reference names a recording at Twilio (`helpline simulate` stores
/// `simulated://…`, which names nothing to delete).
pub(super) fn at_twilio(reference: &str) -> bool {
    !reference.trim().is_empty() && !reference.starts_with("simulated:")
}

/// `impl RetentionStore for $store`, over `self.pool` (never the replica: what is deleted
/// must be read from the primary).
macro_rules! retention_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl super::retention::RetentionStore for $store {
            async fn purge_preview(
                &self,
                cutoff: DateTime<Utc>,
            ) -> Result<super::retention::PurgePreview, StoreError> {
                use super::retention::{calls_gone, enquiries_gone, at_twilio};
                let count = |sql: String| {
                    let pool = &self.pool;
                    async move {
                        let n: i64 = sqlx::query_scalar(&sql).bind(cutoff).fetch_one(pool).await?;
                        Ok::<u64, StoreError>(u64::try_from(n).unwrap_or(0))
                    }
                };
                let enq = enquiries_gone();
                let calls = calls_gone();
                let of_enquiries = |table: &str| {
                    format!("SELECT COUNT(*) FROM {table} WHERE enquiry_id IN (SELECT id FROM enquiries WHERE {enq})")
                };
                let of_calls = |table: &str| {
                    format!("SELECT COUNT(*) FROM {table} WHERE call_sid IN (SELECT call_sid FROM calls WHERE {calls})")
                };
                let mut counts = super::retention::PurgeCounts {
                    enquiries: count(format!("SELECT COUNT(*) FROM enquiries WHERE {enq}")).await?,
                    calls: count(format!("SELECT COUNT(*) FROM calls WHERE {calls}")).await?,
                    call_steps: count(of_calls("call_steps")).await?,
                    call_answers: count(of_calls("call_answers")).await?,
                    callback_attempts: count(of_enquiries("callback_attempts")).await?,
                    enquiry_notes: count(of_enquiries("enquiry_notes")).await?,
                    texts_sent: count(of_enquiries("texts_sent")).await?,
                    recordings: 0,
                };
                // Sealed (a new nonce each): opened before they are compared.
                let refs: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT recording_url FROM enquiries WHERE {enq} AND recording_url IS NOT NULL \
                     UNION ALL SELECT value FROM call_answers WHERE name = 'recording_url' \
                     AND call_sid IN (SELECT call_sid FROM calls WHERE {calls})"
                ))
                .bind(cutoff)
                .fetch_all(&self.pool)
                .await?;
                let mut recordings = Vec::with_capacity(refs.len());
                for r in refs {
                    let r = self.keys.open(crate::crypto::Kind::Recording, &r)?;
                    if at_twilio(&r) {
                        recordings.push(r);
                    }
                }
                recordings.sort();
                recordings.dedup();
                counts.recordings = recordings.len() as u64;
                let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recording_deletions")
                    .fetch_one(&self.pool)
                    .await?;
                let oldest_call: Option<DateTime<Utc>> = sqlx::query_scalar(&format!(
                    "SELECT started_at FROM calls WHERE {calls} ORDER BY started_at LIMIT 1"
                ))
                .bind(cutoff)
                .fetch_optional(&self.pool)
                .await?;
                Ok(super::retention::PurgePreview {
                    counts,
                    recordings,
                    recordings_pending: u64::try_from(pending).unwrap_or(0),
                    oldest_call,
                })
            }

            async fn purge_batch(
                &self,
                cutoff: DateTime<Utc>,
                limit: u32,
                at: DateTime<Utc>,
            ) -> Result<super::retention::PurgeBatch, StoreError> {
                use super::retention::{at_twilio, enquiries_gone, placeholders};
                let limit = i64::from(limit.max(1));
                let mut tx = self.pool.begin().await?;
                let enquiries: Vec<(String, String, Option<String>)> = sqlx::query_as(&format!(
                    "SELECT id, call_sid, recording_url FROM enquiries WHERE {} ORDER BY closed_at, id LIMIT $2",
                    enquiries_gone()
                ))
                .bind(cutoff)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let orphans: Vec<String> = sqlx::query_scalar(
                    "SELECT call_sid FROM calls WHERE started_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM enquiries e WHERE e.call_sid = calls.call_sid) \
                     ORDER BY started_at, call_sid LIMIT $2",
                )
                .bind(cutoff)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let ids: Vec<&str> = enquiries.iter().map(|(id, _, _)| id.as_str()).collect();
                let mut call_sids: Vec<&str> = enquiries.iter().map(|(_, sid, _)| sid.as_str()).collect();
                call_sids.extend(orphans.iter().map(String::as_str));
                let mut counts = super::retention::PurgeCounts::default();
                if ids.is_empty() && call_sids.is_empty() {
                    return Ok(super::retention::PurgeBatch { counts, more: false });
                }

                // The recordings go to the queue before their references are deleted.
                let mut recordings: Vec<String> = enquiries
                    .iter()
                    .filter_map(|(_, _, url)| url.clone())
                    .collect();
                if !call_sids.is_empty() {
                    let sql = format!(
                        "SELECT value FROM call_answers WHERE name = 'recording_url' AND call_sid IN ({})",
                        placeholders(1, call_sids.len())
                    );
                    let mut q = sqlx::query_scalar::<_, String>(&sql);
                    for sid in &call_sids {
                        q = q.bind(*sid);
                    }
                    recordings.extend(q.fetch_all(&mut *tx).await?);
                }
                let mut recordings = recordings
                    .iter()
                    .map(|r| self.keys.open(crate::crypto::Kind::Recording, r))
                    .collect::<Result<Vec<String>, _>>()?;
                recordings.retain(|r| at_twilio(r));
                recordings.sort();
                recordings.dedup();
                for url in &recordings {
                    // Sealed, and queued once (by its lookup hash).
                    let sealed = self.keys.seal_indexed(crate::crypto::Kind::Recording, url);
                    let done = sqlx::query(
                        "INSERT INTO recording_deletions (recording_url, recording_hash, queued_at) VALUES ($1, $3, $2) \
                         ON CONFLICT (recording_hash) DO NOTHING",
                    )
                    .bind(&sealed.value)
                    .bind(at)
                    .bind(&sealed.hash)
                    .execute(&mut *tx)
                    .await?;
                    counts.recordings += done.rows_affected();
                }

                // Explicitly, children first (the schema would cascade; this also counts them).
                let delete = |table: &'static str, column: &'static str, n: usize| {
                    format!("DELETE FROM {table} WHERE {column} IN ({})", placeholders(1, n))
                };
                if !ids.is_empty() {
                    for (table, counter) in [
                        ("callback_attempts", &mut counts.callback_attempts),
                        ("enquiry_notes", &mut counts.enquiry_notes),
                        ("texts_sent", &mut counts.texts_sent),
                    ] {
                        let sql = delete(table, "enquiry_id", ids.len());
                        let mut q = sqlx::query(&sql);
                        for id in &ids {
                            q = q.bind(*id);
                        }
                        *counter += q.execute(&mut *tx).await?.rows_affected();
                    }
                    // Still closed: an enquiry is never reopened, but this is the place to be sure.
                    let sql = format!(
                        "DELETE FROM enquiries WHERE {} AND id IN ({})",
                        enquiries_gone(),
                        placeholders(2, ids.len())
                    );
                    let mut q = sqlx::query(&sql).bind(cutoff);
                    for id in &ids {
                        q = q.bind(*id);
                    }
                    counts.enquiries += q.execute(&mut *tx).await?.rows_affected();
                }
                if !call_sids.is_empty() {
                    for (table, counter) in [
                        ("call_steps", &mut counts.call_steps),
                        ("call_answers", &mut counts.call_answers),
                        ("calls", &mut counts.calls),
                    ] {
                        let sql = delete(table, "call_sid", call_sids.len());
                        let mut q = sqlx::query(&sql);
                        for sid in &call_sids {
                            q = q.bind(*sid);
                        }
                        *counter += q.execute(&mut *tx).await?.rows_affected();
                    }
                }
                tx.commit().await?;
                Ok(super::retention::PurgeBatch {
                    counts,
                    // A full batch of either: there may be more.
                    more: enquiries.len() as i64 == limit || orphans.len() as i64 == limit,
                })
            }

            async fn pending_recording_deletions(
                &self,
                limit: u32,
            ) -> Result<Vec<super::retention::PendingRecording>, StoreError> {
                let rows: Vec<super::retention::PendingRecording> = sqlx::query_as(
                    "SELECT recording_url, queued_at, CAST(attempts AS BIGINT) AS attempts FROM recording_deletions \
                     ORDER BY queued_at, recording_url LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|mut r| {
                        r.recording_url = self.keys.open(crate::crypto::Kind::Recording, &r.recording_url)?;
                        Ok(r)
                    })
                    .collect()
            }

            async fn recording_deletion_done(&self, recording_url: &str) -> Result<(), StoreError> {
                let (rows, hashes) = super::retention::by_recording(&self.keys, recording_url, 1);
                let sql = format!("DELETE FROM recording_deletions {rows}");
                let mut q = sqlx::query(&sql);
                for h in &hashes {
                    q = q.bind(h);
                }
                q.execute(&self.pool).await?;
                Ok(())
            }

            async fn recording_deletion_failed(
                &self,
                recording_url: &str,
                at: DateTime<Utc>,
                error: &str,
            ) -> Result<(), StoreError> {
                let (rows, hashes) = super::retention::by_recording(&self.keys, recording_url, 3);
                let sql = format!(
                    "UPDATE recording_deletions SET attempts = attempts + 1, last_attempt_at = $1, last_error = $2 {rows}"
                );
                let mut q = sqlx::query(&sql).bind(at).bind(error);
                for h in &hashes {
                    q = q.bind(h);
                }
                q.execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

pub(super) use retention_sql;
