//! The embedded SQLite store (WAL journal, busy timeout) used by default.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{
    CallEnd, CallRecord, NewCall, NewClosure, NewStep, StepRecord, Store, StoreError,
    StoredCalendar,
};
use crate::enquiries::{Enquiry, NewEnquiry, Recording, Reference};
use crate::flows::{Answer, Answers};
use crate::hours::{Closure, ClosureKind};
use crate::phone::UkNumber;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How many random references to try before giving up (a collision is rare; ten in a row is a fault).
const REFERENCE_TRIES: u32 = 10;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://PATH` or `sqlite::memory:`), creating the file and running migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
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
        Ok(Self { pool })
    }
}

fn enquiry_from_row(row: &SqliteRow) -> Result<Enquiry, StoreError> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("enquiry {what}: {e}"));
    let reference: String = row.try_get("reference")?;
    let trust: String = row.try_get("trust")?;
    let category: String = row.try_get("category")?;
    let status: String = row.try_get("status")?;
    let duration: Option<i64> = row.try_get("recording_duration")?;
    Ok(Enquiry {
        id: row.try_get("id")?,
        reference: Reference::parse(&reference).ok_or_else(|| corrupt("reference", &reference))?,
        call_sid: row.try_get("call_sid")?,
        callback_number: row.try_get("callback_number")?,
        trust: trust.parse().map_err(|e| corrupt("trust", &e))?,
        category: category.parse().map_err(|e| corrupt("category", &e))?,
        recording_url: row.try_get("recording_url")?,
        recording_duration: duration.and_then(|d| u32::try_from(d).ok()),
        status: status.parse().map_err(|e| corrupt("status", &e))?,
        created_at: row.try_get::<DateTime<Utc>, _>("created_at")?,
        callback_due: row.try_get::<NaiveDate, _>("callback_due")?,
    })
}

const ENQUIRY_COLUMNS: &str =
    "id, reference, call_sid, callback_number, trust, category, recording_url, \
     recording_duration, status, created_at, callback_due";

async fn bump_revision(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<(), StoreError> {
    sqlx::query("UPDATE hours_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error, column: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation() && db.message().contains(column))
}

#[async_trait]
impl Store for SqliteStore {
    async fn record_call(&self, call: &NewCall) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO calls (call_sid, caller, started_at, in_hours, simulated) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (call_sid) DO NOTHING",
        )
        .bind(&call.call_sid)
        .bind(&call.caller)
        .bind(call.started_at)
        .bind(call.in_hours)
        .bind(call.simulated)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_step(&self, step: &NewStep) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO call_steps (call_sid, seq, node, input, outcome, at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (call_sid, seq) DO NOTHING",
        )
        .bind(&step.call_sid)
        .bind(step.seq)
        .bind(&step.node)
        .bind(&step.input)
        .bind(&step.outcome)
        .bind(step.at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn answers(&self, call_sid: &str) -> Result<Answers, StoreError> {
        let rows = sqlx::query("SELECT name, value FROM call_answers WHERE call_sid = ?")
            .bind(call_sid)
            .fetch_all(&self.pool)
            .await?;
        let mut answers = Answers::default();
        let mut recording_url = None;
        let mut recording_duration = None;
        for row in rows {
            let name: String = row.try_get("name")?;
            let value: String = row.try_get("value")?;
            let bad =
                |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("answer {name}: {e}"));
            match name.as_str() {
                "callback_number" => {
                    answers.callback_number =
                        Some(UkNumber::parse(&value).ok_or_else(|| bad(&"not a UK number"))?)
                }
                "trust" => answers.trust = Some(value.parse().map_err(|e| bad(&e))?),
                "category" => answers.category = Some(value.parse().map_err(|e| bad(&e))?),
                "recording_url" => recording_url = Some(value),
                "recording_duration" => {
                    recording_duration = Some(value.parse::<u32>().map_err(|e| bad(&e))?)
                }
                _ => {}
            }
        }
        if let (Some(url), Some(duration_seconds)) = (recording_url, recording_duration) {
            answers.message = Some(Recording {
                url,
                duration_seconds,
            });
        }
        Ok(answers)
    }

    async fn save_answer(&self, call_sid: &str, answer: &Answer) -> Result<(), StoreError> {
        let pairs: Vec<(&str, String)> = match answer {
            Answer::CallbackNumber(n) => vec![("callback_number", n.e164().to_string())],
            Answer::Trust(t) => vec![("trust", t.as_str().to_string())],
            Answer::Category(c) => vec![("category", c.as_str().to_string())],
            Answer::Message(r) => vec![
                ("recording_url", r.url.clone()),
                ("recording_duration", r.duration_seconds.to_string()),
            ],
        };
        let mut tx = self.pool.begin().await?;
        for (name, value) in pairs {
            sqlx::query(
                "INSERT INTO call_answers (call_sid, name, value) VALUES (?, ?, ?) \
                 ON CONFLICT (call_sid, name) DO UPDATE SET value = excluded.value",
            )
            .bind(call_sid)
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_enquiry(&self, e: &NewEnquiry) -> Result<Enquiry, StoreError> {
        for _ in 0..REFERENCE_TRIES {
            let reference = Reference::random();
            let inserted = sqlx::query(
                "INSERT INTO enquiries (id, reference, call_sid, callback_number, trust, category, \
                 recording_url, recording_duration, status, created_at, callback_due) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?) ON CONFLICT (call_sid) DO NOTHING",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(reference.as_str())
            .bind(&e.call_sid)
            .bind(e.callback_number.e164())
            .bind(e.trust.as_str())
            .bind(e.category.as_str())
            .bind(e.recording.as_ref().map(|r| r.url.as_str()))
            .bind(e.recording.as_ref().map(|r| r.duration_seconds))
            .bind(e.created_at)
            .bind(e.callback_due)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {
                    // Inserted now, or already there from an earlier (retried) request.
                    return self.enquiry_for_call(&e.call_sid).await?.ok_or_else(|| {
                        StoreError::Corrupt("enquiry vanished after insert".into())
                    });
                }
                Err(err) if is_unique_violation(&err, "reference") => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::NoFreeReference(REFERENCE_TRIES))
    }

    async fn enquiry_for_call(&self, call_sid: &str) -> Result<Option<Enquiry>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE call_sid = ?"
        ))
        .bind(call_sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(enquiry_from_row).transpose()
    }

    async fn list_enquiries(&self) -> Result<Vec<Enquiry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENQUIRY_COLUMNS} FROM enquiries ORDER BY created_at, reference"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(enquiry_from_row).collect()
    }

    async fn queue_joined(&self, call_sid: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET queue_joined_at = COALESCE(queue_joined_at, ?) WHERE call_sid = ?",
        )
        .bind(at)
        .bind(call_sid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn queue_left(
        &self,
        call_sid: &str,
        result: &str,
        wait_seconds: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET queue_left_at = ?, queue_result = ?, queue_wait_seconds = ?, \
             hung_up_in_queue = CASE WHEN ? = 'hangup' THEN 1 ELSE hung_up_in_queue END WHERE call_sid = ?",
        )
        .bind(at)
        .bind(result)
        .bind(wait_seconds)
        .bind(result)
        .bind(call_sid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn answered_since(&self, since: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT queue_wait_seconds FROM calls WHERE queue_result = 'bridged' AND queue_left_at >= ? \
             AND queue_wait_seconds IS NOT NULL AND simulated = 0",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                r.try_get::<i64, _>("queue_wait_seconds")
                    .map_err(StoreError::from)
            })
            .collect()
    }

    async fn call_ended(&self, end: &CallEnd) -> Result<(), StoreError> {
        // A caller still marked as queued (joined, never left) hung up while waiting.
        sqlx::query(
            "UPDATE calls SET ended_at = ?, final_status = ?, duration_seconds = ?, \
             hung_up_in_queue = CASE WHEN queue_joined_at IS NOT NULL AND queue_left_at IS NULL THEN 1 \
                                     ELSE hung_up_in_queue END \
             WHERE call_sid = ?",
        )
        .bind(end.at)
        .bind(&end.status)
        .bind(end.duration_seconds)
        .bind(&end.call_sid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn call(&self, call_sid: &str) -> Result<Option<CallRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT call_sid, caller, started_at, in_hours, simulated, ended_at, duration_seconds, final_status, \
             queue_joined_at, queue_result, queue_wait_seconds, hung_up_in_queue FROM calls WHERE call_sid = ?",
        )
        .bind(call_sid)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(CallRecord {
            call_sid: r.try_get("call_sid")?,
            caller: r.try_get("caller")?,
            started_at: r.try_get("started_at")?,
            in_hours: r.try_get("in_hours")?,
            simulated: r.try_get("simulated")?,
            ended_at: r.try_get("ended_at")?,
            duration_seconds: r.try_get("duration_seconds")?,
            final_status: r.try_get("final_status")?,
            queue_joined_at: r.try_get("queue_joined_at")?,
            queue_result: r.try_get("queue_result")?,
            queue_wait_seconds: r.try_get("queue_wait_seconds")?,
            hung_up_in_queue: r.try_get("hung_up_in_queue")?,
        }))
    }

    async fn steps(&self, call_sid: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, node, input, outcome FROM call_steps WHERE call_sid = ? ORDER BY seq",
        )
        .bind(call_sid)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StepRecord {
                    seq: r.try_get("seq")?,
                    node: r.try_get("node")?,
                    input: r.try_get("input")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }

    async fn add_closure(&self, c: &NewClosure) -> Result<Closure, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO closures (kind, starts_at, ends_at, reason, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(c.kind.as_str())
        .bind(c.from)
        .bind(c.until)
        .bind(&c.reason)
        .bind(c.created_at)
        .fetch_one(&mut *tx)
        .await?;
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(Closure {
            id: row.try_get("id")?,
            kind: c.kind,
            from: c.from,
            until: c.until,
            reason: c.reason.clone(),
        })
    }

    async fn list_closures(&self) -> Result<Vec<Closure>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, starts_at, ends_at, reason FROM closures ORDER BY starts_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(Closure {
                    id: r.try_get("id")?,
                    kind: ClosureKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("closure kind `{kind}`")))?,
                    from: r.try_get("starts_at")?,
                    until: r.try_get("ends_at")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    async fn remove_closure(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM closures WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn hours_revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT revision FROM hours_revision WHERE id = 1")
                .fetch_one(&self.pool)
                .await?
                .try_get("revision")?,
        )
    }

    async fn stored_calendar(&self, division: &str) -> Result<Option<StoredCalendar>, StoreError> {
        let row = sqlx::query(
            "SELECT division, document, source, fetched_at, checked_at, etag, last_modified \
             FROM bank_holiday_calendars WHERE division = ?",
        )
        .bind(division)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredCalendar {
                division: r.try_get("division")?,
                document: r.try_get("document")?,
                source: r.try_get("source")?,
                fetched_at: r.try_get("fetched_at")?,
                checked_at: r.try_get("checked_at")?,
                etag: r.try_get("etag")?,
                last_modified: r.try_get("last_modified")?,
            })
        })
        .transpose()
    }

    async fn save_calendar(&self, c: &StoredCalendar) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO bank_holiday_calendars (division, document, source, fetched_at, checked_at, etag, last_modified) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (division) DO UPDATE SET document = excluded.document, \
             source = excluded.source, fetched_at = excluded.fetched_at, checked_at = excluded.checked_at, \
             etag = excluded.etag, last_modified = excluded.last_modified",
        )
        .bind(&c.division)
        .bind(&c.document)
        .bind(&c.source)
        .bind(c.fetched_at)
        .bind(c.checked_at)
        .bind(&c.etag)
        .bind(&c.last_modified)
        .execute(&mut *tx)
        .await?;
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn calendar_checked(&self, division: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE bank_holiday_calendars SET checked_at = ? WHERE division = ?")
            .bind(at)
            .bind(division)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
