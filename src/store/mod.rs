//! Persistence. The rest of the service sees only the [`Store`] trait; the SQL for
//! each backend lives beside it (`sqlite.rs`; PostgreSQL arrives behind the same trait).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::enquiries::{Enquiry, NewEnquiry};
use crate::flows::{Answer, Answers};

mod dashboard;
pub mod messages;
mod postgres;
pub mod retention;
mod rows;
pub mod sealing;
mod sql;
mod sqlite;
pub mod stats;

pub use dashboard::{DashboardStore, WaitingCaller};
pub use postgres::PostgresStore;
pub use retention::RetentionStore;
pub use sealing::{KeyCensus, KeyOptions, ResealCounts, Scope};
pub use sqlite::SqliteStore;

/// How many random references to try before giving up (a collision is rare; ten in a row is a fault).
const REFERENCE_TRIES: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported DATABASE_URL `{0}`: use sqlite://PATH (e.g. sqlite://helpline.db), sqlite::memory: or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Duplicate(String),
    #[error("could not find a free enquiry reference after {0} tries")]
    NoFreeReference(u32),
    /// A data key that cannot be used, or a sealed value that cannot be opened.
    #[error("{0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// A call as it starts.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub call_sid: String,
    pub caller: Option<String>,
    pub started_at: DateTime<Utc>,
    pub in_hours: bool,
    /// From `helpline simulate`: not a real call.
    pub simulated: bool,
    /// From one of the staff's test numbers: a real call, never counted in statistics.
    pub test_call: bool,
}

/// One step a caller took (for statistics): never what they said or keyed.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub call_sid: String,
    pub seq: u32,
    pub node: String,
    pub input: String,
    pub outcome: String,
    pub at: DateTime<Utc>,
    /// The nodes the step took the caller through ([`crate::flows::Turn::path`]): stored
    /// space-separated in `call_steps.path`, NULL when empty.
    pub path: Vec<String>,
}

/// One write from the call-handling path. Webhooks hand these to the batched writer
/// ([`crate::calls::writer`]), which applies everything waiting in one transaction.
#[derive(Debug, Clone)]
pub enum CallWrite {
    /// A new call; a second with the same SID changes nothing.
    Call(NewCall),
    /// A step; not new when this call's step number is already recorded (a retried webhook).
    Step(NewStep),
    /// An answer the caller gave (replacing an earlier answer of the same kind).
    Answer { call_sid: String, answer: Answer },
    /// The caller joined the adviser queue (the first time counts).
    QueueJoined { call_sid: String, at: DateTime<Utc> },
    /// The caller left the queue: Twilio's QueueResult and QueueTime.
    QueueLeft {
        call_sid: String,
        result: String,
        wait_seconds: Option<i64>,
        at: DateTime<Utc>,
    },
    /// Twilio's status callback.
    Ended(CallEnd),
    /// A caller's request for a call back, under `reference` (made before the write, so
    /// the outbox can keep the same one if the database does not answer in time). Applied
    /// after everything else in the batch; the call's own enquiry if it already has one;
    /// folded into the number's oldest open enquiry when the number has `max_open` open.
    CallbackRequest {
        enquiry: NewEnquiry,
        reference: crate::enquiries::Reference,
        max_open: u32,
    },
}

/// What became of one [`CallWrite`].
#[derive(Debug, Clone)]
pub enum Applied {
    /// Written (for a step: for the first time).
    New,
    /// A step already recorded: a retried webhook.
    Repeat,
    /// The enquiry a call-back request made, joined, or found already made.
    Enquiry(Box<Enquiry>),
}

impl Applied {
    /// False only for a step already recorded.
    pub fn is_new(&self) -> bool {
        !matches!(self, Applied::Repeat)
    }
}

/// How a call ended (Twilio's status callback).
#[derive(Debug, Clone)]
pub struct CallEnd {
    pub call_sid: String,
    pub status: String,
    pub duration_seconds: Option<i64>,
    pub at: DateTime<Utc>,
}

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub call_sid: String,
    pub caller: Option<String>,
    pub started_at: DateTime<Utc>,
    pub in_hours: bool,
    pub simulated: bool,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<i64>,
    pub final_status: Option<String>,
    pub queue_joined_at: Option<DateTime<Utc>>,
    pub queue_result: Option<String>,
    pub queue_wait_seconds: Option<i64>,
    pub hung_up_in_queue: bool,
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub seq: u32,
    pub node: String,
    pub input: String,
    pub outcome: String,
    /// The nodes the step took the caller through; empty when it passed through none, and
    /// for steps recorded before paths were kept.
    pub path: Vec<String>,
}

/// A closure or special opening to add.
#[derive(Debug, Clone)]
pub struct NewClosure {
    pub kind: crate::hours::ClosureKind,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// The bank-holiday calendar in force, as persisted (the last good copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCalendar {
    pub division: String,
    /// GOV.UK-shaped JSON.
    pub document: String,
    pub source: String,
    pub fetched_at: DateTime<Utc>,
    pub checked_at: DateTime<Utc>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Figures for the metrics endpoint, read from the database (so every instance agrees).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Callers waiting in the adviser queue now (not simulated).
    pub queue_size: i64,
    /// Enquiries not yet dealt with.
    pub enquiries_open: i64,
    /// Open enquiries past the promised call-back date.
    pub enquiries_overdue: i64,
}

/// The connection pool, for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

#[async_trait]
pub trait Store:
    DashboardStore
    + stats::StatsStore
    + messages::MessagesStore
    + retention::RetentionStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Applies `writes` in one transaction: the calls first (so everything else can refer to
    /// them), then the steps, then the answers (the last of each kind per call wins), then
    /// queue joins, leaves and ends in order, then the call-back requests. Returns what
    /// became of each write.
    async fn apply_writes(&self, writes: &[CallWrite]) -> Result<Vec<Applied>, StoreError>;
    /// Records a new call; a second call with the same SID changes nothing.
    async fn record_call(&self, call: &NewCall) -> Result<(), StoreError> {
        self.apply_writes(&[CallWrite::Call(call.clone())]).await?;
        Ok(())
    }
    /// Records a step; returns false when this (call, seq) was already recorded (a retried webhook).
    async fn record_step(&self, step: &NewStep) -> Result<bool, StoreError> {
        let fresh = self.apply_writes(&[CallWrite::Step(step.clone())]).await?;
        Ok(fresh.first().is_some_and(Applied::is_new))
    }
    async fn answers(&self, call_sid: &str) -> Result<Answers, StoreError>;
    async fn save_answer(&self, call_sid: &str, answer: &Answer) -> Result<(), StoreError> {
        self.apply_writes(&[CallWrite::Answer {
            call_sid: call_sid.to_string(),
            answer: answer.clone(),
        }])
        .await?;
        Ok(())
    }
    /// Stores the enquiry, or returns the one already stored for this call.
    async fn create_enquiry(&self, enquiry: &NewEnquiry) -> Result<Enquiry, StoreError> {
        self.create_enquiry_with(enquiry, None).await
    }
    /// As [`Store::create_enquiry`], under `reference` when given (one the caller was
    /// already told: the outbox's replay); a fresh random one otherwise.
    async fn create_enquiry_with(
        &self,
        enquiry: &NewEnquiry,
        reference: Option<&crate::enquiries::Reference>,
    ) -> Result<Enquiry, StoreError>;
    /// The enquiry this call made, or the open one its request was folded into.
    async fn enquiry_for_call(&self, call_sid: &str) -> Result<Option<Enquiry>, StoreError>;
    async fn list_enquiries(&self) -> Result<Vec<Enquiry>, StoreError>;
    /// The caller joined the adviser queue (the first time counts).
    async fn queue_joined(&self, call_sid: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.apply_writes(&[CallWrite::QueueJoined {
            call_sid: call_sid.to_string(),
            at,
        }])
        .await?;
        Ok(())
    }
    /// The caller left the queue: Twilio's QueueResult and QueueTime.
    async fn queue_left(
        &self,
        call_sid: &str,
        result: &str,
        wait_seconds: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.apply_writes(&[CallWrite::QueueLeft {
            call_sid: call_sid.to_string(),
            result: result.to_string(),
            wait_seconds,
            at,
        }])
        .await?;
        Ok(())
    }
    /// Queue waits of callers answered since `since` (for an honest wait estimate).
    async fn answered_since(&self, since: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;
    async fn call_ended(&self, end: &CallEnd) -> Result<(), StoreError> {
        self.apply_writes(&[CallWrite::Ended(end.clone())]).await?;
        Ok(())
    }
    async fn call(&self, call_sid: &str) -> Result<Option<CallRecord>, StoreError>;
    /// The call's steps in order.
    async fn steps(&self, call_sid: &str) -> Result<Vec<StepRecord>, StoreError>;
    /// Adds a closure or special opening (every instance applies it at its next webhook).
    async fn add_closure(&self, closure: &NewClosure) -> Result<crate::hours::Closure, StoreError>;
    /// All closures and special openings, soonest first.
    async fn list_closures(&self) -> Result<Vec<crate::hours::Closure>, StoreError>;
    /// Those still ending after `after`, soonest first (what the opening-hours engine needs).
    async fn closures_ending_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Vec<crate::hours::Closure>, StoreError>;
    /// Removes one; false when there was no such id.
    async fn remove_closure(&self, id: i64) -> Result<bool, StoreError>;
    /// Bumped by every change to closures or the stored calendar.
    async fn hours_revision(&self) -> Result<i64, StoreError>;
    async fn stored_calendar(&self, division: &str) -> Result<Option<StoredCalendar>, StoreError>;
    /// Replaces the stored calendar (a validated new copy).
    async fn save_calendar(&self, calendar: &StoredCalendar) -> Result<(), StoreError>;
    /// Records a successful check of the feed that brought nothing new.
    async fn calendar_checked(&self, division: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Claims one enquiry for `handler` if nobody has it; true when this call won it.
    /// Safe across instances (a conditional update).
    /// A claim made before `stale_before` has lapsed and may be taken over; the holder
    /// claiming again renews it. Only open enquiries can be claimed.
    async fn claim_enquiry(
        &self,
        id: &str,
        handler: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Claims the longest-waiting open enquiry that is due by `today` and not held (or whose
    /// claim lapsed before `stale_before`) for `handler`, if any. Concurrent callers on any
    /// instance each get a different one (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    async fn claim_next_enquiry(
        &self,
        handler: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<Option<Enquiry>, StoreError>;
    /// Who holds an enquiry, if anyone.
    async fn enquiry_owner(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Takes (or renews) the lease `name` for `holder` until `until`, unless another holder's
    /// lease is still running at `now`. True when `holder` has it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Queue size and open/overdue enquiries at `now` (`today` is the Europe/London date).
    async fn gauges(
        &self,
        now: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<Gauges, StoreError>;
    fn pool_stats(&self) -> PoolStats;
    /// The schema has every migration this binary knows (false: run `helpline migrate`).
    async fn migrations_current(&self) -> Result<bool, StoreError>;
    /// Cheap liveness check of the database.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The keys this store seals callers' numbers with; the outbox seals its records with
    /// them too. A store that wraps another must hand on the inner store's keys (with a key
    /// of its own, outbox records would not open after a restart).
    fn data_keys(&self) -> Arc<crate::crypto::Keyring>;
}

/// For tests and development tools: the database at `url` (with a read replica when given)
/// with the development key defaults (a key file beside a SQLite file, a random key in
/// memory, the published development key on PostgreSQL). The service and the commands
/// open their database with [`open`] instead, under the configured keys.
pub async fn connect_with_replica(
    url: &str,
    read_url: Option<&str>,
) -> Result<Arc<dyn Store>, StoreError> {
    connect_keyed(url, read_url, &KeyOptions::development()).await
}

/// As [`connect_with_replica`], without a replica.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    connect_keyed(url, None, &KeyOptions::development()).await
}

/// The configuration's database (`DATABASE_URL`, no replica) under its data keys; `dev`
/// lets PostgreSQL without a configured key use the development key (`serve --insecure-dev`).
pub async fn open(config: &crate::config::Config, dev: bool) -> Result<Arc<dyn Store>, StoreError> {
    connect_keyed(&config.database_url, None, &key_options(config, dev)).await
}

/// As [`open`], reading lists and statistics from `DATABASE_READ_URL` when it is set.
pub async fn open_with_replica(
    config: &crate::config::Config,
    dev: bool,
) -> Result<Arc<dyn Store>, StoreError> {
    connect_keyed(
        &config.database_url,
        config.database_read_url.as_deref(),
        &key_options(config, dev),
    )
    .await
}

/// The key options of a configuration.
pub fn key_options(config: &crate::config::Config, dev: bool) -> KeyOptions {
    KeyOptions {
        settings: config.data_keys.clone(),
        dev,
        ..KeyOptions::default()
    }
}

/// Opens (creating and migrating where needed) the database named by `url`, with a read
/// replica when given (PostgreSQL only), under the keys `keys` decide; any value still
/// in plain text is sealed before it returns.
pub async fn connect_keyed(
    url: &str,
    read_url: Option<&str>,
    keys: &KeyOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") && read_url.is_none() {
        Ok(Arc::new(SqliteStore::connect(url, keys).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::connect(url, keys).await?;
        Ok(Arc::new(match read_url {
            Some(read) => store.with_read_replica(read).await?,
            None => store,
        }))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// What `helpline rekey` did (or, dry, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RekeyReport {
    pub dry_run: bool,
    /// The current key's id: everything is sealed under it afterwards.
    pub key: String,
    /// The older keys configured.
    pub old_keys: Vec<String>,
    /// Rows re-sealed (dry run: to re-seal), and values that could not be opened.
    pub resealed: ResealCounts,
    /// Values by key id (or `plaintext`), by column, after the pass.
    pub census: KeyCensus,
}

/// Re-seals every personal value not sealed under the current key (older keys, plain
/// text, missing lookup hashes), in batches, beside a running service; `dry_run` counts.
pub async fn rekey(url: &str, keys: &KeyOptions, dry_run: bool) -> Result<RekeyReport, StoreError> {
    let keys = KeyOptions {
        tolerate_unknown_keys: true,
        ..keys.clone()
    };
    macro_rules! run {
        ($store:expr) => {{
            let store = $store;
            let resealed = store.reseal(Scope::NotCurrent, dry_run).await?;
            let ring = store.data_keys();
            RekeyReport {
                dry_run,
                key: ring.current_id().to_string(),
                old_keys: ring.old_ids().iter().map(|s| s.to_string()).collect(),
                resealed,
                census: store.key_census().await?,
            }
        }};
    }
    if url.starts_with("sqlite:") {
        Ok(run!(SqliteStore::connect(url, &keys).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(run!(PostgresStore::connect(url, &keys).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// A database URL fit for messages: a password in the user part or in the query
/// (`password=`, `sslpassword=`) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &base[..scheme_end + 3],
                    &userinfo[..colon],
                    &base[at..]
                ),
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if k.eq_ignore_ascii_case("password")
                        || k.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{k}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db/helpline"),
            "postgres://app:***@db/helpline"
        );
        assert_eq!(
            super::redact_url("sqlite://helpline.db"),
            "sqlite://helpline.db"
        );
    }
}
