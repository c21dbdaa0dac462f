//! What the staff dashboard needs from the database: accounts, sessions, sign-in failures,
//! the audit log, and working enquiries (claims, attempts, notes, texts). One SQL
//! implementation for both backends, like `sql.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::enquiries::{AfterAttempt, Attempt, Enquiry, Filter, Note, Outcome};
use crate::staff::audit;
use crate::staff::{Session, User};

/// A caller waiting in the adviser queue now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WaitingCaller {
    pub call_sid: String,
    pub joined_at: DateTime<Utc>,
    /// The hospital chosen in the menu, if any.
    pub trust: Option<String>,
    /// What the call is about, if the menu asked.
    pub category: Option<String>,
}

#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// Adds an account; [`StoreError::Duplicate`] when the e-mail is taken.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_setup_token(&self, token_hash: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Saves every field of the account but its TOTP step, if nobody changed it since
    /// `user` was read (its `version`); false (nothing written) otherwise.
    async fn update_user(&self, user: &User) -> Result<bool, StoreError>;
    async fn totp_last_step(&self, user_id: &str) -> Result<Option<i64>, StoreError>;
    /// Records the time step of a code just used; false when it was not newer than the last
    /// (the same code twice, even from two requests at once).
    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
    ) -> Result<(), StoreError>;
    /// Uses up a recovery code; false when it is wrong or used.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn session(&self, id_hash: &str) -> Result<Option<Session>, StoreError>;
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of an account (password or role change, disabling).
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError>;
    /// Removes sessions that ended before `now` or were idle since `idle_before`.
    async fn delete_dead_sessions(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Records a sign-in attempt as a failure (`attempt` names it, to forgive it later).
    async fn record_login_failure(
        &self,
        scope: &str,
        key: &str,
        at: DateTime<Utc>,
        attempt: &str,
    ) -> Result<(), StoreError>;
    /// The attempt succeeded: removes what it recorded.
    async fn forgive_login_attempt(&self, attempt: &str) -> Result<(), StoreError>;
    /// Failures since `since`: how many, and the oldest.
    async fn login_failures(
        &self,
        scope: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError>;
    async fn clear_login_failures(&self, scope: &str, key: &str) -> Result<(), StoreError>;

    async fn append_audit(&self, entry: &audit::NewEntry) -> Result<(), StoreError>;
    /// Newest first, at most `query.limit`.
    async fn audit_entries(&self, query: &audit::Query) -> Result<Vec<audit::Entry>, StoreError>;

    async fn enquiry(&self, id: &str) -> Result<Option<Enquiry>, StoreError>;
    /// Open enquiries matching `filter`, the longest waiting first.
    async fn open_enquiries(&self, filter: &Filter) -> Result<Vec<Enquiry>, StoreError>;
    /// Gives up `handler`'s claim; false when they did not hold it.
    async fn release_claim(&self, id: &str, handler: &str) -> Result<bool, StoreError>;
    /// Records an attempt by the claim's holder, applies `effect` and releases the claim.
    /// `attempts_before` guards against a concurrent change: false (nothing written) when
    /// `handler` does not hold the claim or the enquiry changed meanwhile.
    async fn record_attempt(
        &self,
        id: &str,
        handler: &str,
        attempts_before: u32,
        outcome: Outcome,
        effect: &AfterAttempt,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Oldest first, with the handler's e-mail.
    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError>;
    async fn add_note(
        &self,
        id: &str,
        author: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Oldest first, with the author's e-mail.
    async fn notes(&self, id: &str) -> Result<Vec<Note>, StoreError>;
    /// Logs a text message for an enquiry; false when one of this kind was already logged
    /// (so a text is never sent twice).
    async fn record_text(
        &self,
        enquiry_id: &str,
        kind: &str,
        at: DateTime<Utc>,
        status: &str,
        message_sid: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// The texts logged for an enquiry: (kind, status).
    async fn texts(&self, enquiry_id: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Callers in the adviser queue now, the longest waiting first.
    async fn waiting_callers(&self, now: DateTime<Utc>) -> Result<Vec<WaitingCaller>, StoreError>;
    /// The open enquiry from this number, if any (the oldest).
    async fn open_enquiry_for_number(&self, e164: &str) -> Result<Option<Enquiry>, StoreError>;
    /// A caller who gave up in the queue: counted on that number's open enquiry, if any.
    async fn count_missed_call(&self, enquiry_id: &str) -> Result<(), StoreError>;
    /// How many open enquiries this number has.
    async fn open_enquiry_count(&self, e164: &str) -> Result<i64, StoreError>;
}

/// `impl DashboardStore for $store`, over `self.pool` (and `self.reader()` for lists).
macro_rules! dashboard_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl super::dashboard::DashboardStore for $store {
            async fn create_user(&self, u: &crate::staff::User) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "INSERT INTO users (id, email, role, phone, password_hash, totp_secret, disabled, \
                     setup_token_hash, setup_expires_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&u.id)
                .bind(&u.email)
                .bind(u.role.as_str())
                .bind(&u.phone)
                .bind(&u.password_hash)
                .bind(&u.totp_secret)
                .bind(u.disabled)
                .bind(&u.setup_token_hash)
                .bind(u.setup_expires_at)
                .bind(u.created_at)
                .bind(u.updated_at)
                .execute(&self.pool)
                .await;
                match done {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e, "email") => {
                        Err(StoreError::Duplicate("an account with that e-mail already exists".into()))
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn user(&self, id: &str) -> Result<Option<crate::staff::User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(crate::staff::User::try_from).transpose()
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<crate::staff::User>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(crate::staff::User::try_from).transpose()
            }

            async fn user_by_setup_token(&self, hash: &str) -> Result<Option<crate::staff::User>, StoreError> {
                let row: Option<UserRow> =
                    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE setup_token_hash = $1"))
                        .bind(hash)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(crate::staff::User::try_from).transpose()
            }

            async fn list_users(&self) -> Result<Vec<crate::staff::User>, StoreError> {
                let rows: Vec<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY email"))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(crate::staff::User::try_from).collect()
            }

            async fn update_user(&self, u: &crate::staff::User) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE users SET role = $2, phone = $3, password_hash = $4, totp_secret = $5, disabled = $6, \
                     setup_token_hash = $7, setup_expires_at = $8, updated_at = $9, version = version + 1 \
                     WHERE id = $1 AND version = $10",
                )
                .bind(&u.id)
                .bind(u.role.as_str())
                .bind(&u.phone)
                .bind(&u.password_hash)
                .bind(&u.totp_secret)
                .bind(u.disabled)
                .bind(&u.setup_token_hash)
                .bind(u.setup_expires_at)
                .bind(u.updated_at)
                .bind(u.version)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn totp_last_step(&self, user_id: &str) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("SELECT totp_last_step FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .flatten())
            }

            async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                )
                .bind(user_id)
                .bind(step)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn replace_recovery_codes(&self, user_id: &str, hashes: &[String]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for h in hashes {
                    sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(user_id)
                        .bind(h)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn use_recovery_code(&self, user_id: &str, hash: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(hash)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session(&self, s: &crate::staff::Session) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, stage, csrf, pending_secret, created_at, last_seen_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&s.id_hash)
                .bind(&s.user_id)
                .bind(s.stage.as_str())
                .bind(&s.csrf)
                .bind(&s.pending_secret)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(&self, id_hash: &str) -> Result<Option<crate::staff::Session>, StoreError> {
                let row: Option<SessionRow> =
                    sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"))
                        .bind(id_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(crate::staff::Session::try_from).transpose()
            }

            async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1 AND last_seen_at < $2")
                    .bind(id_hash)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn delete_dead_sessions(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                    .bind(now)
                    .bind(idle_before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn record_login_failure(
                &self,
                scope: &str,
                key: &str,
                at: DateTime<Utc>,
                attempt: &str,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO login_failures (scope, key, at, attempt) VALUES ($1, $2, $3, $4)")
                    .bind(scope)
                    .bind(key)
                    .bind(at)
                    .bind(attempt)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn forgive_login_attempt(&self, attempt: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM login_failures WHERE attempt = $1")
                    .bind(attempt)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn login_failures(
                &self,
                scope: &str,
                key: &str,
                since: DateTime<Utc>,
            ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
                let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(at) FROM login_failures WHERE scope = $1 AND key = $2 AND at > $3",
                )
                .bind(scope)
                .bind(key)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                Ok((count, oldest))
            }

            async fn clear_login_failures(&self, scope: &str, key: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM login_failures WHERE scope = $1 AND key = $2")
                    .bind(scope)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn append_audit(&self, e: &crate::staff::audit::NewEntry) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_log (at, actor_id, actor, action, target, address, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(e.at)
                .bind(&e.actor_id)
                .bind(&e.actor)
                .bind(e.action.as_str())
                .bind(&e.target)
                .bind(&e.address)
                .bind(&e.detail)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn audit_entries(
                &self,
                q: &crate::staff::audit::Query,
            ) -> Result<Vec<crate::staff::audit::Entry>, StoreError> {
                // Every filter is a bound parameter; an absent one matches everything.
                let rows: Vec<(i64, DateTime<Utc>, String, String, Option<String>, Option<String>, Option<String>)> =
                    sqlx::query_as(
                        "SELECT id, at, actor, action, target, address, detail FROM audit_log \
                         WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2) \
                         AND ($3 IS NULL OR actor = $3) AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR target = $5) \
                         ORDER BY id DESC LIMIT $6",
                    )
                    .bind(q.since)
                    .bind(q.until)
                    .bind(&q.actor)
                    .bind(&q.action)
                    .bind(&q.target)
                    .bind(q.limit)
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, at, actor, action, target, address, detail)| crate::staff::audit::Entry {
                        id,
                        at,
                        actor,
                        action,
                        target,
                        address,
                        detail,
                    })
                    .collect())
            }

            async fn enquiry(&self, id: &str) -> Result<Option<Enquiry>, StoreError> {
                let row: Option<EnquiryRow> =
                    sqlx::query_as(&format!("SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(|r| r.open(&self.keys)).transpose()
            }

            async fn open_enquiries(&self, f: &crate::enquiries::Filter) -> Result<Vec<Enquiry>, StoreError> {
                let rows: Vec<EnquiryRow> = sqlx::query_as(&format!(
                    "SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE status IN {OPEN_STATUSES} \
                     AND ($1 IS NULL OR trust = $1) AND ($2 IS NULL OR category = $2) AND ($3 IS NULL OR status = $3) \
                     ORDER BY COALESCE(waiting_since, created_at), reference LIMIT 2000"
                ))
                .bind(f.trust.map(|t| t.as_str()))
                .bind(f.category.map(|c| c.as_str()))
                .bind(f.status.map(|s| s.as_str()))
                .fetch_all(self.reader())
                .await?;
                rows.into_iter().map(|r| r.open(&self.keys)).collect()
            }

            async fn release_claim(&self, id: &str, handler: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE enquiries SET claimed_by = NULL, claimed_at = NULL WHERE id = $1 AND claimed_by = $2",
                )
                .bind(id)
                .bind(handler)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_attempt(
                &self,
                id: &str,
                handler: &str,
                attempts_before: u32,
                outcome: crate::enquiries::Outcome,
                effect: &crate::enquiries::AfterAttempt,
                at: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(&format!(
                    "UPDATE enquiries SET attempts = attempts + 1, status = $1, next_attempt_on = $2, \
                     closed_at = $3, claimed_by = NULL, claimed_at = NULL, unanswered = $7, \
                     first_attempt_at = COALESCE(first_attempt_at, $8) \
                     WHERE id = $4 AND claimed_by = $5 AND attempts = $6 AND status IN {OPEN_STATUSES}"
                ))
                .bind(effect.status.as_str())
                .bind(effect.next_attempt_on)
                .bind(effect.closed.then_some(at))
                .bind(id)
                .bind(handler)
                .bind(i64::from(attempts_before))
                .bind(i64::from(effect.unanswered))
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query("INSERT INTO callback_attempts (enquiry_id, handler_id, at, outcome) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(handler)
                    .bind(at)
                    .bind(outcome.as_str())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn attempts(&self, id: &str) -> Result<Vec<crate::enquiries::Attempt>, StoreError> {
                let rows: Vec<AttemptRow> = sqlx::query_as(
                    "SELECT a.at, COALESCE(u.email, a.handler_id) AS handler, a.outcome FROM callback_attempts a \
                     LEFT JOIN users u ON u.id = a.handler_id WHERE a.enquiry_id = $1 ORDER BY a.at, a.id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(crate::enquiries::Attempt::try_from).collect()
            }

            async fn add_note(&self, id: &str, author: &str, body: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO enquiry_notes (enquiry_id, author_id, at, body) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(author)
                    .bind(at)
                    .bind(body)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn notes(&self, id: &str) -> Result<Vec<crate::enquiries::Note>, StoreError> {
                let rows: Vec<(DateTime<Utc>, String, String)> = sqlx::query_as(
                    "SELECT n.at, COALESCE(u.email, n.author_id), n.body FROM enquiry_notes n \
                     LEFT JOIN users u ON u.id = n.author_id WHERE n.enquiry_id = $1 ORDER BY n.at, n.id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(at, author, body)| crate::enquiries::Note { at, author, body })
                    .collect())
            }

            async fn record_text(
                &self,
                enquiry_id: &str,
                kind: &str,
                at: DateTime<Utc>,
                status: &str,
                message_sid: Option<&str>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO texts_sent (enquiry_id, kind, at, status, message_sid) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (enquiry_id, kind) DO NOTHING",
                )
                .bind(enquiry_id)
                .bind(kind)
                .bind(at)
                .bind(status)
                .bind(message_sid)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn texts(&self, enquiry_id: &str) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as("SELECT kind, status FROM texts_sent WHERE enquiry_id = $1 ORDER BY at, id")
                    .bind(enquiry_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn waiting_callers(
                &self,
                now: DateTime<Utc>,
            ) -> Result<Vec<super::dashboard::WaitingCaller>, StoreError> {
                let rows: Vec<(String, DateTime<Utc>, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT c.call_sid, c.queue_joined_at, t.value, k.value FROM calls c \
                     LEFT JOIN call_answers t ON t.call_sid = c.call_sid AND t.name = 'trust' \
                     LEFT JOIN call_answers k ON k.call_sid = c.call_sid AND k.name = 'category' \
                     WHERE c.queue_joined_at IS NOT NULL AND c.queue_left_at IS NULL AND c.ended_at IS NULL \
                     AND c.simulated = FALSE AND c.queue_joined_at > $1 ORDER BY c.queue_joined_at, c.call_sid",
                )
                // A call whose end never reached us stops counting after Twilio's 4-hour limit.
                .bind(now - chrono::Duration::hours(4))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(call_sid, joined_at, trust, category)| super::dashboard::WaitingCaller {
                        call_sid,
                        joined_at,
                        trust,
                        category,
                    })
                    .collect())
            }

            async fn open_enquiry_for_number(&self, e164: &str) -> Result<Option<Enquiry>, StoreError> {
                // By the number's lookup hashes (under every configured key): never the number.
                let hashes = self.keys.lookups(crate::crypto::Kind::PhoneNumber, e164);
                let sql = format!(
                    "SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE callback_hash IN ({}) AND status IN {OPEN_STATUSES} \
                     ORDER BY created_at LIMIT 1",
                    super::retention::placeholders(1, hashes.len())
                );
                let mut q = sqlx::query_as(&sql);
                for h in &hashes {
                    q = q.bind(h);
                }
                let row: Option<EnquiryRow> = q.fetch_optional(&self.pool).await?;
                row.map(|r| r.open(&self.keys)).transpose()
            }

            async fn count_missed_call(&self, enquiry_id: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE enquiries SET missed_calls = missed_calls + 1 WHERE id = $1")
                    .bind(enquiry_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn open_enquiry_count(&self, e164: &str) -> Result<i64, StoreError> {
                let hashes = self.keys.lookups(crate::crypto::Kind::PhoneNumber, e164);
                let sql = format!(
                    "SELECT COUNT(*) FROM enquiries WHERE callback_hash IN ({}) AND status IN {OPEN_STATUSES}",
                    super::retention::placeholders(1, hashes.len())
                );
                let mut q = sqlx::query_scalar(&sql);
                for h in &hashes {
                    q = q.bind(h);
                }
                Ok(q.fetch_one(&self.pool).await?)
            }
        }
    };
}

pub(super) use dashboard_sql;
