//! What the statistics read: compact facts about the calls of a day (rolled up once the
//! day is over, see `crate::stats::rollup`), aggregates of enquiries and call-back attempts
//! counted in SQL, and the stored daily roll-ups. Simulated and test calls, and their
//! enquiries, are left out. One SQL implementation for both backends.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;

/// Which calls by when they ended: those that ended in `[from, to)` (either bound open when
/// `None`), and also those not ended yet when `or_unended`. [`Ended::ALL`] takes every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub or_unended: bool,
}

impl Ended {
    pub const ALL: Ended = Ended {
        from: None,
        to: None,
        or_unended: true,
    };
}

/// A call, as the statistics need it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallFacts {
    pub call_sid: String,
    pub started_at: DateTime<Utc>,
    pub in_hours: bool,
    pub ended: bool,
    pub queue_joined_at: Option<DateTime<Utc>>,
    pub queue_result: Option<String>,
    pub queue_wait_seconds: Option<i64>,
    /// The hospital chosen in the menu, if any.
    pub trust: Option<String>,
}

/// One step of a counted call: where the caller was, what happened, and the route the
/// call then took through the flow (space-separated node ids; `None` before it was kept).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StepFacts {
    pub call_sid: String,
    pub node: String,
    pub outcome: String,
    pub path: Option<String>,
}

/// A caller who hung up while queued.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AbandonedFacts {
    pub started_at: DateTime<Utc>,
    pub queue_left_at: Option<DateTime<Utc>>,
    pub queue_wait_seconds: Option<i64>,
    pub trust: Option<String>,
    /// An enquiry from the same number followed.
    pub listed_after: bool,
    /// … and somebody has tried to call it back.
    pub called_back_after: bool,
}

/// An enquiry, as the per-enquiry export needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnquiryFacts {
    pub id: String,
    pub trust: String,
    pub category: String,
    pub status: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub waiting_since: DateTime<Utc>,
    pub callback_due: NaiveDate,
    pub attempts: i64,
    pub first_attempt_at: Option<DateTime<Utc>>,
}

/// Enquiries made in a period with the same hospital, category, source and status.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnquiryGroup {
    pub trust: String,
    pub category: String,
    pub source: String,
    pub status: String,
    pub enquiries: i64,
}

/// The call-back figures of the enquiries made in a period, counted in SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackTotals {
    /// Enquiries with at least one attempt.
    pub attempted: i64,
    /// Their attempts, all together.
    pub attempts: i64,
    /// First attempt on or before the promised day.
    pub within_promise: i64,
    /// Never tried and already past the promised day.
    pub overdue_untried: i64,
    pub unreachable: i64,
    /// Resolved, wrong number or unreachable.
    pub closed: i64,
}

/// An enquiry whose first attempt has no working-time figure yet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingFirstAttempt {
    pub id: String,
    pub waiting_since: DateTime<Utc>,
    pub first_attempt_at: DateTime<Utc>,
}

/// A stored daily roll-up.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredDay {
    pub day: NaiveDate,
    pub version: i64,
    /// For a day not yet over: the figures are of its calls that ended before this.
    pub watermark: Option<DateTime<Utc>>,
    pub figures: String,
}

#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Counted calls that started in `[from, to)` and ended as `ended` says.
    async fn call_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        ended: Ended,
    ) -> Result<Vec<CallFacts>, StoreError>;
    /// Every step of the same calls, each call's in order.
    async fn step_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        ended: Ended,
    ) -> Result<Vec<StepFacts>, StoreError>;
    /// (trust, created_at) of counted call-back requests made in `[from, to)`.
    async fn callback_requests(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
    /// Counted calls that started in `[from, to)` and hung up while queued, oldest first.
    async fn abandoned_calls(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AbandonedFacts>, StoreError>;
    /// Counted enquiries made in `[from, to)`, one row per enquiry (for the export).
    async fn enquiry_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EnquiryFacts>, StoreError>;
    /// Counted enquiries made in `[from, to)` (of one hospital, if given), grouped.
    async fn enquiry_groups(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        trust: Option<&str>,
    ) -> Result<Vec<EnquiryGroup>, StoreError>;
    /// Call-back totals of counted enquiries made in `[from, to)`; `today` (Europe/London)
    /// decides which untried ones are past their promised day. An enquiry counts as tried
    /// once its first attempt's date is worked out (`rollup::backfill_first_attempts`).
    async fn callback_totals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        trust: Option<&str>,
        today: NaiveDate,
    ) -> Result<CallbackTotals, StoreError>;
    /// (working minutes to the first attempt, enquiries), ascending, over the counted
    /// enquiries made in `[from, to)` that have one.
    async fn first_attempt_minutes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        trust: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, StoreError>;
    /// (outcome, attempts) of the call-back attempts made in `[from, to)` (on enquiries of
    /// one hospital, if given).
    async fn attempt_outcome_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        trust: Option<&str>,
    ) -> Result<Vec<(String, i64)>, StoreError>;
    /// Up to `limit` enquiries whose first attempt has no working-time figure yet.
    async fn pending_first_attempts(
        &self,
        limit: i64,
    ) -> Result<Vec<PendingFirstAttempt>, StoreError>;
    /// Records the first attempt's London date and working minutes, for each `(id, on, minutes)`.
    async fn set_first_attempts(&self, rows: &[(String, NaiveDate, i64)])
        -> Result<(), StoreError>;
    /// The stored roll-ups of the days in `[since, until]`.
    async fn stored_days(
        &self,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<StoredDay>, StoreError>;
    /// Stores (or replaces) a day's roll-up (with its watermark, for a day not yet over).
    async fn store_day(
        &self,
        day: NaiveDate,
        version: i64,
        watermark: Option<DateTime<Utc>>,
        figures: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// The calls `call_facts` and `step_facts` read (as `c`): counted (neither simulated nor a
/// test call), started in `[$1, $2)`, and ended as an [`Ended`] bound to `$3, $4, $5` says.
macro_rules! counted_calls_where {
    () => {
        " WHERE c.started_at >= $1 AND c.started_at < $2 AND c.simulated = FALSE AND c.test_call = FALSE \
         AND ((c.ended_at IS NULL AND $5) OR (($3 IS NULL OR c.ended_at >= $3) AND ($4 IS NULL OR c.ended_at < $4)))"
    };
}

pub(super) use counted_calls_where;

/// `impl StatsStore for $store`: reads from `self.reader()` (a replica when there is one),
/// writes (roll-ups, first-attempt figures) to the primary.
macro_rules! stats_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl super::stats::StatsStore for $store {
            async fn call_facts(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                ended: super::stats::Ended,
            ) -> Result<Vec<super::stats::CallFacts>, StoreError> {
                Ok(sqlx::query_as(concat!(
                    "SELECT c.call_sid, c.started_at, c.in_hours, (c.ended_at IS NOT NULL) AS ended, \
                     c.queue_joined_at, c.queue_result, c.queue_wait_seconds, t.value AS trust \
                     FROM calls c LEFT JOIN call_answers t ON t.call_sid = c.call_sid AND t.name = 'trust'",
                    super::stats::counted_calls_where!(),
                ))
                .bind(from)
                .bind(to)
                .bind(ended.from)
                .bind(ended.to)
                .bind(ended.or_unended)
                .fetch_all(self.reader())
                .await?)
            }

            async fn step_facts(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                ended: super::stats::Ended,
            ) -> Result<Vec<super::stats::StepFacts>, StoreError> {
                Ok(sqlx::query_as(concat!(
                    "SELECT s.call_sid, s.node, s.outcome, s.path FROM calls c \
                     JOIN call_steps s ON s.call_sid = c.call_sid",
                    super::stats::counted_calls_where!(),
                    " ORDER BY s.call_sid, s.seq",
                ))
                .bind(from)
                .bind(to)
                .bind(ended.from)
                .bind(ended.to)
                .bind(ended.or_unended)
                .fetch_all(self.reader())
                .await?)
            }

            async fn callback_requests(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT trust, created_at FROM enquiries \
                     WHERE created_at >= $1 AND created_at < $2 AND not_counted = FALSE \
                     AND source = 'callback-request' AND status <> 'merged'",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await?)
            }

            async fn abandoned_calls(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<super::stats::AbandonedFacts>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT c.started_at, c.queue_left_at, c.queue_wait_seconds, t.value AS trust, \
                     EXISTS (SELECT 1 FROM enquiries e \
                        WHERE e.callback_hash = c.caller_hash AND e.created_at >= c.started_at) AS listed_after, \
                     EXISTS (SELECT 1 FROM enquiries e \
                        WHERE e.callback_hash = c.caller_hash AND e.created_at >= c.started_at AND e.attempts > 0) \
                        AS called_back_after \
                     FROM calls c LEFT JOIN call_answers t ON t.call_sid = c.call_sid AND t.name = 'trust' \
                     WHERE c.queue_result = 'hangup' AND c.started_at >= $1 AND c.started_at < $2 \
                     AND c.simulated = FALSE AND c.test_call = FALSE ORDER BY COALESCE(c.queue_left_at, c.started_at)",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await?)
            }

            async fn enquiry_facts(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<super::stats::EnquiryFacts>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, trust, category, status, source, created_at, \
                     COALESCE(waiting_since, created_at) AS waiting_since, callback_due, attempts, first_attempt_at \
                     FROM enquiries WHERE created_at >= $1 AND created_at < $2 AND not_counted = FALSE \
                     ORDER BY created_at, id",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await?)
            }

            async fn enquiry_groups(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                trust: Option<&str>,
            ) -> Result<Vec<super::stats::EnquiryGroup>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT trust, category, source, status, COUNT(*) AS enquiries FROM enquiries \
                     WHERE created_at >= $1 AND created_at < $2 AND not_counted = FALSE \
                     AND ($3 IS NULL OR trust = $3) \
                     GROUP BY trust, category, source, status",
                )
                .bind(from)
                .bind(to)
                .bind(trust)
                .fetch_all(self.reader())
                .await?)
            }

            async fn callback_totals(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                trust: Option<&str>,
                today: chrono::NaiveDate,
            ) -> Result<super::stats::CallbackTotals, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT \
                     COUNT(first_attempt_on) AS attempted, \
                     CAST(COALESCE(SUM(CASE WHEN first_attempt_on IS NOT NULL THEN attempts ELSE 0 END), 0) AS BIGINT) AS attempts, \
                     CAST(COALESCE(SUM(CASE WHEN first_attempt_on <= callback_due THEN 1 ELSE 0 END), 0) AS BIGINT) AS within_promise, \
                     CAST(COALESCE(SUM(CASE WHEN first_attempt_on IS NULL AND callback_due < $4 THEN 1 ELSE 0 END), 0) AS BIGINT) \
                        AS overdue_untried, \
                     CAST(COALESCE(SUM(CASE WHEN status = 'unreachable' THEN 1 ELSE 0 END), 0) AS BIGINT) AS unreachable, \
                     CAST(COALESCE(SUM(CASE WHEN status IN ('unreachable', 'resolved', 'wrong-number') THEN 1 ELSE 0 END), 0) \
                        AS BIGINT) AS closed \
                     FROM enquiries WHERE created_at >= $1 AND created_at < $2 AND not_counted = FALSE \
                     AND status <> 'merged' AND ($3 IS NULL OR trust = $3)",
                )
                .bind(from)
                .bind(to)
                .bind(trust)
                .bind(today)
                .fetch_one(self.reader())
                .await?)
            }

            async fn first_attempt_minutes(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                trust: Option<&str>,
            ) -> Result<Vec<(i64, i64)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT first_attempt_minutes, COUNT(*) FROM enquiries \
                     WHERE created_at >= $1 AND created_at < $2 AND not_counted = FALSE AND status <> 'merged' \
                     AND first_attempt_minutes IS NOT NULL AND ($3 IS NULL OR trust = $3) \
                     GROUP BY first_attempt_minutes ORDER BY first_attempt_minutes",
                )
                .bind(from)
                .bind(to)
                .bind(trust)
                .fetch_all(self.reader())
                .await?)
            }

            async fn attempt_outcome_counts(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
                trust: Option<&str>,
            ) -> Result<Vec<(String, i64)>, StoreError> {
                let sql = if trust.is_some() {
                    "SELECT a.outcome, COUNT(*) FROM callback_attempts a JOIN enquiries e ON e.id = a.enquiry_id \
                     WHERE a.at >= $1 AND a.at < $2 AND e.trust = $3 GROUP BY a.outcome"
                } else {
                    // (No join needed: $3 is NULL and unused but for its type.)
                    "SELECT a.outcome, COUNT(*) FROM callback_attempts a \
                     WHERE a.at >= $1 AND a.at < $2 AND ($3 IS NULL) GROUP BY a.outcome"
                };
                Ok(sqlx::query_as(sql)
                    .bind(from)
                    .bind(to)
                    .bind(trust)
                    .fetch_all(self.reader())
                    .await?)
            }

            async fn pending_first_attempts(
                &self,
                limit: i64,
            ) -> Result<Vec<super::stats::PendingFirstAttempt>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, COALESCE(waiting_since, created_at) AS waiting_since, first_attempt_at FROM enquiries \
                     WHERE first_attempt_at IS NOT NULL AND first_attempt_minutes IS NULL LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn set_first_attempts(
                &self,
                rows: &[(String, chrono::NaiveDate, i64)],
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for (id, on, minutes) in rows {
                    sqlx::query(
                        "UPDATE enquiries SET first_attempt_on = $1, first_attempt_minutes = $2 WHERE id = $3",
                    )
                    .bind(on)
                    .bind(minutes)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn stored_days(
                &self,
                since: chrono::NaiveDate,
                until: chrono::NaiveDate,
            ) -> Result<Vec<super::stats::StoredDay>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT day, CAST(version AS BIGINT) AS version, watermark, figures FROM stats_days \
                     WHERE day >= $1 AND day <= $2 ORDER BY day",
                )
                .bind(since)
                .bind(until)
                .fetch_all(self.reader())
                .await?)
            }

            async fn store_day(
                &self,
                day: chrono::NaiveDate,
                version: i64,
                watermark: Option<DateTime<Utc>>,
                figures: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO stats_days (day, version, computed_at, figures, watermark) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (day) DO UPDATE SET version = excluded.version, \
                     computed_at = excluded.computed_at, figures = excluded.figures, watermark = excluded.watermark",
                )
                .bind(day)
                .bind(i32::try_from(version).unwrap_or(i32::MAX))
                .bind(at)
                .bind(figures)
                .bind(watermark)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    };
}

pub(super) use stats_sql;
