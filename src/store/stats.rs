//! What the statistics read: compact facts about calls, enquiries and attempts in a
//! period, simulated calls left out. One SQL implementation for both backends.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;

/// A call, as the statistics need it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallFacts {
    pub call_sid: String,
    pub started_at: DateTime<Utc>,
    pub in_hours: bool,
    pub ended: bool,
    pub queue_joined_at: Option<DateTime<Utc>>,
    pub queue_left_at: Option<DateTime<Utc>>,
    pub queue_result: Option<String>,
    pub queue_wait_seconds: Option<i64>,
    /// The hospital chosen in the menu, if any.
    pub trust: Option<String>,
    /// For a caller who hung up in the queue: an enquiry from the same number followed.
    pub listed_after: bool,
    /// … and somebody has tried to call it back.
    pub called_back_after: bool,
}

/// An enquiry, as the statistics need it.
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

#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Calls that started in `[from, to)`, not simulated.
    async fn call_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CallFacts>, StoreError>;
    /// (call SID, outcome) of every step at `node` of calls that started in `[from, to)`.
    async fn step_outcomes(
        &self,
        node: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Enquiries made in `[from, to)` from calls that were not simulated.
    async fn enquiry_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EnquiryFacts>, StoreError>;
    /// (outcome, enquiry's trust) of every call-back attempt made in `[from, to)`.
    async fn attempt_outcomes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError>;
}

/// `impl StatsStore for $store` over `self.reader()` (a replica when there is one).
macro_rules! stats_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl super::stats::StatsStore for $store {
            async fn call_facts(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<super::stats::CallFacts>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT c.call_sid, c.started_at, c.in_hours, (c.ended_at IS NOT NULL) AS ended, \
                     c.queue_joined_at, c.queue_left_at, c.queue_result, c.queue_wait_seconds, t.value AS trust, \
                     COALESCE(c.queue_result = 'hangup' AND EXISTS (SELECT 1 FROM enquiries e \
                        WHERE e.callback_number = c.caller AND e.created_at >= c.started_at), FALSE) AS listed_after, \
                     COALESCE(c.queue_result = 'hangup' AND EXISTS (SELECT 1 FROM enquiries e \
                        WHERE e.callback_number = c.caller AND e.created_at >= c.started_at AND e.attempts > 0), FALSE) \
                        AS called_back_after \
                     FROM calls c LEFT JOIN call_answers t ON t.call_sid = c.call_sid AND t.name = 'trust' \
                     WHERE c.started_at >= $1 AND c.started_at < $2 AND c.simulated = FALSE",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await?)
            }

            async fn step_outcomes(
                &self,
                node: &str,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT s.call_sid, s.outcome FROM call_steps s JOIN calls c ON c.call_sid = s.call_sid \
                     WHERE s.node = $1 AND c.started_at >= $2 AND c.started_at < $3 AND c.simulated = FALSE",
                )
                .bind(node)
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
                    "SELECT e.id, e.trust, e.category, e.status, e.source, e.created_at, \
                     COALESCE(e.waiting_since, e.created_at) AS waiting_since, e.callback_due, e.attempts, \
                     (SELECT MIN(a.at) FROM callback_attempts a WHERE a.enquiry_id = e.id) AS first_attempt_at \
                     FROM enquiries e JOIN calls c ON c.call_sid = e.call_sid \
                     WHERE e.created_at >= $1 AND e.created_at < $2 AND c.simulated = FALSE",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await?)
            }

            async fn attempt_outcomes(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT a.outcome, e.trust FROM callback_attempts a JOIN enquiries e ON e.id = a.enquiry_id \
                     WHERE a.at >= $1 AND a.at < $2",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.reader())
                .await?)
            }
        }
    };
}

pub(super) use stats_sql;
