//! Rows as both backends return them, and their conversion to domain types: one place
//! decides how a stored value becomes an enquiry, a call or a closure.

use chrono::{DateTime, NaiveDate, Utc};

use super::{CallRecord, StepRecord, StoreError, StoredCalendar};
use crate::crypto::{Keyring, Kind};
use crate::enquiries::{Enquiry, Reference};
use crate::hours::{Closure, ClosureKind};

pub const ENQUIRY_COLUMNS: &str =
    "id, reference, call_sid, callback_number, trust, category, recording_url, \
     recording_duration, status, created_at, callback_due, source, \
     COALESCE(waiting_since, created_at) AS waiting_since, attempts, next_attempt_on, closed_at, \
     claimed_by, claimed_at, missed_calls, unanswered";

/// [`ENQUIRY_COLUMNS`] of a table aliased `e` (for joins).
pub const ENQUIRY_COLUMNS_OF_E: &str =
    "e.id, e.reference, e.call_sid, e.callback_number, e.trust, e.category, e.recording_url, \
     e.recording_duration, e.status, e.created_at, e.callback_due, e.source, \
     COALESCE(e.waiting_since, e.created_at) AS waiting_since, e.attempts, e.next_attempt_on, e.closed_at, \
     e.claimed_by, e.claimed_at, e.missed_calls, e.unanswered";

/// The statuses still to be worked on, for SQL (`status IN …`).
pub const OPEN_STATUSES: &str = "('new', 'retry', 'follow-up')";

pub const CALL_COLUMNS: &str =
    "call_sid, caller, started_at, in_hours, simulated, ended_at, duration_seconds, \
     final_status, queue_joined_at, queue_result, queue_wait_seconds, hung_up_in_queue";

#[derive(Debug, sqlx::FromRow)]
pub struct EnquiryRow {
    id: String,
    reference: String,
    call_sid: String,
    callback_number: String,
    trust: String,
    category: String,
    recording_url: Option<String>,
    recording_duration: Option<i64>,
    status: String,
    created_at: DateTime<Utc>,
    callback_due: NaiveDate,
    source: String,
    waiting_since: DateTime<Utc>,
    attempts: i64,
    next_attempt_on: Option<NaiveDate>,
    closed_at: Option<DateTime<Utc>>,
    claimed_by: Option<String>,
    claimed_at: Option<DateTime<Utc>>,
    missed_calls: i64,
    unanswered: i64,
}

impl EnquiryRow {
    /// The enquiry, its number and recording opened with `keys`.
    pub fn open(self, keys: &Keyring) -> Result<Enquiry, StoreError> {
        let r = self;
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("enquiry {what}: {e}"))
        };
        Ok(Enquiry {
            reference: Reference::parse(&r.reference)
                .ok_or_else(|| corrupt("reference", &r.reference))?,
            trust: r.trust.parse().map_err(|e| corrupt("trust", &e))?,
            category: r.category.parse().map_err(|e| corrupt("category", &e))?,
            status: r.status.parse().map_err(|e| corrupt("status", &e))?,
            source: r.source.parse().map_err(|e| corrupt("source", &e))?,
            waiting_since: r.waiting_since,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            next_attempt_on: r.next_attempt_on,
            closed_at: r.closed_at,
            claimed_by: r.claimed_by,
            claimed_at: r.claimed_at,
            missed_calls: u32::try_from(r.missed_calls).unwrap_or(0),
            unanswered: u32::try_from(r.unanswered).unwrap_or(0),
            recording_duration: r.recording_duration.and_then(|d| u32::try_from(d).ok()),
            id: r.id,
            call_sid: r.call_sid,
            callback_number: keys.open(Kind::PhoneNumber, &r.callback_number)?,
            recording_url: keys.open_opt(Kind::Recording, r.recording_url.as_deref())?,
            created_at: r.created_at,
            callback_due: r.callback_due,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct CallRow {
    call_sid: String,
    caller: Option<String>,
    started_at: DateTime<Utc>,
    in_hours: bool,
    simulated: bool,
    ended_at: Option<DateTime<Utc>>,
    duration_seconds: Option<i64>,
    final_status: Option<String>,
    queue_joined_at: Option<DateTime<Utc>>,
    queue_result: Option<String>,
    queue_wait_seconds: Option<i64>,
    hung_up_in_queue: bool,
}

impl CallRow {
    /// The call, its caller's number opened with `keys`.
    pub fn open(self, keys: &Keyring) -> Result<CallRecord, StoreError> {
        let r = self;
        Ok(CallRecord {
            caller: keys.open_opt(Kind::PhoneNumber, r.caller.as_deref())?,
            call_sid: r.call_sid,
            started_at: r.started_at,
            in_hours: r.in_hours,
            simulated: r.simulated,
            ended_at: r.ended_at,
            duration_seconds: r.duration_seconds,
            final_status: r.final_status,
            queue_joined_at: r.queue_joined_at,
            queue_result: r.queue_result,
            queue_wait_seconds: r.queue_wait_seconds,
            hung_up_in_queue: r.hung_up_in_queue,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct StepRow {
    seq: i64,
    node: String,
    input: String,
    outcome: String,
    path: Option<String>,
}

impl TryFrom<StepRow> for StepRecord {
    type Error = StoreError;

    fn try_from(r: StepRow) -> Result<Self, StoreError> {
        Ok(StepRecord {
            seq: u32::try_from(r.seq).map_err(|e| StoreError::Corrupt(format!("step seq: {e}")))?,
            node: r.node,
            input: r.input,
            outcome: r.outcome,
            path: crate::flows::journey::split_path(r.path.as_deref()),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ClosureRow {
    id: i64,
    kind: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: String,
}

impl TryFrom<ClosureRow> for Closure {
    type Error = StoreError;

    fn try_from(r: ClosureRow) -> Result<Self, StoreError> {
        Ok(Closure {
            id: r.id,
            kind: ClosureKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("closure kind `{}`", r.kind)))?,
            from: r.starts_at,
            until: r.ends_at,
            reason: r.reason,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct CalendarRow {
    division: String,
    document: String,
    source: String,
    fetched_at: DateTime<Utc>,
    checked_at: DateTime<Utc>,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl From<CalendarRow> for StoredCalendar {
    fn from(r: CalendarRow) -> Self {
        StoredCalendar {
            division: r.division,
            document: r.document,
            source: r.source,
            fetched_at: r.fetched_at,
            checked_at: r.checked_at,
            etag: r.etag,
            last_modified: r.last_modified,
        }
    }
}

/// A step's path as stored in `call_steps.path`: node ids separated by spaces (ids never
/// contain one), NULL when the step passed through no node.
pub fn path_column(path: &[String]) -> Option<String> {
    (!path.is_empty()).then(|| path.join(" "))
}

/// Collects stored answers (name, value) into the flow's answers, opening the sealed ones.
pub fn answers_from_pairs(
    pairs: Vec<(String, String)>,
    keys: &Keyring,
) -> Result<crate::flows::Answers, StoreError> {
    use crate::enquiries::Recording;
    use crate::phone::UkNumber;
    let mut answers = crate::flows::Answers::default();
    let mut recording_url = None;
    let mut recording_duration = None;
    for (name, value) in pairs {
        let value = match super::sealing::answer_kind(&name) {
            Some(kind) => keys.open(kind, &value)?,
            None => value,
        };
        let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("answer {name}: {e}"));
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

/// The (name, value) rows an answer is stored as: the number and the recording sealed.
pub fn answer_pairs(answer: &crate::flows::Answer, keys: &Keyring) -> Vec<(&'static str, String)> {
    use crate::flows::Answer;
    match answer {
        Answer::CallbackNumber(n) => {
            vec![("callback_number", keys.seal(Kind::PhoneNumber, n.e164()))]
        }
        Answer::Trust(t) => vec![("trust", t.as_str().to_string())],
        Answer::Category(c) => vec![("category", c.as_str().to_string())],
        Answer::Message(r) => vec![
            ("recording_url", keys.seal(Kind::Recording, &r.url)),
            ("recording_duration", r.duration_seconds.to_string()),
        ],
    }
}

/// A unique-constraint violation on `column` (both backends name the column or its
/// constraint in the message).
pub fn is_unique_violation(e: &sqlx::Error, column: &str) -> bool {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.message().contains(column) || db.constraint().is_some_and(|c| c.contains(column))
        }
        _ => false,
    }
}

pub const USER_COLUMNS: &str =
    "id, email, role, phone, password_hash, totp_secret, totp_last_step, \
     disabled, setup_token_hash, setup_expires_at, created_at, updated_at, version";

#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    id: String,
    email: String,
    role: String,
    phone: Option<String>,
    password_hash: Option<String>,
    totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    disabled: bool,
    setup_token_hash: Option<String>,
    setup_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<UserRow> for crate::staff::User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(crate::staff::User {
            role: r.role.parse().map_err(StoreError::Corrupt)?,
            id: r.id,
            email: r.email,
            phone: r.phone,
            password_hash: r.password_hash,
            totp_secret: r.totp_secret,
            disabled: r.disabled,
            setup_token_hash: r.setup_token_hash,
            setup_expires_at: r.setup_expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

pub const SESSION_COLUMNS: &str =
    "id_hash, user_id, stage, csrf, pending_secret, created_at, last_seen_at, expires_at";

#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    id_hash: String,
    user_id: Option<String>,
    stage: String,
    csrf: String,
    pending_secret: Option<String>,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl TryFrom<SessionRow> for crate::staff::Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(crate::staff::Session {
            stage: crate::staff::Stage::parse(&r.stage)
                .ok_or_else(|| StoreError::Corrupt(format!("session stage `{}`", r.stage)))?,
            id_hash: r.id_hash,
            user_id: r.user_id,
            csrf: r.csrf,
            pending_secret: r.pending_secret,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct AttemptRow {
    at: DateTime<Utc>,
    handler: String,
    outcome: String,
}

impl TryFrom<AttemptRow> for crate::enquiries::Attempt {
    type Error = StoreError;

    fn try_from(r: AttemptRow) -> Result<Self, StoreError> {
        Ok(crate::enquiries::Attempt {
            outcome: r
                .outcome
                .parse()
                .map_err(|e: crate::enquiries::UnknownValue| StoreError::Corrupt(e.to_string()))?,
            at: r.at,
            handler: r.handler,
        })
    }
}

/// A new enquiry's id, the one used in the dashboard's URLs: a version 7 UUID, its 74
/// random bits never guessable, ordered by `created_at` (from the service's clock) so that
/// new ids go to the end of the primary-key index rather than anywhere in it (under a
/// surge, a random id touched a different index page for every enquiry in a batch).
pub fn enquiry_id(created_at: DateTime<Utc>) -> String {
    let seconds = u64::try_from(created_at.timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        seconds,
        created_at.timestamp_subsec_nanos(),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// One row per key (a call, or a call and an answer's name) out of a batch's writes of one
/// kind: the first or the last written for each key (one statement cannot update a row
/// twice), in the order first seen.
pub struct Latest<K, T> {
    first_wins: bool,
    index: std::collections::HashMap<K, usize>,
    rows: Vec<(K, T)>,
}

impl<K: std::hash::Hash + Eq + Copy, T> Latest<K, T> {
    /// A later write for the same key is ignored (as `COALESCE(existing, new)` would).
    pub fn first_wins() -> Self {
        Self::new(true)
    }

    /// A later write for the same key replaces the earlier.
    pub fn last_wins() -> Self {
        Self::new(false)
    }

    fn new(first_wins: bool) -> Self {
        Self {
            first_wins,
            index: std::collections::HashMap::new(),
            rows: Vec::new(),
        }
    }

    pub fn put(&mut self, key: K, row: T) {
        match self.index.get(&key) {
            Some(&i) if !self.first_wins => self.rows[i].1 = row,
            Some(_) => {}
            None => {
                self.index.insert(key, self.rows.len());
                self.rows.push((key, row));
            }
        }
    }

    pub fn rows(&self) -> &[(K, T)] {
        &self.rows
    }
}

#[cfg(test)]
mod latest_tests {
    use super::Latest;

    #[test]
    fn keeps_one_row_per_call_first_or_last() {
        let mut first = Latest::first_wins();
        let mut last = Latest::last_wins();
        for (sid, n) in [("CA1", 1), ("CA2", 2), ("CA1", 3)] {
            first.put(sid, n);
            last.put(sid, n);
        }
        assert_eq!(first.rows(), &[("CA1", 1), ("CA2", 2)]);
        assert_eq!(last.rows(), &[("CA1", 3), ("CA2", 2)]);
    }

    #[test]
    fn enquiry_ids_follow_time_and_never_repeat() {
        let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let early = super::enquiry_id(t("2026-12-01T10:00:00Z"));
        let late = super::enquiry_id(t("2026-12-01T10:00:01Z"));
        let twin = super::enquiry_id(t("2026-12-01T10:00:01Z"));
        assert!(early < late, "{early} before {late}");
        assert_ne!(late, twin, "the random part differs at the same instant");
        assert_eq!(uuid::Uuid::parse_str(&late).unwrap().get_version_num(), 7);
    }
}
